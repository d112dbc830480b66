//! The recommendation HTTP API.

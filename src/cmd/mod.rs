//! One module per subcommand area.

pub mod bench;
pub mod data;
pub mod demo;
pub mod model;
pub mod serve;
pub mod stream;

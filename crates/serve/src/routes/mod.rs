//! One module per endpoint group; each handler parses its input into domain types,
//! does its work and answers JSON (errors through [`crate::AppError`]).

pub mod events;
pub mod experiments;
pub mod health;
pub mod meta;
pub mod model_versions;
pub mod online;
pub mod popular;
pub mod recommend;
pub mod similar;

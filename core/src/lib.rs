//! The zrq engine: everything about the job queue that does not need a Redis server.
//!
//! Argument parsing, the key schema, the job record, the state machine, the error table and the
//! command logic live here. Command logic talks to Redis only through the [`store::Store`] trait,
//! which the module implements over the Redis module API. Keeping this crate free of Redis lets
//! the pure parts be unit-tested in milliseconds, and gives the Lua backend one written definition
//! (keys, fields, states, error codes) to be checked against.

pub mod args;
pub mod commands;
pub mod config;
pub mod cron;
pub mod error;
pub mod job;
pub mod keys;
#[cfg(test)]
pub mod memory;
pub mod packed;
pub mod reply;
pub mod spec;
pub mod state;
pub mod store;

pub use error::{ErrorCode, ZrqError};
pub use reply::Reply;

/// Result type of every fallible engine operation.
pub type Result<T> = std::result::Result<T, ZrqError>;

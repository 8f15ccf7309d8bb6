//! The tasks of the examples, declared once: the producer and the worker both use these, so they
//! cannot disagree on a task's name or types.

use serde::{Deserialize, Serialize};
use zrq::Task;

/// Add two numbers (and pretend it takes a while).
pub struct Add;

/// The arguments of [`Add`].
#[derive(Debug, Serialize, Deserialize)]
pub struct AddArgs {
    /// First term.
    pub a: i64,
    /// Second term.
    pub b: i64,
    /// How long the work takes, in milliseconds.
    pub work_ms: u64,
}

impl Task for Add {
    const NAME: &'static str = "add";
    type Args = AddArgs;
    type Output = i64;
}

/// The queue the examples use, unless `ZRQ_QUEUE` says otherwise.
pub fn queue_name() -> String {
    std::env::var("ZRQ_QUEUE").unwrap_or_else(|_| "demo".into())
}

/// The server, from `ZRQ_URL`, else the port of the repository's `redis.conf`.
pub fn url() -> String {
    std::env::var("ZRQ_URL").unwrap_or_else(|_| "redis://127.0.0.1:6390".into())
}

/// A number from the environment, or `default`.
#[allow(dead_code)]
pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

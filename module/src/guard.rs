//! Turning panics into error replies, so a bug in zrq can never abort the Redis server.
//!
//! Command handlers and blocking callbacks run inside [`catch`]; the release profile keeps
//! `panic = "unwind"` so there is something to catch.

use std::panic::{catch_unwind, AssertUnwindSafe};

use redis_module::RedisError;

/// Runs `f`; a panic becomes an `INTERNAL` error naming the panic message.
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, RedisError> {
    // AssertUnwindSafe: after a panic the command's partial state is dropped, never reused.
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        RedisError::String(format!(
            "INTERNAL zrq bug, command aborted: {}",
            message.replace(['\r', '\n'], " ")
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_internal_error() {
        let err = catch(|| -> i32 { std::panic::panic_any("boom\nsecond line") }).err();
        assert_eq!(
            err.map(|e| e.to_string()),
            Some("INTERNAL zrq bug, command aborted: boom second line".to_string())
        );
        assert_eq!(catch(|| 7).ok(), Some(7));
    }
}

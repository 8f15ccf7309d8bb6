//! The server's clock.

use redis_module::raw;

/// Unix time in milliseconds, as Redis itself reads it.
pub fn now_ms() -> i64 {
    // SAFETY: RedisModule_Milliseconds takes no arguments and only reads the clock; the pointer
    // is filled in by RedisModule_Init before any command can run.
    match unsafe { raw::RedisModule_Milliseconds } {
        Some(milliseconds) => unsafe { milliseconds() },
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
    }
}

//! The server's clock, and a cheap random source for retry jitter.

use std::sync::atomic::{AtomicU64, Ordering};

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

static RANDOM_STATE: AtomicU64 = AtomicU64::new(0);

/// A pseudo-random number (splitmix64 over a counter seeded from the clock). Only for jitter:
/// the values chosen are replicated as their effects, so replicas never draw their own.
pub fn random() -> u64 {
    const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;
    let seed = u64::try_from(now_ms()).unwrap_or(0);
    let mut z = RANDOM_STATE
        .fetch_add(GOLDEN, Ordering::Relaxed)
        .wrapping_add(seed);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

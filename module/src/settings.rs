//! Module configs (`CONFIG SET zrq.<name>` or `--loadmodule libzrq.so <name> <value>`).

use std::sync::atomic::{AtomicI64, Ordering};

use zrq_core::config::Config;

/// `zrq.backoff-base-ms`: first retry delay; doubles per attempt.
pub static BACKOFF_BASE_MS: AtomicI64 = AtomicI64::new(1_000);
/// `zrq.backoff-max-ms`: longest retry delay.
pub static BACKOFF_MAX_MS: AtomicI64 = AtomicI64::new(3_600_000);
/// `zrq.keep-ms`: retention of completed and cancelled jobs.
pub static KEEP_MS: AtomicI64 = AtomicI64::new(86_400_000);
/// `zrq.dead-max`: dead jobs kept per queue.
pub static DEAD_MAX: AtomicI64 = AtomicI64::new(10_000);

/// `zrq.consumer-idle-ms`: idle consumers with nothing pending are dropped after this.
pub static CONSUMER_IDLE_MS: AtomicI64 = AtomicI64::new(3_600_000);

/// The settings now in force.
pub fn current() -> Config {
    Config {
        backoff_base_ms: BACKOFF_BASE_MS.load(Ordering::Relaxed),
        backoff_max_ms: BACKOFF_MAX_MS.load(Ordering::Relaxed),
        keep_ms: KEEP_MS.load(Ordering::Relaxed),
        dead_max: DEAD_MAX.load(Ordering::Relaxed),
        consumer_idle_ms: CONSUMER_IDLE_MS.load(Ordering::Relaxed),
    }
}

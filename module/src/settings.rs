//! Module configs (`CONFIG SET zrq.<name>` or `--loadmodule libzrq.so <name> <value>`): one
//! value per [`zrq_core::config::SETTINGS`] entry, registered in `lib.rs` with the name, default
//! and range written there.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use zrq_core::config::{self, Config};

/// `zrq.backoff-base-ms`.
pub static BACKOFF_BASE_MS: AtomicI64 = AtomicI64::new(config::BACKOFF_BASE_MS.default);
/// `zrq.backoff-max-ms`.
pub static BACKOFF_MAX_MS: AtomicI64 = AtomicI64::new(config::BACKOFF_MAX_MS.default);
/// `zrq.keep-ms`.
pub static KEEP_MS: AtomicI64 = AtomicI64::new(config::KEEP_MS.default);
/// `zrq.dead-max`.
pub static DEAD_MAX: AtomicI64 = AtomicI64::new(config::DEAD_MAX.default);
/// `zrq.consumer-idle-ms`.
pub static CONSUMER_IDLE_MS: AtomicI64 = AtomicI64::new(config::CONSUMER_IDLE_MS.default);
/// `zrq.payload-max-bytes`.
pub static PAYLOAD_MAX_BYTES: AtomicI64 = AtomicI64::new(config::PAYLOAD_MAX_BYTES.default);
/// `zrq.result-max-bytes`.
pub static RESULT_MAX_BYTES: AtomicI64 = AtomicI64::new(config::RESULT_MAX_BYTES.default);
/// `zrq.json-depth-max`.
pub static JSON_DEPTH_MAX: AtomicI64 = AtomicI64::new(config::JSON_DEPTH_MAX.default);
/// `zrq.after-max`.
pub static AFTER_MAX: AtomicI64 = AtomicI64::new(config::AFTER_MAX.default);
/// `zrq.batch-max`.
pub static BATCH_MAX: AtomicI64 = AtomicI64::new(config::BATCH_MAX.default);
/// `zrq.schedules-max`.
pub static SCHEDULES_MAX: AtomicI64 = AtomicI64::new(config::SCHEDULES_MAX.default);
/// `zrq.every-min-ms`.
pub static EVERY_MIN_MS: AtomicI64 = AtomicI64::new(config::EVERY_MIN_MS.default);

/// `zrq.children-max`.
pub static CHILDREN_MAX: AtomicI64 = AtomicI64::new(config::CHILDREN_MAX.default);
/// `zrq.requeue-max`.
pub static REQUEUE_MAX: AtomicI64 = AtomicI64::new(config::REQUEUE_MAX.default);
/// `zrq.reply-max-bytes`.
pub static REPLY_MAX_BYTES: AtomicI64 = AtomicI64::new(config::REPLY_MAX_BYTES.default);
/// `zrq.parents-max-bytes`.
pub static PARENTS_MAX_BYTES: AtomicI64 = AtomicI64::new(config::PARENTS_MAX_BYTES.default);

/// `zrq.expire-leases`: the timer handles expired leases itself (else they wait for RECLAIM).
pub static EXPIRE_LEASES: AtomicBool = AtomicBool::new(true);

/// The settings now in force.
pub fn current() -> Config {
    let get = |value: &AtomicI64| value.load(Ordering::Relaxed);
    Config {
        backoff_base_ms: get(&BACKOFF_BASE_MS),
        backoff_max_ms: get(&BACKOFF_MAX_MS),
        keep_ms: get(&KEEP_MS),
        dead_max: get(&DEAD_MAX),
        consumer_idle_ms: get(&CONSUMER_IDLE_MS),
        payload_max_bytes: get(&PAYLOAD_MAX_BYTES),
        result_max_bytes: get(&RESULT_MAX_BYTES),
        json_depth_max: get(&JSON_DEPTH_MAX),
        after_max: get(&AFTER_MAX),
        batch_max: get(&BATCH_MAX),
        schedules_max: get(&SCHEDULES_MAX),
        every_min_ms: get(&EVERY_MIN_MS),
        children_max: get(&CHILDREN_MAX),
        requeue_max: get(&REQUEUE_MAX),
        reply_max_bytes: get(&REPLY_MAX_BYTES),
        parents_max_bytes: get(&PARENTS_MAX_BYTES),
        expire_leases: EXPIRE_LEASES.load(Ordering::Relaxed),
    }
}

//! Server-wide counters for the `INFO zrq` section: process statistics since the server started,
//! like Redis' own `INFO stats` (the per-queue totals that must survive restarts live in each
//! queue's `stats` hash).

use std::sync::atomic::{AtomicU64, Ordering};

use std::os::raw::c_int;

use redis_module::raw;
use zrq_core::state::State;

static TRANSITIONS: [AtomicU64; State::ALL.len()] = [const { AtomicU64::new(0) }; State::ALL.len()];
/// Timer passes that promoted due work.
pub static TIMER_PASSES: AtomicU64 = AtomicU64::new(0);
/// Schedule ticks the timer skipped because the server was at `maxmemory`.
pub static SKIPPED_TICKS: AtomicU64 = AtomicU64::new(0);

/// Counts a job entering `state`.
pub fn count(state: State) {
    if let Some(i) = State::ALL.iter().position(|s| *s == state) {
        TRANSITIONS[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// The module's INFO callback: writes the `zrq` section.
pub extern "C" fn info_callback(ctx: *mut raw::RedisModuleInfoCtx, _for_crash_report: c_int) {
    // INFO has no way to report an error; a section that fails to build is left out.
    let _ = crate::guard::catch(|| section(ctx));
}

fn section(ctx: *mut raw::RedisModuleInfoCtx) {
    // The unnamed section takes the module's name: `# zrq`, fields prefixed `zrq_` by Redis.
    // Names end in `_total` for counts since the server started, `_current` for values now.
    raw::add_info_section(ctx, None);
    for (state, counter) in State::ALL.iter().zip(&TRANSITIONS) {
        let value = i64::try_from(counter.load(Ordering::Relaxed)).unwrap_or(i64::MAX);
        raw::add_info_field_long_long(ctx, &format!("entered_{}_total", state.as_str()), value);
    }
    let passes = i64::try_from(TIMER_PASSES.load(Ordering::Relaxed)).unwrap_or(i64::MAX);
    raw::add_info_field_long_long(ctx, "timer_passes_total", passes);
    let skipped = i64::try_from(SKIPPED_TICKS.load(Ordering::Relaxed)).unwrap_or(i64::MAX);
    raw::add_info_field_long_long(ctx, "ticks_skipped_oom_total", skipped);
    let queues = i64::try_from(crate::timer::planned_queues()).unwrap_or(i64::MAX);
    raw::add_info_field_long_long(ctx, "timed_queues_current", queues);
}

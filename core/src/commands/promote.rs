//! The timer's work on one queue (no command): expired leases are handled (with
//! `zrq.expire-leases`), due scheduled and retrying jobs go to their streams, due schedules enqueue
//! their job, and expired finished jobs leave their indexes. Runs on the primary only; its writes
//! replicate like a command's.
//!
//! Redis refuses no write of the timer, even past `maxmemory`: a schedule tick, which creates a
//! job, is skipped while the memory is full. Promotions only move existing jobs (a stream entry
//! each) and retention frees memory, so they go on: workers can drain the queue.

use super::schedule::Definition;
use super::{
    check_queue_types, expire_finished, expire_lease, load_job, load_leased, make_pending,
    next_kept_expiry, unlink, Budget,
};
use crate::job::Job;
use crate::keys::QueueKeys;
use crate::state::{Event, State};
use crate::store::Store;
use crate::Result;

/// Most jobs or ticks handled per index in one pass, so one pass never stalls the server; the
/// rest are due immediately and handled by the next pass.
pub const BATCH: i64 = 1000;

/// Promotes what is due in `queue`; returns when the queue next has something due (a job, a
/// tick, or the end of a finished job's retention), if ever.
pub fn promote(
    store: &mut dyn Store,
    queue: &str,
    new_id: &mut dyn FnMut() -> String,
) -> Result<Option<i64>> {
    let keys = QueueKeys::new(queue);
    check_queue_types(store, &keys)?;
    let now = store.now_ms();
    let expire_leases = store.config().expire_leases;
    // The records read count against zrq.reply-max-bytes, as a command's: the jobs beyond it
    // stay due, for the next pass.
    let mut budget = Budget::new(store);
    if expire_leases {
        for id in store.zrange_upto(&keys.active(), now, BATCH)? {
            let job = load_leased(store, &keys, &id);
            if !budget.admit(job.as_ref().map_or(0, Job::text_bytes)) {
                break;
            }
            expire(store, &keys, &id, job)?;
        }
    }
    for index in [keys.scheduled(), keys.retrying()] {
        for id in store.zrange_upto(&index, now, BATCH)? {
            let job = load_job(store, &keys, &id).ok().flatten();
            if !budget.admit(job.as_ref().map_or(0, Job::text_bytes)) {
                break;
            }
            store.zrem(&index, &id)?;
            if let Some(mut job) =
                job.filter(|j| matches!(j.state, State::Scheduled | State::Retrying))
            {
                make_pending(store, &keys, &mut job, Event::Promote)?;
            }
        }
    }
    let due_ticks = store.zrange_upto(&keys.ticks(), now, BATCH)?;
    let memory_full = !due_ticks.is_empty() && store.memory_full();
    // A definition's payload is checked as JSON again before its job is made (stored data is
    // never trusted): a pass reads at most about payload-max-bytes of definitions (at least one),
    // and the ticks left stay due for the next pass, which comes at once.
    let mut read: i64 = 0;
    for name in due_ticks {
        let Some(text) = store.hget(&keys.schedules(), &name)? else {
            store.zrem(&keys.ticks(), &name)?;
            continue;
        };
        let size = i64::try_from(text.len()).unwrap_or(i64::MAX);
        if read > 0 && read.saturating_add(size) > store.config().payload_max_bytes {
            break;
        }
        read = read.saturating_add(size);
        let due = store.zscore(&keys.ticks(), &name)?.unwrap_or(now);
        let Ok(mut definition) = Definition::from_json(&keys.schedules(), &text) else {
            store.zrem(&keys.ticks(), &name)?;
            continue;
        };
        // A tick creates a job: at maxmemory it is skipped (and counted) rather than forced past
        // the limit, and the schedule goes on with its next run.
        if memory_full {
            store.count_skipped_tick();
        } else {
            definition.job(queue).apply(store, &mut *new_id)?;
            definition.last_run = Some(now);
            store.hset(&keys.schedules(), &[(&name, &definition.to_json())])?;
        }
        match definition.next_run(due, now, store.config().every_min_ms) {
            Some(next) => store.zadd(&keys.ticks(), next, &name)?,
            None => store.zrem(&keys.ticks(), &name)?,
        }
    }
    expire_finished(store, &keys, now)?;
    let mut next: Option<i64> = None;
    let timed = [
        keys.scheduled(),
        keys.retrying(),
        keys.ticks(),
        keys.completed(),
        keys.cancelled(),
    ];
    let leases = expire_leases.then(|| keys.active());
    let mut dues = Vec::with_capacity(timed.len() + 3);
    for index in timed.into_iter().chain(leases) {
        dues.push(store.zfirst_score(&index)?);
    }
    for state in State::KEPT {
        dues.push(next_kept_expiry(store, &keys, state)?);
    }
    for due in dues.into_iter().flatten() {
        next = Some(next.map_or(due, |n| n.min(due)));
    }
    Ok(next)
}

/// Handles the expired lease of job `id` (see [`expire_lease`]); with attempts left the job goes
/// back to its stream, where any worker may fetch it (blocked workers wake).
fn expire(store: &mut dyn Store, keys: &QueueKeys, id: &str, job: Option<Job>) -> Result<()> {
    match expire_lease(store, keys, id, job)? {
        Some(mut job) => {
            unlink(store, keys, &mut job)?;
            make_pending(store, keys, &mut job, Event::Expire)
        }
        None => Ok(()),
    }
}

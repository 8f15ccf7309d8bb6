//! The server-side timer: handles expired leases, promotes delayed jobs and retries when they are
//! due, fires recurring schedules, and expires finished jobs from their indexes — with no client
//! polling.
//!
//! What is due lives in each queue's sorted sets (`active`, `scheduled`, `retrying`, `ticks`,
//! `completed`, `cancelled`). This module keeps only a plan derived from them: which queue has something due
//! when, so a single Redis timer can be armed for the earliest due time. Commands add to the plan
//! as they write (`Store::wake_at`). The plan is rebuilt from the keyspace whenever this server
//! becomes the one that promotes (after start-up loading, or a replica promoted to primary), so a
//! restart or failover loses nothing. A sweep at least every second also covers a plan that missed
//! something. Replicas never promote: they receive the primary's promotions through replication.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use redis_module::{raw, Context, ContextFlags, RedisModuleTimerID};
use zrq_core::commands::promote::promote;
use zrq_core::keys::split_key;

use crate::guard;
use crate::stats::TIMER_PASSES;
use crate::store::RedisStore;

/// Longest time between two timer passes.
const SWEEP_MS: i64 = 1_000;
/// Key suffixes of the keys that hold due times: sorted sets scored by them, and the logs of the
/// jobs kept for the queue's retention (each entry's time plus `zrq.keep-ms`).
const TIMED_SUFFIXES: [&str; 8] = [
    "active",
    "scheduled",
    "retrying",
    "ticks",
    "completed",
    "cancelled",
    "completed:log",
    "cancelled:log",
];

/// A queue in a logical database: zrq works in any database, and so does its timer.
type Target = (i32, String);

#[derive(Default)]
struct Plan {
    /// (due unix ms, database, queue): the earliest due time of each planned queue.
    due: BTreeSet<(i64, i32, String)>,
    /// The same, by database and queue: looked up by the queue's name as a command has it (no
    /// string made), in ordered maps (a few comparisons for the usual handful of queues, where
    /// two SipHash lookups measured ~390 instructions an ACK).
    next: BTreeMap<i32, BTreeMap<String, i64>>,
    /// The armed timer and when it fires.
    armed: Option<(RedisModuleTimerID, i64)>,
    /// Whether the last pass ran on a primary with a complete plan.
    promoting: bool,
}

impl Plan {
    /// Notes that `target` has something due at `due`. Only each queue's earliest due time is
    /// kept: the pass at that time recomputes the queue's next one from its keys, so the plan
    /// holds one entry per queue however many jobs are due.
    fn note(&mut self, due: i64, target: Target) {
        let (db, queue) = target;
        if let Some(current) = self.planned(db, &queue) {
            if current <= due {
                return;
            }
            self.due.remove(&(current, db, queue.clone()));
        }
        self.due.insert((due, db, queue.clone()));
        self.next.entry(db).or_default().insert(queue, due);
    }

    /// When queue `queue` of database `db` is planned, if it is.
    fn planned(&self, db: i32, queue: &str) -> Option<i64> {
        self.next.get(&db)?.get(queue).copied()
    }

    /// Removes and returns the queues due at or before `now`.
    fn take_due(&mut self, now: i64) -> Vec<Target> {
        let later = self.due.split_off(&(now + 1, i32::MIN, String::new()));
        let due = std::mem::replace(&mut self.due, later);
        due.into_iter()
            .map(|(_, db, queue)| {
                if let Some(queues) = self.next.get_mut(&db) {
                    queues.remove(&queue);
                    if queues.is_empty() {
                        self.next.remove(&db);
                    }
                }
                (db, queue)
            })
            .collect()
    }
}

thread_local! {
    // Redis runs commands and timers on its main thread only.
    static PLAN: RefCell<Plan> = RefCell::new(Plan::default());
}

/// Notes that `queue` has something due at `due`, arming the timer earlier if needed.
pub fn wake_at(ctx: &Context, queue: &str, due: i64) {
    let db = selected_db(ctx);
    // Most calls change nothing (a queue's first job planned it; an ACK plans its queue's
    // retention, later than what is planned already): then no string is made for the queue and
    // the timer is left as it is. An armed timer fires early enough for an unchanged plan (every
    // change re-arms it); without one (inside a pass, which arms after), `arm` decides as before.
    let unchanged = PLAN.with(|plan| {
        let plan = plan.borrow();
        plan.armed.is_some() && plan.planned(db, queue).is_some_and(|at| at <= due)
    });
    if unchanged {
        return;
    }
    PLAN.with(|plan| plan.borrow_mut().note(due, (db, queue.to_string())));
    arm(ctx);
}

/// How many queues the plan holds (for INFO).
pub fn planned_queues() -> usize {
    PLAN.with(|plan| plan.borrow().next.values().map(BTreeMap::len).sum())
}

/// Arms the timer for the earliest due time, at most [`SWEEP_MS`] away. Called at load.
pub fn arm(ctx: &Context) {
    let now = crate::clock::now_ms();
    let wanted = PLAN.with(|plan| {
        let plan = plan.borrow();
        let earliest = plan.due.first().map_or(i64::MAX, |(due, _, _)| *due);
        earliest.min(now + SWEEP_MS).max(now)
    });
    let current = PLAN.with(|plan| plan.borrow().armed);
    if let Some((id, at)) = current {
        if at <= wanted {
            return;
        }
        // The timer would fire too late: replace it.
        let _ = ctx.stop_timer::<()>(id);
    }
    let delay = u64::try_from(wanted - now).unwrap_or(0);
    let id = ctx.create_timer(Duration::from_millis(delay), on_timer, ());
    PLAN.with(|plan| plan.borrow_mut().armed = Some((id, wanted)));
}

fn is_primary(ctx: &Context) -> bool {
    let flags = ctx.get_flags();
    flags.contains(ContextFlags::MASTER) && !flags.contains(ContextFlags::LOADING)
}

fn on_timer(ctx: &Context, _: ()) {
    PLAN.with(|plan| plan.borrow_mut().armed = None);
    if is_primary(ctx) {
        let _ = guard::catch(|| pass(ctx));
    } else {
        PLAN.with(|plan| plan.borrow_mut().promoting = false);
    }
    arm(ctx);
}

/// One timer pass: promote every queue with something due.
fn pass(ctx: &Context) {
    let rebuild = PLAN.with(|plan| !plan.borrow().promoting);
    if rebuild {
        let targets = timed_queues(ctx);
        PLAN.with(|plan| {
            let mut plan = plan.borrow_mut();
            plan.promoting = true;
            for target in targets {
                plan.note(i64::MIN, target);
            }
        });
    }
    let now = crate::clock::now_ms();
    let due = PLAN.with(|plan| plan.borrow_mut().take_due(now));
    if due.is_empty() {
        return;
    }
    TIMER_PASSES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    for (db, queue) in due {
        if !select_db(ctx, db) {
            continue;
        }
        let mut store = RedisStore::new(ctx);
        match promote(&mut store, &queue, &mut zrq_core::job::new_id) {
            Ok(Some(next)) => PLAN.with(|plan| plan.borrow_mut().note(next, (db, queue))),
            Ok(None) => {}
            Err(err) => ctx.log_warning(&format!(
                "zrq: timer pass on queue '{queue}' (db {db}) failed: {err}"
            )),
        }
    }
}

/// The logical database selected in `ctx`.
fn selected_db(ctx: &Context) -> i32 {
    // SAFETY: `ctx.ctx` is a live context; the call only reads its client's database.
    unsafe { raw::RedisModule_GetSelectedDb.map_or(0, |get| get(ctx.ctx)) }
}

/// Selects database `db` in `ctx`; false if it does not exist.
fn select_db(ctx: &Context, db: i32) -> bool {
    // SAFETY: `ctx.ctx` is the timer's live context; selecting a database only changes which
    // keyspace its following calls use.
    let status = unsafe { raw::RedisModule_SelectDb.map(|select| select(ctx.ctx, db)) };
    status == Some(raw::REDISMODULE_OK as i32)
}

/// The databases that hold keys (from `INFO keyspace`).
fn databases(ctx: &Context) -> Vec<i32> {
    let Ok(info) = ctx.call("INFO", &["keyspace"]).and_then(String::try_from) else {
        return vec![0];
    };
    info.lines()
        .filter_map(|line| line.strip_prefix("db")?.split(':').next()?.parse().ok())
        .collect()
}

/// Every queue, in every database, that has a timed key (`TIMED_SUFFIXES`), found by scanning the keyspace
/// (once per rebuild).
fn timed_queues(ctx: &Context) -> BTreeSet<Target> {
    let mut targets = BTreeSet::new();
    for db in databases(ctx) {
        if select_db(ctx, db) {
            targets.extend(queues_in_db(ctx).into_iter().map(|q| (db, q)));
        }
    }
    targets
}

/// The queues of the selected database that have a timed key.
fn queues_in_db(ctx: &Context) -> BTreeSet<String> {
    let mut queues = BTreeSet::new();
    let mut cursor = "0".to_string();
    loop {
        let reply = ctx.call(
            "SCAN",
            &[cursor.as_str(), "MATCH", "zrq:{*}:*", "COUNT", "1000"],
        );
        let Ok(redis_module::RedisValue::Array(parts)) = reply else {
            return queues;
        };
        let mut parts = parts.into_iter();
        cursor = match parts.next() {
            Some(value) => String::try_from(value).unwrap_or_else(|_| "0".to_string()),
            None => "0".to_string(),
        };
        if let Some(redis_module::RedisValue::Array(keys)) = parts.next() {
            for key in keys.into_iter().filter_map(|k| String::try_from(k).ok()) {
                // Only exact `zrq:{<valid queue>}:<timed index>` names plan a queue: a job id
                // ending in `:ticks` does not, nor does a name no command would accept.
                if let Some((queue, suffix)) = split_key(&key) {
                    if TIMED_SUFFIXES.contains(&suffix) {
                        queues.insert(queue.to_string());
                    }
                }
            }
        }
        if cursor == "0" {
            return queues;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(queue: &str) -> Target {
        (0, queue.to_string())
    }

    #[test]
    fn the_plan_keeps_one_entry_per_queue_at_its_earliest_due_time() {
        let mut plan = Plan::default();
        for due in [500, 300, 900, 300, 700] {
            plan.note(due, target("a"));
        }
        plan.note(400, target("b"));
        plan.note(400, (3, "a".to_string()));
        assert_eq!(plan.due.len(), 3, "one entry per queue and database");
        assert_eq!(plan.planned(0, "a"), Some(300));
        assert_eq!(plan.planned(3, "a"), Some(400));
        assert_eq!(plan.planned(3, "b"), None);
        assert_eq!(plan.take_due(299), Vec::<Target>::new());
        assert_eq!(
            plan.take_due(400),
            vec![target("a"), target("b"), (3, "a".to_string())]
        );
        assert!(plan.due.is_empty() && plan.next.is_empty());
        plan.note(1000, target("a"));
        assert_eq!(
            plan.planned(0, "a"),
            Some(1000),
            "a taken queue can be planned again"
        );
    }
}

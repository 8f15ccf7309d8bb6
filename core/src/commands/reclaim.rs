//! `ZRQ.RECLAIM <queue> <consumer> [COUNT <n>]` → the jobs whose lease expired, now the consumer's.
//!
//! An expired lease counts as a failed attempt: the job's error says so and the queue's `failed`
//! counter grows. A job with attempts left starts a new attempt owned by the caller at once (its
//! worker is presumed dead, and the caller is alive); one that has used all its attempts becomes
//! `dead` and is not returned. RECLAIM also drops consumers idle for `zrq.consumer-idle-ms` (an hour)
//! with nothing pending; workers call it periodically, so it is the queue's janitor.

use super::{check_queue_types, expire_lease, load_leased, start_attempt, Budget, Leases};
use crate::args::{self, Options, MAX_COUNT};
use crate::job::Job;
use crate::keys::{QueueKeys, GROUP, MAX_PRIORITY};
use crate::state::Event;
use crate::store::{KeyType, Store};
use crate::{Result, ZrqError};

/// Jobs examined when `COUNT` is not given.
pub const DEFAULT_COUNT: i64 = 10;

/// Options of `ZRQ.RECLAIM` (the Lua library's table is generated from it).
pub const OPTIONS: [&str; 1] = ["COUNT"];

/// Parsed arguments of `ZRQ.RECLAIM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reclaim<'a> {
    /// Queue to reclaim in.
    pub queue: &'a str,
    /// The worker taking the jobs over.
    pub consumer: &'a str,
    /// Most expired leases to handle.
    pub count: i64,
}

impl<'a> Reclaim<'a> {
    /// Parses the arguments after the command name.
    pub fn parse(args: &'a [&'a [u8]]) -> Result<Self> {
        let [queue, consumer, rest @ ..] = args else {
            return Err(ZrqError::arity("zrq.reclaim"));
        };
        let mut cmd = Reclaim {
            queue: args::name("queue", queue)?,
            consumer: args::name("consumer", consumer)?,
            count: DEFAULT_COUNT,
        };
        let mut options = Options::new(rest);
        while let Some((_, value)) = options.next(&OPTIONS)? {
            cmd.count = args::integer("COUNT", value, 1, MAX_COUNT)?;
        }
        Ok(cmd)
    }

    /// Handles up to `count` expired leases, oldest deadline first; fewer when the jobs' records
    /// reach `zrq.reply-max-bytes` (the rest stay expired, for the next call).
    pub fn apply(&self, store: &mut dyn Store) -> Result<Vec<Job>> {
        let keys = QueueKeys::new(self.queue);
        check_queue_types(store, &keys)?;
        let now = store.now_ms();
        let expired = store.zrange_upto(&keys.active(), now, self.count)?;
        let mut budget = Budget::new(store);
        let mut reclaimed = Vec::new();
        let mut leases = Leases::default();
        for id in expired {
            let job = load_leased(store, &keys, &id);
            if !budget.admit(job.as_ref().map_or(0, Job::text_bytes)) {
                break;
            }
            let Some(mut job) = expire_lease(store, &keys, &id, job)? else {
                continue;
            };
            // A job delivered by an older zrq is still in the group's pending-entries list: it
            // leaves it (and the stream) here, and runs on as a job delivered today, without an
            // entry (start_attempt drops the field and keeps the entry in the lease token).
            if let Some(entry) = &job.entry {
                store.xack_del(&keys.stream_at(job.priority), GROUP, entry)?;
            }
            start_attempt(
                store,
                &keys,
                &mut job,
                self.consumer,
                Event::Reclaim,
                &mut leases,
            )?;
            reclaimed.push(job);
        }
        leases.register(store, &keys)?;
        let idle = store.config().consumer_idle_ms;
        for priority in 0..=MAX_PRIORITY {
            let stream = keys.stream_at(priority);
            if store.key_type(&stream)? == KeyType::Stream {
                store.prune_consumers(&stream, GROUP, idle)?;
            }
        }
        Ok(reclaimed)
    }
}

//! `ZRQ.RECLAIM <queue> <consumer> [COUNT <n>]` → the jobs whose lease expired, now the consumer's.
//!
//! A job whose lease expired with attempts left starts a new attempt owned by the caller; one that
//! has used all its attempts becomes `dead` and is not returned.

use super::{check_types, leave_stream, load_job, start_attempt};
use crate::args::{self, Options, MAX_COUNT};
use crate::job::Job;
use crate::keys::{QueueKeys, GROUP};
use crate::state::{Event, State};
use crate::store::{KeyType, Store};
use crate::{Result, ZrqError};

/// Jobs examined when `COUNT` is not given.
pub const DEFAULT_COUNT: i64 = 10;

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
        while let Some((_, value)) = options.next(&["COUNT"])? {
            cmd.count = args::integer("COUNT", value, 1, MAX_COUNT)?;
        }
        Ok(cmd)
    }

    /// Handles up to `count` expired leases, oldest deadline first.
    pub fn apply(&self, store: &mut dyn Store) -> Result<Vec<Job>> {
        let keys = QueueKeys::new(self.queue);
        let (stream, active, dead, stats) =
            (keys.stream(), keys.active(), keys.dead(), keys.stats());
        check_types(
            store,
            &[
                (&stream, KeyType::Stream),
                (&active, KeyType::ZSet),
                (&dead, KeyType::ZSet),
                (&stats, KeyType::Hash),
            ],
        )?;
        let now = store.now_ms();
        let expired = store.zrange_upto(&active, now, self.count)?;
        let mut reclaimed = Vec::new();
        for id in expired {
            let job = load_job(store, &keys, &id).ok().flatten();
            let Some(mut job) = job.filter(|j| j.state == State::Active) else {
                // A lease without an active job behind it (deleted by hand): drop the lease.
                store.zrem(&active, &id)?;
                continue;
            };
            let error = format!(
                "lease expired after {} ms (attempt {} of {}, consumer {})",
                job.timeout,
                job.attempt,
                job.max_attempts,
                job.consumer.as_deref().unwrap_or("?")
            );
            if job.attempt >= job.max_attempts {
                let dead_state = job
                    .state
                    .after(Event::Exhaust)
                    .ok_or_else(|| ZrqError::internal("an active job cannot die"))?;
                leave_stream(store, &keys, &job)?;
                let finished = now.to_string();
                store.hset(
                    &keys.job(&id),
                    &[
                        ("state", dead_state.as_str()),
                        ("finished_at", &finished),
                        ("error", &error),
                    ],
                )?;
                store.zadd(&dead, now, &id)?;
                store.hincrby(&stats, "dead", 1)?;
                continue;
            }
            if let Some(entry) = &job.entry {
                store.xclaim(&stream, GROUP, self.consumer, entry)?;
            }
            store.hset(&keys.job(&id), &[("error", &error)])?;
            job.error = Some(error);
            start_attempt(store, &keys, &mut job, self.consumer, Event::Reclaim)?;
            reclaimed.push(job);
        }
        Ok(reclaimed)
    }
}

//! `ZRQ.FETCH <queue> <consumer> [COUNT <n>] [BLOCK <ms>]` → array of jobs, oldest first.
//!
//! The engine part never blocks: it delivers what is there. The module blocks the client on the
//! queue's stream when nothing was delivered and `BLOCK` was given, and calls [`Fetch::apply`]
//! again each time the stream is signalled.

use super::{check_queue_types, job_at, start_attempt, Budget, Leases};
use crate::args::{self, Options, MAX_COUNT, MAX_DURATION_MS};
use crate::job::Job;
use crate::keys::{QueueKeys, GROUP, MAX_PRIORITY};
use crate::state::{Event, State};
use crate::store::{entry_after, KeyType, Store};
use crate::{Result, ZrqError};

/// Options of `ZRQ.FETCH` (the Lua library's table is generated from it).
pub const OPTIONS: [&str; 2] = ["COUNT", "BLOCK"];

/// Parsed arguments of `ZRQ.FETCH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    /// Queue to fetch from.
    pub queue: String,
    /// The worker's name; it owns the jobs it fetches.
    pub consumer: String,
    /// Most jobs to deliver.
    pub count: i64,
    /// How long to wait for a job, in ms (0 = forever); `None` = do not wait.
    pub block: Option<i64>,
}

impl Fetch {
    /// Parses the arguments after the command name.
    pub fn parse(args: &[&[u8]]) -> Result<Self> {
        let [queue, consumer, rest @ ..] = args else {
            return Err(ZrqError::arity("zrq.fetch"));
        };
        let mut cmd = Fetch {
            queue: args::name("queue", queue)?.to_string(),
            consumer: args::name("consumer", consumer)?.to_string(),
            count: 1,
            block: None,
        };
        let mut options = Options::new(rest);
        while let Some((option, value)) = options.next(&OPTIONS)? {
            match option {
                "COUNT" => cmd.count = args::integer("COUNT", value, 1, MAX_COUNT)?,
                _ => cmd.block = Some(args::integer("BLOCK", value, 0, MAX_DURATION_MS)?),
            }
        }
        Ok(cmd)
    }

    /// The key the module blocks on while waiting.
    pub fn wait_key(&self) -> String {
        QueueKeys::new(&self.queue).stream()
    }

    /// Delivers up to `count` pending jobs to the consumer, highest priority first and oldest
    /// first within a priority; each becomes active with a lease. A paused queue delivers nothing.
    ///
    /// The jobs' records count against `zrq.reply-max-bytes`: the entries read beyond the one
    /// that would pass it are handed back undelivered ([`Store::undeliver`]), in order, for the
    /// next FETCH. Only a page that reaches the budget pays for that.
    pub fn apply(&self, store: &mut dyn Store) -> Result<Vec<Job>> {
        let keys = QueueKeys::new(&self.queue);
        check_queue_types(store, &keys)?;
        if store.key_type(&keys.paused())? != KeyType::Missing {
            return Ok(Vec::new());
        }
        let mut leases = Leases::default();
        let jobs = self.deliver(store, &keys, &mut leases)?;
        leases.register(store, &keys)?;
        Ok(jobs)
    }

    /// Delivers the jobs (see [`Fetch::apply`]) and starts their attempts, whose leases go to
    /// `leases`.
    fn deliver(
        &self,
        store: &mut dyn Store,
        keys: &QueueKeys,
        leases: &mut Leases,
    ) -> Result<Vec<Job>> {
        let mut budget = Budget::new(store);
        let mut jobs = Vec::new();
        for priority in (0..=MAX_PRIORITY).rev() {
            let wanted = self.count - i64::try_from(jobs.len()).unwrap_or(i64::MAX);
            let stream = keys.stream_at(priority);
            if wanted <= 0 || store.key_type(&stream)? == KeyType::Missing {
                continue;
            }
            let delivered = store.xreadgroup(&stream, GROUP, &self.consumer, wanted)?;
            // Each delivered entry's job is read in turn; the jobs' records count against the
            // budget, and the entries from the one that would pass it on are handed back.
            let mut taken = Vec::new();
            let mut handed_back = None;
            for (entry, fields) in delivered {
                // An entry without a readable pending job was not written by zrq, or its job was
                // deleted by hand: trimmed with the others, it cannot block the queue.
                let job = job_at(store, keys, priority, &entry, fields).ok().flatten();
                if !budget.admit(job.as_ref().map_or(0, Job::text_bytes)) {
                    handed_back = Some(entry);
                    break;
                }
                taken.push((entry, job));
            }
            // The stream holds only undelivered jobs: what was just delivered (the first entries
            // of the stream) leaves it in one trim, and the started jobs live on in their records
            // and the lease index. An entry without a pending job goes the same way. What was
            // read beyond the budget stays, undelivered again, first in line for the next FETCH.
            if let Some(after) = taken.last().and_then(|(last, _)| entry_after(last)) {
                store.xtrim_below(&stream, &after)?;
            }
            if let Some(first) = &handed_back {
                store.undeliver(&stream, GROUP, first)?;
            }
            for (_, job) in taken {
                match job {
                    Some(mut job) if job.state == State::Pending => {
                        start_attempt(store, keys, &mut job, &self.consumer, Event::Fetch, leases)?;
                        jobs.push(job);
                    }
                    _ => {}
                }
            }
            if handed_back.is_some() {
                return Ok(jobs);
            }
        }
        Ok(jobs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Parsed = (i64, Option<i64>);

    fn parse(args: &[&str]) -> std::result::Result<Parsed, String> {
        let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        Fetch::parse(&bytes)
            .map(|c| (c.count, c.block))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn table() {
        let cases: &[(&[&str], std::result::Result<Parsed, &str>)] = &[
            (&["q", "w"], Ok((1, None))),
            (&["q", "w", "COUNT", "10", "BLOCK", "0"], Ok((10, Some(0)))),
            (
                &["q"],
                Err("ERR wrong number of arguments for 'zrq.fetch' command"),
            ),
            (
                &["q", "w", "COUNT", "0"],
                Err("ERR COUNT must be an integer from 1 to 1000, got '0'"),
            ),
            (
                &["q", "w", "COUNT", "1000000"],
                Err("ERR COUNT must be an integer from 1 to 1000, got '1000000'"),
            ),
            (
                &["q", "w", "BLOCK", "-5"],
                Err("ERR BLOCK must be an integer from 0 to 315360000000, got '-5'"),
            ),
            (&["q", "w", "BLOCK"], Err("ERR option BLOCK needs a value")),
        ];
        for (args, want) in cases {
            assert_eq!(parse(args), want.map_err(str::to_string), "{args:?}");
        }
    }
}

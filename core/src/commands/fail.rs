//! `ZRQ.FAIL <queue> <id> <error> [RETRYIN <ms>] [LEASE <token>]` → the job's new state
//! (`retrying`, `dead` or `cancelled`), or nil if the job was not active (or not under that lease).
//!
//! With attempts left the job waits in `retrying` until its retry time: `RETRYIN` exactly, else an
//! exponential backoff with jitter from the job's `BACKOFF` (or `zrq.backoff-base-ms`), capped by
//! `zrq.backoff-max-ms`. The server's timer then puts it back in its stream.

use super::{
    announce, check_queue_types, finish, held, lease_token, load_job_to_finish, next_state, save,
    unlink, Ending,
};
use crate::args::{self, Options, MAX_DURATION_MS};
use crate::config::backoff_delay;
use crate::keys::QueueKeys;
use crate::state::Event;
use crate::store::Store;
use crate::{Reply, Result, ZrqError};

/// Longest error text stored, in bytes.
pub const MAX_ERROR_LEN: usize = 65_536;

/// Options of `ZRQ.FAIL` (the Lua library's table is generated from it).
pub const OPTIONS: [&str; 2] = ["RETRYIN", "LEASE"];

/// Parsed arguments of `ZRQ.FAIL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fail<'a> {
    /// The job's queue.
    pub queue: &'a str,
    /// The job id.
    pub id: &'a str,
    /// What went wrong.
    pub error: &'a str,
    /// Retry after exactly this many ms instead of the backoff.
    pub retry_in: Option<i64>,
    /// The lease token of the delivery that failed.
    pub lease: Option<&'a str>,
}

impl<'a> Fail<'a> {
    /// Parses the arguments after the command name.
    pub fn parse(args: &'a [&'a [u8]]) -> Result<Self> {
        let [queue, id, error, rest @ ..] = args else {
            return Err(ZrqError::arity("zrq.fail"));
        };
        let queue = args::name("queue", queue)?;
        let id = args::name("id", id)?;
        let error = std::str::from_utf8(error)
            .ok()
            .filter(|e| e.len() <= MAX_ERROR_LEN)
            .ok_or_else(|| ZrqError::bad_text("error", MAX_ERROR_LEN))?;
        let mut cmd = Fail {
            queue,
            id,
            error,
            retry_in: None,
            lease: None,
        };
        let mut options = Options::new(rest);
        while let Some((option, value)) = options.next(&OPTIONS)? {
            match option {
                "RETRYIN" => {
                    cmd.retry_in = Some(args::integer("RETRYIN", value, 0, MAX_DURATION_MS)?)
                }
                _ => cmd.lease = Some(lease_token(value)?),
            }
        }
        Ok(cmd)
    }

    /// Records the failure and retries, buries or (if cancellation was requested) cancels the job.
    pub fn apply(&self, store: &mut dyn Store) -> Result<Reply> {
        let keys = QueueKeys::new(self.queue);
        check_queue_types(store, &keys)?;
        let Some(mut job) = held(load_job_to_finish(store, &keys, self.id)?, self.lease) else {
            return Ok(Reply::Nil);
        };
        store.hincrby(&keys.stats(), "failed", 1)?;
        let error = Ending::error(self.error);
        if job.cancel_requested.is_some() {
            finish(store, &keys, &mut job, Event::Abandon, error)?;
        } else if job.attempt >= job.max_attempts {
            finish(store, &keys, &mut job, Event::Bury, error)?;
        } else {
            let config = store.config();
            let delay = match self.retry_in {
                Some(ms) => ms,
                None => {
                    let base = job.backoff.unwrap_or(config.backoff_base_ms);
                    let random = store.random();
                    backoff_delay(base, config.backoff_max_ms, job.attempt, random)
                }
            };
            let due = store.now_ms().saturating_add(delay);
            let next = next_state(&job, Event::Retry)?;
            unlink(store, &keys, &mut job)?;
            job.state = next;
            job.error = Some(self.error.to_string());
            job.run_at = Some(due);
            save(store, &keys, &mut job, None)?;
            store.zadd(&keys.retrying(), due, self.id)?;
            store.wake_at(self.queue, due);
            announce(store, &keys, self.id, job.state)?;
        }
        Ok(Reply::Bulk(job.state.as_str().to_string()))
    }
}

//! `ZRQ.TOUCH <queue> <id> [TIMEOUT <ms>] [PROGRESS <0-100>] [LEASE <token>]` → 1 when the lease
//! was extended, 0 when the job is not active or not under that lease (the lease is lost), -1 when
//! its cancellation was requested.
//!
//! The heartbeat of long jobs: the lease restarts from now, for `TIMEOUT` ms if given (which also
//! becomes the job's timeout) or the job's own timeout.

use super::{check_queue_types, held, lease_token, load_job, save};
use crate::args::{self, Options, MAX_DURATION_MS};
use crate::keys::QueueKeys;
use crate::reply::code;
use crate::store::Store;
use crate::{Reply, Result, ZrqError};

/// Options of `ZRQ.TOUCH` (the Lua library's table is generated from it).
pub const OPTIONS: [&str; 3] = ["TIMEOUT", "PROGRESS", "LEASE"];

/// Parsed arguments of `ZRQ.TOUCH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touch<'a> {
    /// The job's queue.
    pub queue: &'a str,
    /// The job id.
    pub id: &'a str,
    /// New lease length in ms.
    pub timeout: Option<i64>,
    /// Progress to record, 0 to 100.
    pub progress: Option<i64>,
    /// The lease token of the delivery being extended.
    pub lease: Option<&'a str>,
}

impl<'a> Touch<'a> {
    /// Parses the arguments after the command name.
    pub fn parse(args: &'a [&'a [u8]]) -> Result<Self> {
        let [queue, id, rest @ ..] = args else {
            return Err(ZrqError::arity("zrq.touch"));
        };
        let mut cmd = Touch {
            queue: args::name("queue", queue)?,
            id: args::name("id", id)?,
            timeout: None,
            progress: None,
            lease: None,
        };
        let mut options = Options::new(rest);
        while let Some((option, value)) = options.next(&OPTIONS)? {
            match option {
                "TIMEOUT" => {
                    cmd.timeout = Some(args::integer("TIMEOUT", value, 1, MAX_DURATION_MS)?)
                }
                "PROGRESS" => cmd.progress = Some(args::integer("PROGRESS", value, 0, 100)?),
                _ => cmd.lease = Some(lease_token(value)?),
            }
        }
        Ok(cmd)
    }

    /// Extends the lease of an active job.
    pub fn apply(&self, store: &mut dyn Store) -> Result<Reply> {
        let keys = QueueKeys::new(self.queue);
        check_queue_types(store, &keys)?;
        let Some(mut job) = held(load_job(store, &keys, self.id)?, self.lease) else {
            return Ok(Reply::Int(code::NOTHING));
        };
        if job.cancel_requested.is_some() {
            return Ok(Reply::Int(code::CANCELLED));
        }
        let timeout = self.timeout.unwrap_or(job.timeout);
        let deadline = store.now_ms().saturating_add(timeout);
        store.zadd(&keys.active(), deadline, self.id)?;
        store.wake_at(self.queue, deadline);
        // The record is written only when something in it changes: a new lease length (left
        // out of the record when it is the default), the progress; both in one write.
        if self.timeout.is_some() || self.progress.is_some() {
            job.timeout = timeout;
            job.progress = self.progress.or(job.progress);
            save(store, &keys, &mut job, None)?;
        }
        Ok(Reply::Int(code::DONE))
    }
}

//! `ZRQ.ACK <queue> <id> [RESULT <json>] [LEASE <token>]` → 1 if the job was active and is now
//! completed, 0 if it was not active (or not under that lease), -1 if its cancellation was
//! requested meanwhile (it is now cancelled).

use super::{
    check_finish_types, finish, held, lease_token, load_job_to_finish, next_state, Ending,
};
use crate::args::{self, Options};
use crate::config::{Config, RESULT_MAX_BYTES};
use crate::keys::QueueKeys;
use crate::reply::code;
use crate::state::Event;
use crate::store::Store;
use crate::{Reply, Result, ZrqError};

/// Options of `ZRQ.ACK` (the Lua library's table is generated from it).
pub const OPTIONS: [&str; 2] = ["RESULT", "LEASE"];

/// Parsed arguments of `ZRQ.ACK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack<'a> {
    /// The job's queue.
    pub queue: &'a str,
    /// The job id.
    pub id: &'a str,
    /// The result JSON to store.
    pub result: Option<&'a str>,
    /// The lease token of the delivery being acknowledged.
    pub lease: Option<&'a str>,
}

impl<'a> Ack<'a> {
    /// Parses the arguments after the command name; `RESULT` within the limits of `config`.
    pub fn parse(args: &'a [&'a [u8]], config: &Config) -> Result<Self> {
        let [queue, id, rest @ ..] = args else {
            return Err(ZrqError::arity("zrq.ack"));
        };
        let mut cmd = Ack {
            queue: args::name("queue", queue)?,
            id: args::name("id", id)?,
            result: None,
            lease: None,
        };
        let mut options = Options::new(rest);
        while let Some((option, value)) = options.next(&OPTIONS)? {
            if option == "LEASE" {
                cmd.lease = Some(lease_token(value)?);
                continue;
            }
            args::within(
                "RESULT",
                value.len(),
                &RESULT_MAX_BYTES,
                config.result_max_bytes,
            )?;
            cmd.result = Some(args::json("RESULT", value, config.json_depth_max)?);
        }
        Ok(cmd)
    }

    /// Completes the job if it is active.
    pub fn apply(&self, store: &mut dyn Store) -> Result<Reply> {
        let keys = QueueKeys::new(self.queue);
        let Some(mut job) = held(load_job_to_finish(store, &keys, self.id)?, self.lease) else {
            return Ok(Reply::Int(code::NOTHING));
        };
        let (event, reply) = if job.cancel_requested.is_some() {
            (Event::Abandon, code::CANCELLED)
        } else {
            (Event::Ack, code::DONE)
        };
        // Only the keys this job's ending writes (a job that is not held changed nothing).
        check_finish_types(store, &keys, &job, next_state(&job, event)?)?;
        let ending = Ending {
            result: self.result,
            error: None,
        };
        finish(store, &keys, &mut job, event, ending)?;
        Ok(Reply::Int(reply))
    }
}

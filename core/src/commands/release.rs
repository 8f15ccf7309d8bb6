//! `ZRQ.RELEASE <queue> <id> [LEASE <token>]` → 1 when the job went back to `pending`, 0 when it
//! was not active (or not under that lease), -1 when its cancellation had been requested (it is now
//! cancelled).
//!
//! A worker that stops gives back the jobs it has not finished: each waits in its stream for
//! another worker at once, instead of waiting for its lease to expire, and the attempt it was on
//! does not count (`attempt` goes back by one, `failed` does not grow), so even a job without
//! retries left runs again.

use super::{
    check_queue_types, finish, held, lease_token, load_job_to_finish, make_pending, unlink, Ending,
};
use crate::args::{self, Options};
use crate::keys::QueueKeys;
use crate::reply::code;
use crate::state::Event;
use crate::store::Store;
use crate::{Reply, Result, ZrqError};

/// Options of `ZRQ.RELEASE` (the Lua library's table is generated from it).
pub const OPTIONS: [&str; 1] = ["LEASE"];

/// Parsed arguments of `ZRQ.RELEASE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release<'a> {
    /// The job's queue.
    pub queue: &'a str,
    /// The job id.
    pub id: &'a str,
    /// The lease token of the delivery being given back.
    pub lease: Option<&'a str>,
}

impl<'a> Release<'a> {
    /// Parses the arguments after the command name.
    pub fn parse(args: &'a [&'a [u8]]) -> Result<Self> {
        let [queue, id, rest @ ..] = args else {
            return Err(ZrqError::arity("zrq.release"));
        };
        let mut cmd = Release {
            queue: args::name("queue", queue)?,
            id: args::name("id", id)?,
            lease: None,
        };
        let mut options = Options::new(rest);
        while let Some((_, value)) = options.next(&OPTIONS)? {
            cmd.lease = Some(lease_token(value)?);
        }
        Ok(cmd)
    }

    /// Puts the job back in its stream if it is active (under the lease, when given).
    pub fn apply(&self, store: &mut dyn Store) -> Result<Reply> {
        let keys = QueueKeys::new(self.queue);
        check_queue_types(store, &keys)?;
        let Some(mut job) = held(load_job_to_finish(store, &keys, self.id)?, self.lease) else {
            return Ok(Reply::Int(code::NOTHING));
        };
        if job.cancel_requested.is_some() {
            finish(store, &keys, &mut job, Event::Abandon, Ending::default())?;
            return Ok(Reply::Int(code::CANCELLED));
        }
        unlink(store, &keys, &mut job)?;
        // The attempt given back, written with the rest of the record by make_pending.
        job.attempt = (job.attempt - 1).max(0);
        make_pending(store, &keys, &mut job, Event::GiveBack)?;
        Ok(Reply::Int(code::DONE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Arguments, and the lease token parsed or the error.
    type Case<'a> = (&'a [&'a str], std::result::Result<Option<&'a str>, &'a str>);

    #[test]
    fn table() {
        let cases: &[Case] = &[
            (&["q", "j"], Ok(None)),
            (&["q", "j", "lease", "1-0:1"], Ok(Some("1-0:1"))),
            (
                &["q"],
                Err("ERR wrong number of arguments for 'zrq.release' command"),
            ),
            (&["q", "j", "LEASE"], Err("ERR option LEASE needs a value")),
            (
                &["q", "j", "LEASE", "a", "LEASE", "b"],
                Err("ERR option LEASE given more than once"),
            ),
        ];
        for (args, want) in cases {
            let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
            let got = Release::parse(&bytes)
                .map(|c| c.lease)
                .map_err(|e| e.to_string());
            assert_eq!(got, want.map_err(str::to_string), "{args:?}");
        }
    }
}

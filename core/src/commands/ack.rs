//! `ZRQ.ACK <queue> <id> [RESULT <json>]` → 1 if the job was active and is now completed, else 0.

use super::{check_types, leave_stream, load_job};
use crate::args::{self, Options};
use crate::keys::QueueKeys;
use crate::state::{Event, State};
use crate::store::{KeyType, Store};
use crate::{Reply, Result, ZrqError};

/// Parsed arguments of `ZRQ.ACK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack<'a> {
    /// The job's queue.
    pub queue: &'a str,
    /// The job id.
    pub id: &'a str,
    /// The result JSON to store.
    pub result: Option<&'a str>,
}

impl<'a> Ack<'a> {
    /// Parses the arguments after the command name.
    pub fn parse(args: &'a [&'a [u8]]) -> Result<Self> {
        let [queue, id, rest @ ..] = args else {
            return Err(ZrqError::arity("zrq.ack"));
        };
        let mut cmd = Ack {
            queue: args::name("queue", queue)?,
            id: args::name("id", id)?,
            result: None,
        };
        let mut options = Options::new(rest);
        while let Some((_, value)) = options.next(&["RESULT"])? {
            cmd.result = Some(args::json("RESULT", value)?);
        }
        Ok(cmd)
    }

    /// Completes the job if it is active: it leaves the stream and its lease is dropped.
    pub fn apply(&self, store: &mut dyn Store) -> Result<Reply> {
        let keys = QueueKeys::new(self.queue);
        let (stream, active, stats) = (keys.stream(), keys.active(), keys.stats());
        check_types(
            store,
            &[
                (&stream, KeyType::Stream),
                (&active, KeyType::ZSet),
                (&stats, KeyType::Hash),
            ],
        )?;
        let Some(job) = load_job(store, &keys, self.id)? else {
            return Ok(Reply::Int(0));
        };
        let Some(completed) = job.state.after(Event::Ack) else {
            return Ok(Reply::Int(0));
        };
        leave_stream(store, &keys, &job)?;
        let now = store.now_ms().to_string();
        let mut fields = vec![("state", completed.as_str()), ("finished_at", now.as_str())];
        if let Some(result) = self.result {
            fields.push(("result", result));
        }
        debug_assert_eq!(completed, State::Completed);
        store.hset(&keys.job(self.id), &fields)?;
        store.hincrby(&stats, "completed", 1)?;
        Ok(Reply::Int(1))
    }
}

//! `ZRQ.STATE <queue> <id>` → the job's state, or nil if unknown.

use super::{load_unrecorded, queue_and_name};
use crate::keys::QueueKeys;
use crate::state::State;
use crate::store::Store;
use crate::{Reply, Result, ZrqError};

/// Parsed arguments of `ZRQ.STATE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateOf<'a> {
    /// The job's queue.
    pub queue: &'a str,
    /// The job id.
    pub id: &'a str,
}

impl<'a> StateOf<'a> {
    /// Parses the arguments after the command name.
    pub fn parse(args: &'a [&'a [u8]]) -> Result<Self> {
        let (queue, id) = queue_and_name(args, "zrq.state", "id")?;
        Ok(StateOf { queue, id })
    }

    /// Reads the record's state field (one lookup of its key; the other fields are not checked);
    /// a record whose state is missing or unknown, or a packed record that does not follow the
    /// format, is `CORRUPT`, as for JOB.
    pub fn apply(&self, store: &mut dyn Store) -> Result<Reply> {
        let keys = QueueKeys::new(self.queue);
        let key = keys.job(self.id);
        let Some(record) = store.record(&key)? else {
            // A plain pending job has no record at its key (its inline entry holds it), nor has
            // a finished job kept in its state's records hash.
            let job = load_unrecorded(store, &keys, self.id)?;
            return Ok(job.map_or(Reply::Nil, |job| Reply::Bulk(job.state.as_str().into())));
        };
        match record.field(&key, "state")? {
            Some(text) => State::parse(&text)
                .map(|state| Reply::Bulk(state.as_str().to_string()))
                .ok_or_else(|| ZrqError::corrupt(&key, &format!("unknown state '{text}'"))),
            None => Err(ZrqError::corrupt(&key, "field 'state' is missing")),
        }
    }
}

//! `ZRQ.DELETE <queue> <id>` → 1 if the job existed and is now gone from every structure, else 0.

use super::{
    check_queue_types, drop_kept, flow, load_job_to_finish, queue_and_name, release_unique, unlink,
};
use crate::job::Place;
use crate::keys::QueueKeys;
use crate::reply::code;
use crate::state::State;
use crate::store::Store;
use crate::{Reply, Result};

/// Parsed arguments of `ZRQ.DELETE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete<'a> {
    /// The job's queue.
    pub queue: &'a str,
    /// The job id.
    pub id: &'a str,
}

impl<'a> Delete<'a> {
    /// Parses the arguments after the command name.
    pub fn parse(args: &'a [&'a [u8]]) -> Result<Self> {
        let (queue, id) = queue_and_name(args, "zrq.delete", "id")?;
        Ok(Delete { queue, id })
    }

    /// Removes the job, whatever its state.
    pub fn apply(&self, store: &mut dyn Store) -> Result<Reply> {
        let keys = QueueKeys::new(self.queue);
        check_queue_types(store, &keys)?;
        let Some(mut job) = load_job_to_finish(store, &keys, self.id)? else {
            return Ok(Reply::Int(code::NOTHING));
        };
        unlink(store, &keys, &mut job)?;
        // Every index, not only the one of the job's state: DELETE is how an operator clears a
        // job whatever its record and its indexes say.
        for index in [
            keys.active(),
            keys.waiting(),
            keys.scheduled(),
            keys.retrying(),
            keys.dead(),
            keys.completed(),
            keys.cancelled(),
        ] {
            store.zrem(&index, self.id)?;
        }
        release_unique(store, &keys, &job)?;
        if job.place == Place::Records {
            drop_kept(store, &keys, self.id, job.state, job.finished_at)?;
        } else {
            store.del(&keys.job(self.id))?;
        }
        // A RESULT waiter can never get a result now: wake it (through the queue's stats key,
        // as the record is gone) so it learns NOJOB.
        store.signal(&keys.stats());
        // Waiting children and the batch treat a deleted job like a cancelled one.
        if !job.state.is_final() {
            job.state = State::Cancelled;
            flow::settle(store, &keys, &job, None)?;
        }
        Ok(Reply::Int(code::DONE))
    }
}

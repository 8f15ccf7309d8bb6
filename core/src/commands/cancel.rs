//! `ZRQ.CANCEL <queue> <id>` → 1 if the job is now cancelled, 2 if it is running and its
//! cancellation is requested (its worker learns it at its next TOUCH, ACK or FAIL), 0 if it cannot
//! be cancelled (finished, or unknown).

use super::{check_queue_types, finish, load_job_to_finish, queue_and_name, save, Ending};
use crate::keys::QueueKeys;
use crate::reply::code;
use crate::state::{Event, State};
use crate::store::Store;
use crate::{Reply, Result};

/// Parsed arguments of `ZRQ.CANCEL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancel<'a> {
    /// The job's queue.
    pub queue: &'a str,
    /// The job id.
    pub id: &'a str,
}

impl<'a> Cancel<'a> {
    /// Parses the arguments after the command name.
    pub fn parse(args: &'a [&'a [u8]]) -> Result<Self> {
        let (queue, id) = queue_and_name(args, "zrq.cancel", "id")?;
        Ok(Cancel { queue, id })
    }

    /// Cancels the job, or flags it if it is running.
    pub fn apply(&self, store: &mut dyn Store) -> Result<Reply> {
        let keys = QueueKeys::new(self.queue);
        check_queue_types(store, &keys)?;
        let Some(mut job) = load_job_to_finish(store, &keys, self.id)? else {
            return Ok(Reply::Int(code::NOTHING));
        };
        if job.state == State::Active {
            job.cancel_requested = Some(1);
            save(store, &keys, &mut job, None)?;
            return Ok(Reply::Int(code::CANCEL_REQUESTED));
        }
        if job.state.after(Event::Cancel).is_none() {
            return Ok(Reply::Int(code::NOTHING));
        }
        finish(store, &keys, &mut job, Event::Cancel, Ending::default())?;
        Ok(Reply::Int(code::DONE))
    }
}

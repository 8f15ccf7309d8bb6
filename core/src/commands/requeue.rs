//! `ZRQ.REQUEUE <queue> <id>|ALL` → the number of dead jobs put back to `pending`, each with a
//! fresh attempt budget (its last error is kept for reference).

use super::{check_queue_types, load_job, make_pending};
use crate::args;
use crate::keys::QueueKeys;
use crate::state::{Event, State};
use crate::store::Store;
use crate::{Reply, Result, ZrqError};

/// Parsed arguments of `ZRQ.REQUEUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requeue<'a> {
    /// The queue.
    pub queue: &'a str,
    /// One job id, or `None` for `ALL` dead jobs.
    pub id: Option<&'a str>,
}

impl<'a> Requeue<'a> {
    /// Parses the arguments after the command name.
    pub fn parse(args: &'a [&'a [u8]]) -> Result<Self> {
        let [queue, id] = args else {
            return Err(ZrqError::arity("zrq.requeue"));
        };
        let queue = args::name("queue", queue)?;
        let id = args::name("id", id)?;
        Ok(Requeue {
            queue,
            id: (!id.eq_ignore_ascii_case("ALL")).then_some(id),
        })
    }

    /// Requeues the dead job(s).
    pub fn apply(&self, store: &mut dyn Store) -> Result<Reply> {
        let keys = QueueKeys::new(self.queue);
        check_queue_types(store, &keys)?;
        let ids = match self.id {
            Some(id) => vec![id.to_string()],
            None => {
                let all = store.zcard(&keys.dead())?;
                store.zrange(&keys.dead(), 0, all)?
            }
        };
        let mut requeued = 0;
        for id in ids {
            // The one job named by the command is refused if unreadable, before any write; with
            // ALL, an unreadable dead job is left alone so the others are still requeued (and an
            // error never comes after a write).
            let job = match self.id {
                Some(_) => load_job(store, &keys, &id)?,
                None => load_job(store, &keys, &id).ok().flatten(),
            };
            let Some(mut job) = job else {
                continue;
            };
            if job.state != State::Dead {
                continue;
            }
            store.zrem(&keys.dead(), &id)?;
            store.hset(&keys.job(&id), &[("attempt", "0")])?;
            store.hdel(&keys.job(&id), &["finished_at", "cancel_requested"])?;
            job.attempt = 0;
            if let Some(unique) = &job.unique {
                if store.hget(&keys.unique(), unique)?.is_none() {
                    store.hset(&keys.unique(), &[(unique, &id)])?;
                }
            }
            make_pending(store, &keys, &mut job, Event::Requeue)?;
            requeued += 1;
        }
        Ok(Reply::Int(requeued))
    }
}

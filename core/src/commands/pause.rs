//! `ZRQ.PAUSE <queue>` and `ZRQ.RESUME <queue>` → `OK`.
//!
//! While paused, FETCH delivers nothing (blocked workers stay blocked) and enqueueing goes on;
//! RESUME wakes the blocked workers.

use super::check_types;
use crate::args;
use crate::keys::QueueKeys;
use crate::store::{KeyType, Store};
use crate::{Reply, Result, ZrqError};

/// Parsed arguments of `ZRQ.PAUSE` (`paused: true`) and `ZRQ.RESUME` (`paused: false`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pause<'a> {
    /// The queue.
    pub queue: &'a str,
    /// Whether the queue ends paused.
    pub paused: bool,
}

impl<'a> Pause<'a> {
    /// Parses the arguments after the command name of PAUSE (`paused`) or RESUME.
    pub fn parse(args: &'a [&'a [u8]], paused: bool) -> Result<Self> {
        let [queue] = args else {
            return Err(ZrqError::arity(if paused {
                "zrq.pause"
            } else {
                "zrq.resume"
            }));
        };
        Ok(Pause {
            queue: args::name("queue", queue)?,
            paused,
        })
    }

    /// Sets or clears the pause flag.
    pub fn apply(&self, store: &mut dyn Store) -> Result<Reply> {
        let keys = QueueKeys::new(self.queue);
        check_types(store, &[(&keys.paused(), KeyType::String)])?;
        if self.paused {
            store.set(&keys.paused(), "1")?;
        } else {
            store.del(&keys.paused())?;
            store.signal(&keys.stream());
        }
        Ok(Reply::Status("OK"))
    }
}

//! `ZRQ.UNSCHEDULE <queue> <name>` → 1 if the schedule existed and is removed, else 0. Jobs it
//! already enqueued are not touched.

use super::{check_queue_types, queue_and_name};
use crate::keys::QueueKeys;
use crate::reply::code;
use crate::store::Store;
use crate::{Reply, Result};

/// Parsed arguments of `ZRQ.UNSCHEDULE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unschedule<'a> {
    /// The queue.
    pub queue: &'a str,
    /// The schedule's name.
    pub name: &'a str,
}

impl<'a> Unschedule<'a> {
    /// Parses the arguments after the command name.
    pub fn parse(args: &'a [&'a [u8]]) -> Result<Self> {
        let (queue, name) = queue_and_name(args, "zrq.unschedule", "name")?;
        Ok(Unschedule { queue, name })
    }

    /// Removes the schedule.
    pub fn apply(&self, store: &mut dyn Store) -> Result<Reply> {
        let keys = QueueKeys::new(self.queue);
        check_queue_types(store, &keys)?;
        if store.hget(&keys.schedules(), self.name)?.is_none() {
            return Ok(Reply::Int(code::NOTHING));
        }
        store.hdel(&keys.schedules(), &[self.name])?;
        store.zrem(&keys.ticks(), self.name)?;
        Ok(Reply::Int(code::DONE))
    }
}

//! `ZRQ.STATE <queue> <id>` → the job's state, or nil if unknown.

use super::{check_types, queue_and_name};
use crate::keys::QueueKeys;
use crate::store::{KeyType, Store};
use crate::{Reply, Result};

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

    /// Reads the state field alone (one hash lookup).
    pub fn apply(&self, store: &mut dyn Store) -> Result<Reply> {
        let key = QueueKeys::new(self.queue).job(self.id);
        check_types(store, &[(&key, KeyType::Hash)])?;
        Ok(store.hget(&key, "state")?.map_or(Reply::Nil, Reply::Bulk))
    }
}

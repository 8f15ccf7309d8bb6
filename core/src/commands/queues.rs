//! `ZRQ.QUEUES` → the names of the queues on this server (those that ever had a job), sorted.
//!
//! It scans the keyspace, so it is an operator command, not one for hot paths. In a cluster it
//! answers for the node it runs on.

use crate::keys::{queue_of_marker, QUEUE_MARKER_PATTERN};
use crate::store::Store;
use crate::{Reply, Result, ZrqError};

/// `ZRQ.QUEUES` takes no arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queues;

impl Queues {
    /// Parses the arguments after the command name.
    pub fn parse(args: &[&[u8]]) -> Result<Self> {
        if args.is_empty() {
            Ok(Queues)
        } else {
            Err(ZrqError::arity("zrq.queues"))
        }
    }

    /// Lists the queues.
    pub fn apply(&self, store: &mut dyn Store) -> Result<Reply> {
        let mut names: Vec<String> = store
            .scan(QUEUE_MARKER_PATTERN)?
            .iter()
            .filter_map(|key| queue_of_marker(key).map(str::to_string))
            .collect();
        names.sort();
        names.dedup();
        Ok(Reply::Array(names.into_iter().map(Reply::Bulk).collect()))
    }
}

//! `ZRQ.JOB <queue> <id>` → the whole job as a map, or nil if unknown.

use super::{load_job, queue_and_name};
use crate::keys::QueueKeys;
use crate::store::Store;
use crate::{Reply, Result};

/// Parsed arguments of `ZRQ.JOB`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOf<'a> {
    /// The job's queue.
    pub queue: &'a str,
    /// The job id.
    pub id: &'a str,
}

impl<'a> JobOf<'a> {
    /// Parses the arguments after the command name.
    pub fn parse(args: &'a [&'a [u8]]) -> Result<Self> {
        let (queue, id) = queue_and_name(args, "zrq.job", "id")?;
        Ok(JobOf { queue, id })
    }

    /// Reads the whole record.
    pub fn apply(&self, store: &mut dyn Store) -> Result<Reply> {
        let keys = QueueKeys::new(self.queue);
        Ok(load_job(store, &keys, self.id)?.map_or(Reply::Nil, |job| job.to_reply()))
    }
}

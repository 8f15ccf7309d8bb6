//! `ZRQ.BATCHINFO <queue> <batch-id>` → `{id, total, done, succeeded, failed, callback_id?}`, or
//! nil if there is no such batch (or it expired after its retention).

use super::flow::load_batch;
use super::queue_and_name;
use crate::keys::QueueKeys;
use crate::store::Store;
use crate::{Reply, Result};

/// Parsed arguments of `ZRQ.BATCHINFO`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchInfo<'a> {
    /// The queue.
    pub queue: &'a str,
    /// The batch id.
    pub id: &'a str,
}

impl<'a> BatchInfo<'a> {
    /// Parses the arguments after the command name.
    pub fn parse(args: &'a [&'a [u8]]) -> Result<Self> {
        let (queue, id) = queue_and_name(args, "zrq.batchinfo", "batch")?;
        Ok(BatchInfo { queue, id })
    }

    /// Reads the batch's progress.
    pub fn apply(&self, store: &mut dyn Store) -> Result<Reply> {
        let Some(record) = load_batch(store, &QueueKeys::new(self.queue), self.id)? else {
            return Ok(Reply::Nil);
        };
        let mut info = vec![
            ("id", Reply::Bulk(self.id.to_string())),
            ("total", Reply::Int(record.total)),
            ("done", Reply::Int(record.done)),
            ("succeeded", Reply::Int(record.succeeded)),
            ("failed", Reply::Int(record.failed)),
        ];
        if let Some(callback) = record.callback_id {
            info.push(("callback_id", Reply::Bulk(callback)));
        }
        Ok(Reply::Map(info))
    }
}

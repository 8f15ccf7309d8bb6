//! `ZRQ.BATCHINFO <queue> <batch-id>` → `{id, total, done, succeeded, failed, callback_id?}`, or
//! nil if there is no such batch (or it expired after its retention).

use super::{check_types, queue_and_name};
use crate::keys::QueueKeys;
use crate::store::{KeyType, Store};
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
        let key = QueueKeys::new(self.queue).batch(self.id);
        check_types(store, &[(&key, KeyType::Hash)])?;
        let record = store.hgetall(&key)?;
        if record.is_empty() {
            return Ok(Reply::Nil);
        }
        let get = |name: &str| {
            record
                .iter()
                .find(|(f, _)| f == name)
                .map(|(_, v)| v.clone())
        };
        let mut info = vec![("id", Reply::Bulk(self.id.to_string()))];
        for field in ["total", "done", "succeeded", "failed"] {
            let n = get(field).and_then(|v| v.parse().ok()).unwrap_or(0);
            info.push((field, Reply::Int(n)));
        }
        if let Some(callback) = get("callback_id") {
            info.push(("callback_id", Reply::Bulk(callback)));
        }
        Ok(Reply::Map(info))
    }
}

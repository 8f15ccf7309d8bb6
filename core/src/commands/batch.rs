//! `ZRQ.BATCH <queue> <batch-id> [ON-COMPLETE <task> <payload>] [RETRIES <n>] [TIMEOUT <ms>]
//! [BACKOFF <ms>] [PRIORITY <0-9>] [KEEP <ms>] JOB <task> <payload> [JOB <task> <payload> …]` →
//! the ids of the member jobs, in order.
//!
//! Creates a batch and all its members in one atomic step (so it can never complete before it is
//! whole). When the last member finishes (completed, dead or cancelled), the callback job is
//! enqueued exactly once, with the payload `{"batch":<id>,"succeeded":<n>,"failed":<n>,
//! "payload":<the ON-COMPLETE payload>}`. The options apply to the members.

use super::enqueue::Enqueue;
use super::{check_queue_types, exists_as};
use crate::args::{self, Options};
use crate::config::{Config, BATCH_MAX, PAYLOAD_MAX_BYTES};
use crate::keys::QueueKeys;
use crate::store::{KeyType, Store};
use crate::{Reply, Result, ZrqError};

/// Options of `ZRQ.BATCH`.
pub const OPTIONS: [&str; 7] = [
    "ON-COMPLETE",
    "RETRIES",
    "TIMEOUT",
    "BACKOFF",
    "PRIORITY",
    "KEEP",
    "JOB",
];

/// Parsed arguments of `ZRQ.BATCH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch<'a> {
    /// The queue.
    pub queue: &'a str,
    /// The batch id.
    pub id: &'a str,
    /// The callback's task and payload.
    pub on_complete: Option<(&'a str, &'a str)>,
    /// The members (with the batch's job options).
    pub jobs: Vec<Enqueue<'a>>,
}

impl<'a> Batch<'a> {
    /// Parses the arguments after the command name, within the limits of `config`: at most
    /// `zrq.batch-max` members, and all payloads (the callback's too) together at most
    /// `zrq.payload-max-bytes`.
    pub fn parse(args: &'a [&'a [u8]], config: &Config) -> Result<Self> {
        let [queue, id, rest @ ..] = args else {
            return Err(ZrqError::arity("zrq.batch"));
        };
        let queue = args::name("queue", queue)?;
        let id = args::name("batch", id)?;
        let mut template = Enqueue::new(queue, "-", "null");
        let mut members: Vec<(&'a str, &'a str)> = Vec::new();
        let mut on_complete = None;
        let mut options = Options::new(rest);
        let mut payload_bytes = 0;
        while let Some((option, value)) = options.next(&OPTIONS)? {
            match option {
                "ON-COMPLETE" | "JOB" => {
                    if option == "JOB"
                        && i64::try_from(members.len()).unwrap_or(i64::MAX) >= config.batch_max
                    {
                        let subject = format!("more than {} JOB members", config.batch_max);
                        return Err(ZrqError::limit(&subject, &BATCH_MAX, config.batch_max));
                    }
                    let task = args::name("task", value)?;
                    let raw = options.value(option)?;
                    payload_bytes += raw.len();
                    args::within(
                        "the batch's payloads together",
                        payload_bytes,
                        &PAYLOAD_MAX_BYTES,
                        config.payload_max_bytes,
                    )?;
                    let payload = args::json("payload", raw, config.json_depth_max)?;
                    if option == "JOB" {
                        members.push((task, payload));
                    } else {
                        on_complete = Some((task, payload));
                    }
                }
                _ => template.set_option(option, value, config)?,
            }
        }
        if members.is_empty() {
            return Err(ZrqError::arity("zrq.batch"));
        }
        let jobs = members
            .into_iter()
            .map(|(task, payload)| Enqueue {
                task,
                payload,
                batch: Some(id),
                ..template.clone()
            })
            .collect();
        Ok(Batch {
            queue,
            id,
            on_complete,
            jobs,
        })
    }

    /// Creates the batch and its members.
    pub fn apply(
        &self,
        store: &mut dyn Store,
        new_id: &mut dyn FnMut() -> String,
    ) -> Result<Reply> {
        let keys = QueueKeys::new(self.queue);
        let key = keys.batch(self.id);
        check_queue_types(store, &keys)?;
        if exists_as(store, &key, KeyType::Hash)? {
            return Err(ZrqError::batch_exists(self.queue, self.id));
        }
        let total = self.jobs.len().to_string();
        let created = store.now_ms().to_string();
        let mut record = vec![
            ("queue", self.queue),
            ("total", total.as_str()),
            ("done", "0"),
            ("succeeded", "0"),
            ("failed", "0"),
            ("created_at", created.as_str()),
        ];
        if let Some((task, payload)) = self.on_complete {
            record.push(("callback_task", task));
            record.push(("callback_payload", payload));
        }
        store.hset(&key, &record)?;
        let mut ids = Vec::with_capacity(self.jobs.len());
        for job in &self.jobs {
            ids.push(job.apply(store, &mut *new_id)?);
        }
        Ok(Reply::Array(ids))
    }
}

//! Reading zrq replies: job maps, info maps, paged lists.

use std::collections::BTreeMap;
use std::fmt;

use redis::Value;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Where a job is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for a worker.
    Pending,
    /// Waiting for its parent jobs to complete (`AFTER`).
    Waiting,
    /// Waiting for its due time (`DELAY`/`AT`).
    Scheduled,
    /// Held by a worker.
    Active,
    /// Failed, waiting for its next attempt.
    Retrying,
    /// Acknowledged; its result is stored.
    Completed,
    /// Used all its attempts.
    Dead,
    /// Cancelled before it completed.
    Cancelled,
    /// A state this client does not know (a newer server).
    #[serde(untagged)]
    Other(String),
}

impl JobState {
    /// Reads a state name as the server spells it.
    pub fn parse(text: &str) -> JobState {
        match text {
            "pending" => JobState::Pending,
            "waiting" => JobState::Waiting,
            "scheduled" => JobState::Scheduled,
            "active" => JobState::Active,
            "retrying" => JobState::Retrying,
            "completed" => JobState::Completed,
            "dead" => JobState::Dead,
            "cancelled" => JobState::Cancelled,
            other => JobState::Other(other.to_string()),
        }
    }

    /// The state's name as the server spells it.
    pub fn as_str(&self) -> &str {
        match self {
            JobState::Pending => "pending",
            JobState::Waiting => "waiting",
            JobState::Scheduled => "scheduled",
            JobState::Active => "active",
            JobState::Retrying => "retrying",
            JobState::Completed => "completed",
            JobState::Dead => "dead",
            JobState::Cancelled => "cancelled",
            JobState::Other(s) => s,
        }
    }

    /// Whether the job has finished for good (completed, dead or cancelled).
    pub fn is_finished(&self) -> bool {
        matches!(
            self,
            JobState::Completed | JobState::Dead | JobState::Cancelled
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job as the server returns it (`ZRQ.JOB`, `ZRQ.FETCH`, …).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobRecord {
    /// The job id.
    pub id: String,
    /// The queue it belongs to.
    pub queue: String,
    /// The task name that selects its handler.
    pub task: String,
    /// The arguments, a JSON document as text.
    pub payload: String,
    /// Where the job is in its life.
    pub state: JobState,
    /// Attempts started so far.
    pub attempt: i64,
    /// Attempts allowed in all.
    pub max_attempts: i64,
    /// Lease length in milliseconds.
    pub timeout: i64,
    /// When it was enqueued (unix ms).
    pub created_at: Option<i64>,
    /// When the current attempt started (unix ms).
    pub started_at: Option<i64>,
    /// When it finished (unix ms).
    pub finished_at: Option<i64>,
    /// The worker that holds or last held it.
    pub consumer: Option<String>,
    /// The lease token of its current (or last) delivery: sent back with `LEASE` by the worker
    /// so that a lost lease cannot complete, fail or extend someone else's attempt.
    pub lease: Option<String>,
    /// The result JSON given on ACK.
    pub result: Option<String>,
    /// The last error.
    pub error: Option<String>,
    /// Every other field the server sent (priority, progress, run_at, …), as text.
    pub extra: BTreeMap<String, String>,
}

/// A reply map with text keys.
pub type ReplyMap = BTreeMap<String, Value>;

/// Text of a scalar reply (bulk, simple, integer, double); `None` for nil.
pub fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        Value::Okay => Some("OK".into()),
        Value::Int(n) => Some(n.to_string()),
        Value::Double(d) => Some(d.to_string()),
        Value::Boolean(b) => Some(if *b { "1" } else { "0" }.into()),
        _ => None,
    }
}

/// Integer of a scalar reply (an integer, or text holding one).
pub fn int(value: &Value) -> Option<i64> {
    match value {
        Value::Int(n) => Some(*n),
        Value::Double(d) => Some(*d as i64),
        other => text(other).and_then(|t| t.parse().ok()),
    }
}

/// Reads a map from a RESP3 map or a RESP2 flat field/value array. `None` for nil.
pub fn map(value: Value) -> Result<Option<ReplyMap>> {
    match value {
        Value::Nil => Ok(None),
        Value::Map(pairs) => pairs
            .into_iter()
            .map(|(k, v)| key(&k).map(|k| (k, v)))
            .collect::<Result<_>>()
            .map(Some),
        Value::Array(items) => {
            if items.len() % 2 != 0 {
                return Err(Error::Protocol("map with an odd number of items".into()));
            }
            let mut out = BTreeMap::new();
            let mut it = items.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                out.insert(key(&k)?, v);
            }
            Ok(Some(out))
        }
        other => Err(Error::Protocol(format!("expected a map, got {other:?}"))),
    }
}

fn key(value: &Value) -> Result<String> {
    text(value).ok_or_else(|| Error::Protocol(format!("map key {value:?}")))
}

/// Reads an array reply (nil reads as empty).
pub fn array(value: Value) -> Result<Vec<Value>> {
    match value {
        Value::Array(items) | Value::Set(items) => Ok(items),
        Value::Nil => Ok(Vec::new()),
        other => Err(Error::Protocol(format!("expected an array, got {other:?}"))),
    }
}

impl JobRecord {
    /// Reads a job map reply; `None` for nil.
    pub fn from_value(value: Value) -> Result<Option<JobRecord>> {
        map(value)?.map(JobRecord::from_map).transpose()
    }

    /// Reads an array of job maps.
    pub fn list(value: Value) -> Result<Vec<JobRecord>> {
        array(value)?
            .into_iter()
            .filter_map(|v| JobRecord::from_value(v).transpose())
            .collect()
    }

    /// Reads a job from its reply map.
    pub fn from_map(mut m: ReplyMap) -> Result<JobRecord> {
        let mut take_text = |name: &str| m.remove(name).as_ref().and_then(text);
        let id = take_text("id").ok_or_else(|| Error::Protocol("job without id".into()))?;
        let queue = take_text("queue").unwrap_or_default();
        let task = take_text("task").unwrap_or_default();
        let payload = take_text("payload").unwrap_or_else(|| "null".into());
        let state = JobState::parse(&take_text("state").unwrap_or_default());
        let consumer = take_text("consumer");
        let lease = take_text("lease");
        let result = take_text("result");
        let error = take_text("error");
        let mut take_int = |name: &str| m.remove(name).as_ref().and_then(int);
        Ok(JobRecord {
            id,
            queue,
            task,
            payload,
            state,
            attempt: take_int("attempt").unwrap_or(0),
            max_attempts: take_int("max_attempts").unwrap_or(1),
            timeout: take_int("timeout").unwrap_or(30_000),
            created_at: take_int("created_at"),
            started_at: take_int("started_at"),
            finished_at: take_int("finished_at"),
            consumer,
            lease,
            result,
            error,
            extra: m
                .iter()
                .filter_map(|(k, v)| text(v).map(|t| (k.clone(), t)))
                .collect(),
        })
    }

    /// The arguments, deserialized.
    pub fn args<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        Ok(serde_json::from_str(&self.payload)?)
    }

    /// The results of the job's parents by parent id, for a job enqueued with `AFTER … WITHRESULTS`
    /// (empty otherwise).
    pub fn parents(&self) -> Result<serde_json::Map<String, serde_json::Value>> {
        match self.extra.get("parents") {
            Some(json) => Ok(serde_json::from_str(json)?),
            None => Ok(serde_json::Map::new()),
        }
    }

    /// The batch the job belongs to, if any.
    pub fn batch(&self) -> Option<&str> {
        self.extra.get("batch").map(String::as_str)
    }

    /// The name of the recurring schedule whose tick enqueued the job, if one did.
    pub fn schedule(&self) -> Option<&str> {
        self.extra.get("schedule").map(String::as_str)
    }

    /// The stored result, deserialized (`None` if there is none).
    pub fn result_as<T: serde::de::DeserializeOwned>(&self) -> Result<Option<T>> {
        self.result
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(Error::from)
    }
}

/// A page of a cursor-paged listing (`ZRQ.DEAD`, `ZRQ.LIST`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page {
    /// The cursor to pass for the next page; `"0"` when this was the last.
    pub cursor: String,
    /// The jobs of this page.
    pub jobs: Vec<JobRecord>,
}

impl Page {
    /// Reads a `[next-cursor, [jobs]]` reply.
    pub fn from_value(value: Value) -> Result<Page> {
        let mut items = array(value)?.into_iter();
        let (Some(cursor), Some(jobs)) = (items.next(), items.next()) else {
            return Err(Error::Protocol("expected [cursor, jobs]".into()));
        };
        Ok(Page {
            cursor: text(&cursor).unwrap_or_else(|| "0".into()),
            jobs: JobRecord::list(jobs)?,
        })
    }

    /// Whether there are no more pages after this one.
    pub fn is_last(&self) -> bool {
        self.cursor == "0"
    }
}

/// `ZRQ.INFO`: a queue's counts and totals.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct QueueInfo {
    /// The queue's name.
    pub queue: String,
    /// Every integer field of the reply by name: the counts per state (`pending`, `scheduled`,
    /// `active`, `retrying`, `completed`, `dead`, `cancelled`), the totals (`enqueued`,
    /// `completed_total`…, as the server names them), `oldest_pending_age_ms`, `paused`.
    pub fields: BTreeMap<String, i64>,
}

impl QueueInfo {
    /// Reads an info reply.
    pub fn from_value(queue: &str, value: Value) -> Result<QueueInfo> {
        let m = map(value)?.unwrap_or_default();
        let mut fields = BTreeMap::new();
        for (k, v) in m {
            match v {
                Value::Map(_) | Value::Array(_) => {
                    // A nested map (totals): flatten as `<outer>.<inner>`.
                    if let Some(inner) = map(v)? {
                        for (ik, iv) in inner {
                            if let Some(n) = int(&iv) {
                                fields.insert(format!("{k}.{ik}"), n);
                            }
                        }
                    }
                }
                other => {
                    if let Some(n) = int(&other) {
                        fields.insert(k, n);
                    }
                }
            }
        }
        Ok(QueueInfo {
            queue: queue.to_string(),
            fields,
        })
    }

    /// A field, 0 if absent.
    pub fn get(&self, name: &str) -> i64 {
        self.fields.get(name).copied().unwrap_or(0)
    }

    /// A total since the queue was created (`enqueued`, `completed`, `failed`, `dead`,
    /// `cancelled`, `dropped`): the reply's `total_<name>` (or `<name>` inside a `totals` map), 0
    /// if absent. These come from the queue's `stats` hash, so they survive restarts.
    pub fn total(&self, name: &str) -> i64 {
        self.fields
            .get(&format!("total_{name}"))
            .or_else(|| self.fields.get(&format!("totals.{name}")))
            .copied()
            .unwrap_or(0)
    }

    /// Whether the queue is paused.
    pub fn paused(&self) -> bool {
        self.get("paused") != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client knows every state of zrq-core (the one definition) by its name, and which are
    /// final.
    #[test]
    fn job_states_are_zrq_cores() {
        for state in zrq_core::state::State::ALL {
            let ours = JobState::parse(state.as_str());
            assert!(!matches!(ours, JobState::Other(_)), "{state}");
            assert_eq!(ours.as_str(), state.as_str());
            assert_eq!(ours.is_finished(), state.is_final(), "{state}");
        }
    }

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn job_from_resp2_and_resp3() {
        let flat = Value::Array(vec![
            bulk("id"),
            bulk("j1"),
            bulk("task"),
            bulk("t"),
            bulk("payload"),
            bulk("{\"a\":1}"),
            bulk("state"),
            bulk("active"),
            bulk("attempt"),
            Value::Int(2),
            bulk("priority"),
            Value::Int(5),
        ]);
        let job = JobRecord::from_value(flat).unwrap().unwrap();
        assert_eq!(job.id, "j1");
        assert_eq!(job.attempt, 2);
        assert_eq!(job.state, JobState::Active);
        assert_eq!(job.extra.get("priority").map(String::as_str), Some("5"));
        let m = Value::Map(vec![
            (bulk("id"), bulk("j2")),
            (bulk("state"), bulk("weird")),
        ]);
        let job = JobRecord::from_value(m).unwrap().unwrap();
        assert_eq!(job.state, JobState::Other("weird".into()));
        assert!(JobRecord::from_value(Value::Nil).unwrap().is_none());
    }

    #[test]
    fn page_and_info() {
        let page = Page::from_value(Value::Array(vec![bulk("0"), Value::Array(vec![])])).unwrap();
        assert!(page.is_last());
        let info = QueueInfo::from_value(
            "q",
            Value::Array(vec![
                bulk("pending"),
                Value::Int(3),
                bulk("paused"),
                Value::Int(1),
            ]),
        )
        .unwrap();
        assert_eq!(info.get("pending"), 3);
        assert!(info.paused());
    }
}

//! `ZRQ.ENQUEUE <queue> <task> <payload> [ID <id>] [RETRIES <n>] [TIMEOUT <ms>]` → job id.

use super::check_types;
use crate::args::{self, Options, MAX_DURATION_MS, MAX_RETRIES};
use crate::job::Job;
use crate::keys::{QueueKeys, ENTRY_FIELD, GROUP};
use crate::state::State;
use crate::store::{KeyType, Store};
use crate::{Reply, Result, ZrqError};

/// Extra attempts after the first when `RETRIES` is not given.
pub const DEFAULT_RETRIES: i64 = 3;
/// Lease length in ms when `TIMEOUT` is not given.
pub const DEFAULT_TIMEOUT_MS: i64 = 30_000;

/// Parsed arguments of `ZRQ.ENQUEUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueue<'a> {
    /// Target queue.
    pub queue: &'a str,
    /// Task name.
    pub task: &'a str,
    /// JSON payload.
    pub payload: &'a str,
    /// Producer-chosen id (idempotent enqueue).
    pub id: Option<&'a str>,
    /// Extra attempts after the first.
    pub retries: i64,
    /// Lease length in ms.
    pub timeout: i64,
}

impl<'a> Enqueue<'a> {
    /// Parses the arguments after the command name.
    pub fn parse(args: &'a [&'a [u8]]) -> Result<Self> {
        let [queue, task, payload, rest @ ..] = args else {
            return Err(ZrqError::arity("zrq.enqueue"));
        };
        let mut cmd = Enqueue {
            queue: args::name("queue", queue)?,
            task: args::name("task", task)?,
            payload: args::json("payload", payload)?,
            id: None,
            retries: DEFAULT_RETRIES,
            timeout: DEFAULT_TIMEOUT_MS,
        };
        let mut options = Options::new(rest);
        while let Some((option, value)) = options.next(&["ID", "RETRIES", "TIMEOUT"])? {
            match option {
                "ID" => cmd.id = Some(args::name("ID", value)?),
                "RETRIES" => cmd.retries = args::integer("RETRIES", value, 0, MAX_RETRIES)?,
                _ => cmd.timeout = args::integer("TIMEOUT", value, 1, MAX_DURATION_MS)?,
            }
        }
        Ok(cmd)
    }

    /// Adds the job unless its id exists; replies with the id. `new_id` makes an id when the
    /// producer gave none.
    pub fn apply(&self, store: &mut dyn Store, new_id: impl FnOnce() -> String) -> Result<Reply> {
        let keys = QueueKeys::new(self.queue);
        let id = self.id.map_or_else(new_id, str::to_string);
        let (stream, job_key, stats) = (keys.stream(), keys.job(&id), keys.stats());
        check_types(
            store,
            &[
                (&stream, KeyType::Stream),
                (&job_key, KeyType::Hash),
                (&stats, KeyType::Hash),
            ],
        )?;
        if store.key_type(&job_key)? != KeyType::Missing {
            return Ok(Reply::Bulk(id));
        }
        if store.key_type(&stream)? == KeyType::Missing {
            store.create_stream_with_group(&stream, GROUP)?;
        }
        let entry = store.xadd(&stream, &[(ENTRY_FIELD, &id)])?;
        let job = Job {
            id: id.clone(),
            queue: self.queue.to_string(),
            task: self.task.to_string(),
            payload: self.payload.to_string(),
            state: State::Pending,
            attempt: 0,
            max_attempts: self.retries + 1,
            timeout: self.timeout,
            created_at: store.now_ms(),
            started_at: None,
            finished_at: None,
            consumer: None,
            entry: Some(entry),
            result: None,
            error: None,
        };
        let fields = job.to_fields();
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        store.hset(&job_key, &pairs)?;
        store.hincrby(&stats, "enqueued", 1)?;
        Ok(Reply::Bulk(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Parsed = (i64, i64, Option<String>);

    fn parse(args: &[&str]) -> std::result::Result<Parsed, String> {
        let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        Enqueue::parse(&bytes)
            .map(|c| (c.retries, c.timeout, c.id.map(str::to_string)))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_options() {
        assert_eq!(parse(&["q", "t", "{}"]), Ok((3, 30_000, None)));
        let all = ["q", "t", "[1]", "id", "x", "RETRIES", "0", "TIMEOUT", "5"];
        assert_eq!(parse(&all), Ok((0, 5, Some("x".to_string()))));
    }

    #[test]
    fn errors() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["q", "t"],
                "ERR wrong number of arguments for 'zrq.enqueue' command",
            ),
            (&["q", "t", "{"], "BADJSON payload is not valid JSON"),
            (
                &["q", "t", "{}", "RETRIES", "-1"],
                "ERR RETRIES must be an integer from 0 to 1000",
            ),
            (
                &["q", "t", "{}", "TIMEOUT", "0"],
                "ERR TIMEOUT must be an integer from 1 to",
            ),
            (&["q", "t", "{}", "FOO", "1"], "ERR unknown option 'FOO'"),
            (&["q", "t", "{}", "ID"], "ERR option ID needs a value"),
            (&["q{", "t", "{}"], "ERR queue must be"),
            (&["q", "", "{}"], "ERR task must be"),
        ];
        for (args, want) in cases {
            let got = parse(args).err().unwrap_or_default();
            assert!(got.starts_with(want), "{args:?}: {got}");
        }
    }
}

//! `ZRQ.SCHEDULE <queue> <name> EVERY <ms> | CRON <expr> <task> <payload> [RETRIES <n>] [TIMEOUT
//! <ms>] [BACKOFF <ms>] [PRIORITY <0-9>] [UNIQUE <key>] [KEEP <ms>]` → the first run (unix ms).
//!
//! Defines (or redefines) a recurring job. The server's timer enqueues exactly one job per tick.
//! Ticks missed while the server was down are not replayed one by one: the first timer pass after
//! the restart enqueues one job for the missed ticks, then the schedule continues on its grid.
//! Also `ZRQ.UNSCHEDULE` and `ZRQ.SCHEDULES`, which share the definition stored here.

use serde::{Deserialize, Serialize};

use super::check_queue_types;
use super::enqueue::{payload_arg, Enqueue};
use crate::args::{self, Options, MAX_DURATION_MS, MAX_RETRIES};
use crate::config::{Config, EVERY_MIN_MS, SCHEDULES_MAX};
use crate::cron::Cron;
use crate::keys::{QueueKeys, MAX_PRIORITY};
use crate::store::Store;
use crate::{Reply, Result, ZrqError};

/// Options of the jobs a schedule creates.
pub const JOB_OPTIONS: [&str; 6] = [
    "RETRIES", "TIMEOUT", "BACKOFF", "PRIORITY", "UNIQUE", "KEEP",
];

/// A recurring schedule as stored (JSON) in the queue's `schedules` hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Definition {
    /// The schedule's name.
    pub name: String,
    /// Period in ms, for `EVERY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<i64>,
    /// Cron expression, for `CRON`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// Task of the jobs.
    pub task: String,
    /// Payload of the jobs (JSON text).
    pub payload: String,
    /// `RETRIES` of the jobs.
    pub retries: i64,
    /// `TIMEOUT` of the jobs.
    pub timeout: i64,
    /// `PRIORITY` of the jobs.
    pub priority: i64,
    /// `BACKOFF` of the jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<i64>,
    /// `UNIQUE` key of the jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique: Option<String>,
    /// `KEEP` of the jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<i64>,
    /// When the last job was enqueued (unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<i64>,
}

impl Definition {
    /// Reads a stored definition: `CORRUPT` unless it is JSON of this shape whose values pass the
    /// checks `ZRQ.SCHEDULE` applies to its arguments (a stored priority names a stream key, a
    /// stored task or UNIQUE key is written into jobs: values the command refuses are not used).
    pub fn from_json(key: &str, text: &str) -> Result<Definition> {
        let definition: Definition =
            serde_json::from_str(text).map_err(|e| ZrqError::corrupt(key, &e.to_string()))?;
        match definition.invalid_field() {
            Some(field) => Err(ZrqError::corrupt(
                key,
                &format!("invalid value for `{field}`"),
            )),
            None => Ok(definition),
        }
    }

    /// The first field, in stored order, whose value `ZRQ.SCHEDULE` would refuse.
    fn invalid_field(&self) -> Option<&'static str> {
        let is_name = |v: &str| args::name("name", v.as_bytes()).is_ok();
        let within = |v: i64, min: i64, max: i64| (min..=max).contains(&v);
        let optional = |v: Option<i64>, min: i64| v.is_none_or(|v| within(v, min, MAX_DURATION_MS));
        let checks = [
            ("name", is_name(&self.name)),
            ("every", optional(self.every, 1)),
            (
                "cron",
                self.cron.as_deref().is_none_or(|c| Cron::parse(c).is_ok())
                    && self.every.is_some() != self.cron.is_some(),
            ),
            ("task", is_name(&self.task)),
            (
                "payload",
                // Stored: only its validity matters, not today's depth limit.
                args::json("payload", self.payload.as_bytes(), i64::MAX).is_ok(),
            ),
            ("retries", within(self.retries, 0, MAX_RETRIES)),
            ("timeout", within(self.timeout, 1, MAX_DURATION_MS)),
            ("priority", within(self.priority, 0, MAX_PRIORITY)),
            ("backoff", optional(self.backoff, 0)),
            ("unique", self.unique.as_deref().is_none_or(is_name)),
            ("keep", optional(self.keep, 1)),
        ];
        checks.iter().find(|(_, ok)| !ok).map(|(field, _)| *field)
    }

    /// The stored form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The first tick strictly after `now`, given that `due` was the last planned tick (or
    /// `now` for a new schedule). `None` when a cron expression never matches again.
    ///
    /// An `EVERY` period is at least `every_min` (`zrq.every-min-ms` now): a schedule stored
    /// while the minimum was lower runs at the current minimum, its stored period unchanged.
    pub fn next_run(&self, due: i64, now: i64, every_min: i64) -> Option<i64> {
        match (self.every, &self.cron) {
            // A stored period below 1 (not written by zrq) never runs again, rather than dividing
            // by zero.
            (Some(every), _) if every < 1 => None,
            (Some(every), _) => {
                let every = every.max(every_min);
                let behind = now.saturating_sub(due).max(0) / every;
                Some(due.saturating_add(every.saturating_mul(behind + 1)))
            }
            (None, Some(expr)) => Cron::parse(expr).ok()?.next_after(now),
            (None, None) => None,
        }
    }

    /// The ENQUEUE of one tick's job, which records the schedule's name.
    pub fn job<'a>(&'a self, queue: &'a str) -> Enqueue<'a> {
        Enqueue {
            retries: self.retries,
            timeout: self.timeout,
            priority: self.priority,
            backoff: self.backoff,
            unique: self.unique.as_deref(),
            keep: self.keep,
            schedule: Some(&self.name),
            ..Enqueue::new(queue, &self.task, &self.payload)
        }
    }

    /// The schedule as a reply map.
    pub fn to_reply(&self, next_run: Option<i64>) -> Reply {
        let mut map = vec![("name", Reply::Bulk(self.name.clone()))];
        if let Some(every) = self.every {
            map.push(("every", Reply::Int(every)));
        }
        if let Some(cron) = &self.cron {
            map.push(("cron", Reply::Bulk(cron.clone())));
        }
        map.push(("task", Reply::Bulk(self.task.clone())));
        map.push(("payload", Reply::Bulk(self.payload.clone())));
        map.push(("retries", Reply::Int(self.retries)));
        map.push(("timeout", Reply::Int(self.timeout)));
        map.push(("priority", Reply::Int(self.priority)));
        let optional = [
            ("backoff", self.backoff),
            ("keep", self.keep),
            ("last_run", self.last_run),
            ("next_run", next_run),
        ];
        for (name, value) in optional {
            if let Some(v) = value {
                map.push((name, Reply::Int(v)));
            }
        }
        if let Some(unique) = &self.unique {
            map.push(("unique", Reply::Bulk(unique.clone())));
        }
        Reply::Map(map)
    }
}

/// Parsed arguments of `ZRQ.SCHEDULE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule<'a> {
    /// The queue.
    pub queue: &'a str,
    /// The definition to store.
    pub definition: Definition,
}

impl<'a> Schedule<'a> {
    /// Parses the arguments after the command name, within the limits of `config`.
    pub fn parse(args: &'a [&'a [u8]], config: &Config) -> Result<Self> {
        let [queue, name, kind, spec, task, payload, rest @ ..] = args else {
            return Err(ZrqError::arity("zrq.schedule"));
        };
        let queue = args::name("queue", queue)?;
        let name = args::name("name", name)?;
        let (every, cron) = if kind.eq_ignore_ascii_case(b"EVERY") {
            let every = args::integer("EVERY", spec, 1, MAX_DURATION_MS)?;
            if every < config.every_min_ms {
                let subject = format!("EVERY {every} is shorter than {}", config.every_min_ms);
                return Err(ZrqError::limit(
                    &subject,
                    &EVERY_MIN_MS,
                    config.every_min_ms,
                ));
            }
            (Some(every), None)
        } else if kind.eq_ignore_ascii_case(b"CRON") {
            let expr = std::str::from_utf8(spec).map_err(|_| ZrqError::bad_cron("not UTF-8"))?;
            Cron::parse(expr)?;
            (None, Some(expr.to_string()))
        } else {
            return Err(ZrqError::not_one_of(
                "schedule kind",
                kind,
                &["EVERY", "CRON"],
            ));
        };
        let mut job = Enqueue::new(
            queue,
            args::name("task", task)?,
            payload_arg(payload, config)?,
        );
        job.parse_options(&mut Options::new(rest), &JOB_OPTIONS, config)?;
        Ok(Schedule {
            queue,
            definition: Definition {
                name: name.to_string(),
                every,
                cron,
                task: job.task.to_string(),
                payload: job.payload.to_string(),
                retries: job.retries,
                timeout: job.timeout,
                priority: job.priority,
                backoff: job.backoff,
                unique: job.unique.map(str::to_string),
                keep: job.keep,
                last_run: None,
            },
        })
    }

    /// Stores the schedule and plans its first tick.
    pub fn apply(&self, store: &mut dyn Store) -> Result<Reply> {
        let keys = QueueKeys::new(self.queue);
        check_queue_types(store, &keys)?;
        let now = store.now_ms();
        let Some(first) = self
            .definition
            .next_run(now, now, store.config().every_min_ms)
        else {
            return Err(ZrqError::bad_cron("it never matches"));
        };
        let name = &self.definition.name;
        let max = store.config().schedules_max;
        if store.hget(&keys.schedules(), name)?.is_none() && store.hlen(&keys.schedules())? >= max {
            let subject = format!("queue '{}' has {max} schedules already", self.queue);
            return Err(ZrqError::limit(&subject, &SCHEDULES_MAX, max));
        }
        store.hset(&keys.schedules(), &[(name, &self.definition.to_json())])?;
        store.zadd(&keys.ticks(), first, name)?;
        // Creates the stats hash (if new) so the queue is listed by ZRQ.QUEUES.
        store.hincrby(&keys.stats(), "enqueued", 0)?;
        store.wake_at(self.queue, first);
        Ok(Reply::Int(first))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_definitions_are_checked_like_arguments() {
        let valid = r#"{"name":"n","every":1000,"task":"t","payload":"{}","retries":3,"timeout":30000,"priority":0}"#;
        assert!(Definition::from_json("k", valid).is_ok());
        let cases: &[(&str, &str, &str)] = &[
            ("\"priority\":0", "\"priority\":10", "priority"),
            ("\"priority\":0", "\"priority\":-1", "priority"),
            ("\"task\":\"t\"", "\"task\":\"a b\"", "task"),
            ("\"payload\":\"{}\"", "\"payload\":\"{\"", "payload"),
            ("\"every\":1000", "\"every\":0", "every"),
            ("\"every\":1000", "\"cron\":\"* * *\"", "cron"),
            (
                "\"every\":1000",
                "\"every\":1,\"cron\":\"* * * * *\"",
                "cron",
            ),
            ("\"retries\":3", "\"retries\":1001", "retries"),
            ("\"timeout\":30000", "\"timeout\":0", "timeout"),
            ("\"name\":\"n\"", "\"name\":\"\"", "name"),
            (
                "\"priority\":0",
                "\"priority\":0,\"unique\":\"u v\"",
                "unique",
            ),
            ("\"priority\":0", "\"priority\":0,\"keep\":0", "keep"),
            ("\"priority\":0", "\"priority\":0,\"backoff\":-5", "backoff"),
        ];
        for (from, to, field) in cases {
            let text = valid.replace(from, to);
            let err = Definition::from_json("k", &text)
                .map(|_| ())
                .map_err(|e| e.to_string());
            assert_eq!(
                err,
                Err(format!(
                    "CORRUPT 'k' is not a zrq record: invalid value for `{field}`"
                )),
                "{text}"
            );
        }
    }
}

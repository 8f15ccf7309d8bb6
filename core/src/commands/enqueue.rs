//! `ZRQ.ENQUEUE <queue> <task> <payload> [ID <id>] [RETRIES <n>] [TIMEOUT <ms>] [DELAY <ms> | AT
//! <unix-ms>] [BACKOFF <ms>] [PRIORITY <0-9>] [UNIQUE <key>] [KEEP <ms>] [AFTER <id> …]
//! [WITHRESULTS] [ONPARENTFAIL cancel|run]` → job id.
//!
//! With `AFTER`, the job is `waiting` until every parent (a job of the same queue) has completed,
//! then becomes `pending` in the same atomic step as its last parent's ACK. Parents must exist
//! before the child, so dependency cycles cannot be formed.

use super::flow::{self, parent_done, write_waiting};
use super::{
    announce, check_queue_types, check_types, finish, job_recorded, load_job, push_entry,
    push_fields, save, Ending,
};
use std::collections::HashSet;

use crate::args::{self, Options, MAX_DURATION_MS, MAX_RETRIES};
use crate::config::{Config, AFTER_MAX, CHILDREN_MAX, PAYLOAD_MAX_BYTES};
use crate::job::{Job, Place};
use crate::keys::{QueueKeys, MAX_PRIORITY};
use crate::state::State;
use crate::store::{KeyType, Store};
use crate::{Reply, Result, ZrqError};

pub use crate::job::{DEFAULT_RETRIES, DEFAULT_TIMEOUT_MS};
/// Latest accepted `AT`: year 9999 in unix ms, far beyond any real schedule.
pub const MAX_AT_MS: i64 = 253_402_300_799_999;

/// Reads a job's payload: at most `zrq.payload-max-bytes`, then valid JSON of at most
/// `zrq.json-depth-max` levels.
pub fn payload_arg<'a>(raw: &'a [u8], config: &Config) -> Result<&'a str> {
    args::within(
        "payload",
        raw.len(),
        &PAYLOAD_MAX_BYTES,
        config.payload_max_bytes,
    )?;
    args::json("payload", raw, config.json_depth_max)
}

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
    /// Run no earlier than this many ms from now.
    pub delay: Option<i64>,
    /// Run no earlier than this unix time in ms.
    pub at: Option<i64>,
    /// Base of the retry backoff in ms (else the module config).
    pub backoff: Option<i64>,
    /// Priority, 0 to 9.
    pub priority: i64,
    /// While a job with this key is unfinished, enqueueing another returns it instead.
    pub unique: Option<&'a str>,
    /// Retention in ms once finished (else the module config).
    pub keep: Option<i64>,
    /// Parents that must complete first, each once, in the order first given.
    pub after: Vec<&'a str>,
    /// The `AFTER` options read so far (repeats included): at most `zrq.after-max`.
    pub(crate) after_given: i64,
    /// The same parents as `after`, to find repeats without a quadratic search.
    pub(crate) after_seen: HashSet<&'a str>,
    /// Copy the parents' results into the job.
    pub with_results: bool,
    /// What happens if a parent ends dead or cancelled: `cancel` (default) or `run`.
    pub on_parent_fail: Option<&'static str>,
    /// The batch the job belongs to (set by `ZRQ.BATCH`).
    pub batch: Option<&'a str>,
    /// The schedule whose tick enqueues the job (set by the timer, never by an argument).
    pub schedule: Option<&'a str>,
}

/// Every option of ENQUEUE (also accepted by SCHEDULE for the jobs it creates, minus some).
pub const OPTIONS: [&str; 12] = [
    "ID",
    "RETRIES",
    "TIMEOUT",
    "DELAY",
    "AT",
    "BACKOFF",
    "PRIORITY",
    "UNIQUE",
    "KEEP",
    "AFTER",
    "WITHRESULTS",
    "ONPARENTFAIL",
];

impl<'a> Enqueue<'a> {
    /// A job of `task` with `payload` and default options.
    pub fn new(queue: &'a str, task: &'a str, payload: &'a str) -> Self {
        Enqueue {
            queue,
            task,
            payload,
            id: None,
            retries: DEFAULT_RETRIES,
            timeout: DEFAULT_TIMEOUT_MS,
            delay: None,
            at: None,
            backoff: None,
            priority: 0,
            unique: None,
            keep: None,
            after: Vec::new(),
            after_given: 0,
            after_seen: HashSet::new(),
            with_results: false,
            on_parent_fail: None,
            batch: None,
            schedule: None,
        }
    }

    /// Parses the arguments after the command name, within the limits of `config`.
    pub fn parse(args: &'a [&'a [u8]], config: &Config) -> Result<Self> {
        let [queue, task, payload, rest @ ..] = args else {
            return Err(ZrqError::arity("zrq.enqueue"));
        };
        let mut cmd = Enqueue::new(
            args::name("queue", queue)?,
            args::name("task", task)?,
            payload_arg(payload, config)?,
        );
        cmd.parse_options(&mut Options::new(rest), &OPTIONS, config)?;
        Ok(cmd)
    }

    /// Reads job options (those of `allowed`) into `self`.
    pub fn parse_options(
        &mut self,
        options: &mut Options<'a>,
        allowed: &[&'static str],
        config: &Config,
    ) -> Result<()> {
        while let Some((option, value)) = options.next(allowed)? {
            self.set_option(option, value, config)?;
        }
        Ok(())
    }

    /// Applies one job option (its canonical name, from [`OPTIONS`]) and its value.
    pub fn set_option(
        &mut self,
        option: &'static str,
        value: &'a [u8],
        config: &Config,
    ) -> Result<()> {
        match option {
            "ID" => {
                let id = args::name("ID", value)?;
                if crate::job::has_generated_form(id) {
                    return Err(ZrqError::reserved_id(id));
                }
                self.id = Some(id);
            }
            "RETRIES" => self.retries = args::integer("RETRIES", value, 0, MAX_RETRIES)?,
            "TIMEOUT" => self.timeout = args::integer("TIMEOUT", value, 1, MAX_DURATION_MS)?,
            "DELAY" | "AT" if self.delay.is_some() || self.at.is_some() => {
                return Err(ZrqError::conflicting_options("DELAY", "AT"));
            }
            "DELAY" | "AT" if !self.after.is_empty() => {
                return Err(ZrqError::conflicting_options(option, "AFTER"));
            }
            "AFTER" if self.delay.is_some() || self.at.is_some() => {
                let timed = if self.delay.is_some() { "DELAY" } else { "AT" };
                return Err(ZrqError::conflicting_options(timed, "AFTER"));
            }
            "AFTER" => {
                let parent = args::name("AFTER", value)?;
                self.after_given += 1;
                if self.after_given > config.after_max {
                    let subject = format!("more than {} AFTER options", config.after_max);
                    return Err(ZrqError::limit(&subject, &AFTER_MAX, config.after_max));
                }
                if self.after_seen.insert(parent) {
                    self.after.push(parent);
                }
            }
            "WITHRESULTS" => self.with_results = true,
            "ONPARENTFAIL" => self.on_parent_fail = Some(flow::policy(value)?),
            "DELAY" => self.delay = Some(args::integer("DELAY", value, 0, MAX_DURATION_MS)?),
            "AT" => self.at = Some(args::integer("AT", value, 0, MAX_AT_MS)?),
            "BACKOFF" => self.backoff = Some(args::integer("BACKOFF", value, 0, MAX_DURATION_MS)?),
            "PRIORITY" => self.priority = args::integer("PRIORITY", value, 0, MAX_PRIORITY)?,
            "UNIQUE" => self.unique = Some(args::name("UNIQUE", value)?),
            "KEEP" => self.keep = Some(args::integer("KEEP", value, 1, MAX_DURATION_MS)?),
            other => return Err(ZrqError::unknown_option(other.as_bytes())),
        }
        Ok(())
    }

    /// Whether the job is plain (no `ID`, no `DELAY`/`AT`, no `AFTER`): it is held by its stream
    /// entry (an inline entry) and has no record while pending; its id is generated from the
    /// entry ([`crate::job::inline_id`]).
    pub fn is_plain(&self) -> bool {
        self.id.is_none() && self.delay.is_none() && self.at.is_none() && self.after.is_empty()
    }

    /// Adds the job unless its id (or its UNIQUE key) is taken; replies with the job's id.
    /// `new_id` makes an id when the producer gave none and the job is not plain.
    pub fn apply(&self, store: &mut dyn Store, new_id: impl FnOnce() -> String) -> Result<Reply> {
        let keys = QueueKeys::new(self.queue);
        let plain = self.is_plain();
        // A plain job's id is its entry's, known once the entry is written.
        let id = match self.id {
            Some(id) => id.to_string(),
            None if plain => String::new(),
            None => new_id(),
        };
        if !plain && job_recorded(store, &keys, &id)? {
            return Ok(Reply::Bulk(id));
        }
        if let Some(unique) = self.unique {
            check_types(store, &[(&keys.unique(), KeyType::Hash)])?;
            if let Some(holder) = store.hget(&keys.unique(), unique)? {
                let unfinished = load_job(store, &keys, &holder)
                    .ok()
                    .flatten()
                    .is_some_and(|job| !job.state.is_final());
                if unfinished {
                    return Ok(Reply::Bulk(holder));
                }
            }
        }
        let mut parents = Vec::with_capacity(self.after.len());
        let mut children = Vec::with_capacity(self.after.len());
        for parent in &self.after {
            if *parent == id {
                return Err(ZrqError::self_dependency(&id));
            }
            // Read whole (after-max parents): an unfinished parent gets the child in its list
            // of children, a write of its whole record; a completed one's result may be copied.
            match load_job(store, &keys, parent)? {
                Some(job) => {
                    children.push(check_children(store, &job, &id)?);
                    parents.push(job);
                }
                None => return Err(ZrqError::no_parent(self.queue, parent)),
            }
        }
        let now = store.now_ms();
        let due = self.at.or(self.delay.map(|d| now.saturating_add(d)));
        let scheduled = due.is_some_and(|due| due > now);
        // Before the first write, the types of the keys this job's path writes. A job with
        // parents may be cancelled or released at once, which can reach any key of the queue.
        if !parents.is_empty() {
            check_queue_types(store, &keys)?;
        } else if scheduled {
            check_types(store, &[(&keys.scheduled(), KeyType::ZSet)])?;
        }
        // A pending job's first write is its entry: `push_fields` checks the streams' types
        // before it (looking them up here too measured ~1.5k instructions an ENQUEUE).
        check_types(store, &[(&keys.stats(), KeyType::Hash)])?;
        let mut job = Job {
            id: id.clone(),
            queue: self.queue.to_string(),
            task: self.task.to_string(),
            payload: self.payload.to_string(),
            state: if !parents.is_empty() {
                State::Waiting
            } else if scheduled {
                State::Scheduled
            } else {
                State::Pending
            },
            attempt: 0,
            max_attempts: self.retries + 1,
            timeout: self.timeout,
            priority: self.priority,
            backoff: self.backoff,
            keep: self.keep,
            unique: self.unique.map(str::to_string),
            parents: (!parents.is_empty()).then(|| {
                let ids = parents
                    .iter()
                    .map(|p| (p.id.clone(), serde_json::Value::Null));
                serde_json::Value::Object(ids.collect()).to_string()
            }),
            children: None,
            waiting_on: (!parents.is_empty())
                .then_some(i64::try_from(parents.len()).unwrap_or(i64::MAX)),
            parents_done: None,
            with_results: self.with_results.then_some(1),
            on_parent_fail: self.on_parent_fail.map(str::to_string),
            batch: self.batch.map(str::to_string),
            schedule: self.schedule.map(str::to_string),
            created_at: now,
            run_at: due.filter(|_| scheduled),
            started_at: None,
            finished_at: None,
            consumer: None,
            lease: None,
            progress: None,
            cancel_requested: None,
            entry: None,
            result: None,
            error: None,
            place: if plain { Place::Entry } else { Place::Key },
        };
        match (job.state, job.run_at) {
            (State::Waiting, _) => store.zadd(&keys.waiting(), now, &id)?,
            (_, Some(due)) => {
                store.zadd(&keys.scheduled(), due, &id)?;
                store.wake_at(self.queue, due);
            }
            _ if plain => {
                let fields = job.entry_fields();
                let pairs: Vec<(&str, &str)> =
                    fields.iter().map(|(k, v)| (*k, v.as_ref())).collect();
                let entry = push_fields(store, &keys, job.priority, &pairs)?;
                job.id = crate::job::inline_id(job.priority, &entry);
                // The job's creation time is its entry's: the clock can be behind the stream's
                // last id (entries are never older than the newest one).
                if let Some((ms, _)) = crate::store::entry_id(&entry) {
                    job.created_at = i64::try_from(ms).unwrap_or(job.created_at);
                }
                job.entry = Some(entry);
            }
            _ => job.entry = Some(push_entry(store, &keys, &id, job.priority)?),
        }
        // A job with parents is written once its parents are counted (wait_for); a plain job
        // has no record while pending.
        if job.place != Place::Entry && parents.is_empty() {
            save(store, &keys, &mut job, None)?;
        }
        let id = job.id.clone();
        if let Some(unique) = self.unique {
            store.hset(&keys.unique(), &[(unique, &id)])?;
        }
        store.hincrby(&keys.stats(), "enqueued", 1)?;
        announce(store, &keys, &id, job.state)?;
        if !parents.is_empty() {
            self.wait_for(store, &keys, &mut job, &mut parents, children)?;
        }
        Ok(Reply::Bulk(id))
    }

    /// Links a new waiting `job` to its parents: registers it with the unfinished ones (whose
    /// lists of children, read by [`check_children`], come in `children`), and counts the finished
    /// ones at once (which may release or, by policy, cancel it). Writes the job's record, once,
    /// whichever way it goes.
    fn wait_for(
        &self,
        store: &mut dyn Store,
        keys: &QueueKeys,
        job: &mut Job,
        parents: &mut [Job],
        children: Vec<Vec<String>>,
    ) -> Result<()> {
        let cancels = self.on_parent_fail != Some("run");
        let failed = parents
            .iter()
            .find(|p| matches!(p.state, State::Dead | State::Cancelled));
        if let (Some(parent), true) = (failed, cancels) {
            let reason = format!("parent {} ended {}", parent.id, parent.state);
            return finish(
                store,
                keys,
                job,
                crate::state::Event::Cancel,
                Ending::error(&reason),
            );
        }
        for (parent, mut children) in parents.iter_mut().zip(children) {
            // Listed once: the id of a deleted child can be taken again by a new one.
            if !parent.state.is_final() && !children.contains(&job.id) {
                children.push(job.id.clone());
                parent.children = Some(flow::id_list_json(&children));
                // A parent held by its inline entry gets its first record here.
                save(store, keys, parent, None)?;
            }
        }
        for parent in parents.iter().filter(|p| p.state.is_final()) {
            let note = (parent.state != State::Completed).then(|| {
                format!(
                    "released although parent {} ended {}",
                    parent.id, parent.state
                )
            });
            // A completed parent's result is copied (WITHRESULTS) when it fits in the child's
            // `parents`.
            let result = (job.with_results() && parent.state == State::Completed)
                .then_some(parent.result.as_deref())
                .flatten();
            let mut copied = flow::Copied::of(result);
            parent_done(store, job, &parent.id, &mut copied, note.as_deref())?;
        }
        write_waiting(store, keys, job)
    }
}

/// Refuses a child that would take an unfinished `parent`'s list of children beyond
/// `zrq.children-max` (a parent's finish settles each child in the same step, so the list bounds
/// that step's work); returns the list. A finished parent is counted at once and keeps no list.
fn check_children(store: &mut dyn Store, parent: &Job, child: &str) -> Result<Vec<String>> {
    if parent.state.is_final() {
        return Ok(Vec::new());
    }
    let max = store.config().children_max;
    let children = flow::id_list(parent.children.as_deref());
    let listed = i64::try_from(children.len()).unwrap_or(i64::MAX);
    if listed >= max && !children.iter().any(|c| c == child) {
        let subject = format!("parent '{}' has {listed} children already", parent.id);
        return Err(ZrqError::limit(&subject, &CHILDREN_MAX, max));
    }
    Ok(children)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Parsed = (i64, i64, Option<String>, i64, Option<i64>);

    fn parse(args: &[&str]) -> std::result::Result<Parsed, String> {
        let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        Enqueue::parse(&bytes, &Config::DEFAULT)
            .map(|c| {
                (
                    c.retries,
                    c.timeout,
                    c.id.map(str::to_string),
                    c.priority,
                    c.delay.or(c.at),
                )
            })
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_options() {
        assert_eq!(parse(&["q", "t", "{}"]), Ok((3, 30_000, None, 0, None)));
        let all = [
            "q", "t", "[1]", "id", "x", "RETRIES", "0", "TIMEOUT", "5", "PRIORITY", "9", "DELAY",
            "10",
        ];
        assert_eq!(parse(&all), Ok((0, 5, Some("x".to_string()), 9, Some(10))));
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
            (
                &["q", "t", "{}", "PRIORITY", "10"],
                "ERR PRIORITY must be an integer from 0 to 9",
            ),
            (
                &["q", "t", "{}", "DELAY", "1", "AT", "5"],
                "ERR options DELAY and AT cannot be combined",
            ),
            (&["q{", "t", "{}"], "ERR queue must be"),
            (&["q", "", "{}"], "ERR task must be"),
        ];
        for (args, want) in cases {
            let got = parse(args).err().unwrap_or_default();
            assert!(got.starts_with(want), "{args:?}: {got}");
        }
    }
}

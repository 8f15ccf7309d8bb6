//! Producing: [`Queue`], enqueue options and queue administration.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::Value;
use serde::{Serialize, Serializer};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::job::JobHandle;
use crate::record::{self, int, text, JobRecord, Page, QueueInfo};
use crate::task::Task;

/// Options of one enqueue. Every option left unset takes the server's default.
///
/// ```
/// use std::time::Duration;
/// let options = zrq::EnqueueOptions::new()
///     .delay(Duration::from_secs(60))
///     .retries(5)
///     .priority(9)
///     .unique("invoice-42");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnqueueOptions {
    id: Option<String>,
    delay: Option<Duration>,
    at: Option<u64>,
    retries: Option<u32>,
    backoff: Option<Duration>,
    timeout: Option<Duration>,
    priority: Option<u8>,
    unique: Option<String>,
    keep: Option<Duration>,
    after: Vec<String>,
    with_results: bool,
    on_parent_fail: Option<ParentFailure>,
}

/// What happens to a job when one of its parents ([`EnqueueOptions::after`]) ends dead or
/// cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParentFailure {
    /// The job is cancelled too, and its own children in turn (the default).
    Cancel,
    /// The job runs anyway, as if the parent had completed.
    Run,
}

fn ms(d: Duration) -> String {
    d.as_millis().to_string()
}

impl EnqueueOptions {
    /// No options: the server's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Use this job id (enqueueing an id that exists returns it and adds nothing).
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Deliver no earlier than `delay` from now.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self.at = None;
        self
    }

    /// Deliver no earlier than `at`.
    pub fn at(mut self, at: SystemTime) -> Self {
        let unix_ms = at
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        self.at = Some(unix_ms);
        self.delay = None;
        self
    }

    /// Deliver no earlier than `unix_ms` (milliseconds since the epoch).
    pub fn at_unix_ms(mut self, unix_ms: u64) -> Self {
        self.at = Some(unix_ms);
        self.delay = None;
        self
    }

    /// Extra attempts after the first.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = Some(retries);
        self
    }

    /// Base of the exponential backoff between attempts.
    pub fn backoff(mut self, backoff: Duration) -> Self {
        self.backoff = Some(backoff);
        self
    }

    /// The lease: how long a worker may run the job; workers also use it as the job's time limit.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// 0 (default) to 9; higher priorities are delivered first.
    pub fn priority(mut self, priority: u8) -> Self {
        self.priority = Some(priority);
        self
    }

    /// While a job with this key is unfinished, enqueueing another returns the existing id.
    pub fn unique(mut self, key: impl Into<String>) -> Self {
        self.unique = Some(key.into());
        self
    }

    /// How long the finished job is kept before it vanishes.
    pub fn keep(mut self, keep: Duration) -> Self {
        self.keep = Some(keep);
        self
    }

    /// Run only once job `parent` (of the same queue) has completed; repeat for several parents.
    /// The job is `waiting` until then.
    pub fn after(mut self, parent: impl Into<String>) -> Self {
        self.after.push(parent.into());
        self
    }

    /// Hand the parents' results to the job (its `parents` field, see [`JobRecord::parents`]).
    pub fn with_results(mut self) -> Self {
        self.with_results = true;
        self
    }

    /// What to do when a parent ends dead or cancelled.
    pub fn on_parent_fail(mut self, policy: ParentFailure) -> Self {
        self.on_parent_fail = Some(policy);
        self
    }

    /// The options as command arguments.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        let mut push = |name: &str, value: Option<String>| {
            if let Some(value) = value {
                args.push(name.to_string());
                args.push(value);
            }
        };
        push("ID", self.id.clone());
        push("DELAY", self.delay.map(ms));
        push("AT", self.at.map(|a| a.to_string()));
        push("RETRIES", self.retries.map(|r| r.to_string()));
        push("BACKOFF", self.backoff.map(ms));
        push("TIMEOUT", self.timeout.map(ms));
        push("PRIORITY", self.priority.map(|p| p.to_string()));
        push("UNIQUE", self.unique.clone());
        push("KEEP", self.keep.map(ms));
        for parent in &self.after {
            args.push("AFTER".into());
            args.push(parent.clone());
        }
        if self.with_results {
            args.push("WITHRESULTS".into());
        }
        let policy = self.on_parent_fail.map(|p| match p {
            ParentFailure::Cancel => "cancel".to_string(),
            ParentFailure::Run => "run".to_string(),
        });
        if let Some(policy) = policy {
            args.push("ONPARENTFAIL".into());
            args.push(policy);
        }
        args
    }
}

/// A batch of jobs created in one atomic step (`ZRQ.BATCH`), with an optional callback job
/// enqueued exactly once when every member has finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    id: String,
    on_complete: Option<(String, String)>,
    options: Vec<String>,
    jobs: Vec<(String, String)>,
}

impl Batch {
    /// A new, empty batch with this id (an id that exists is refused by the server).
    pub fn new(id: impl Into<String>) -> Batch {
        Batch {
            id: id.into(),
            on_complete: None,
            options: Vec::new(),
            jobs: Vec::new(),
        }
    }

    /// Adds a member job.
    pub fn job(mut self, task: &str, args: &impl Serialize) -> Result<Batch> {
        self.jobs
            .push((task.to_string(), serde_json::to_string(args)?));
        Ok(self)
    }

    /// Adds a member job of the typed task `T`.
    pub fn task<T: Task>(self, args: &T::Args) -> Result<Batch> {
        self.job(T::NAME, args)
    }

    /// The callback: `task` runs once every member finished, with the payload
    /// `{"batch", "succeeded", "failed", "payload": <args>}`.
    pub fn on_complete(mut self, task: &str, args: &impl Serialize) -> Result<Batch> {
        self.on_complete = Some((task.to_string(), serde_json::to_string(args)?));
        Ok(self)
    }

    fn option(mut self, name: &str, value: String) -> Batch {
        self.options.push(name.to_string());
        self.options.push(value);
        self
    }

    /// Extra attempts of each member.
    pub fn retries(self, retries: u32) -> Batch {
        self.option("RETRIES", retries.to_string())
    }

    /// Lease of each member.
    pub fn timeout(self, timeout: Duration) -> Batch {
        self.option("TIMEOUT", ms(timeout))
    }

    /// Backoff base of each member.
    pub fn backoff(self, backoff: Duration) -> Batch {
        self.option("BACKOFF", ms(backoff))
    }

    /// Priority of each member.
    pub fn priority(self, priority: u8) -> Batch {
        self.option("PRIORITY", priority.to_string())
    }

    /// Retention of each finished member.
    pub fn keep(self, keep: Duration) -> Batch {
        self.option("KEEP", ms(keep))
    }

    fn args(&self) -> Vec<String> {
        let mut args = vec![self.id.clone()];
        if let Some((task, payload)) = &self.on_complete {
            args.extend(["ON-COMPLETE".to_string(), task.clone(), payload.clone()]);
        }
        args.extend(self.options.iter().cloned());
        for (task, payload) in &self.jobs {
            args.extend(["JOB".to_string(), task.clone(), payload.clone()]);
        }
        args
    }
}

/// A batch's progress (`ZRQ.BATCHINFO`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchInfo {
    /// The batch id.
    pub id: String,
    /// Members in all.
    pub total: i64,
    /// Members finished.
    pub done: i64,
    /// Members completed.
    pub succeeded: i64,
    /// Members dead or cancelled.
    pub failed: i64,
    /// The callback job, once enqueued.
    pub callback_id: Option<String>,
}

/// One job for [`Queue::enqueue_many`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    task: String,
    payload: String,
    options: EnqueueOptions,
}

impl NewJob {
    /// A job of `task` with `args` serialized as its JSON payload.
    pub fn new(task: &str, args: &impl Serialize) -> Result<NewJob> {
        Ok(NewJob {
            task: task.to_string(),
            payload: serde_json::to_string(args)?,
            options: EnqueueOptions::default(),
        })
    }

    /// A job of the typed task `T`.
    pub fn of<T: Task>(args: &T::Args) -> Result<NewJob> {
        NewJob::new(T::NAME, args)
    }

    /// With these options.
    pub fn options(mut self, options: EnqueueOptions) -> NewJob {
        self.options = options;
        self
    }

    fn args(&self) -> Vec<String> {
        let mut args = vec![self.task.clone(), self.payload.clone()];
        args.extend(self.options.to_args());
        args
    }
}

/// What `ZRQ.REQUEUE … ALL` and friends report.
pub type Count = i64;

/// A recurring job (`ZRQ.SCHEDULES`), every field the server returns, as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Field name → value.
    pub fields: BTreeMap<String, String>,
}

impl Serialize for Schedule {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.fields.serialize(s)
    }
}

impl Schedule {
    /// A field, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// When a recurring job fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Every {
    /// Every interval.
    Interval(Duration),
    /// On a cron expression.
    Cron(String),
}

/// A queue on the server. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Queue {
    client: Client,
    name: String,
}

impl Queue {
    pub(crate) fn new(client: Client, name: &str) -> Queue {
        Queue {
            client,
            name: name.to_string(),
        }
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The client this queue talks through.
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) async fn call<A: redis::ToRedisArgs>(
        &self,
        name: &str,
        args: &[A],
    ) -> Result<Value> {
        self.client.call(name, Some(&self.name), args).await
    }

    /// Enqueues `task` with `args` (serialized to JSON) and the server's default options.
    pub async fn enqueue(&self, task: &str, args: &impl Serialize) -> Result<JobHandle> {
        self.enqueue_with(task, args, &EnqueueOptions::default())
            .await
    }

    /// Enqueues `task` with `args` and `options`.
    pub async fn enqueue_with(
        &self,
        task: &str,
        args: &impl Serialize,
        options: &EnqueueOptions,
    ) -> Result<JobHandle> {
        let job = NewJob::new(task, args)?.options(options.clone());
        let reply = self.call("enqueue", &job.args()).await?;
        self.handle_from(reply)
    }

    /// Enqueues the typed task `T`.
    pub async fn enqueue_task<T: Task>(&self, args: &T::Args) -> Result<JobHandle> {
        self.enqueue(T::NAME, args).await
    }

    /// Enqueues the typed task `T` with `options`.
    pub async fn enqueue_task_with<T: Task>(
        &self,
        args: &T::Args,
        options: &EnqueueOptions,
    ) -> Result<JobHandle> {
        self.enqueue_with(T::NAME, args, options).await
    }

    /// Enqueues many jobs in one pipelined round trip. Each job succeeds or fails on its own:
    /// the result has one entry per job, in order.
    pub async fn enqueue_many(
        &self,
        jobs: impl IntoIterator<Item = NewJob>,
    ) -> Result<Vec<Result<JobHandle>>> {
        let mut pipe = redis::pipe();
        let mut n = 0;
        for job in jobs {
            pipe.add_command(self.client.backend().command(
                "enqueue",
                Some(&self.name),
                &job.args(),
            ));
            n += 1;
        }
        if n == 0 {
            return Ok(Vec::new());
        }
        let replies = self.client.pipeline(&pipe).await?;
        Ok(replies
            .into_iter()
            .map(|reply| self.handle_from(reply))
            .collect())
    }

    fn handle_from(&self, reply: Value) -> Result<JobHandle> {
        match reply {
            Value::ServerError(e) => Err(Error::Server {
                code: e.code().to_string(),
                message: e.details().unwrap_or_default().to_string(),
            }),
            other => text(&other)
                .map(|id| self.job(&id))
                .ok_or_else(|| Error::Protocol(format!("ENQUEUE replied {other:?}"))),
        }
    }

    /// A handle on job `id` of this queue (nothing is sent).
    pub fn job(&self, id: &str) -> JobHandle {
        JobHandle::new(self.clone(), id)
    }

    /// Counts by state, totals, oldest pending age, paused (`ZRQ.INFO`).
    pub async fn info(&self) -> Result<QueueInfo> {
        let none: [&str; 0] = [];
        QueueInfo::from_value(&self.name, self.call("info", &none).await?)
    }

    /// Stops deliveries from this queue (enqueueing goes on).
    pub async fn pause(&self) -> Result<()> {
        let none: [&str; 0] = [];
        self.call("pause", &none).await.map(drop)
    }

    /// Resumes deliveries.
    pub async fn resume(&self) -> Result<()> {
        let none: [&str; 0] = [];
        self.call("resume", &none).await.map(drop)
    }

    /// One page of dead jobs with their last error; start with cursor `"0"`.
    pub async fn dead(&self, count: usize, cursor: &str) -> Result<Page> {
        let args = [
            "COUNT".to_string(),
            count.to_string(),
            "CURSOR".into(),
            cursor.into(),
        ];
        Page::from_value(self.call("dead", &args).await?)
    }

    /// One page of the jobs in `state`; start with cursor `"0"`.
    pub async fn list(&self, state: &str, count: usize, cursor: &str) -> Result<Page> {
        let args = [
            state.to_string(),
            "COUNT".into(),
            count.to_string(),
            "CURSOR".into(),
            cursor.into(),
        ];
        Page::from_value(self.call("list", &args).await?)
    }

    /// Puts dead job `id` back to pending with a fresh attempt budget; whether it was dead.
    pub async fn requeue(&self, id: &str) -> Result<bool> {
        Ok(count(self.call("requeue", &[id]).await?)? > 0)
    }

    /// Requeues several dead jobs in one round trip; how many were requeued.
    pub async fn requeue_many(&self, ids: &[String]) -> Result<Count> {
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.add_command(
                self.client
                    .backend()
                    .command("requeue", Some(&self.name), &[id]),
            );
        }
        let mut total = 0;
        for reply in self.client.pipeline(&pipe).await? {
            total += count(reply)?;
        }
        Ok(total)
    }

    /// Requeues every dead job at once; how many.
    pub async fn requeue_all(&self) -> Result<Count> {
        count(self.call("requeue", &["ALL"]).await?)
    }

    /// Deletes job `id`; whether it existed.
    pub async fn delete(&self, id: &str) -> Result<bool> {
        Ok(count(self.call("delete", &[id]).await?)? > 0)
    }

    /// Creates or replaces the recurring job `name`: `task` with `args` on `every`; replies with
    /// its first run (unix ms).
    pub async fn schedule(
        &self,
        name: &str,
        every: &Every,
        task: &str,
        args: &impl Serialize,
        options: &EnqueueOptions,
    ) -> Result<i64> {
        let mut cmd_args = vec![name.to_string()];
        match every {
            Every::Interval(d) => cmd_args.extend(["EVERY".to_string(), ms(*d)]),
            Every::Cron(expr) => cmd_args.extend(["CRON".to_string(), expr.clone()]),
        }
        cmd_args.push(task.to_string());
        cmd_args.push(serde_json::to_string(args)?);
        cmd_args.extend(options.to_args());
        count(self.call("schedule", &cmd_args).await?)
    }

    /// Removes the recurring job `name`; whether it existed.
    pub async fn unschedule(&self, name: &str) -> Result<bool> {
        Ok(count(self.call("unschedule", &[name]).await?)? > 0)
    }

    /// The recurring jobs of this queue.
    pub async fn schedules(&self) -> Result<Vec<Schedule>> {
        let none: [&str; 0] = [];
        let reply = self.call("schedules", &none).await?;
        record::array(reply)?
            .into_iter()
            .filter_map(|v| record::map(v).transpose())
            .map(|m| {
                m.map(|m| Schedule {
                    fields: m
                        .iter()
                        .filter_map(|(k, v)| text(v).map(|t| (k.clone(), t)))
                        .collect(),
                })
            })
            .collect()
    }

    /// Creates `batch` and all its members in one atomic step; the member handles, in order.
    pub async fn batch(&self, batch: &Batch) -> Result<Vec<JobHandle>> {
        let reply = self.call("batch", &batch.args()).await?;
        Ok(record::array(reply)?
            .iter()
            .filter_map(text)
            .map(|id| self.job(&id))
            .collect())
    }

    /// A batch's progress; `None` if there is no such batch.
    pub async fn batch_info(&self, id: &str) -> Result<Option<BatchInfo>> {
        let Some(m) = record::map(self.call("batchinfo", &[id]).await?)? else {
            return Ok(None);
        };
        let n = |k: &str| m.get(k).and_then(int).unwrap_or(0);
        Ok(Some(BatchInfo {
            id: m.get("id").and_then(text).unwrap_or_else(|| id.to_string()),
            total: n("total"),
            done: n("done"),
            succeeded: n("succeeded"),
            failed: n("failed"),
            callback_id: m.get("callback_id").and_then(text),
        }))
    }

    /// Jobs of this queue in a state, all pages (for tools; use [`Queue::list`] for big queues).
    pub async fn list_all(&self, state: &str) -> Result<Vec<JobRecord>> {
        let mut cursor = "0".to_string();
        let mut out = Vec::new();
        loop {
            let page = self.list(state, 500, &cursor).await?;
            out.extend(page.jobs);
            if page.cursor == "0" {
                return Ok(out);
            }
            cursor = page.cursor;
        }
    }
}

fn count(reply: Value) -> Result<i64> {
    match reply {
        Value::ServerError(e) => Err(Error::Server {
            code: e.code().to_string(),
            message: e.details().unwrap_or_default().to_string(),
        }),
        other => int(&other)
            .ok_or_else(|| Error::Protocol(format!("expected an integer, got {other:?}"))),
    }
}

//! Producing: [`Queue`], enqueue options and queue administration.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::Value;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize, Serializer};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::job::{IntoJobId, JobHandle};
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

    /// Run only once job `parent` (of the same queue: a [`JobHandle`] or an id) has completed;
    /// repeat for several parents. The job is `waiting` until then.
    ///
    /// ```no_run
    /// # async fn demo(queue: zrq::Queue) -> zrq::Result<()> {
    /// let parent = queue.enqueue("fetch", &"https://example.com").await?;
    /// let options = zrq::EnqueueOptions::new().after(&parent).with_results();
    /// let child = queue.enqueue_with("parse", &(), &options).await?;
    /// # Ok(()) }
    /// ```
    pub fn after(mut self, parent: impl IntoJobId) -> Self {
        self.after.push(parent.into_job_id());
        self
    }

    /// Hand the parents' results to the job (its `parents` field, see [`JobRecord::parents`] and
    /// [`crate::JobContext::parent_result`]).
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
    invalid: Option<String>,
}

/// A group of jobs that run independently, as a [`Batch`] with a generated id; add a callback
/// with [`Batch::then`] and enqueue it with [`Queue::batch`]. Options of one member are not
/// available (a batch's options apply to all its members: [`Batch::retries`] and the like).
///
/// ```no_run
/// # use serde::{Deserialize, Serialize};
/// # struct Resize; impl zrq::Task for Resize { const NAME: &'static str = "resize"; type Args = String; type Output = (); }
/// # struct Report; impl zrq::Task for Report { const NAME: &'static str = "report"; type Args = zrq::BatchOutcome<String>; type Output = (); }
/// # async fn demo(queue: zrq::Queue) -> zrq::Result<()> {
/// let urls = ["a.png", "b.png"];
/// let group = zrq::group(urls.iter().map(|u| zrq::NewJob::of::<Resize>(&u.to_string())).collect::<zrq::Result<Vec<_>>>()?)
///     .then::<Report, _>(&"album 7".to_string())?;
/// let members = queue.batch(&group).await?;
/// let done = queue.wait_batch(group.id(), std::time::Duration::from_secs(60), |_| {}).await?;
/// # Ok(()) }
/// ```
pub fn group(jobs: impl IntoIterator<Item = NewJob>) -> Batch {
    let mut batch = Batch::new(uuid::Uuid::now_v7().to_string());
    for job in jobs {
        if job.options != EnqueueOptions::default() && batch.invalid.is_none() {
            batch.invalid = Some(format!(
                "a member of group {} has options of its own ({}): set them on the batch",
                batch.id,
                job.options.to_args().join(" ")
            ));
        }
        batch.jobs.push((job.task, job.payload));
    }
    batch
}

/// What a batch's callback receives as its arguments: the batch id, the members that completed
/// and those that ended dead or cancelled, and the payload given to [`Batch::then`] or
/// [`Batch::on_complete`]. A callback task declares `type Args = BatchOutcome<MyPayload>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchOutcome<P = serde_json::Value> {
    /// The batch id.
    pub batch: String,
    /// Members that completed.
    pub succeeded: i64,
    /// Members that ended dead or cancelled.
    pub failed: i64,
    /// The callback's own payload.
    pub payload: P,
}

impl Batch {
    /// A new, empty batch with this id (an id that exists is refused by the server).
    pub fn new(id: impl Into<String>) -> Batch {
        Batch {
            id: id.into(),
            on_complete: None,
            options: Vec::new(),
            jobs: Vec::new(),
            invalid: None,
        }
    }

    /// The batch id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The members so far.
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Whether there are no members yet.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// The callback, typed: task `T` runs once every member finished, with
    /// [`BatchOutcome`]`{ batch, succeeded, failed, payload }` as its arguments.
    pub fn then<T, P>(self, payload: &P) -> Result<Batch>
    where
        T: Task<Args = BatchOutcome<P>>,
        P: Serialize + DeserializeOwned + Send + 'static,
    {
        self.on_complete(T::NAME, payload)
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

    fn args(&self) -> Result<Vec<String>> {
        if let Some(invalid) = &self.invalid {
            return Err(Error::Config(invalid.clone()));
        }
        let mut args = vec![self.id.clone()];
        if let Some((task, payload)) = &self.on_complete {
            args.extend(["ON-COMPLETE".to_string(), task.clone(), payload.clone()]);
        }
        args.extend(self.options.iter().cloned());
        for (task, payload) in &self.jobs {
            args.extend(["JOB".to_string(), task.clone(), payload.clone()]);
        }
        Ok(args)
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

/// Jobs that run one after another, each step enqueued `AFTER` the previous one `WITHRESULTS`
/// so that it sees the previous step's result ([`crate::JobContext::parent_result`]). Enqueue it
/// with [`Queue::chain`]; a step that ends dead or cancelled cancels the rest.
///
/// ```no_run
/// # struct Fetch; impl zrq::Task for Fetch { const NAME: &'static str = "fetch"; type Args = String; type Output = String; }
/// # struct Parse; impl zrq::Task for Parse { const NAME: &'static str = "parse"; type Args = (); type Output = u64; }
/// # async fn demo(queue: zrq::Queue) -> zrq::Result<()> {
/// let steps = queue
///     .chain(&zrq::chain([
///         zrq::NewJob::of::<Fetch>(&"https://example.com".to_string())?,
///         zrq::NewJob::of::<Parse>(&())?,
///     ]))
///     .await?;
/// // In the worker: `let page: String = ctx.parent_result()?;` in the Parse handler.
/// let words: u64 = steps[1].wait(std::time::Duration::from_secs(30)).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Chain {
    steps: Vec<NewJob>,
}

/// A chain of `steps`, in order (see [`Chain`]).
pub fn chain(steps: impl IntoIterator<Item = NewJob>) -> Chain {
    Chain {
        steps: steps.into_iter().collect(),
    }
}

impl Chain {
    /// Adds a step at the end.
    pub fn then(mut self, step: NewJob) -> Chain {
        self.steps.push(step);
        self
    }

    /// The number of steps.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether the chain has no steps.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
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

    /// Enqueues the steps of `chain` in one pipelined round trip: each step gets an id made here
    /// (unless it has one) and waits `AFTER` the previous step `WITHRESULTS`. The handles, in
    /// order; the last one's result is the chain's. If a step is refused, the steps before it
    /// stay enqueued (the first of them runs) and the error names the step.
    pub async fn chain(&self, chain: &Chain) -> Result<Vec<JobHandle>> {
        let mut pipe = redis::pipe();
        let mut previous: Option<String> = None;
        for step in &chain.steps {
            let mut step = step.clone();
            let id = match &step.options.id {
                Some(id) => id.clone(),
                None => uuid::Uuid::now_v7().to_string(),
            };
            step.options = step.options.id(id.clone());
            if let Some(parent) = previous.replace(id) {
                step.options = step.options.after(parent).with_results();
            }
            pipe.add_command(self.client.backend().command(
                "enqueue",
                Some(&self.name),
                &step.args(),
            ));
        }
        if chain.steps.is_empty() {
            return Ok(Vec::new());
        }
        let replies = self.client.pipeline(&pipe).await?;
        replies
            .into_iter()
            .enumerate()
            .map(|(i, reply)| {
                self.handle_from(reply).map_err(|e| match e {
                    Error::Server { code, message } => Error::Server {
                        code,
                        message: format!("chain step {}: {message}", i + 1),
                    },
                    other => other,
                })
            })
            .collect()
    }

    /// Waits up to `timeout` for every member of batch `id` to finish, calling `progress` with
    /// each new count; the batch's last known progress (check `done == total` to tell a finished
    /// batch from a timeout). Follows the queue's events (Pub/Sub) and re-reads `ZRQ.BATCHINFO`
    /// when members finish, and at least every second, as events can be missed; in a cluster it
    /// polls every 200 ms.
    pub async fn wait_batch(
        &self,
        id: &str,
        timeout: Duration,
        mut progress: impl FnMut(&BatchInfo),
    ) -> Result<BatchInfo> {
        use futures::StreamExt;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut messages = match self.client.pubsub().await? {
            Some(mut pubsub) => {
                let channel = zrq_core::keys::QueueKeys::new(&self.name).events();
                pubsub.subscribe(&channel).await.map_err(Error::Redis)?;
                Some(pubsub.into_on_message())
            }
            None => None,
        };
        let mut last_done = None;
        loop {
            // Subscribed first, read second: a member finishing in between is not missed.
            let info = self.batch_info(id).await?.ok_or_else(|| {
                Error::Config(format!("no batch '{id}' in queue '{}'", self.name))
            })?;
            if last_done != Some(info.done) {
                last_done = Some(info.done);
                progress(&info);
            }
            let now = tokio::time::Instant::now();
            if info.done >= info.total || now >= deadline {
                return Ok(info);
            }
            let pause = deadline.saturating_duration_since(now);
            let Some(stream) = messages.as_mut() else {
                tokio::time::sleep(pause.min(Duration::from_millis(200))).await;
                continue;
            };
            let until = now + pause.min(Duration::from_secs(1));
            loop {
                match tokio::time::timeout_at(until, stream.next()).await {
                    Err(_) => break,
                    Ok(None) => {
                        messages = None;
                        break;
                    }
                    Ok(Some(message)) => {
                        let text: String = message.get_payload().unwrap_or_default();
                        let state = text.split(' ').next().unwrap_or_default();
                        if crate::record::JobState::parse(state).is_finished() {
                            break;
                        }
                    }
                }
            }
        }
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

    /// Requeues one page of dead jobs (`ZRQ.REQUEUE … ALL`), oldest death first: at most `count`
    /// of them (`None`: the server's `zrq.requeue-max`) from `cursor` (start with `"0"`). Replies
    /// with the next cursor (`"0"` at the end) and how many were requeued.
    pub async fn requeue_all_page(
        &self,
        count: Option<usize>,
        cursor: &str,
    ) -> Result<(String, Count)> {
        let mut args = vec!["ALL".to_string(), "CURSOR".into(), cursor.into()];
        if let Some(count) = count {
            args.extend(["COUNT".into(), count.to_string()]);
        }
        let mut items = record::array(self.call("requeue", &args).await?)?.into_iter();
        match (items.next(), items.next().as_ref().and_then(int)) {
            (Some(next), Some(requeued)) => {
                Ok((text(&next).unwrap_or_else(|| "0".into()), requeued))
            }
            _ => Err(Error::Protocol("expected [cursor, requeued]".into())),
        }
    }

    /// Requeues every dead job, a page per call (each bounded by the server's
    /// `zrq.requeue-max`, so no call holds it long); how many. It stops at the end of the dead
    /// set, or once it has requeued as many jobs as were dead when it started: a job that dies
    /// again meanwhile (its worker still failing it) joins the end of the set and is not chased
    /// forever.
    pub async fn requeue_all(&self) -> Result<Count> {
        let budget = self.info().await?.get("dead");
        let (mut cursor, mut total) = ("0".to_string(), 0);
        loop {
            let (next, requeued) = self.requeue_all_page(None, &cursor).await?;
            total += requeued;
            if next == "0" || total >= budget {
                return Ok(total);
            }
            cursor = next;
        }
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
        let reply = self.call("batch", &batch.args()?).await?;
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

//! Consuming: [`Worker`] runs async handlers for the jobs of one or several queues.
//!
//! One fetcher per queue takes what is waiting in batches (`ZRQ.FETCH … COUNT n`), but only as
//! many jobs as the concurrency limit has room for: it holds a permit of the worker's semaphore
//! for each. It takes from the queues listed before its own first: earlier queues have priority.
//! When nothing is waiting it gives its permits back and waits for its queue on a connection of
//! its own (`ZRQ.FETCH … COUNT 1 BLOCK ms`), so fetchers of idle queues never keep slots from the
//! queues that have work. A job that blocking fetch returns takes a free slot; its lease is kept
//! alive while it waits for one, and if every slot stays busy for the block time it is given back
//! (`ZRQ.RELEASE`) for another worker, its attempt not counted. Each job runs in its own task, with
//! heartbeats (`ZRQ.TOUCH`) every third of its lease and at least every second, so a cancellation
//! reaches the handler within about a second; the lease is not a time limit: a handler runs as
//! long as it needs unless the worker was given a [`TimeLimit`]. The outcome is acknowledged
//! (`ZRQ.ACK … RESULT`) or reported (`ZRQ.FAIL`) on the shared multiplexed connection, where
//! concurrent replies are pipelined. Every command about a job carries its lease token (`LEASE`),
//! so a worker that lost a job's lease cannot complete or fail another worker's attempt. Expired
//! leases of dead workers are reclaimed (`ZRQ.RECLAIM`) periodically by each fetcher, before it
//! fetches, with the permits it holds (with the module, the server's timer usually got there
//! first).
//!
//! On shutdown the fetchers stop (a blocking fetch in progress finishes first, at most the block
//! time), jobs in flight get the grace period to finish, and whatever is still running then is
//! stopped and given back (`ZRQ.RELEASE`): it is pending again at once, for another worker, and
//! the attempt it was on does not count.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use redis::Value;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use zrq_core::reply::code;

use crate::client::{Client, Conn};
use crate::error::{Error, Result};
use crate::queue::Queue;
use crate::record::{self, JobRecord};
use crate::task::Task;

/// What a handler fails with: any error; its `Display` text is recorded on the job.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// What a handler returns.
pub type HandlerResult<T> = std::result::Result<T, HandlerError>;

type BoxFuture = Pin<Box<dyn Future<Output = HandlerResult<String>> + Send>>;
type Handler = Arc<dyn Fn(JobRecord, JobContext) -> BoxFuture + Send + Sync>;

struct ContextInner {
    job: JobRecord,
    queue: Queue,
    cancel: watch::Sender<bool>,
    touch_supported: std::sync::atomic::AtomicBool,
}

/// What a handler knows about its job and how it talks back: progress and cancellation.
#[derive(Clone)]
pub struct JobContext {
    inner: Arc<ContextInner>,
}

impl std::fmt::Debug for JobContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobContext")
            .field("id", &self.inner.job.id)
            .field("task", &self.inner.job.task)
            .finish()
    }
}

impl JobContext {
    fn new(job: JobRecord, queue: Queue) -> JobContext {
        let (cancel, _) = watch::channel(false);
        JobContext {
            inner: Arc::new(ContextInner {
                job,
                queue,
                cancel,
                touch_supported: std::sync::atomic::AtomicBool::new(true),
            }),
        }
    }

    /// The job id.
    pub fn id(&self) -> &str {
        &self.inner.job.id
    }

    /// This attempt's number (1 for the first).
    pub fn attempt(&self) -> i64 {
        self.inner.job.attempt
    }

    /// The job as it was fetched.
    pub fn job(&self) -> &JobRecord {
        &self.inner.job
    }

    /// The results of the job's parents by parent id (`null` for a parent that has not
    /// completed), for a job enqueued `AFTER … WITHRESULTS`, e.g. a step of a [`crate::chain`].
    pub fn parents(&self) -> Result<serde_json::Map<String, serde_json::Value>> {
        self.inner.job.parents()
    }

    /// The result of the job's one parent, deserialized: what a step of a [`crate::chain`]
    /// receives from the step before it. Fails with [`Error::Parents`] if the job has no parent
    /// results (not enqueued `AFTER … WITHRESULTS`) or several (use [`JobContext::parents`]).
    pub fn parent_result<T: DeserializeOwned>(&self) -> Result<T> {
        let parents = self.parents()?;
        let mut values = parents.into_iter();
        match (values.next(), values.next()) {
            (Some((_, value)), None) => Ok(serde_json::from_value(value)?),
            (None, _) => Err(Error::Parents(format!(
                "job {} has no parent results (enqueue it AFTER a parent, WITHRESULTS)",
                self.id()
            ))),
            (Some(_), Some(_)) => Err(Error::Parents(format!(
                "job {} has several parents: read their results with parents()",
                self.id()
            ))),
        }
    }

    /// Reports progress (0-100) and extends the lease (`ZRQ.TOUCH … PROGRESS`).
    pub async fn progress(&self, percent: u8) -> Result<()> {
        self.touch(Some(percent.min(100))).await
    }

    /// Extends the lease now (the worker also does so on its own every third of the timeout, and
    /// at least every second).
    pub async fn heartbeat(&self) -> Result<()> {
        self.touch(None).await
    }

    async fn touch(&self, progress: Option<u8>) -> Result<()> {
        if !self.inner.touch_supported.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut args = vec![self.inner.job.id.clone()];
        if let Some(p) = progress {
            args.extend(["PROGRESS".to_string(), p.to_string()]);
        }
        if let Some(lease) = &self.inner.job.lease {
            args.extend(["LEASE".to_string(), lease.clone()]);
        }
        match self.inner.queue.call("touch", &args).await {
            Ok(reply) => {
                match record::int(&reply) {
                    Some(code::DONE) => {}
                    Some(code::CANCELLED) => {
                        tracing::info!(id = %self.id(), "cancellation requested");
                        self.inner.cancel.send_replace(true);
                    }
                    _ => {
                        tracing::warn!(id = %self.id(), "lease lost: the job is no longer ours");
                        self.inner.cancel.send_replace(true);
                    }
                }
                Ok(())
            }
            Err(e) if e.is_unknown_command() => {
                tracing::debug!("the server has no ZRQ.TOUCH: heartbeats off");
                self.inner.touch_supported.store(false, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the job should stop: cancellation was requested (`ZRQ.CANCEL`), or the lease was
    /// lost. Learned at heartbeats and progress reports.
    pub fn is_cancelled(&self) -> bool {
        *self.inner.cancel.borrow()
    }

    /// Resolves once [`JobContext::is_cancelled`] turns true; `select!` on it beside the work.
    pub async fn cancelled(&self) {
        let mut rx = self.inner.cancel.subscribe();
        // The sender lives as long as `self`, so this only ends when the flag is set.
        let _ = rx.wait_for(|c| *c).await;
    }
}

/// How long one attempt of a job may run before the worker stops it and reports
/// `timed out after … ms` with `ZRQ.FAIL`. The lease (the job's `timeout`) is not a time limit:
/// heartbeats keep it alive for as long as the handler runs, unless a limit is set here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeLimit {
    /// No limit — the default; heartbeats keep the lease alive for as long as the handler runs.
    #[default]
    Unlimited,
    /// This long, for every job; heartbeats keep the lease alive meanwhile.
    Fixed(Duration),
    /// The job's own `timeout` (its lease length), for handlers that should never outlive one
    /// lease.
    JobTimeout,
}

impl TimeLimit {
    fn for_job(self, job_timeout: Duration) -> Option<Duration> {
        match self {
            TimeLimit::JobTimeout => Some(job_timeout),
            TimeLimit::Fixed(limit) => Some(limit),
            TimeLimit::Unlimited => None,
        }
    }
}

/// Counts of what a worker did, returned when it stops.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WorkerStats {
    /// Jobs acknowledged.
    pub completed: u64,
    /// Jobs reported failed (errors, panics, timeouts, unknown tasks).
    pub failed: u64,
    /// Jobs still running (or fetched but not started) when the grace period ended: stopped and
    /// given back to their queue (`ZRQ.RELEASE`), pending again without having used an attempt.
    pub abandoned: u64,
}

#[derive(Default)]
struct Counters {
    completed: AtomicU64,
    failed: AtomicU64,
}

/// Runs handlers for the jobs of one or several queues.
///
/// ```no_run
/// # async fn demo() -> zrq::Result<()> {
/// let client = zrq::Client::connect("redis://127.0.0.1:6390").await?;
/// zrq::Worker::new(client, &["emails"])
///     .concurrency(100)
///     .handle_raw("send", |args: serde_json::Value, _ctx| async move { Ok(args) })
///     .run()
///     .await?;
/// # Ok(()) }
/// ```
pub struct Worker {
    client: Client,
    queues: Vec<String>,
    handlers: HashMap<String, Handler>,
    concurrency: usize,
    batch: usize,
    block: Duration,
    reclaim_interval: Duration,
    grace: Duration,
    time_limit: TimeLimit,
    consumer: String,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("queues", &self.queues)
            .field("tasks", &self.handlers.keys().collect::<Vec<_>>())
            .field("concurrency", &self.concurrency)
            .field("consumer", &self.consumer)
            .finish()
    }
}

/// A consumer name unique to this process: `<host>-<pid>-<random>`.
fn consumer_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into());
    let random = uuid::Uuid::now_v7().simple().to_string();
    let tail = &random[random.len() - 8..];
    format!("{host}-{}-{tail}", std::process::id())
}

impl Worker {
    /// A worker for `queues`, in priority order (earlier first). Defaults: concurrency 32,
    /// batches of up to 16, block 1 s, reclaim every 5 s, grace 30 s.
    pub fn new(client: Client, queues: &[&str]) -> Worker {
        Worker {
            client,
            queues: queues.iter().map(|q| q.to_string()).collect(),
            handlers: HashMap::new(),
            concurrency: 32,
            batch: 16,
            block: Duration::from_secs(1),
            reclaim_interval: Duration::from_secs(5),
            grace: Duration::from_secs(30),
            time_limit: TimeLimit::Unlimited,
            consumer: consumer_name(),
        }
    }

    /// Runs at most `n` jobs at once.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Fetches at most `n` jobs per round trip.
    pub fn batch(mut self, n: usize) -> Self {
        self.batch = n.max(1);
        self
    }

    /// How long one blocking fetch waits inside Redis (bounds how long shutdown waits for it), and
    /// how long the job it returns waits for a free slot before it is given back.
    pub fn block(mut self, block: Duration) -> Self {
        self.block = block.max(Duration::from_millis(10));
        self
    }

    /// How often expired leases of other (dead) workers are reclaimed.
    pub fn reclaim_interval(mut self, every: Duration) -> Self {
        self.reclaim_interval = every.max(Duration::from_millis(10));
        self
    }

    /// How long shutdown waits for jobs in flight before stopping them and giving them back.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// How long one attempt may run (default: no limit; the lease is kept alive by heartbeats).
    pub fn time_limit(mut self, limit: TimeLimit) -> Self {
        self.time_limit = limit;
        self
    }

    /// The consumer name the server records on jobs this worker holds.
    pub fn consumer(mut self, name: impl Into<String>) -> Self {
        self.consumer = name.into();
        self
    }

    /// The consumer name.
    pub fn consumer_id(&self) -> &str {
        &self.consumer
    }

    /// Registers the handler of the typed task `T`.
    pub fn handle<T, F, Fut>(mut self, handler: F) -> Self
    where
        T: Task,
        F: Fn(T::Args, JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult<T::Output>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let erased: Handler = Arc::new(move |job: JobRecord, ctx: JobContext| {
            let handler = handler.clone();
            Box::pin(async move {
                let args: T::Args = serde_json::from_str(&job.payload)
                    .map_err(|e| format!("arguments of task '{}': {e}", T::NAME))?;
                let output = handler(args, ctx).await?;
                Ok(serde_json::to_string(&output)?)
            }) as BoxFuture
        });
        self.handlers.insert(T::NAME.to_string(), erased);
        self
    }

    /// Registers a handler for task `name` taking and returning any JSON (any serializable value).
    pub fn handle_raw<F, Fut, A, O>(mut self, name: &str, handler: F) -> Self
    where
        F: Fn(A, JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult<O>> + Send + 'static,
        A: DeserializeOwned + Send + 'static,
        O: Serialize + Send + 'static,
    {
        let handler = Arc::new(handler);
        let task = name.to_string();
        let erased: Handler = Arc::new(move |job: JobRecord, ctx: JobContext| {
            let handler = handler.clone();
            let task = task.clone();
            Box::pin(async move {
                let args: A = serde_json::from_str(&job.payload)
                    .map_err(|e| format!("arguments of task '{task}': {e}"))?;
                let output = handler(args, ctx).await?;
                Ok(serde_json::to_string(&output)?)
            }) as BoxFuture
        });
        self.handlers.insert(name.to_string(), erased);
        self
    }

    /// Runs until SIGINT or SIGTERM, then shuts down gracefully.
    pub async fn run(self) -> Result<WorkerStats> {
        self.run_until(shutdown_signal()).await
    }

    /// Runs until `shutdown` resolves, then shuts down gracefully.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> Result<WorkerStats> {
        if self.queues.is_empty() {
            return Err(Error::Config("a worker needs at least one queue".into()));
        }
        let semaphore = Arc::new(Semaphore::new(self.concurrency));
        let shared = Arc::new(Shared {
            client: self.client.clone(),
            handlers: self.handlers,
            consumer: self.consumer.clone(),
            time_limit: self.time_limit,
            counters: Counters::default(),
            slots: semaphore.clone(),
            slot_patience: self.block,
            held: std::sync::Mutex::new(HashMap::new()),
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let (job_tx, mut job_rx) = mpsc::unbounded_channel::<Dispatch>();
        let mut fetchers = JoinSet::new();
        for index in 0..self.queues.len() {
            fetchers.spawn(fetcher(FetchLoop {
                shared: shared.clone(),
                queues: self.queues.clone(),
                index,
                semaphore: semaphore.clone(),
                batch: self.batch,
                block: self.block,
                reclaim_interval: self.reclaim_interval,
                jobs: job_tx.clone(),
                stop: stop_rx.clone(),
            }));
        }
        drop(job_tx);
        tracing::info!(
            consumer = %self.consumer,
            queues = ?self.queues,
            concurrency = self.concurrency,
            "worker started"
        );

        let mut running: JoinSet<()> = JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                Some(dispatch) = job_rx.recv() => start(&mut running, &shared, dispatch),
                Some(_) = running.join_next(), if !running.is_empty() => {}
            }
        }

        tracing::info!(in_flight = running.len(), "shutting down: no new fetches");
        stop_tx.send_replace(true);
        let deadline = Instant::now() + self.grace;
        let mut channel_open = true;
        loop {
            if !channel_open && running.is_empty() {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => break,
                message = job_rx.recv(), if channel_open => match message {
                    Some(dispatch) => start(&mut running, &shared, dispatch),
                    None => channel_open = false,
                },
                Some(_) = running.join_next(), if !running.is_empty() => {}
            }
        }
        running.shutdown().await;
        fetchers.shutdown().await;
        // Jobs fetched but never started are held too.
        while let Ok(dispatch) = job_rx.try_recv() {
            shared.hold(&dispatch.queue, &dispatch.job);
        }
        let abandoned = give_back(&shared).await;
        if abandoned > 0 {
            tracing::warn!(
                abandoned,
                "grace period over: unfinished jobs stopped and given back to their queues"
            );
        }
        let stats = WorkerStats {
            completed: shared.counters.completed.load(Ordering::Relaxed),
            failed: shared.counters.failed.load(Ordering::Relaxed),
            abandoned,
        };
        tracing::info!(?stats, "worker stopped");
        Ok(stats)
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

struct Shared {
    client: Client,
    handlers: HashMap<String, Handler>,
    consumer: String,
    time_limit: TimeLimit,
    counters: Counters,
    /// One permit per job that may run at once (the worker's concurrency).
    slots: Arc<Semaphore>,
    /// How long a job returned by a blocking fetch waits for a free slot before it is given back.
    slot_patience: Duration,
    /// The jobs this worker holds and has not reported on: (queue, id) → lease token.
    held: std::sync::Mutex<HashMap<(String, String), Option<String>>>,
}

impl Shared {
    /// Notes that this worker holds `job` of `queue` until [`Shared::drop_hold`].
    fn hold(&self, queue: &str, job: &JobRecord) {
        if let Ok(mut held) = self.held.lock() {
            held.insert((queue.to_string(), job.id.clone()), job.lease.clone());
        }
    }

    /// Forgets a job once its outcome was reported.
    fn drop_hold(&self, queue: &str, id: &str) {
        if let Ok(mut held) = self.held.lock() {
            held.remove(&(queue.to_string(), id.to_string()));
        }
    }
}

/// Gives back every job still held, once their tasks are stopped (see [`release`]). Returns how
/// many were held.
async fn give_back(shared: &Shared) -> u64 {
    let held: Vec<((String, String), Option<String>)> = match shared.held.lock() {
        Ok(mut held) => held.drain().collect(),
        Err(_) => Vec::new(),
    };
    for ((queue, id), lease) in &held {
        release(&shared.client.queue(queue), id, lease.as_deref()).await;
    }
    held.len() as u64
}

/// Gives a job back (`ZRQ.RELEASE … LEASE`): it is pending again at once and its attempt does not
/// count. A job reported on meanwhile (its lease over) is left alone by the server.
async fn release(queue: &Queue, id: &str, lease: Option<&str>) {
    let mut args = vec![id];
    if let Some(lease) = lease {
        args.extend(["LEASE", lease]);
    }
    match finish(queue, "release", &args, Duration::from_secs(5)).await {
        Ok(reply) => {
            tracing::info!(queue = %queue.name(), id = %id, released = ?record::int(&reply), "job given back")
        }
        Err(e) => {
            tracing::warn!(queue = %queue.name(), id = %id, error = %e, "RELEASE failed: the job waits for its lease to expire")
        }
    }
}

/// A fetched job and the concurrency permit it runs under: none yet for a job that a blocking
/// fetch returned, which takes a slot when one is free.
struct Dispatch {
    queue: String,
    job: JobRecord,
    permit: Option<OwnedSemaphorePermit>,
}

struct FetchLoop {
    shared: Arc<Shared>,
    queues: Vec<String>,
    index: usize,
    semaphore: Arc<Semaphore>,
    batch: usize,
    block: Duration,
    reclaim_interval: Duration,
    jobs: mpsc::UnboundedSender<Dispatch>,
    stop: watch::Receiver<bool>,
}

/// Pause after a failed round trip: grows from 50 ms to 2 s while failures continue.
struct Backoff(Duration);

impl Backoff {
    fn new() -> Backoff {
        Backoff(Duration::from_millis(50))
    }

    fn reset(&mut self) {
        self.0 = Duration::from_millis(50);
    }

    /// Sleeps, unless `stop` is set first; false if stopping.
    async fn wait(&mut self, stop: &mut watch::Receiver<bool>) -> bool {
        let pause = self.0;
        self.0 = (self.0 * 2).min(Duration::from_secs(2));
        let slept = tokio::select! {
            () = tokio::time::sleep(pause) => true,
            _ = stop.wait_for(|s| *s) => false,
        };
        slept && !*stop.borrow()
    }
}

async fn acquire(
    semaphore: &Arc<Semaphore>,
    batch: usize,
    stop: &mut watch::Receiver<bool>,
) -> Option<OwnedSemaphorePermit> {
    let mut permits = tokio::select! {
        permit = semaphore.clone().acquire_owned() => permit.ok()?,
        _ = stop.wait_for(|s| *s) => return None,
    };
    let extra = semaphore.available_permits().min(batch.saturating_sub(1));
    if extra > 0 {
        if let Ok(more) = semaphore.clone().try_acquire_many_owned(extra as u32) {
            permits.merge(more);
        }
    }
    Some(permits)
}

async fn fetcher(mut f: FetchLoop) {
    let own = f.queues[f.index].clone();
    let mut conn: Option<Conn> = None;
    let mut backoff = Backoff::new();
    let mut next_reclaim = Instant::now() + f.reclaim_interval;
    loop {
        if *f.stop.borrow() {
            return;
        }
        let Some(mut permits) = acquire(&f.semaphore, f.batch, &mut f.stop).await else {
            return;
        };
        let room = permits.num_permits();
        let taken = if Instant::now() >= next_reclaim {
            next_reclaim = Instant::now() + f.reclaim_interval;
            match reclaim(&f, &own, room).await {
                Ok(jobs) if jobs.is_empty() => take_waiting(&f, &own, room).await,
                other => other,
            }
        } else {
            take_waiting(&f, &own, room).await
        };
        let result = match taken {
            Ok(batch) if !batch.is_empty() => {
                for (queue, job) in batch {
                    let Some(permit) = permits.split(1) else {
                        break;
                    };
                    let _ = f.jobs.send(Dispatch {
                        queue,
                        job,
                        permit: Some(permit),
                    });
                }
                Ok(())
            }
            Ok(_) => {
                // Nothing is waiting: block on our own queue holding no permit, so the fetchers of
                // idle queues leave every slot to the queues that have work. A job that arrives
                // meanwhile takes a slot when one is free (see `run_job`).
                drop(permits);
                wait_own(&f, &own, &mut conn).await.map(|jobs| {
                    for (queue, job) in jobs {
                        let _ = f.jobs.send(Dispatch {
                            queue,
                            job,
                            permit: None,
                        });
                    }
                })
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => backoff.reset(),
            Err(e) => {
                if e.is_connection() {
                    conn = None;
                }
                // A vanished Functions library is loaded again before the next try.
                f.shared.client.restore_library(&e).await;
                tracing::warn!(queue = %own, error = %e, "fetch failed; retrying");
                if !backoff.wait(&mut f.stop).await {
                    return;
                }
            }
        }
    }
}

/// Takes what is waiting, without blocking, up to `room` jobs: from the queues listed before ours
/// first (they have priority), then from our own.
async fn take_waiting(f: &FetchLoop, own: &str, room: usize) -> Result<Vec<(String, JobRecord)>> {
    let client = &f.shared.client;
    let mut got = Vec::new();
    for queue in f.queues[..f.index].iter().map(String::as_str).chain([own]) {
        if got.len() >= room {
            break;
        }
        let count = (room - got.len()).to_string();
        let reply = client
            .call(
                "fetch",
                Some(queue),
                &[f.shared.consumer.as_str(), "COUNT", &count],
            )
            .await?;
        got.extend(
            JobRecord::list(reply)?
                .into_iter()
                .map(|j| (queue.to_string(), j)),
        );
    }
    Ok(got)
}

/// Waits up to the block time for our own queue, on the fetcher's own connection. With the
/// module, a blocking `FETCH … COUNT 1` that returns the job it waited for; with the Functions
/// library, which cannot block, a `BLPOP` on the queue's wake key, after which the caller fetches.
async fn wait_own(
    f: &FetchLoop,
    own: &str,
    conn: &mut Option<Conn>,
) -> Result<Vec<(String, JobRecord)>> {
    let client = &f.shared.client;
    let conn = match conn {
        Some(conn) => conn,
        None => conn.insert(client.dedicated(f.block).await?),
    };
    let backend = client.backend();
    if !backend.blocks_server_side() {
        let _: Value = redis::cmd("BLPOP")
            .arg(backend.wake_key(own))
            .arg(f.block.as_secs_f64())
            .query_async(conn)
            .await
            .map_err(Error::from_redis)?;
        return Ok(Vec::new());
    }
    let block = f.block.as_millis().to_string();
    let cmd = backend.command(
        "fetch",
        Some(own),
        &[f.shared.consumer.as_str(), "COUNT", "1", "BLOCK", &block],
    );
    let reply: Value = cmd.query_async(conn).await.map_err(Error::from_redis)?;
    Ok(JobRecord::list(reply)?
        .into_iter()
        .map(|j| (own.to_string(), j))
        .collect())
}

/// Takes over jobs of `queue` whose lease expired (their worker died), as many as `room`.
async fn reclaim(f: &FetchLoop, queue: &str, room: usize) -> Result<Vec<(String, JobRecord)>> {
    let count = room.to_string();
    let reply = f
        .shared
        .client
        .call(
            "reclaim",
            Some(queue),
            &[f.shared.consumer.as_str(), "COUNT", &count],
        )
        .await?;
    let jobs = JobRecord::list(reply)?;
    for job in &jobs {
        tracing::info!(queue = %queue, id = %job.id, attempt = job.attempt, "reclaimed an expired lease");
    }
    Ok(jobs.into_iter().map(|j| (queue.to_string(), j)).collect())
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".into()
    }
}

/// Longest time between two heartbeats: a cancellation (learned from TOUCH) reaches the handler
/// within about this long, whatever the lease.
const HEARTBEAT_AT_LEAST_EVERY: Duration = Duration::from_secs(1);

/// How often a job with this lease sends heartbeats: three times per lease, and at least every
/// second.
fn heartbeat_interval(lease: Duration) -> Duration {
    (lease / 3).clamp(Duration::from_millis(10), HEARTBEAT_AT_LEAST_EVERY)
}

/// Heartbeats every `every` until dropped (never returns).
async fn heartbeats(ctx: JobContext, every: Duration) {
    let mut tick = tokio::time::interval_at(Instant::now() + every, every);
    loop {
        tick.tick().await;
        if let Err(e) = ctx.heartbeat().await {
            tracing::debug!(id = %ctx.id(), error = %e, "heartbeat failed");
        }
    }
}

/// The delivery a job runs under: what ACK and FAIL report about.
struct Delivery {
    id: String,
    task: String,
    attempt: i64,
    lease: Option<String>,
}

impl Delivery {
    fn of(job: &JobRecord) -> Delivery {
        Delivery {
            id: job.id.clone(),
            task: job.task.clone(),
            attempt: job.attempt,
            lease: job.lease.clone(),
        }
    }

    /// The job id, `rest`, then the lease token (`LEASE <token>`) when the server gave one: a
    /// worker whose lease was taken over gets "not active" instead of acting on another attempt.
    fn args<'a>(&'a self, rest: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![self.id.as_str()];
        args.extend_from_slice(rest);
        if let Some(lease) = &self.lease {
            args.extend(["LEASE", lease.as_str()]);
        }
        args
    }
}

/// Starts a fetched job in a task of its own; the worker holds it until its outcome is reported.
fn start(running: &mut JoinSet<()>, shared: &Arc<Shared>, dispatch: Dispatch) {
    shared.hold(&dispatch.queue, &dispatch.job);
    running.spawn(run_job(shared.clone(), dispatch));
}

async fn run_job(shared: Arc<Shared>, dispatch: Dispatch) {
    let Dispatch { queue, job, permit } = dispatch;
    let queue = shared.client.queue(&queue);
    let delivery = Delivery::of(&job);
    let permit = match permit {
        Some(permit) => Some(permit),
        None => wait_for_slot(&shared, &queue, &job).await,
    };
    match permit {
        Some(_permit) => report(&shared, &queue, &delivery, job).await,
        // Every slot stayed busy: another worker may run it now.
        None => release(&queue, &delivery.id, delivery.lease.as_deref()).await,
    }
    shared.drop_hold(queue.name(), &delivery.id);
}

/// A free slot for `job`, which a blocking fetch returned, within the worker's patience (its block
/// time); its lease is kept alive meanwhile. None when every slot stayed busy.
async fn wait_for_slot(
    shared: &Shared,
    queue: &Queue,
    job: &JobRecord,
) -> Option<OwnedSemaphorePermit> {
    let lease = Duration::from_millis(job.timeout.max(1) as u64);
    let ctx = JobContext::new(job.clone(), queue.clone());
    tokio::select! {
        permit = shared.slots.clone().acquire_owned() => permit.ok(),
        () = tokio::time::sleep(shared.slot_patience) => None,
        () = heartbeats(ctx, heartbeat_interval(lease)) => None,
    }
}

/// Runs the job's handler and reports its outcome (ACK or FAIL).
async fn report(shared: &Arc<Shared>, queue: &Queue, delivery: &Delivery, job: JobRecord) {
    let Delivery { id, task, .. } = delivery;
    let lease = Duration::from_millis(job.timeout.max(1) as u64);
    let limit = shared.time_limit.for_job(lease);
    let Some(handler) = shared.handlers.get(task).cloned() else {
        let mut known: Vec<&str> = shared.handlers.keys().map(String::as_str).collect();
        known.sort_unstable();
        let error = format!(
            "unknown task '{task}': this worker handles {}",
            if known.is_empty() {
                "no tasks".to_string()
            } else {
                known.join(", ")
            }
        );
        report_failure(shared, queue, delivery, &error).await;
        return;
    };
    let ctx = JobContext::new(job.clone(), queue.clone());
    let work = AssertUnwindSafe(handler(job, ctx.clone())).catch_unwind();
    let limited = async move {
        match limit {
            Some(limit) => tokio::time::timeout(limit, work).await.map_err(|_| limit),
            None => Ok(work.await),
        }
    };
    let outcome = tokio::select! {
        outcome = limited => outcome,
        () = heartbeats(ctx.clone(), heartbeat_interval(lease)) => return,
    };
    match outcome {
        Ok(Ok(Ok(result))) => {
            let args = delivery.args(&["RESULT", &result]);
            let reply = finish(queue, "ack", &args, lease).await;
            match reply.as_ref().map(record::int) {
                Ok(Some(code::DONE)) => {
                    shared.counters.completed.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(queue = %queue.name(), task = %task, id = %id, "job completed");
                }
                Ok(Some(code::CANCELLED)) => {
                    tracing::info!(queue = %queue.name(), task = %task, id = %id, "job finished after its cancellation: cancelled")
                }
                Ok(_) => {
                    tracing::warn!(queue = %queue.name(), task = %task, id = %id, "ACK refused: the job was no longer active (lease lost)")
                }
                Err(e) => {
                    tracing::error!(queue = %queue.name(), task = %task, id = %id, error = %e, "ACK failed")
                }
            }
        }
        Ok(Ok(Err(error))) => report_failure(shared, queue, delivery, &error.to_string()).await,
        Ok(Err(panic)) => {
            let error = format!("panicked: {}", panic_message(panic.as_ref()));
            report_failure(shared, queue, delivery, &error).await
        }
        Err(limit) => {
            let error = format!("timed out after {} ms", limit.as_millis());
            report_failure(shared, queue, delivery, &error).await
        }
    }
}

async fn report_failure(shared: &Shared, queue: &Queue, delivery: &Delivery, error: &str) {
    shared.counters.failed.fetch_add(1, Ordering::Relaxed);
    let args = delivery.args(&[error]);
    let reply = finish(queue, "fail", &args, Duration::from_secs(30)).await;
    let next = match &reply {
        Ok(v) => record::text(v).unwrap_or_else(|| "not active".into()),
        Err(e) => format!("unreported ({e})"),
    };
    tracing::warn!(
        queue = %queue.name(),
        task = %delivery.task,
        id = %delivery.id,
        attempt = delivery.attempt,
        error = %error,
        next = %next,
        "job failed"
    );
}

/// Sends ACK or FAIL, retrying through connection failures (a Redis restart) for up to `patience`.
async fn finish(queue: &Queue, command: &str, args: &[&str], patience: Duration) -> Result<Value> {
    let deadline = Instant::now() + patience.max(Duration::from_secs(10));
    let mut pause = Duration::from_millis(50);
    loop {
        match queue.call(command, args).await {
            Err(e) if e.is_connection() && Instant::now() + pause < deadline => {
                tracing::debug!(error = %e, "{command} failed; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            other => return other,
        }
    }
}

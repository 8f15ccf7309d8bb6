//! The dashboard's read-only JSON views. Each costs what it shows: one zrq command per queue
//! listed, one page of one state per job list, a bounded number of reads per worker view.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use redis::Value;
use serde::{Deserialize, Serialize};
use zrq::record::{int, map, text};
use zrq::{BatchInfo, Client, JobRecord, QueueInfo};
use zrq_core::keys::{self, QueueKeys};

use super::{ApiError, ApiResult, App, Shared};

/// Most jobs one list page may show (the page asks for fewer by default).
const MAX_PAGE: usize = 100;
/// Most jobs one filtered page reads looking for matches (by task name or worker, which no index
/// serves): up to five `ZRQ.LIST` pages of [`MAX_PAGE`], however large the queue.
pub const FILTER_SCAN: usize = 500;
/// Running jobs shown per queue on the workers page.
const HELD_SHOWN: usize = 200;

/// `GET /api/overview`: every queue's counts, totals, oldest pending age and paused flag.
pub async fn overview(State(app): State<Shared>, headers: HeaderMap) -> ApiResult<Vec<QueueInfo>> {
    app.auth.check_read(&headers)?;
    Ok(Json(queue_infos(&app).await?))
}

/// `ZRQ.INFO` of every queue (shared with `/metrics`).
pub(super) async fn queue_infos(app: &App) -> Result<Vec<QueueInfo>, zrq::Error> {
    let mut infos = Vec::new();
    for name in app.queues.fresh().await? {
        infos.push(app.client.queue(&name).info().await?);
    }
    Ok(infos)
}

/// The query of `GET /api/queues/{queue}/jobs`.
#[derive(Deserialize)]
pub struct JobsQuery {
    /// The state listed (default `pending`).
    state: Option<String>,
    /// The page cursor (default `0`, the first page).
    cursor: Option<String>,
    /// Jobs shown per page (default 20, at most [`MAX_PAGE`]).
    count: Option<usize>,
    /// Show only the jobs of this task.
    task: Option<String>,
    /// Show only the jobs this worker holds or last held.
    worker: Option<String>,
}

/// A filter's value; `None` when absent or empty (which passes everything).
fn given(filter: &Option<String>) -> Option<&str> {
    filter.as_deref().filter(|v| !v.is_empty())
}

impl JobsQuery {
    /// Whether `job` passes the filters.
    fn wanted(&self, job: &JobRecord) -> bool {
        given(&self.task).is_none_or(|t| job.task == t)
            && given(&self.worker).is_none_or(|w| job.consumer.as_deref() == Some(w))
    }

    /// Whether a filter is set.
    fn filtering(&self) -> bool {
        given(&self.task).is_some() || given(&self.worker).is_some()
    }
}

/// One page of a job list.
#[derive(Serialize)]
pub struct JobsPage {
    /// The cursor of the next page; `"0"` after the last.
    cursor: String,
    /// How many jobs were read for this page (the filters apply to these).
    read: usize,
    /// The most a filtered page reads ([`FILTER_SCAN`]), for the page to say so.
    scan_limit: usize,
    /// The jobs read that pass the filters.
    jobs: Vec<JobRecord>,
}

/// `GET /api/queues/{queue}/jobs?state=&cursor=&count=&task=&worker=`: one page of `ZRQ.LIST`.
///
/// No index serves the task and worker filters, so a filtered page reads on through the list,
/// `ZRQ.LIST` page after page, until it has `count` matches, reaches the end, or has read
/// [`FILTER_SCAN`] jobs: its cost is bounded whatever the queue's size. It may show fewer
/// matches than asked (the next page goes on from where it stopped) or more (the matches of the
/// last page read, at most [`MAX_PAGE`]: a page cannot be resumed half-way).
pub async fn jobs(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path(queue): Path<String>,
    Query(query): Query<JobsQuery>,
) -> ApiResult<JobsPage> {
    app.auth.check_read(&headers)?;
    let state = query.state.as_deref().unwrap_or("pending");
    let count = query.count.unwrap_or(20).clamp(1, MAX_PAGE);
    let queue = app.client.queue(&queue);
    let mut cursor = query.cursor.clone().unwrap_or_else(|| "0".into());
    if !query.filtering() {
        let page = queue.list(state, count, &cursor).await?;
        return Ok(Json(JobsPage {
            cursor: page.cursor,
            read: page.jobs.len(),
            scan_limit: FILTER_SCAN,
            jobs: page.jobs,
        }));
    }
    let (mut read, mut jobs) = (0, Vec::new());
    // At most FILTER_SCAN / MAX_PAGE reads, even if a page came back short.
    for _ in 0..FILTER_SCAN.div_ceil(MAX_PAGE) {
        let page = queue
            .list(state, MAX_PAGE.min(FILTER_SCAN - read), &cursor)
            .await?;
        read += page.jobs.len();
        jobs.extend(page.jobs.into_iter().filter(|j| query.wanted(j)));
        cursor = page.cursor;
        if cursor == "0" || jobs.len() >= count || read >= FILTER_SCAN {
            break;
        }
    }
    Ok(Json(JobsPage {
        cursor,
        read,
        scan_limit: FILTER_SCAN,
        jobs,
    }))
}

/// A job with what surrounds it.
#[derive(Serialize)]
pub struct JobView {
    /// The job record.
    job: JobRecord,
    /// Its batch's progress, when it belongs to one.
    batch: Option<BatchInfo>,
}

/// `GET /api/queues/{queue}/jobs/{id}`: `ZRQ.JOB`, and `ZRQ.BATCHINFO` for a batch member.
pub async fn job(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path((queue, id)): Path<(String, String)>,
) -> ApiResult<JobView> {
    app.auth.check_read(&headers)?;
    let queue = app.client.queue(&queue);
    let job = match queue.job(&id).record().await {
        Ok(job) => job,
        Err(e @ zrq::Error::NoJob { .. }) => {
            return Err(ApiError::new(StatusCode::NOT_FOUND, e.to_string()))
        }
        Err(e) => return Err(e.into()),
    };
    let batch = match job.extra.get("batch") {
        Some(batch) => queue.batch_info(batch).await?,
        None => None,
    };
    Ok(Json(JobView { job, batch }))
}

/// `GET /api/find/{id}`: the queue that has job `id` (`ZRQ.STATE` on each queue).
pub async fn find(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<serde_json::Value> {
    app.auth.check_read(&headers)?;
    for name in app.queues.fresh().await? {
        if app.client.queue(&name).job(&id).state().await?.is_some() {
            return Ok(Json(serde_json::json!({ "queue": name, "id": id })));
        }
    }
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no job '{id}' in any queue"),
    ))
}

/// A worker (a consumer of the queue's group) and what it holds.
#[derive(Serialize, Default)]
pub struct WorkerView {
    /// The consumer name the worker fetches with.
    name: String,
    /// Milliseconds since it last fetched (the least over the queue's streams).
    pub idle_ms: i64,
    /// The running jobs it holds: the jobs listed below, or its pending entries if more (FETCH
    /// delivers without acknowledgement, so only jobs an older zrq delivered are pending entries;
    /// the list stops at [`HELD_SHOWN`] jobs per queue).
    pub pending: i64,
    /// The running jobs it holds (of those shown).
    jobs: Vec<HeldJob>,
}

/// A running job as the workers page shows it.
#[derive(Serialize)]
pub struct HeldJob {
    id: String,
    task: String,
    /// When the attempt started (unix ms).
    started_at: Option<i64>,
    /// The last heartbeat (unix ms): the lease deadline minus the lease, as FETCH and TOUCH set
    /// the deadline to "now + timeout".
    heartbeat_at: Option<i64>,
    progress: Option<String>,
}

/// A queue's workers.
#[derive(Serialize)]
pub struct QueueWorkers {
    queue: String,
    /// Its workers: the consumers of its group and the holders of its running jobs.
    pub workers: Vec<WorkerView>,
    /// Whether the queue runs more jobs than were read ([`HELD_SHOWN`]).
    more_running: bool,
}

/// `GET /api/workers`: per queue, the consumers of its group (`XINFO CONSUMERS` on each of its
/// streams) and the running jobs each holds (a page of `ZRQ.LIST active`, with the lease deadlines
/// from one `ZMSCORE`).
pub async fn workers(
    State(app): State<Shared>,
    headers: HeaderMap,
) -> ApiResult<Vec<QueueWorkers>> {
    app.auth.check_read(&headers)?;
    let mut all = Vec::new();
    for name in app.queues.fresh().await? {
        all.push(queue_workers(&app.client, &name).await?);
    }
    Ok(Json(all))
}

pub(crate) async fn queue_workers(
    client: &Client,
    queue: &str,
) -> Result<QueueWorkers, zrq::Error> {
    let mut workers: BTreeMap<String, WorkerView> = consumers(client, queue)
        .await?
        .into_iter()
        .map(|w| (w.name.clone(), w))
        .collect();
    let page = client.queue(queue).list("active", HELD_SHOWN, "0").await?;
    let deadlines = lease_deadlines(client, queue, &page.jobs).await?;
    for (job, deadline) in page.jobs.iter().zip(deadlines) {
        let Some(consumer) = &job.consumer else {
            continue;
        };
        let worker = workers
            .entry(consumer.clone())
            .or_insert_with(|| WorkerView {
                name: consumer.clone(),
                ..WorkerView::default()
            });
        worker.jobs.push(HeldJob {
            id: job.id.clone(),
            task: job.task.clone(),
            started_at: job.started_at,
            heartbeat_at: deadline.map(|d| d - job.timeout),
            progress: job.extra.get("progress").cloned(),
        });
    }
    for worker in workers.values_mut() {
        worker.pending = worker.pending.max(worker.jobs.len() as i64);
    }
    Ok(QueueWorkers {
        queue: queue.to_string(),
        workers: workers.into_values().collect(),
        more_running: !page.is_last(),
    })
}

/// The consumers of `queue`'s group, merged over its streams (a worker appears on each stream it
/// fetched from). Ten `XINFO CONSUMERS`, whatever the queue's size.
pub async fn consumers(client: &Client, queue: &str) -> Result<Vec<WorkerView>, zrq::Error> {
    let queue_keys = QueueKeys::new(queue);
    let streams = (0..=keys::MAX_PRIORITY).map(|p| queue_keys.stream_at(p));
    let mut merged: BTreeMap<String, WorkerView> = BTreeMap::new();
    for stream in streams {
        let mut cmd = redis::cmd("XINFO");
        cmd.arg("CONSUMERS").arg(&stream).arg(keys::GROUP);
        let reply: Value = match client.query(&cmd).await {
            Ok(reply) => reply,
            // No such stream (no job of that priority yet), or no group on it.
            Err(e) if e.code().is_some() => continue,
            Err(e) => return Err(e),
        };
        for consumer in zrq::record::array(reply)? {
            let Some(fields) = map(consumer)? else {
                continue;
            };
            let Some(name) = fields.get("name").and_then(text) else {
                continue;
            };
            let idle = fields.get("idle").and_then(int).unwrap_or(i64::MAX);
            let pending = fields.get("pending").and_then(int).unwrap_or(0);
            let worker = merged.entry(name.clone()).or_insert_with(|| WorkerView {
                name,
                idle_ms: i64::MAX,
                ..WorkerView::default()
            });
            worker.idle_ms = worker.idle_ms.min(idle);
            worker.pending += pending;
        }
    }
    Ok(merged.into_values().collect())
}

/// The lease deadline of each of `jobs` (`ZMSCORE` on the queue's `active` index), in order.
async fn lease_deadlines(
    client: &Client,
    queue: &str,
    jobs: &[JobRecord],
) -> Result<Vec<Option<i64>>, zrq::Error> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let mut cmd = redis::cmd("ZMSCORE");
    cmd.arg(QueueKeys::new(queue).active());
    for job in jobs {
        cmd.arg(&job.id);
    }
    let scores: Vec<Option<f64>> = client.query(&cmd).await?;
    Ok(scores.into_iter().map(|s| s.map(|s| s as i64)).collect())
}

/// A queue's recurring jobs.
#[derive(Serialize)]
pub struct QueueSchedules {
    queue: String,
    /// Each schedule's fields as `ZRQ.SCHEDULES` gives them (definition, `next_run`,
    /// `last_run`).
    schedules: Vec<BTreeMap<String, String>>,
}

/// `GET /api/schedules`: `ZRQ.SCHEDULES` of every queue.
pub async fn schedules(
    State(app): State<Shared>,
    headers: HeaderMap,
) -> ApiResult<Vec<QueueSchedules>> {
    app.auth.check_read(&headers)?;
    let mut all = Vec::new();
    for name in app.queues.fresh().await? {
        let schedules = app.client.queue(&name).schedules().await?;
        all.push(QueueSchedules {
            queue: name,
            schedules: schedules.into_iter().map(|s| s.fields).collect(),
        });
    }
    Ok(Json(all))
}

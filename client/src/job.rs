//! [`JobHandle`]: one job, by queue and id.

use std::time::{Duration, Instant};

use redis::Value;
use serde::de::DeserializeOwned;
use serde::Serialize;
use zrq_core::keys::QueueKeys;
use zrq_core::reply::code;

use crate::error::{Error, Result};
use crate::queue::Queue;
use crate::record::{self, text, JobRecord, JobState};

/// A job's end: its final state and result or last error (`ZRQ.RESULT`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// `completed`, `dead` or `cancelled`.
    pub state: JobState,
    /// The result JSON, for a completed job that stored one.
    pub result: Option<String>,
    /// The last error, for a dead job.
    pub error: Option<String>,
}

impl Outcome {
    fn from_value(value: Value) -> Result<Option<Outcome>> {
        let Some(mut m) = record::map(value)? else {
            return Ok(None);
        };
        let mut take = |name: &str| m.remove(name).as_ref().and_then(text);
        Ok(Some(Outcome {
            state: JobState::parse(&take("state").unwrap_or_default()),
            result: take("result"),
            error: take("error"),
        }))
    }

    /// The result deserialized, or [`Error::JobFailed`] if the job did not complete.
    pub fn into_result<T: DeserializeOwned>(self, id: &str) -> Result<T> {
        if self.state != JobState::Completed {
            return Err(Error::JobFailed {
                id: id.to_string(),
                state: self.state.to_string(),
                error: self.error,
            });
        }
        let json = self.result.as_deref().unwrap_or("null");
        Ok(serde_json::from_str(json)?)
    }
}

/// What `ZRQ.CANCEL` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelOutcome {
    /// The job was waiting and is now cancelled; it will never run.
    Cancelled,
    /// The job is running; its worker is told at its next heartbeat or acknowledgement.
    Requested,
    /// The job has finished already, or does not exist.
    NotCancellable,
}

/// Anything that names a job: its id (`&str`, `String`) or a [`JobHandle`]. Taken by
/// [`crate::EnqueueOptions::after`].
pub trait IntoJobId {
    /// The job id.
    fn into_job_id(self) -> String;
}

impl IntoJobId for &str {
    fn into_job_id(self) -> String {
        self.to_string()
    }
}

impl IntoJobId for String {
    fn into_job_id(self) -> String {
        self
    }
}

impl IntoJobId for &String {
    fn into_job_id(self) -> String {
        self.clone()
    }
}

impl IntoJobId for &JobHandle {
    fn into_job_id(self) -> String {
        self.id.clone()
    }
}

impl IntoJobId for JobHandle {
    fn into_job_id(self) -> String {
        self.id
    }
}

/// A job of a queue. Cheap to clone; holds no server state.
#[derive(Debug, Clone)]
pub struct JobHandle {
    queue: Queue,
    id: String,
}

impl JobHandle {
    pub(crate) fn new(queue: Queue, id: &str) -> JobHandle {
        JobHandle {
            queue,
            id: id.to_string(),
        }
    }

    /// The job id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The queue the job belongs to.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// The job's state, `None` if there is no such job (any more).
    pub async fn state(&self) -> Result<Option<JobState>> {
        let reply = self.queue.call("state", &[&self.id]).await?;
        Ok(text(&reply).map(|s| JobState::parse(&s)))
    }

    /// The whole job record; [`Error::NoJob`] if there is no such job.
    pub async fn record(&self) -> Result<JobRecord> {
        let reply = self.queue.call("job", &[&self.id]).await?;
        JobRecord::from_value(reply)?.ok_or_else(|| self.no_job())
    }

    fn no_job(&self) -> Error {
        Error::NoJob {
            queue: self.queue.name().to_string(),
            id: self.id.clone(),
        }
    }

    /// The outcome if the job has finished, without waiting.
    pub async fn outcome(&self) -> Result<Option<Outcome>> {
        let reply = self.queue.call("result", &[&self.id]).await;
        self.read_outcome(reply)
    }

    fn read_outcome(&self, reply: Result<Value>) -> Result<Option<Outcome>> {
        match reply {
            Err(e) if e.code() == Some("NOJOB") => Err(self.no_job()),
            Err(e) => Err(e),
            Ok(value) => Outcome::from_value(value),
        }
    }

    /// Waits up to `timeout` for the job to finish and returns how it ended (`None` on
    /// timeout). The wait happens inside Redis (`ZRQ.RESULT … BLOCK`) on a connection of its own.
    pub async fn wait_outcome(&self, timeout: Duration) -> Result<Option<Outcome>> {
        let client = self.queue.client();
        if !client.backend().blocks_server_side() {
            return self.follow_outcome(timeout).await;
        }
        let mut conn = client.dedicated(timeout).await?;
        wait_on(&mut conn, self, timeout).await
    }

    /// Functions cannot block inside Redis: follow the queue's state-change events
    /// (`zrq:{queue}:events`, Pub/Sub) until the job finishes; in a cluster, poll instead.
    async fn follow_outcome(&self, timeout: Duration) -> Result<Option<Outcome>> {
        let deadline = tokio::time::Instant::now() + timeout;
        let Some(mut pubsub) = self.queue.client().pubsub().await? else {
            return self.poll_outcome(timeout).await;
        };
        let channel = QueueKeys::new(self.queue.name()).events();
        pubsub.subscribe(&channel).await.map_err(Error::Redis)?;
        // Subscribed first, checked second: a finish in between is not missed.
        if let Some(outcome) = self.outcome().await? {
            return Ok(Some(outcome));
        }
        let mut messages = pubsub.into_on_message();
        loop {
            match tokio::time::timeout_at(deadline, futures::StreamExt::next(&mut messages)).await {
                Err(_) => return Ok(None),
                Ok(None) => {
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    return self.poll_outcome(left).await;
                }
                Ok(Some(message)) => {
                    let text: String = message.get_payload().unwrap_or_default();
                    let mut words = text.splitn(2, ' ');
                    let (Some(state), Some(id)) = (words.next(), words.next()) else {
                        continue;
                    };
                    if id == self.id && JobState::parse(state).is_finished() {
                        return self.outcome().await;
                    }
                }
            }
        }
    }

    /// Check, then check again with growing pauses (a cluster on the Functions backend).
    async fn poll_outcome(&self, timeout: Duration) -> Result<Option<Outcome>> {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(10);
        loop {
            if let Some(outcome) = self.outcome().await? {
                return Ok(Some(outcome));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            tokio::time::sleep(pause.min(left)).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    /// Waits up to `timeout` for the job's result, deserialized into `T`. Fails with
    /// [`Error::JobFailed`] if the job died or was cancelled, and [`Error::WaitTimeout`] if it
    /// did not finish in time.
    pub async fn wait<T: DeserializeOwned>(&self, timeout: Duration) -> Result<T> {
        match self.wait_outcome(timeout).await? {
            Some(outcome) => outcome.into_result(&self.id),
            None => Err(Error::WaitTimeout(self.id.clone())),
        }
    }

    /// Cancels the job (see [`CancelOutcome`]).
    pub async fn cancel(&self) -> Result<CancelOutcome> {
        let reply = self.queue.call("cancel", &[&self.id]).await?;
        match record::int(&reply) {
            Some(code::DONE) => Ok(CancelOutcome::Cancelled),
            Some(code::CANCEL_REQUESTED) => Ok(CancelOutcome::Requested),
            Some(code::NOTHING) => Ok(CancelOutcome::NotCancellable),
            _ => Err(Error::Protocol(format!("CANCEL replied {reply:?}"))),
        }
    }
}

/// `ZRQ.RESULT … BLOCK` on a dedicated connection.
pub(crate) async fn wait_on(
    conn: &mut crate::client::Conn,
    job: &JobHandle,
    timeout: Duration,
) -> Result<Option<Outcome>> {
    let block = timeout.as_millis().max(1).to_string();
    let cmd = job.queue.client().backend().command(
        "result",
        Some(job.queue.name()),
        &[job.id.as_str(), "BLOCK", &block],
    );
    let reply: Result<Value> = cmd.query_async(conn).await.map_err(Error::from_redis);
    job.read_outcome(reply)
}

/// Waits for many jobs one after another on one dedicated connection, calling `progress` after
/// each; the outcomes in order (`None` where the overall `timeout` ran out first).
pub async fn wait_all(
    jobs: &[JobHandle],
    timeout: Duration,
    mut progress: impl FnMut(&JobHandle, &Option<Outcome>),
) -> Result<Vec<Option<Outcome>>> {
    let Some(first) = jobs.first() else {
        return Ok(Vec::new());
    };
    let deadline = Instant::now() + timeout;
    let mut conn = first.queue.client().dedicated(timeout).await?;
    let mut out = Vec::with_capacity(jobs.len());
    for job in jobs {
        let left = deadline.saturating_duration_since(Instant::now());
        let outcome = if !job.queue.client().backend().blocks_server_side() {
            job.follow_outcome(left).await?
        } else if left.is_zero() {
            job.outcome().await?
        } else {
            wait_on(&mut conn, job, left).await?
        };
        progress(job, &outcome);
        out.push(outcome);
    }
    Ok(out)
}

//! Shared by the chaos tests: worker processes and the signals sent to them, waiting for a
//! condition, enqueueing many jobs, and reading what the jobs became.
// Test code fails by panicking; each test binary uses a subset of these helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use std::time::{Duration, Instant};

use zrq_chaos::{ChaosArgs, Run};
use zrq_core::job;
use zrq_core::keys::QueueKeys;
use zrq_tests::redis::{self, Connection};
use zrq_tests::Backend;

/// Where worker processes connect: one address, or the nodes of a cluster.
#[derive(Debug, Clone)]
pub enum Target {
    /// `redis://…` of one server (or of a proxy in front of it).
    Url(String),
    /// `redis://…` of every cluster node.
    Cluster(Vec<String>),
}

/// Chaos worker processes serving some queues, each logging its executions in a shared
/// directory, killed when dropped.
pub struct Workers {
    target: Target,
    queues: Vec<String>,
    concurrency: usize,
    batch: usize,
    dir: tempfile::TempDir,
    started: usize,
    /// The running processes with their consumer names.
    pub running: Vec<(Child, String)>,
}

impl Workers {
    /// Starts `count` worker processes for `queues`, each running up to `concurrency` jobs and
    /// fetching up to `batch` at a time.
    pub fn start(
        target: Target,
        queues: &[&str],
        count: usize,
        concurrency: usize,
        batch: usize,
    ) -> Workers {
        let mut workers = Workers {
            target,
            queues: queues.iter().map(|q| q.to_string()).collect(),
            concurrency,
            batch,
            dir: tempfile::tempdir().expect("run-log directory"),
            started: 0,
            running: Vec::new(),
        };
        for _ in 0..count {
            workers.spawn();
        }
        workers
    }

    /// Starts one more worker process, and waits until it handles SIGTERM; its consumer name is
    /// `chaos-<n>`.
    pub fn spawn(&mut self) {
        let consumer = format!("chaos-{}", self.started);
        self.started += 1;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_chaos-worker"));
        match &self.target {
            Target::Url(url) => cmd.env("ZRQ_URL", url),
            Target::Cluster(nodes) => cmd.env("ZRQ_CLUSTER", nodes.join(",")),
        };
        let mut child = cmd
            .env("ZRQ_QUEUES", self.queues.join(","))
            .env("ZRQ_CONSUMER", &consumer)
            .env("ZRQ_CONCURRENCY", self.concurrency.to_string())
            .env("ZRQ_BATCH", self.batch.to_string())
            .env(
                "ZRQ_RUN_LOG",
                self.dir.path().join(format!("{consumer}.log")),
            )
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the chaos worker");
        let stdout = child.stdout.take().expect("worker stdout");
        let mut ready = String::new();
        BufReader::new(stdout)
            .read_line(&mut ready)
            .expect("read the worker's first line");
        assert_eq!(ready.trim(), "ready", "worker {consumer} did not start");
        self.running.push((child, consumer));
    }

    /// SIGKILLs worker `index` and waits for it to die; returns its consumer name. The process
    /// is removed from `running`.
    pub fn kill(&mut self, index: usize) -> String {
        let (mut child, consumer) = self.running.remove(index);
        child.kill().expect("SIGKILL a worker");
        child.wait().expect("reap a worker");
        consumer
    }

    /// Sends `signal` (`libc::SIGSTOP`, `SIGCONT`, `SIGTERM`…) to worker `index`.
    pub fn signal(&self, index: usize, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.running[index].0.id()).expect("pid");
        // SAFETY: kill(2) only sends a signal to a process this test started and still owns
        // (not yet reaped, so the pid cannot have been reused).
        let sent = unsafe { libc::kill(pid, signal) };
        assert_eq!(sent, 0, "kill({pid}, {signal})");
    }

    /// Stops every worker with SIGTERM (a graceful shutdown) and waits for them to exit.
    pub fn stop_all(&mut self) {
        for index in 0..self.running.len() {
            self.signal(index, libc::SIGTERM);
        }
        for (mut child, consumer) in self.running.drain(..) {
            let status = child.wait().expect("wait for a worker");
            assert!(status.success(), "worker {consumer} exited with {status:?}");
        }
    }

    /// Every execution logged so far by every worker, killed ones included.
    pub fn runs(&self) -> Vec<Run> {
        zrq_chaos::read_runs(self.dir.path()).expect("read the run logs")
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for (child, _) in &mut self.running {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits up to `timeout` for `check`, polling every 50 ms; panics naming `what` otherwise.
pub fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A job to enqueue: its id, the task's arguments and the ENQUEUE options.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The producer's id (`ID`), so retries are idempotent.
    pub id: String,
    /// What the job does.
    pub args: ChaosArgs,
    /// `RETRIES`, `TIMEOUT`, `DELAY`… as command arguments.
    pub options: Vec<String>,
}

impl Planned {
    /// The ENQUEUE command of this job on `queue` (module backend).
    pub fn command(&self, queue: &str) -> redis::Cmd {
        let payload = serde_json::to_string(&self.args).expect("payload");
        let mut args: Vec<&[u8]> = vec![queue.as_bytes(), b"chaos", payload.as_bytes()];
        args.extend([b"ID".as_slice(), self.id.as_bytes()]);
        args.extend(self.options.iter().map(|o| o.as_bytes()));
        Backend::Module.command("enqueue", &args)
    }
}

/// Enqueues `jobs` on `queue` in pipelined chunks; every reply must be the job's id.
pub fn enqueue_all(conn: &mut Connection, queue: &str, jobs: &[Planned]) {
    for chunk in jobs.chunks(1000) {
        let mut pipe = redis::pipe();
        for job in chunk {
            pipe.add_command(job.command(queue));
        }
        let ids: Vec<String> = pipe.query(conn).expect("ENQUEUE pipeline");
        let want: Vec<&String> = chunk.iter().map(|j| &j.id).collect();
        assert_eq!(ids.iter().collect::<Vec<_>>(), want);
    }
}

/// The ids of `jobs`.
pub fn ids(jobs: &[Planned]) -> BTreeSet<String> {
    jobs.iter().map(|j| j.id.clone()).collect()
}

/// What a job's record says at the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Its state.
    pub state: String,
    /// Attempts started.
    pub attempt: i64,
    /// The result given to ACK (the chaos task returns the attempt that succeeded).
    pub result: Option<String>,
}

/// The outcome of each job of `ids` in `queue` (read with [`records`]); a job without a record
/// is missing from the map.
pub fn outcomes<'a>(
    conn: &mut Connection,
    queue: &str,
    ids: impl IntoIterator<Item = &'a String>,
) -> BTreeMap<String, Outcome> {
    let ids: Vec<&String> = ids.into_iter().collect();
    let keys = QueueKeys::new(queue);
    let mut found = BTreeMap::new();
    for chunk in ids.chunks(1000) {
        let names: Vec<String> = chunk.iter().map(|id| keys.job(id)).collect();
        let own = records(conn, &names);
        let kept = kept_records(conn, queue, chunk);
        for ((id, record), kept) in chunk.iter().zip(own).zip(kept) {
            let Some(mut record) = record.or(kept) else {
                continue;
            };
            // A compact record leaves out an attempt of 0 (zrq_core::job::DEFAULTS): a job
            // never fetched has no `attempt` field, and is found all the same.
            let Some(state) = record.remove("state") else {
                continue;
            };
            let attempt = record
                .get("attempt")
                .map(|a| a.parse::<i64>().expect("attempt is an integer"))
                .or(job::default_of("attempt"))
                .unwrap_or_default();
            found.insert(
                (*id).clone(),
                Outcome {
                    state,
                    attempt,
                    result: record.remove("result"),
                },
            );
        }
    }
    found
}

/// The job records at `names`, field → value, whatever their format: a packed string (decoded
/// with `zrq_core::packed`) or a hash of the earlier format; None where there is no record. One
/// pipelined GET, then HGETALL for the keys that hold a hash.
pub fn records(conn: &mut Connection, names: &[String]) -> Vec<Option<BTreeMap<String, String>>> {
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for name in names {
        pipe.cmd("GET").arg(name);
    }
    let values: Vec<redis::Value> = pipe.query(conn).expect("GET pipeline");
    names
        .iter()
        .zip(values)
        .map(|(name, value)| match value {
            redis::Value::Nil => None,
            redis::Value::BulkString(raw) => Some(
                zrq_core::packed::decode(name, &raw)
                    .unwrap_or_else(|e| panic!("{name}: {e}"))
                    .into_iter()
                    .map(|(field, value)| (field.to_string(), value))
                    .collect(),
            ),
            redis::Value::ServerError(_) => {
                let record: BTreeMap<String, String> = redis::cmd("HGETALL")
                    .arg(name)
                    .query(conn)
                    .expect("HGETALL");
                (!record.is_empty()).then_some(record)
            }
            other => panic!("GET {name}: {other:?}"),
        })
        .collect()
}

/// The records of `ids` kept in the queue's `completed:records` or `cancelled:records` hash (a
/// job finished without a KEEP of its own: a field there, packed without its state), with the
/// state the hash says; None for a job in neither. One pipelined pair of HGETs per job.
fn kept_records(
    conn: &mut Connection,
    queue: &str,
    ids: &[&String],
) -> Vec<Option<BTreeMap<String, String>>> {
    const STATES: [&str; 2] = ["completed", "cancelled"];
    let mut pipe = redis::pipe();
    for id in ids {
        for state in STATES {
            pipe.cmd("HGET")
                .arg(format!("zrq:{{{queue}}}:{state}:records"))
                .arg(id.as_str());
        }
    }
    let values: Vec<Option<Vec<u8>>> = pipe.query(conn).expect("HGET pipeline");
    values
        .chunks(STATES.len())
        .map(|pair| {
            let (state, raw) = STATES
                .iter()
                .zip(pair)
                .find_map(|(state, raw)| raw.as_ref().map(|raw| (*state, raw)))?;
            let key = format!("zrq:{{{queue}}}:{state}:records");
            let mut record: BTreeMap<String, String> = zrq_core::packed::decode(&key, raw)
                .unwrap_or_else(|e| panic!("{key}: {e}"))
                .into_iter()
                .map(|(field, value)| (field.to_string(), value))
                .collect();
            record.insert("state".to_string(), state.to_string());
            Some(record)
        })
        .collect()
}

/// `ZRQ.INFO <queue>` field `name`.
pub fn info(conn: &mut Connection, queue: &str, name: &str) -> i64 {
    let info: BTreeMap<String, redis::Value> = Backend::Module
        .command("info", &[queue.as_bytes()])
        .query(conn)
        .expect("ZRQ.INFO");
    match info.get(name) {
        Some(redis::Value::Int(n)) => *n,
        other => panic!("INFO {name}: {other:?}"),
    }
}

/// Jobs of `queue` that have ended (completed, dead or cancelled), by `ZRQ.INFO`.
pub fn finished(conn: &mut Connection, queue: &str) -> i64 {
    ["completed", "dead", "cancelled"]
        .iter()
        .map(|s| info(conn, queue, s))
        .sum()
}

/// The (job, attempt) pairs `consumer` holds in `queue` right now.
pub fn held_by(conn: &mut Connection, queue: &str, consumer: &str) -> Vec<(String, i64)> {
    let keys = QueueKeys::new(queue);
    let active: Vec<String> = redis::cmd("ZRANGE")
        .arg(keys.active())
        .arg(0)
        .arg(-1)
        .query(conn)
        .expect("ZRANGE active");
    if active.is_empty() {
        return Vec::new();
    }
    let names: Vec<String> = active.iter().map(|id| keys.job(id)).collect();
    let rows = records(conn, &names);
    active
        .into_iter()
        .zip(rows)
        .filter_map(|(id, record)| {
            let record = record?;
            let attempt = record
                .get("attempt")
                .map(|a| a.parse::<i64>().expect("attempt is an integer"))
                .unwrap_or(0);
            (record.get("consumer").map(String::as_str) == Some(consumer)).then_some((id, attempt))
        })
        .collect()
}

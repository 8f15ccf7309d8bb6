//! Shared helpers of the client's integration tests.
#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use zrq::{Client, NewJob, Task, Worker, WorkerStats};
#[allow(unused_imports)]
pub use zrq_tests::{Backend, Options, Server};

/// The `add` task of the examples (same name and types), for tests driving the example worker.
pub struct Add;

/// Arguments of [`Add`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddArgs {
    pub a: i64,
    pub b: i64,
    pub work_ms: u64,
}

impl Task for Add {
    const NAME: &'static str = "add";
    type Args = AddArgs;
    type Output = i64;
}

/// `n` jobs of [`Add`] (a = 0..n, b = 0), each meant to take `work_ms`.
pub fn add_jobs(n: i64, work_ms: u64) -> impl Iterator<Item = NewJob> {
    (0..n).map(move |i| {
        NewJob::of::<Add>(&AddArgs {
            a: i,
            b: 0,
            work_ms,
        })
        .unwrap()
    })
}

/// `worker` with the plain [`Add`] handler: returns a + b at once.
pub fn adder(worker: Worker) -> Worker {
    worker.handle::<Add, _, _>(|args, _| async move { Ok(args.a + args.b) })
}

/// `worker` tuned for tests: 200 ms blocking fetches, a lease check every `reclaim`, 5 s grace.
pub fn fast_worker(worker: Worker, reclaim: Duration) -> Worker {
    worker
        .block(Duration::from_millis(200))
        .reclaim_interval(reclaim)
        .grace(Duration::from_secs(5))
}

pub fn server() -> Server {
    Backend::Module.server()
}

pub async fn client(server: &Server) -> Client {
    Client::connect(&server.url()).await.expect("connect")
}

/// Waits (up to 30 s) until `check` holds, checking every 20 ms.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A worker running in this process until the returned sender is used (or dropped).
pub struct Running {
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<zrq::Result<WorkerStats>>,
}

impl Running {
    pub async fn stop(mut self) -> WorkerStats {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.handle)
            .await
            .expect("worker task")
            .expect("worker result")
    }
}

pub fn spawn(worker: Worker) -> Running {
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(worker.run_until(async move {
        let _ = rx.await;
    }));
    Running {
        stop: Some(tx),
        handle,
    }
}

/// State of job `id` in `queue`, straight from the server.
pub async fn state(client: &Client, queue: &str, id: &str) -> Option<String> {
    client
        .queue(queue)
        .job(id)
        .state()
        .await
        .expect("STATE")
        .map(|s| s.to_string())
}

/// Counts the jobs of `ids` in each state.
pub async fn count_states(client: &Client, queue: &str, ids: &[String]) -> Vec<(String, usize)> {
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for id in ids {
        let s = state(client, queue, id)
            .await
            .unwrap_or_else(|| "missing".into());
        *counts.entry(s).or_default() += 1;
    }
    counts.into_iter().collect()
}

/// The example worker binary (built by `cargo test`; built here if missing). It lives in the
/// target directory of this test binary (`target/<profile>/deps/<test>` → `target/<profile>`).
pub fn example_worker() -> PathBuf {
    let test_binary = std::env::current_exe().expect("test binary path");
    let path = test_binary
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .join("examples")
        .join("worker");
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args(["build", "-p", "zrq", "--example", "worker"])
            .status()
            .expect("run cargo");
        assert!(status.success(), "building the example worker failed");
    }
    path
}

/// A server of `backend` and a client speaking to it.
pub async fn setup(backend: Backend) -> (Server, Client) {
    let server = backend.server();
    let client = Client::connect(&server.url())
        .await
        .expect("connect")
        .with_backend(match backend {
            Backend::Module => zrq::Backend::Module,
            Backend::Lua => zrq::Backend::Lua,
        });
    (server, client)
}

/// Instantiates `async fn name(backend: Backend)` tests once per backend: `module::name` and
/// `lua::name`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(zrq_tests::Backend::Module).await
                }
            )*
        }
        mod lua {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(zrq_tests::Backend::Lua).await
                }
            )*
        }
    };
}

//! The example worker as a real process: SIGTERM mid-batch, and kill -9 mid-job.
// Test code fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use zrq::{Client, EnqueueOptions, NewJob, Worker};

fn start_worker(server: &Server, queue: &str, concurrency: u32, grace_ms: u64) -> Child {
    Command::new(example_worker())
        .env("ZRQ_URL", server.url())
        .env("ZRQ_QUEUE", queue)
        .env("ZRQ_CONCURRENCY", concurrency.to_string())
        .env("ZRQ_GRACE_MS", grace_ms.to_string())
        .env("ZRQ_RECLAIM_MS", "60000")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the example worker")
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
}

async fn enqueue_work(
    client: &Client,
    queue: &str,
    n: i64,
    work_ms: u64,
    lease_ms: u64,
) -> Vec<String> {
    let options = EnqueueOptions::new().timeout(Duration::from_millis(lease_ms));
    let jobs = (0..n).map(|i| {
        NewJob::of::<Add>(&AddArgs {
            a: i,
            b: 1,
            work_ms,
        })
        .unwrap()
        .options(options.clone())
    });
    client
        .queue(queue)
        .enqueue_many(jobs)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap().id().to_string())
        .collect()
}

async fn active_count(client: &Client, queue: &str, ids: &[String]) -> usize {
    count_states(client, queue, ids)
        .await
        .into_iter()
        .find(|(s, _)| s == "active")
        .map_or(0, |(_, n)| n)
}

async fn wait_exit(mut child: Child) -> std::process::ExitStatus {
    tokio::task::spawn_blocking(move || child.wait().expect("wait for the worker"))
        .await
        .unwrap()
}

/// A fresh in-process worker that counts how often it ran each job.
fn counting_worker(client: &Client, queue: &str) -> (Running, Arc<Mutex<HashMap<String, usize>>>) {
    let runs = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
    let r = runs.clone();
    let worker = Worker::new(client.clone(), &[queue])
        .block(Duration::from_millis(200))
        .reclaim_interval(Duration::from_millis(100))
        .concurrency(16)
        .handle::<Add, _, _>(move |args, ctx| {
            let r = r.clone();
            async move {
                *r.lock().unwrap().entry(ctx.id().to_string()).or_default() += 1;
                Ok(args.a + args.b)
            }
        });
    (spawn(worker), runs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_jobs_in_flight_finish_and_leaves_the_rest_pending() {
    let server = server();
    let client = client(&server).await;
    let ids = enqueue_work(&client, "term", 12, 1500, 30_000).await;
    let child = start_worker(&server, "term", 4, 20_000);
    eventually("4 jobs are running in the worker", || async {
        active_count(&client, "term", &ids).await == 4
    })
    .await;
    sigterm(&child);
    let status = wait_exit(child).await;
    assert!(status.success(), "worker exit: {status:?}");
    let counts = count_states(&client, "term", &ids).await;
    assert_eq!(
        counts,
        vec![("completed".to_string(), 4), ("pending".to_string(), 8)],
        "in-flight jobs finished, nothing else was fetched"
    );
    let (running, runs) = counting_worker(&client, "term");
    eventually("the rest completes elsewhere", || async {
        count_states(&client, "term", &ids).await == vec![("completed".to_string(), 12)]
    })
    .await;
    running.stop().await;
    assert_eq!(
        runs.lock().unwrap().len(),
        8,
        "exactly the 8 pending ones ran again"
    );
    for id in &ids {
        let record = client.queue("term").job(id).record().await.unwrap();
        assert_eq!(record.attempt, 1, "no job ran twice");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_past_the_grace_period_gives_unfinished_jobs_back_without_using_an_attempt() {
    let server = server();
    let client = client(&server).await;
    // Jobs without retries take 60 s; the grace period is 200 ms. The worker must give the
    // unfinished ones back (never acknowledge them, never let them die), and at once: their
    // 30 s leases have not expired when it exits.
    let options = EnqueueOptions::new()
        .timeout(Duration::from_secs(30))
        .retries(0);
    let jobs = (0..10).map(|i| {
        NewJob::of::<Add>(&AddArgs {
            a: i,
            b: 1,
            work_ms: 60_000,
        })
        .unwrap()
        .options(options.clone())
    });
    let ids: Vec<String> = client
        .queue("grace")
        .enqueue_many(jobs)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap().id().to_string())
        .collect();
    let child = start_worker(&server, "grace", 4, 200);
    eventually("4 jobs are running in the worker", || async {
        active_count(&client, "grace", &ids).await == 4
    })
    .await;
    sigterm(&child);
    let status = wait_exit(child).await;
    assert!(status.success(), "worker exit: {status:?}");
    assert_eq!(
        count_states(&client, "grace", &ids).await,
        vec![("pending".to_string(), 10)],
        "the 4 unfinished jobs are pending again as soon as the worker is gone"
    );
    for id in &ids {
        let record = client.queue("grace").job(id).record().await.unwrap();
        assert_eq!(record.attempt, 0, "a given-back attempt does not count");
    }
    let (running, runs) = counting_worker(&client, "grace");
    eventually("every job completes on the next worker", || async {
        count_states(&client, "grace", &ids).await == vec![("completed".to_string(), 10)]
    })
    .await;
    running.stop().await;
    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 10);
    assert!(
        runs.values().all(|&n| n == 1),
        "each ran exactly once more: {runs:?}"
    );
    for id in &ids {
        let record = client.queue("grace").job(id).record().await.unwrap();
        assert_eq!(record.attempt, 1, "{id}: one attempt in all");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_job_every_job_completes_exactly_once_more() {
    let server = server();
    let client = client(&server).await;
    let ids = enqueue_work(&client, "crash", 12, 60_000, 3_000).await;
    let mut child = start_worker(&server, "crash", 5, 20_000);
    eventually("5 jobs are running in the worker", || async {
        active_count(&client, "crash", &ids).await == 5
    })
    .await;
    child.kill().expect("kill -9");
    let _ = wait_exit(child).await;
    let (running, runs) = counting_worker(&client, "crash");
    eventually("every job completes", || async {
        count_states(&client, "crash", &ids).await == vec![("completed".to_string(), 12)]
    })
    .await;
    running.stop().await;
    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 12);
    assert!(
        runs.values().all(|&n| n == 1),
        "each ran exactly once more: {runs:?}"
    );
    let mut attempts: Vec<i64> = Vec::new();
    for id in &ids {
        attempts.push(
            client
                .queue("crash")
                .job(id)
                .record()
                .await
                .unwrap()
                .attempt,
        );
    }
    assert_eq!(
        attempts.iter().filter(|&&a| a == 2).count(),
        5,
        "{attempts:?}"
    );
    assert_eq!(
        attempts.iter().filter(|&&a| a == 1).count(),
        7,
        "{attempts:?}"
    );
}

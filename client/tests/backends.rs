//! The client over the other transports: a Redis Cluster (module on every node) and the Redis
//! Functions backend (`FCALL zrq_*`, blocking with BLPOP on the queue's wake-up list).
// Test code fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use zrq::{Backend as ClientBackend, Client, JobState, Worker};

/// Three primaries (with the module or not) joined into a cluster whose state is ok.
fn start_cluster(module: bool) -> Vec<Server> {
    zrq_tests::cluster::start_cluster(3, 0, module, &[])
}

/// Serves `queues` with an add worker and sends one job to each (a = its index, `b`): every
/// result comes back, and the worker completed them all.
async fn add_on_every_queue(client: &Client, queues: &[&str], b: i64) {
    let running = spawn(adder(
        Worker::new(client.clone(), queues).block(Duration::from_millis(200)),
    ));
    let mut jobs = Vec::new();
    for (i, q) in queues.iter().enumerate() {
        let args = AddArgs {
            a: i as i64,
            b,
            work_ms: 0,
        };
        jobs.push(client.queue(q).enqueue_task::<Add>(&args).await.unwrap());
    }
    for (i, job) in jobs.iter().enumerate() {
        assert_eq!(
            job.wait::<i64>(Duration::from_secs(20)).await.unwrap(),
            i as i64 + b
        );
    }
    assert_eq!(running.stop().await.completed, queues.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_without_the_module_gets_the_library_on_every_primary() {
    let nodes = start_cluster(false);
    let version = |node: &Server| -> Option<String> {
        zrq_tests::redis::cmd("FCALL")
            .arg("zrq_version")
            .arg(0)
            .query(&mut node.conn())
            .ok()
    };
    // One primary runs an old library, the others none.
    let current = format!("local VERSION = '{}'", zrq::lua::VERSION);
    let old = zrq::lua::library().replace(&current, "local VERSION = '0'");
    let _: String = zrq_tests::redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(&old)
        .query(&mut nodes[1].conn())
        .unwrap();
    let urls: Vec<String> = nodes.iter().map(Server::url).collect();
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    let client = Client::connect_cluster(&urls).await.unwrap();
    assert_eq!(client.backend(), ClientBackend::Lua);
    for node in &nodes {
        assert_eq!(version(node).as_deref(), Some(zrq::lua::VERSION));
    }
    assert_eq!(
        client.library_version().await.unwrap().as_deref(),
        Some(zrq::lua::VERSION)
    );
    let queues = ["a", "b", "c", "d", "e", "f"];
    add_on_every_queue(&client, &queues, 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_round_trip_across_slots() {
    let nodes = start_cluster(true);
    let urls: Vec<String> = nodes.iter().map(Server::url).collect();
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    let client = Client::connect_cluster(&urls).await.unwrap();
    assert_eq!(client.backend(), ClientBackend::Module);
    // Queues whose hash tags land on different nodes.
    let queues = ["a", "b", "c", "d", "e", "f"];
    add_on_every_queue(&client, &queues, 100).await;
    // QUEUES asks every primary.
    assert_eq!(client.queues().await.unwrap(), queues);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_backend_round_trip_wakes_a_blocked_worker() {
    let server = Backend::Lua.server();
    let client = Client::connect(&server.url())
        .await
        .unwrap()
        .with_backend(ClientBackend::Lua);
    let q = client.queue("lua");
    let block = Duration::from_secs(3);
    let running = spawn(
        Worker::new(client.clone(), &["lua"])
            .block(block)
            .handle::<Add, _, _>(|args, _| async move { Ok(args.a * args.b) }),
    );
    // Let the worker reach its BLPOP: a first job proves it is serving.
    let first = q
        .enqueue_task::<Add>(&AddArgs {
            a: 6,
            b: 7,
            work_ms: 0,
        })
        .await
        .unwrap();
    eventually("the first job completes", || async {
        first.state().await.unwrap() == Some(JobState::Completed)
    })
    .await;
    assert_eq!(first.record().await.unwrap().result.as_deref(), Some("42"));
    // Now idle and blocked: a new job wakes it well before the block time ends.
    let started = Instant::now();
    let second = q
        .enqueue_task::<Add>(&AddArgs {
            a: 2,
            b: 3,
            work_ms: 0,
        })
        .await
        .unwrap();
    eventually("the second job completes", || async {
        second.state().await.unwrap() == Some(JobState::Completed)
    })
    .await;
    assert!(
        started.elapsed() < block,
        "woken by the enqueue, not by the block timeout: {:?}",
        started.elapsed()
    );
    // Results and failures reach a waiting producer (Pub/Sub events, no polling).
    let third = q
        .enqueue_task::<Add>(&AddArgs {
            a: 4,
            b: 5,
            work_ms: 0,
        })
        .await
        .unwrap();
    assert_eq!(
        third.wait::<i64>(Duration::from_secs(20)).await.unwrap(),
        20
    );
    let bad = q
        .enqueue_with(
            "add",
            &serde_json::json!({"a": "x"}),
            &zrq::EnqueueOptions::new().retries(0),
        )
        .await
        .unwrap();
    match bad.wait::<i64>(Duration::from_secs(20)).await {
        Err(zrq::Error::JobFailed { state, error, .. }) => {
            assert_eq!(state, "dead");
            assert!(error.unwrap().starts_with("arguments of task 'add'"));
        }
        other => panic!("expected a dead job, got {other:?}"),
    }
    let stats = running.stop().await;
    assert_eq!((stats.completed, stats.failed), (3, 1));
}

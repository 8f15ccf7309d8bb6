//! The worker against a real server: round trips, concurrency, failures, timeouts, restarts.
// Test code fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use zrq::{EnqueueOptions, JobState, NewJob, TimeLimit, Worker};

both_backends!(
    typed_round_trip_stores_the_result,
    enqueue_options_that_exist_reach_the_job,
    bulk_enqueue_is_one_round_trip_with_per_job_results,
    concurrency_limit_is_honoured,
    multiple_queues_are_served_in_priority_order,
    idle_queues_leave_every_slot_to_a_busy_one,
    jobs_arriving_on_many_idle_queues_respect_the_concurrency,
    a_time_limit_is_enforced_by_dropping_the_handler,
    worker_survives_a_redis_restart,
    hundreds_of_jobs_in_flight_on_one_runtime,
);

fn fast(worker: Worker) -> Worker {
    fast_worker(worker, Duration::from_millis(100))
}

/// A handler's runs: how many run now, the most at once, how many have run.
#[derive(Default)]
struct Gauge {
    now: AtomicUsize,
    max: AtomicUsize,
    ran: AtomicUsize,
}

/// `worker` with an [`Add`] handler that sleeps `work_ms`, returns `a`, and counts in `gauge`.
fn counting_sleeper(worker: Worker, gauge: &Arc<Gauge>) -> Worker {
    let gauge = gauge.clone();
    worker.handle::<Add, _, _>(move |args, _| {
        let g = gauge.clone();
        async move {
            let current = g.now.fetch_add(1, Ordering::SeqCst) + 1;
            g.max.fetch_max(current, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(args.work_ms)).await;
            g.now.fetch_sub(1, Ordering::SeqCst);
            g.ran.fetch_add(1, Ordering::SeqCst);
            Ok(args.a)
        }
    })
}

async fn typed_round_trip_stores_the_result(backend: Backend) {
    let (_server, client) = setup(backend).await;
    let queue = client.queue("math");
    let running = spawn(adder(fast(Worker::new(client.clone(), &["math"]))));
    let job = queue
        .enqueue_task::<Add>(&AddArgs {
            a: 2,
            b: 40,
            work_ms: 0,
        })
        .await
        .unwrap();
    eventually("the job completes", || async {
        job.state().await.unwrap() == Some(JobState::Completed)
    })
    .await;
    let record = job.record().await.unwrap();
    assert_eq!(record.task, "add");
    assert_eq!(record.attempt, 1);
    assert_eq!(record.result_as::<i64>().unwrap(), Some(42));
    let stats = running.stop().await;
    assert_eq!(stats.completed, 1);
    assert_eq!(stats.abandoned, 0);
}

async fn enqueue_options_that_exist_reach_the_job(backend: Backend) {
    let (_server, client) = setup(backend).await;
    let queue = client.queue("opts");
    let options = EnqueueOptions::new()
        .id("my-id")
        .retries(7)
        .timeout(Duration::from_millis(4321));
    let job = queue
        .enqueue_with("t", &serde_json::json!({"x": 1}), &options)
        .await
        .unwrap();
    assert_eq!(job.id(), "my-id");
    let again = queue
        .enqueue_with("t", &serde_json::json!({"x": 2}), &options)
        .await
        .unwrap();
    assert_eq!(again.id(), "my-id", "an existing id is returned");
    let record = job.record().await.unwrap();
    assert_eq!(record.max_attempts, 8);
    assert_eq!(record.timeout, 4321);
    assert_eq!(record.payload, r#"{"x":1}"#);
    assert_eq!(record.state, JobState::Pending);

    let running = spawn(fast(Worker::new(client.clone(), &["opts"])).handle_raw(
        "t",
        |args: serde_json::Value, ctx| async move {
            Ok(serde_json::json!({"got": args, "attempt": ctx.attempt()}))
        },
    ));
    eventually("the job completes", || async {
        job.state().await.unwrap() == Some(JobState::Completed)
    })
    .await;
    let record = job.record().await.unwrap();
    let result: serde_json::Value = record.result_as().unwrap().unwrap();
    assert_eq!(result, serde_json::json!({"got": {"x": 1}, "attempt": 1}));
    running.stop().await;
}

async fn bulk_enqueue_is_one_round_trip_with_per_job_results(backend: Backend) {
    let (_server, client) = setup(backend).await;
    let queue = client.queue("bulk");
    let mut jobs: Vec<NewJob> = (0..200)
        .map(|i| {
            NewJob::of::<Add>(&AddArgs {
                a: i,
                b: 1,
                work_ms: 0,
            })
            .unwrap()
        })
        .collect();
    // One bad job (a name with a space) fails alone.
    jobs.insert(10, NewJob::new("bad task", &1).unwrap());
    let results = queue.enqueue_many(jobs).await.unwrap();
    assert_eq!(results.len(), 201);
    let err = results[10].as_ref().expect_err("bad task refused");
    assert_eq!(err.code(), Some("ERR"), "{err}");
    let handles: Vec<_> = results.into_iter().filter_map(Result::ok).collect();
    assert_eq!(handles.len(), 200);
    let ids: std::collections::HashSet<_> = handles.iter().map(|h| h.id().to_string()).collect();
    assert_eq!(ids.len(), 200);

    let running = spawn(adder(
        fast(Worker::new(client.clone(), &["bulk"])).concurrency(50),
    ));
    for (i, h) in handles.iter().enumerate() {
        let h = h.clone();
        eventually("every job completes", || {
            let h = h.clone();
            async move { h.state().await.unwrap() == Some(JobState::Completed) }
        })
        .await;
        assert_eq!(
            h.record().await.unwrap().result_as::<i64>().unwrap(),
            Some(i as i64 + 1)
        );
    }
    assert_eq!(running.stop().await.completed, 200);
}

async fn concurrency_limit_is_honoured(backend: Backend) {
    let (_server, client) = setup(backend).await;
    let queue = client.queue("limit");
    let jobs = add_jobs(40, 30);
    queue.enqueue_many(jobs).await.unwrap();
    let gauge = Arc::new(Gauge::default());
    let (max, ran) = (&gauge.max, &gauge.ran);
    let running = spawn(counting_sleeper(
        fast(Worker::new(client.clone(), &["limit"]))
            .concurrency(5)
            .batch(3),
        &gauge,
    ));
    eventually("all 40 ran", || async { ran.load(Ordering::SeqCst) == 40 }).await;
    let stats = running.stop().await;
    assert_eq!(stats.completed, 40);
    assert_eq!(
        max.load(Ordering::SeqCst),
        5,
        "at most 5 at once, and 5 reached"
    );
}

async fn multiple_queues_are_served_in_priority_order(backend: Backend) {
    let (_server, client) = setup(backend).await;
    // Jobs wait in both queues before the worker starts; with one job at a time, every job of
    // the first queue runs before any of the second.
    let low = client.queue("low");
    let high = client.queue("high");
    for i in 0..5 {
        low.enqueue("t", &format!("low{i}")).await.unwrap();
        high.enqueue("t", &format!("high{i}")).await.unwrap();
    }
    let order = Arc::new(Mutex::new(Vec::new()));
    let o = order.clone();
    let running = spawn(
        fast(Worker::new(client.clone(), &["high", "low"]))
            .concurrency(1)
            .batch(1)
            .handle_raw("t", move |name: String, _| {
                let o = o.clone();
                async move {
                    o.lock().unwrap().push(name);
                    Ok(())
                }
            }),
    );
    eventually("all 10 ran", || async { order.lock().unwrap().len() == 10 }).await;
    running.stop().await;
    let order = order.lock().unwrap().clone();
    assert!(
        order[..5].iter().all(|n| n.starts_with("high")),
        "high first: {order:?}"
    );
}

/// Twelve queues, the first eleven empty: the empty queues' fetchers wait without holding slots,
/// so the last queue's jobs run four at a time at once. (When fetchers held their slots while
/// blocked, the last queue got a few slots per block period: 40 jobs took about 50 s here.)
async fn idle_queues_leave_every_slot_to_a_busy_one(backend: Backend) {
    let (_server, client) = setup(backend).await;
    let names: Vec<String> = (0..12).map(|i| format!("q{i}")).collect();
    let queues: Vec<&str> = names.iter().map(String::as_str).collect();
    let gauge = Arc::new(Gauge::default());
    let (max, ran) = (&gauge.max, &gauge.ran);
    let running = spawn(counting_sleeper(
        Worker::new(client.clone(), &queues)
            .concurrency(4)
            .batch(16)
            .block(Duration::from_secs(5)),
        &gauge,
    ));
    // The worker is idle first: every fetcher is waiting on its empty queue.
    tokio::time::sleep(Duration::from_millis(300)).await;
    client
        .queue("q11")
        .enqueue_many(add_jobs(40, 50))
        .await
        .unwrap();
    eventually("all 40 ran", || async { ran.load(Ordering::SeqCst) == 40 }).await;
    let stats = running.stop().await;
    assert_eq!(stats.completed, 40);
    assert_eq!(max.load(Ordering::SeqCst), 4, "four at once, and no more");
}

/// Jobs that blocking fetches return on many queues at once wait for a free slot: never more
/// than the concurrency run at once, and every job runs once, on its first attempt.
async fn jobs_arriving_on_many_idle_queues_respect_the_concurrency(backend: Backend) {
    let (_server, client) = setup(backend).await;
    let names: Vec<String> = (0..8).map(|i| format!("q{i}")).collect();
    let queues: Vec<&str> = names.iter().map(String::as_str).collect();
    let gauge = Arc::new(Gauge::default());
    let (max, ran) = (&gauge.max, &gauge.ran);
    let running = spawn(counting_sleeper(
        fast(Worker::new(client.clone(), &queues))
            .concurrency(2)
            .batch(4),
        &gauge,
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut jobs = Vec::new();
    for name in &names {
        jobs.extend(
            client
                .queue(name)
                .enqueue_many(add_jobs(3, 100))
                .await
                .unwrap(),
        );
    }
    eventually("all 24 ran", || async { ran.load(Ordering::SeqCst) == 24 }).await;
    let stats = running.stop().await;
    assert_eq!(stats.completed, 24);
    assert_eq!(max.load(Ordering::SeqCst), 2, "two at once, and no more");
    for job in jobs {
        let job = job.unwrap();
        let record = job.record().await.unwrap();
        assert_eq!(record.state, JobState::Completed, "{}", record.id);
        assert_eq!(record.attempt, 1, "{}: given back, not failed", record.id);
    }
}

async fn a_time_limit_is_enforced_by_dropping_the_handler(backend: Backend) {
    let (_server, client) = setup(backend).await;
    let queue = client.queue("slow");
    struct Guard(Arc<AtomicUsize>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let dropped = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let (d, f) = (dropped.clone(), finished.clone());
    // The lease is not a time limit: the worker is given one.
    let running = spawn(
        fast(Worker::new(client.clone(), &["slow"]))
            .time_limit(TimeLimit::Fixed(Duration::from_millis(300)))
            .handle_raw("sleep", move |_: (), _| {
                let (d, f) = (d.clone(), f.clone());
                async move {
                    let _guard = Guard(d);
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    f.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
            }),
    );
    let job = queue
        .enqueue_with(
            "sleep",
            &(),
            &EnqueueOptions::new()
                .timeout(Duration::from_secs(30))
                .retries(0),
        )
        .await
        .unwrap();
    eventually("the handler is stopped at its time limit", || async {
        dropped.load(Ordering::SeqCst) == 1
    })
    .await;
    assert_eq!(finished.load(Ordering::SeqCst), 0);
    assert_ne!(job.state().await.unwrap(), Some(JobState::Completed));
    let stats = running.stop().await;
    assert_eq!(stats.failed, 1);
    assert_eq!(stats.completed, 0);
}

async fn worker_survives_a_redis_restart(backend: Backend) {
    let mut server = backend.server_with(Options {
        appendonly: true,
        ..Options::default()
    });
    let client = zrq::Client::connect(&server.url())
        .await
        .unwrap()
        .with_backend(match backend {
            Backend::Module => zrq::Backend::Module,
            Backend::Lua => zrq::Backend::Lua,
        });
    let queue = client.queue("durable");
    let runs = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
    let r = runs.clone();
    let gate = Arc::new(tokio::sync::Notify::new());
    let g = gate.clone();
    let running = spawn(
        fast(Worker::new(client.clone(), &["durable"]))
            .handle_raw("t", move |n: i64, ctx| {
                let r = r.clone();
                async move {
                    *r.lock().unwrap().entry(ctx.id().to_string()).or_default() += 1;
                    Ok(n * 2)
                }
            })
            .handle_raw("hold", move |_: (), _| {
                let g = g.clone();
                async move {
                    g.notified().await;
                    Ok("held through the restart")
                }
            }),
    );
    // A job in flight across the restart: its ACK must get through afterwards.
    let held = queue.enqueue("hold", &()).await.unwrap();
    eventually("the held job runs", || async {
        held.state().await.unwrap() == Some(JobState::Active)
    })
    .await;
    let mut before = Vec::new();
    for i in 0..5 {
        before.push(queue.enqueue("t", &i).await.unwrap());
    }
    for job in &before {
        eventually("jobs before the restart complete", || async {
            job.state().await.ok().flatten() == Some(JobState::Completed)
        })
        .await;
    }
    // The worker is blocked in FETCH on its own connection while the server goes away.
    tokio::task::block_in_place(|| server.restart());
    let mut after = Vec::new();
    for i in 0..5 {
        let mut attempt = 0;
        let job = loop {
            match queue.enqueue("t", &(100 + i)).await {
                Ok(job) => break job,
                Err(e) if e.is_connection() && attempt < 100 => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("enqueue after restart: {e}"),
            }
        };
        after.push(job);
    }
    for job in &after {
        eventually("jobs after the restart complete", || async {
            job.state().await.ok().flatten() == Some(JobState::Completed)
        })
        .await;
        let record = job.record().await.unwrap();
        assert_eq!(record.attempt, 1);
    }
    gate.notify_one();
    let result: String = held.wait(Duration::from_secs(20)).await.unwrap();
    assert_eq!(result, "held through the restart");
    assert_eq!(held.record().await.unwrap().attempt, 1);
    let stats = running.stop().await;
    assert_eq!(stats.completed, 11);
    assert!(runs.lock().unwrap().values().all(|&n| n == 1));
}

async fn hundreds_of_jobs_in_flight_on_one_runtime(backend: Backend) {
    let (_server, client) = setup(backend).await;
    let queue = client.queue("wide");
    // Jobs of 1.5 s: long enough that all 300 slots fill before the first jobs end, even when a
    // loaded machine makes the fetches slow.
    let jobs = add_jobs(600, 1500);
    queue.enqueue_many(jobs).await.unwrap();
    let gauge = Arc::new(Gauge::default());
    let (max, ran) = (&gauge.max, &gauge.ran);
    let started = std::time::Instant::now();
    let running = spawn(counting_sleeper(
        fast(Worker::new(client.clone(), &["wide"]))
            .concurrency(300)
            .batch(100),
        &gauge,
    ));
    eventually("all 600 ran", || async {
        ran.load(Ordering::SeqCst) == 600
    })
    .await;
    let elapsed = started.elapsed();
    assert_eq!(running.stop().await.completed, 600);
    assert_eq!(max.load(Ordering::SeqCst), 300, "300 at once, never more");
    // Serially this is 900 s; 300 at a time, two rounds of 1.5 s plus overhead.
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
}

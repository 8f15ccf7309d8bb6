//! The job lifecycle through the client and worker: failures, retries, dead letters, results,
//! cancellation, progress, heartbeats, delays, priorities, uniqueness, retention, administration.
// Test code fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use tokio::sync::Notify;
use zrq::{CancelOutcome, EnqueueOptions, Error, Every, JobState, TimeLimit, Worker};

both_backends!(
    handler_errors_are_retried_then_dead_and_wait_reports_it,
    panics_timeouts_and_unknown_tasks_fail_with_clear_errors,
    wait_returns_typed_results_and_times_out,
    cancellation_reaches_a_running_handler_and_pending_jobs_never_run,
    heartbeats_keep_a_long_job_beyond_its_lease_and_progress_is_recorded,
    a_cancellation_reaches_the_handler_within_a_second_whatever_the_lease,
    delay_priority_unique_and_keep_reach_the_worker,
    workflows_chain_with_results_and_batch_callback,
);

fn fast(worker: Worker) -> Worker {
    fast_worker(worker, Duration::from_millis(50))
}

const WAIT: Duration = Duration::from_secs(20);

/// A `sum` job waiting on `one` and `two`, with their results.
async fn enqueue_sum(q: &zrq::Queue, one: &zrq::JobHandle, two: &zrq::JobHandle) -> zrq::JobHandle {
    q.enqueue_with(
        "sum",
        &(),
        &EnqueueOptions::new()
            .after(one.id())
            .after(two.id())
            .with_results(),
    )
    .await
    .unwrap()
}

async fn job_failed(result: zrq::Result<serde_json::Value>) -> (String, Option<String>) {
    match result {
        Err(Error::JobFailed { state, error, .. }) => (state, error),
        other => panic!("expected a failed job, got {other:?}"),
    }
}

async fn handler_errors_are_retried_then_dead_and_wait_reports_it(backend: Backend) {
    let (_server, client) = setup(backend).await;
    let q = client.queue("fails");
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let running = spawn(fast(Worker::new(client.clone(), &["fails"])).handle_raw(
        "flaky",
        move |_: (), ctx| {
            let c = c.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(format!("nope on attempt {}", ctx.attempt()).into())
            }
        },
    ));
    let job = q
        .enqueue_with(
            "flaky",
            &(),
            &EnqueueOptions::new()
                .retries(2)
                .backoff(Duration::from_millis(10)),
        )
        .await
        .unwrap();
    let (state, error) = job_failed(job.wait(WAIT).await).await;
    assert_eq!(state, "dead");
    assert_eq!(error.as_deref(), Some("nope on attempt 3"));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let record = job.record().await.unwrap();
    assert_eq!((record.attempt, record.max_attempts), (3, 3));

    // Dead letters: listed, requeued with a fresh budget, deleted.
    let page = q.dead(10, "0").await.unwrap();
    assert_eq!(page.jobs.len(), 1);
    assert_eq!(page.jobs[0].id, job.id());
    assert!(page.is_last());
    assert_eq!(q.info().await.unwrap().get("dead"), 1);
    let stats = running.stop().await;
    assert_eq!(stats.failed, 3);
    assert!(q.requeue(job.id()).await.unwrap());
    assert_eq!(job.state().await.unwrap(), Some(JobState::Pending));
    assert!(q.delete(job.id()).await.unwrap());
    assert_eq!(job.state().await.unwrap(), None);
    assert!(matches!(job.record().await, Err(Error::NoJob { .. })));
    assert!(matches!(
        job.wait::<()>(WAIT).await,
        Err(Error::NoJob { .. })
    ));
}

async fn panics_timeouts_and_unknown_tasks_fail_with_clear_errors(backend: Backend) {
    let (_server, client) = setup(backend).await;
    let q = client.queue("bad");
    // The lease is not a time limit: the worker is given one.
    let running = spawn(
        fast(Worker::new(client.clone(), &["bad"]))
            .time_limit(TimeLimit::Fixed(Duration::from_millis(300)))
            .handle_raw("boom", |_: (), _| async move {
                if true {
                    panic!("boom at {}", 42);
                }
                Ok(())
            })
            .handle_raw("slow", |_: (), _| async move {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok(())
            }),
    );
    let once = EnqueueOptions::new().retries(0);
    let boom = q.enqueue_with("boom", &(), &once).await.unwrap();
    let slow = q
        .enqueue_with(
            "slow",
            &(),
            &once.clone().timeout(Duration::from_millis(300)),
        )
        .await
        .unwrap();
    let mystery = q.enqueue_with("mystery", &(), &once).await.unwrap();

    let (state, error) = job_failed(boom.wait(WAIT).await).await;
    assert_eq!(state, "dead");
    assert_eq!(error.as_deref(), Some("panicked: boom at 42"));
    let (_, error) = job_failed(slow.wait(WAIT).await).await;
    assert_eq!(error.as_deref(), Some("timed out after 300 ms"));
    let (_, error) = job_failed(mystery.wait(WAIT).await).await;
    assert_eq!(
        error.as_deref(),
        Some("unknown task 'mystery': this worker handles boom, slow")
    );
    // The worker is still up and serving.
    let after = q.enqueue_with("boom", &(), &once).await.unwrap();
    assert!(after.wait::<()>(WAIT).await.is_err());
    assert_eq!(running.stop().await.failed, 4);
}

async fn wait_returns_typed_results_and_times_out(backend: Backend) {
    let (_server, client) = setup(backend).await;
    let q = client.queue("results");
    let job = q
        .enqueue_task::<Add>(&AddArgs {
            a: 20,
            b: 22,
            work_ms: 0,
        })
        .await
        .unwrap();
    // No worker yet: the wait times out (inside Redis).
    let err = job
        .wait::<i64>(Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::WaitTimeout(_)), "{err}");
    assert!(job.outcome().await.unwrap().is_none());
    let running = spawn(
        fast(Worker::new(client.clone(), &["results"]))
            .handle::<Add, _, _>(|a, _| async move { Ok(a.a + a.b) }),
    );
    assert_eq!(job.wait::<i64>(WAIT).await.unwrap(), 42);
    // Many at once, on one connection.
    let mut jobs = Vec::new();
    for i in 0..20 {
        let args = AddArgs {
            a: i,
            b: i,
            work_ms: 0,
        };
        jobs.push(q.enqueue_task::<Add>(&args).await.unwrap());
    }
    let mut seen = 0;
    let outcomes = zrq::wait_all(&jobs, WAIT, |_, _| seen += 1).await.unwrap();
    assert_eq!(seen, 20);
    for (i, outcome) in outcomes.into_iter().enumerate() {
        let sum: i64 = outcome.unwrap().into_result("x").unwrap();
        assert_eq!(sum, 2 * i as i64);
    }
    running.stop().await;
}

async fn cancellation_reaches_a_running_handler_and_pending_jobs_never_run(backend: Backend) {
    let (_server, client) = setup(backend).await;
    let q = client.queue("cancel");
    let started = Arc::new(Notify::new());
    let s = started.clone();
    let running = spawn(
        fast(Worker::new(client.clone(), &["cancel"]))
            .concurrency(1)
            .handle_raw("long", move |_: (), ctx| {
                let s = s.clone();
                async move {
                    s.notify_one();
                    ctx.progress(10).await?;
                    ctx.cancelled().await;
                    Err::<(), _>("stopped: cancelled".into())
                }
            }),
    );
    let long = q
        .enqueue_with(
            "long",
            &(),
            &EnqueueOptions::new().timeout(Duration::from_millis(600)),
        )
        .await
        .unwrap();
    started.notified().await;
    assert_eq!(long.cancel().await.unwrap(), CancelOutcome::Requested);
    let (state, _) = job_failed(long.wait(WAIT).await).await;
    assert_eq!(state, "cancelled");

    // A job waiting behind it: cancelled at once, never delivered.
    q.pause().await.unwrap();
    let waiting = q.enqueue("long", &()).await.unwrap();
    assert_eq!(waiting.cancel().await.unwrap(), CancelOutcome::Cancelled);
    assert_eq!(
        waiting.cancel().await.unwrap(),
        CancelOutcome::NotCancellable
    );
    q.resume().await.unwrap();
    let (state, _) = job_failed(waiting.wait(WAIT).await).await;
    assert_eq!(state, "cancelled");
    assert_eq!(waiting.record().await.unwrap().attempt, 0);
    running.stop().await;
}

async fn heartbeats_keep_a_long_job_beyond_its_lease_and_progress_is_recorded(backend: Backend) {
    let (_server, client) = setup(backend).await;
    let q = client.queue("long");
    let release = Arc::new(Notify::new());
    let runs = Arc::new(AtomicUsize::new(0));
    let (r, n) = (release.clone(), runs.clone());
    // Lease 1 s, work 3 s, no time limit set (the default): the lease is not a time limit, and
    // only the heartbeats keep the server (or another worker, which reclaims every 50 ms) from
    // taking the job back.
    let make = |client: zrq::Client| {
        let (r, n) = (r.clone(), n.clone());
        fast(Worker::new(client, &["long"])).handle_raw("work", move |_: (), ctx| {
            let (r, n) = (r.clone(), n.clone());
            async move {
                n.fetch_add(1, Ordering::SeqCst);
                ctx.progress(50).await?;
                r.notified().await;
                Ok("done")
            }
        })
    };
    let first = spawn(make(client.clone()));
    let job = q
        .enqueue_with(
            "work",
            &(),
            &EnqueueOptions::new().timeout(Duration::from_millis(1000)),
        )
        .await
        .unwrap();
    eventually("progress 50 is recorded", || async {
        job.record()
            .await
            .unwrap()
            .extra
            .get("progress")
            .map(String::as_str)
            == Some("50")
    })
    .await;
    let second = spawn(make(client.clone()));
    tokio::time::sleep(Duration::from_millis(3000)).await; // three leases long
    release.notify_one();
    assert_eq!(job.wait::<String>(WAIT).await.unwrap(), "done");
    assert_eq!(runs.load(Ordering::SeqCst), 1, "never reclaimed");
    assert_eq!(job.record().await.unwrap().attempt, 1);
    first.stop().await;
    second.stop().await;
}

async fn a_cancellation_reaches_the_handler_within_a_second_whatever_the_lease(backend: Backend) {
    let (_server, client) = setup(backend).await;
    let q = client.queue("cancel2");
    let started = Arc::new(Notify::new());
    let s = started.clone();
    let running = spawn(fast(Worker::new(client.clone(), &["cancel2"])).handle_raw(
        "wait",
        move |_: (), ctx| {
            let s = s.clone();
            async move {
                s.notify_one();
                ctx.cancelled().await;
                Err::<(), _>("stopped: cancelled".into())
            }
        },
    ));
    // A one-minute lease: a heartbeat every third of it would learn of the cancellation 20 s late;
    // one at least every second learns of it within about a second (10 s: margin for a loaded
    // machine, still half of the 20 s a slow heartbeat would take).
    let job = q
        .enqueue_with(
            "wait",
            &(),
            &EnqueueOptions::new().timeout(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    started.notified().await;
    let asked = std::time::Instant::now();
    assert_eq!(job.cancel().await.unwrap(), CancelOutcome::Requested);
    let (state, _) = job_failed(job.wait(WAIT).await).await;
    let took = asked.elapsed();
    assert_eq!(state, "cancelled");
    assert!(
        took < Duration::from_secs(10),
        "the handler learned of the cancellation after {took:?}"
    );
    running.stop().await;
}

async fn delay_priority_unique_and_keep_reach_the_worker(backend: Backend) {
    let (_server, client) = setup(backend).await;
    let q = client.queue("opts2");
    // Priorities: queued before the worker starts, run one at a time.
    for i in 0..3 {
        q.enqueue("t", &format!("p0-{i}")).await.unwrap();
    }
    for i in 0..3 {
        q.enqueue_with("t", &format!("p9-{i}"), &EnqueueOptions::new().priority(9))
            .await
            .unwrap();
    }
    // UNIQUE: the second enqueue returns the first job.
    let u1 = q
        .enqueue_with("t", &"u", &EnqueueOptions::new().unique("k1"))
        .await
        .unwrap();
    let u2 = q
        .enqueue_with("t", &"u2", &EnqueueOptions::new().unique("k1"))
        .await
        .unwrap();
    assert_eq!(u1.id(), u2.id());
    // DELAY: scheduled until due.
    let delayed = q
        .enqueue_with(
            "t",
            &"delayed",
            &EnqueueOptions::new().delay(Duration::from_millis(400)),
        )
        .await
        .unwrap();
    assert_eq!(delayed.state().await.unwrap(), Some(JobState::Scheduled));
    let at = std::time::SystemTime::now() + Duration::from_millis(400);
    let timed = q
        .enqueue_with("t", &"timed", &EnqueueOptions::new().at(at))
        .await
        .unwrap();
    assert_eq!(timed.state().await.unwrap(), Some(JobState::Scheduled));
    // KEEP: the finished job vanishes after 200 ms.
    let kept = q
        .enqueue_with(
            "t",
            &"kept",
            &EnqueueOptions::new().keep(Duration::from_millis(200)),
        )
        .await
        .unwrap();

    let order = Arc::new(Mutex::new(Vec::new()));
    let o = order.clone();
    let running = spawn(
        fast(Worker::new(client.clone(), &["opts2"]))
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
    delayed.wait::<()>(WAIT).await.unwrap();
    let record = delayed.record().await.unwrap();
    assert!(
        record.started_at.unwrap() - record.created_at.unwrap() >= 400,
        "{record:?}"
    );
    timed.wait::<()>(WAIT).await.unwrap();
    let record = timed.record().await.unwrap();
    let at_ms = at
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!(record.started_at.unwrap() >= at_ms, "{record:?}");
    eventually("the kept job vanishes", || async {
        kept.state().await.unwrap().is_none()
    })
    .await;
    running.stop().await;
    let order = order.lock().unwrap().clone();
    assert!(
        order[..3].iter().all(|n| n.starts_with("p9")),
        "priority 9 first: {order:?}"
    );
    assert_eq!(order.iter().filter(|n| n.starts_with('u')).count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administration_info_queues_list_pause_schedules() {
    let (_server, client) = setup(Backend::Module).await;
    let q = client.queue("admin");
    for i in 0..3 {
        q.enqueue("t", &i).await.unwrap();
    }
    client.queue("other").enqueue("t", &0).await.unwrap();
    assert_eq!(client.queues().await.unwrap(), vec!["admin", "other"]);
    let info = q.info().await.unwrap();
    assert_eq!(info.get("pending"), 3);
    assert_eq!(info.get("total_enqueued"), 3);
    assert!(!info.paused());
    q.pause().await.unwrap();
    assert!(q.info().await.unwrap().paused());
    q.resume().await.unwrap();
    let page = q.list("pending", 2, "0").await.unwrap();
    assert_eq!(page.jobs.len(), 2);
    assert!(!page.is_last());
    let rest = q.list("pending", 2, &page.cursor).await.unwrap();
    assert_eq!(rest.jobs.len(), 1);
    assert_eq!(q.list_all("pending").await.unwrap().len(), 3);

    let first = q
        .schedule(
            "tick",
            &Every::Interval(Duration::from_secs(3600)),
            "t",
            &"tick",
            &EnqueueOptions::new().priority(3),
        )
        .await
        .unwrap();
    assert!(first > 0);
    let schedules = q.schedules().await.unwrap();
    assert_eq!(schedules.len(), 1);
    assert_eq!(schedules[0].get("name"), Some("tick"));
    assert_eq!(schedules[0].get("every"), Some("3600000"));
    assert!(q.unschedule("tick").await.unwrap());
    assert!(!q.unschedule("tick").await.unwrap());
    assert!(q.schedules().await.unwrap().is_empty());
}

/// A tick's job names its schedule: in a listing's records and in the job's own record. (Both
/// backends store it alike: tests/tests/schedules.rs; here the client's reading of it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticks_job_record_names_its_schedule() {
    let (_server, client) = setup(Backend::Module).await;
    let q = client.queue("ticked");
    let plain = q.enqueue("t", &0).await.unwrap();
    q.schedule(
        "every-second",
        &Every::Interval(Duration::from_secs(1)),
        "t",
        &"tick",
        &EnqueueOptions::new(),
    )
    .await
    .unwrap();
    let mut ticked = None;
    for _ in 0..100 {
        let page = q.list("pending", 10, "0").await.unwrap();
        ticked = page.jobs.into_iter().find(|j| j.id != plain.id());
        if ticked.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ticked = ticked.expect("the first tick's job within 10 s");
    assert_eq!(ticked.schedule(), Some("every-second"));
    let record = q.job(&ticked.id).record().await.unwrap();
    assert_eq!(record.schedule(), Some("every-second"));
    assert_eq!(plain.record().await.unwrap().schedule(), None);
    assert!(q.unschedule("every-second").await.unwrap());
}

async fn workflows_chain_with_results_and_batch_callback(backend: Backend) {
    let (_server, client) = setup(backend).await;
    let q = client.queue("flow");
    let seen_parents = Arc::new(Mutex::new(None));
    let callback = Arc::new(Mutex::new(None));
    let (p, c) = (seen_parents.clone(), callback.clone());
    let running = spawn(
        fast(Worker::new(client.clone(), &["flow"]))
            .handle::<Add, _, _>(|a, _| async move { Ok(a.a + a.b) })
            .handle_raw("sum", move |_: (), ctx| {
                let p = p.clone();
                async move {
                    let parents = ctx.job().parents()?;
                    let total: i64 = parents.values().filter_map(|v| v.as_i64()).sum();
                    *p.lock().unwrap() = Some(parents);
                    Ok(total)
                }
            })
            .handle_raw("done", move |report: serde_json::Value, _| {
                let c = c.clone();
                async move {
                    *c.lock().unwrap() = Some(report);
                    Ok(())
                }
            }),
    );
    // Chain: two parents, then a child that sums their results. The queue is paused until the
    // child exists, so the parents complete after it (the test below covers parents that
    // completed before).
    let args = |a, b| AddArgs { a, b, work_ms: 0 };
    q.pause().await.unwrap();
    let one = q.enqueue_task::<Add>(&args(1, 2)).await.unwrap();
    let two = q.enqueue_task::<Add>(&args(3, 4)).await.unwrap();
    let child = enqueue_sum(&q, &one, &two).await;
    assert_eq!(child.state().await.unwrap(), Some(JobState::Waiting));
    q.resume().await.unwrap();
    let sum = child.wait::<i64>(WAIT).await.unwrap();
    let parents = seen_parents.lock().unwrap().clone().unwrap();
    assert_eq!(
        sum,
        10,
        "parents seen: {parents:?}; child: {:?}",
        child.record().await.unwrap()
    );
    assert_eq!(parents.len(), 2);
    assert_eq!(parents[one.id()], 3);

    // Batch: members and a callback that runs once, after all of them.
    let mut batch = zrq::Batch::new("b1")
        .retries(0)
        .on_complete("done", &"all added")
        .unwrap();
    for i in 0..5 {
        batch = batch.task::<Add>(&args(i, i)).unwrap();
    }
    let members = q.batch(&batch).await.unwrap();
    assert_eq!(members.len(), 5);
    assert_eq!(members[0].record().await.unwrap().batch(), Some("b1"));
    let err = q.batch(&batch).await.unwrap_err();
    assert_eq!(
        err.code(),
        Some("ERR"),
        "an existing batch id is refused: {err}"
    );
    eventually("the callback ran", || async {
        callback.lock().unwrap().is_some()
    })
    .await;
    let report = callback.lock().unwrap().clone().unwrap();
    assert_eq!(report["batch"], "b1");
    assert_eq!(report["succeeded"], 5);
    assert_eq!(report["payload"], "all added");
    let info = q.batch_info("b1").await.unwrap().unwrap();
    assert_eq!(
        (info.total, info.done, info.succeeded, info.failed),
        (5, 5, 5, 0)
    );
    assert!(info.callback_id.is_some());
    assert!(q.batch_info("nope").await.unwrap().is_none());
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_results_of_parents_completed_before_the_child() {
    let (_server, client) = setup(Backend::Module).await;
    let q = client.queue("flow2");
    let running = spawn(
        fast(Worker::new(client.clone(), &["flow2"]))
            .handle_raw("n", |n: i64, _| async move { Ok(n) }),
    );
    let one = q.enqueue("n", &3).await.unwrap();
    let two = q.enqueue("n", &7).await.unwrap();
    one.wait::<i64>(WAIT).await.unwrap();
    two.wait::<i64>(WAIT).await.unwrap();
    running.stop().await;
    let child = enqueue_sum(&q, &one, &two).await;
    let parents = child.record().await.unwrap().parents().unwrap();
    assert_eq!(parents[one.id()], 3, "{parents:?}");
    assert_eq!(parents[two.id()], 7, "{parents:?}");
}

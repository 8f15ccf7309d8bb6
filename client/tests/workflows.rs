//! Workflows through the client, on both backends: chains (each step sees the previous result),
//! groups with a callback (ZRQ.BATCH … ON-COMPLETE) and `after`.
// Test code fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde::{Deserialize, Serialize};
use zrq::{BatchOutcome, EnqueueOptions, JobState, NewJob, Task, Worker};

const WAIT: Duration = Duration::from_secs(30);

/// Step 1: a number, plus one.
struct Start;
impl Task for Start {
    const NAME: &'static str = "start";
    type Args = i64;
    type Output = i64;
}

/// Step 2: the previous result times `factor`.
struct Times;
impl Task for Times {
    const NAME: &'static str = "times";
    type Args = i64;
    type Output = i64;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Summary {
    seen: i64,
    label: String,
}

/// Step 3: the previous result, described.
struct Describe;
impl Task for Describe {
    const NAME: &'static str = "describe";
    type Args = String;
    type Output = Summary;
}

async fn chain_of_three_each_step_sees_the_previous_result(backend: Backend) {
    let (_server, client) = setup(backend).await;
    let queue = client.queue("chain");
    let steps = queue
        .chain(&zrq::chain([
            NewJob::of::<Start>(&4).unwrap(),
            NewJob::of::<Times>(&10).unwrap(),
            NewJob::of::<Describe>(&"total".to_string()).unwrap(),
        ]))
        .await
        .unwrap();
    assert_eq!(steps.len(), 3);
    // Nothing runs yet: the first step is pending, the others wait for their parent.
    let states: Vec<_> = futures::future::join_all(steps.iter().map(|s| s.state())).await;
    let states: Vec<_> = states.into_iter().map(|s| s.unwrap().unwrap()).collect();
    assert_eq!(
        states,
        [JobState::Pending, JobState::Waiting, JobState::Waiting]
    );
    let running = spawn(
        Worker::new(client.clone(), &["chain"])
            .block(Duration::from_millis(300))
            .handle::<Start, _, _>(|n, ctx| async move {
                // The first step has no parent results.
                assert!(matches!(
                    ctx.parent_result::<i64>(),
                    Err(zrq::Error::Parents(_))
                ));
                Ok(n + 1)
            })
            .handle::<Times, _, _>(|factor, ctx| async move {
                let previous: i64 = ctx.parent_result()?;
                Ok(previous * factor)
            })
            .handle::<Describe, _, _>(|label, ctx| async move {
                Ok(Summary {
                    seen: ctx.parent_result()?,
                    label,
                })
            }),
    );
    let last = steps[2].wait::<Summary>(WAIT).await.unwrap();
    assert_eq!(
        last,
        Summary {
            seen: 50,
            label: "total".into()
        }
    );
    assert_eq!(steps[0].wait::<i64>(WAIT).await.unwrap(), 5);
    assert_eq!(steps[1].wait::<i64>(WAIT).await.unwrap(), 50);
    // Each step recorded exactly its predecessor's result.
    let second = steps[1].record().await.unwrap();
    assert_eq!(
        second.parents().unwrap(),
        serde_json::json!({ steps[0].id(): 5 })
            .as_object()
            .unwrap()
            .clone()
    );
    let third = steps[2].record().await.unwrap();
    assert_eq!(
        third.parents().unwrap(),
        serde_json::json!({ steps[1].id(): 50 })
            .as_object()
            .unwrap()
            .clone()
    );
    let stats = running.stop().await;
    assert_eq!((stats.completed, stats.failed), (3, 0));
}

async fn a_failed_step_cancels_the_rest_of_the_chain(backend: Backend) {
    let (_server, client) = setup(backend).await;
    let queue = client.queue("chainfail");
    let steps = queue
        .chain(&zrq::chain([
            NewJob::of::<Start>(&1)
                .unwrap()
                .options(EnqueueOptions::new().retries(0)),
            NewJob::of::<Times>(&2).unwrap(),
        ]))
        .await
        .unwrap();
    let running = spawn(
        Worker::new(client.clone(), &["chainfail"])
            .block(Duration::from_millis(300))
            .handle::<Start, _, _>(|_, _| async move { Err::<i64, _>("boom".into()) })
            .handle::<Times, _, _>(|_, _| async move { Ok(0) }),
    );
    match steps[1].wait::<i64>(WAIT).await {
        Err(zrq::Error::JobFailed { state, .. }) => assert_eq!(state, "cancelled"),
        other => panic!("expected the second step cancelled, got {other:?}"),
    }
    assert_eq!(steps[0].state().await.unwrap(), Some(JobState::Dead));
    let stats = running.stop().await;
    assert_eq!((stats.completed, stats.failed), (0, 1));
}

/// A group member: fails when `fail` is set.
struct Member;
impl Task for Member {
    const NAME: &'static str = "member";
    type Args = (u32, bool);
    type Output = u32;
}

/// The group's callback.
struct Report;
impl Task for Report {
    const NAME: &'static str = "report";
    type Args = BatchOutcome<String>;
    type Output = String;
}

async fn group_of_fifty_then_callback_exactly_once(backend: Backend) {
    let (_server, client) = setup(backend).await;
    let queue = client.queue("fan");
    let members: Vec<NewJob> = (0..50)
        .map(|i| NewJob::of::<Member>(&(i, i % 10 == 0)).unwrap())
        .collect();
    let group = zrq::group(members)
        .retries(0)
        .then::<Report, _>(&"album".to_string())
        .unwrap();
    let handles = queue.batch(&group).await.unwrap();
    assert_eq!(handles.len(), 50);
    let calls: Arc<Mutex<Vec<BatchOutcome<String>>>> = Arc::default();
    // Two workers acknowledge concurrently; the callback must still come exactly once.
    let worker = |calls: Arc<Mutex<Vec<BatchOutcome<String>>>>| {
        spawn(
            Worker::new(client.clone(), &["fan"])
                .concurrency(8)
                .batch(4)
                .block(Duration::from_millis(300))
                .handle::<Member, _, _>(|(i, fail), _| async move {
                    if fail {
                        Err(format!("member {i} fails").into())
                    } else {
                        Ok(i)
                    }
                })
                .handle::<Report, _, _>(move |outcome, _| {
                    let calls = calls.clone();
                    async move {
                        let text = format!(
                            "{}: {}/{}",
                            outcome.payload, outcome.succeeded, outcome.failed
                        );
                        calls.lock().unwrap().push(outcome);
                        Ok(text)
                    }
                }),
        )
    };
    let workers = [worker(calls.clone()), worker(calls.clone())];
    let mut updates = Vec::new();
    let info = queue
        .wait_batch(group.id(), WAIT, |info| updates.push(info.done))
        .await
        .unwrap();
    assert_eq!((info.total, info.done), (50, 50));
    assert_eq!((info.succeeded, info.failed), (45, 5));
    assert!(updates.windows(2).all(|w| w[0] < w[1]), "{updates:?}");
    assert_eq!(updates.last(), Some(&50));
    let callback = queue.job(info.callback_id.as_deref().expect("callback id"));
    assert_eq!(callback.wait::<String>(WAIT).await.unwrap(), "album: 45/5");
    let [one, two] = workers;
    let (one, two) = (one.stop().await, two.stop().await);
    assert_eq!(
        (one.completed + two.completed, one.failed + two.failed),
        (46, 5)
    );
    let calls = calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        [BatchOutcome {
            batch: group.id().to_string(),
            succeeded: 45,
            failed: 5,
            payload: "album".to_string(),
        }]
    );
    // Exactly one callback job exists: 45 members and the callback completed, nothing else left.
    let q = queue.info().await.unwrap();
    assert_eq!(q.get("completed"), 46);
    assert_eq!(q.get("dead"), 5);
    assert_eq!(q.get("pending") + q.get("waiting") + q.get("active"), 0);
}

async fn group_members_cannot_carry_options_of_their_own(backend: Backend) {
    let (_server, client) = setup(backend).await;
    let group = zrq::group([NewJob::of::<Member>(&(1, false))
        .unwrap()
        .options(EnqueueOptions::new().priority(5))]);
    match client.queue("fan").batch(&group).await {
        Err(zrq::Error::Config(message)) => assert!(message.contains("PRIORITY"), "{message}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(client
        .queue("fan")
        .batch_info(group.id())
        .await
        .unwrap()
        .is_none());
}

async fn after_a_job_handle(backend: Backend) {
    let (_server, client) = setup(backend).await;
    let queue = client.queue("after");
    let parent = queue.enqueue_task::<Start>(&1).await.unwrap();
    let child = queue
        .enqueue_task_with::<Times>(&3, &EnqueueOptions::new().after(&parent))
        .await
        .unwrap();
    let grandchild = queue
        .enqueue_task_with::<Times>(&7, &EnqueueOptions::new().after(&child).with_results())
        .await
        .unwrap();
    assert_eq!(child.state().await.unwrap(), Some(JobState::Waiting));
    assert_eq!(grandchild.state().await.unwrap(), Some(JobState::Waiting));
    let running = spawn(
        Worker::new(client.clone(), &["after"])
            .block(Duration::from_millis(300))
            .handle::<Start, _, _>(|n, _| async move { Ok(n) })
            .handle::<Times, _, _>(|factor, ctx| async move {
                // Without WITHRESULTS the parent is listed without its result.
                let previous: Option<i64> = ctx.parent_result()?;
                Ok(previous.unwrap_or(1) * factor)
            }),
    );
    assert_eq!(grandchild.wait::<i64>(WAIT).await.unwrap(), 21);
    let parent = parent.record().await.unwrap();
    let child = child.record().await.unwrap();
    assert!(child.started_at.unwrap() >= parent.finished_at.unwrap());
    assert_eq!(child.result.as_deref(), Some("3"));
    running.stop().await;
}

/// Sums the results of all its parents.
struct Sum;
impl Task for Sum {
    const NAME: &'static str = "sum";
    type Args = ();
    type Output = i64;
}

async fn several_parents_are_read_with_parents(backend: Backend) {
    let (_server, client) = setup(backend).await;
    let queue = client.queue("join");
    let a = queue.enqueue_task::<Start>(&1).await.unwrap();
    let b = queue.enqueue_task::<Start>(&10).await.unwrap();
    let options = EnqueueOptions::new().after(&a).after(b.id()).with_results();
    let sum = queue.enqueue_task_with::<Sum>(&(), &options).await.unwrap();
    let running = spawn(
        Worker::new(client.clone(), &["join"])
            .block(Duration::from_millis(300))
            .handle::<Start, _, _>(|n, _| async move { Ok(n + 1) })
            .handle::<Sum, _, _>(|(), ctx| async move {
                // Two parents: the one-parent accessor refuses, parents() has both.
                if !matches!(ctx.parent_result::<i64>(), Err(zrq::Error::Parents(_))) {
                    return Err("parent_result should refuse two parents".into());
                }
                let parents = ctx.parents()?;
                Ok(parents.values().filter_map(|v| v.as_i64()).sum())
            }),
    );
    assert_eq!(sum.wait::<i64>(WAIT).await.unwrap(), 13);
    running.stop().await;
}

both_backends!(
    chain_of_three_each_step_sees_the_previous_result,
    a_failed_step_cancels_the_rest_of_the_chain,
    group_of_fifty_then_callback_exactly_once,
    group_members_cannot_carry_options_of_their_own,
    after_a_job_handle,
    several_parents_are_read_with_parents,
);

//! Redis SIGKILLed under load, with `appendonly yes` and `appendfsync always`: producers and
//! workers keep running through three crashes. After each restart every job whose ENQUEUE was
//! answered is there and every job whose ACK was answered is still completed; in the end every
//! answered job completes and the audit passes.
// Test code fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use zrq::{Client, EnqueueOptions, JobRecord};
use zrq_chaos::ChaosArgs;
use zrq_tests::audit::assert_consistent;
use zrq_tests::redis::Value;
use zrq_tests::{Backend, Options};

const Q: &str = "crash";
const CRASHES: usize = 3;
/// Jobs answered between two crashes, at least.
const BETWEEN_CRASHES: usize = 300;
const LEASE: Duration = Duration::from_millis(1000);

/// What the clients were told: answered ENQUEUEs and ACKs that replied 1.
#[derive(Default)]
struct Told {
    enqueued: Mutex<Vec<String>>,
    acked: Mutex<Vec<String>>,
    stop_producing: AtomicBool,
    stop_working: AtomicBool,
}

impl Told {
    fn enqueued(&self) -> BTreeSet<String> {
        self.enqueued.lock().unwrap().iter().cloned().collect()
    }

    fn acked(&self) -> BTreeSet<String> {
        self.acked.lock().unwrap().iter().cloned().collect()
    }
}

/// Enqueues jobs `p<producer>-<n>` one after the other; a failed ENQUEUE (the server is down)
/// is sent again with the same id until answered, which `ID` makes safe. One job in ten is
/// delayed, so the timer's plan must survive the crashes too.
async fn produce(client: Client, producer: usize, told: Arc<Told>) {
    let queue = client.queue(Q);
    for n in 0u64.. {
        let id = format!("p{producer}-{n}");
        let mut options = EnqueueOptions::new().id(&id).timeout(LEASE).retries(10);
        if n.is_multiple_of(10) {
            options = options.delay(Duration::from_millis(300));
        }
        let args = ChaosArgs {
            fail_first: 0,
            work_ms: 0,
        };
        loop {
            if told.stop_producing.load(Ordering::Relaxed) {
                return;
            }
            if queue.enqueue_with("chaos", &args, &options).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        told.enqueued.lock().unwrap().push(id);
    }
}

/// A worker speaking the protocol directly, to know exactly which ACKs were answered: FETCH,
/// ACK each job, and RECLAIM every 300 ms the jobs whose ACK a crash swallowed.
async fn work(client: Client, worker: usize, told: Arc<Told>) {
    let consumer = format!("w{worker}");
    let mut round = 0u64;
    while !told.stop_working.load(Ordering::Relaxed) {
        round += 1;
        let verb = if round.is_multiple_of(30) {
            "reclaim"
        } else {
            "fetch"
        };
        let jobs = match client
            .call(verb, Some(Q), &[&consumer, "COUNT", "10"])
            .await
        {
            Ok(reply) => JobRecord::list(reply).unwrap(),
            Err(_) => Vec::new(),
        };
        if jobs.is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for job in jobs {
            if let Ok(Value::Int(1)) = client.call("ack", Some(Q), &[&job.id]).await {
                told.acked.lock().unwrap().push(job.id);
            }
        }
    }
}

/// Waits until `told` has at least `count` answered enqueues.
async fn answered_at_least(told: &Told, count: usize) {
    for _ in 0..1200 {
        if told.enqueued.lock().unwrap().len() >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {count} enqueues answered after 60 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_under_load_keeps_every_answered_enqueue_and_ack() {
    let mut server = Backend::Module.server_with(Options {
        appendonly: true,
        ..Options::default()
    });
    let client = Client::connect(&server.url()).await.unwrap();
    let told = Arc::new(Told::default());
    let mut tasks = Vec::new();
    for i in 0..2 {
        tasks.push(tokio::spawn(produce(client.clone(), i, told.clone())));
        tasks.push(tokio::spawn(work(client.clone(), i, told.clone())));
    }
    for crash in 1..=CRASHES {
        answered_at_least(&told, crash * BETWEEN_CRASHES).await;
        // Everything told before the kill must be there after it.
        let (enqueued, acked) = (told.enqueued(), told.acked());
        tokio::task::block_in_place(|| server.crash_and_restart());
        let mut conn = server.conn();
        let found = outcomes(&mut conn, Q, enqueued.union(&acked));
        let lost: Vec<&String> = enqueued
            .iter()
            .filter(|id| !found.contains_key(*id))
            .collect();
        assert!(
            lost.is_empty(),
            "crash {crash}: answered enqueues lost: {lost:?}"
        );
        let undone: Vec<(&String, Option<&Outcome>)> = acked
            .iter()
            .map(|id| (id, found.get(id)))
            .filter(|(_, o)| o.is_none_or(|o| o.state != "completed"))
            .collect();
        assert!(
            undone.is_empty(),
            "crash {crash}: answered ACKs undone: {undone:?}"
        );
        // The clients are still running: the audit reads one consistent instant anyway.
        assert_consistent(&mut conn, Backend::Module, Q, Some(&enqueued));
        eprintln!(
            "crash {crash}: {} answered enqueues and {} answered ACKs survived",
            enqueued.len(),
            acked.len()
        );
    }
    told.stop_producing.store(true, Ordering::Relaxed);
    let enqueued = told.enqueued();
    let mut conn = server.conn();
    tokio::task::block_in_place(|| {
        wait_until(
            "every answered job completes",
            Duration::from_secs(60),
            || {
                let found = outcomes(&mut conn, Q, &enqueued);
                found.len() == enqueued.len() && found.values().all(|o| o.state == "completed")
            },
        )
    });
    told.stop_working.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    let report = assert_consistent(&mut conn, Backend::Module, Q, Some(&enqueued));
    assert!(report.info("total_completed") >= enqueued.len() as i64);
    let acked = told.acked();
    let finals = outcomes(&mut conn, Q, &acked);
    assert!(
        acked.iter().all(|id| finals[id].state == "completed"),
        "every answered ACK stays completed"
    );
}

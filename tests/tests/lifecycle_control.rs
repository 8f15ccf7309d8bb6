//! Leases, results and control: TOUCH, CANCEL, RESULT, UNIQUE, PRIORITY, PAUSE/RESUME, retention
//! TTLs; visibility: INFO, QUEUES, LIST paging, and the per-queue Pub/Sub channel.

use crate::support;

use std::time::Duration;

use lifecycle_support::{
    field, info, info_int, int, list, list_all, ok, placement, show, show_jobs, wait_until,
};
use support::lifecycle as lifecycle_support;
use zrq_tests::redis::{self, Value};
use zrq_tests::{conformance, map, Backend, Server, Zrq};

const Q: &str = "cq";

fn lease_deadline(server: &Server, queue: &str, id: &str) -> Option<i64> {
    redis::cmd("ZSCORE")
        .arg(format!("zrq:{{{queue}}}:active"))
        .arg(id)
        .query::<Option<i64>>(&mut server.conn())
        .expect("ZSCORE")
}

fn touch_extends_the_lease_and_records_progress(backend: Backend) {
    let server = backend.server();
    server.leave_leases_to_reclaim();
    let mut zrq = server.zrq(backend);
    // A lease of 2 s, touched after 1.2 s and checked 1.2 s later: margins of 0.8 s, so a loaded
    // machine's pauses do not decide the outcome.
    let id = zrq.enqueue(Q, "t", "{}", &["TIMEOUT", "2000"]);
    assert_eq!(zrq.fetch(Q, "w1", 1).len(), 1);
    let started: i64 = field(&mut zrq, Q, &id, "started_at").parse().unwrap();
    assert_eq!(lease_deadline(&server, Q, &id), Some(started + 2000));
    std::thread::sleep(Duration::from_millis(1200));
    let before = lifecycle_support::now_ms();
    assert_eq!(int(&mut zrq, "touch", &[Q, &id, "PROGRESS", "42"]), 1);
    let after = lifecycle_support::now_ms();
    let deadline = lease_deadline(&server, Q, &id).expect("still leased");
    assert!(
        (before + 2000..=after + 2000).contains(&deadline),
        "the lease restarts from now"
    );
    assert_eq!(field(&mut zrq, Q, &id, "progress"), "42");
    // Past the original deadline, the job is not reclaimable.
    std::thread::sleep(Duration::from_millis(1200));
    assert!(lifecycle_support::now_ms() > started + 2000);
    assert_eq!(show_jobs(ok(&mut zrq, "reclaim", &[Q, "w2"])), "jobs:[]");
    assert_eq!(field(&mut zrq, Q, &id, "consumer"), "w1");
    // TIMEOUT changes the lease length and the job's timeout; PROGRESS 0 and 100 are accepted.
    assert_eq!(
        int(
            &mut zrq,
            "touch",
            &[Q, &id, "TIMEOUT", "60000", "PROGRESS", "100"]
        ),
        1
    );
    assert_eq!(field(&mut zrq, Q, &id, "timeout"), "60000");
    assert_eq!(field(&mut zrq, Q, &id, "progress"), "100");
    assert_eq!(int(&mut zrq, "touch", &[Q, &id, "progress", "0"]), 1);
    assert_eq!(field(&mut zrq, Q, &id, "progress"), "0");
    assert_eq!(int(&mut zrq, "touch", &[Q, &id]), 1, "a bare heartbeat");
    // A lease that was let run out can be taken over.
    let id2 = zrq.enqueue(Q, "t", "{}", &["TIMEOUT", "50"]);
    assert_eq!(zrq.fetch(Q, "w1", 1)[0]["id"], id2);
    std::thread::sleep(Duration::from_millis(80));
    assert_eq!(
        show_jobs(ok(&mut zrq, "reclaim", &[Q, "w2"])),
        format!("jobs:[{id2}]")
    );
    assert_eq!(field(&mut zrq, Q, &id2, "consumer"), "w2");
}

fn cancel_reaches_the_worker_through_touch_and_ack(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let id = zrq.enqueue(Q, "t", "{}", &[]);
    assert_eq!(zrq.fetch(Q, "w", 1).len(), 1);
    let deadline = lease_deadline(&server, Q, &id);
    assert_eq!(
        int(&mut zrq, "cancel", &[Q, &id]),
        2,
        "running: cancellation requested"
    );
    assert_eq!(
        int(&mut zrq, "cancel", &[Q, &id]),
        2,
        "asking twice is the same"
    );
    assert_eq!(zrq.state(Q, &id).as_deref(), Some("active"));
    assert_eq!(int(&mut zrq, "touch", &[Q, &id, "PROGRESS", "50"]), -1);
    assert_eq!(
        lease_deadline(&server, Q, &id),
        deadline,
        "the lease is not extended"
    );
    assert_eq!(int(&mut zrq, "ack", &[Q, &id, "RESULT", "1"]), -1);
    assert_eq!(zrq.state(Q, &id).as_deref(), Some("cancelled"));
    assert_eq!(int(&mut zrq, "touch", &[Q, &id]), 0, "finished");
    let result = map(ok(&mut zrq, "result", &[Q, &id]));
    assert_eq!(result["state"], "cancelled");
    let stats = info(&mut zrq, Q);
    assert_eq!(stats["total_cancelled"], "1");
    assert_eq!(stats["total_completed"], "0");
    assert_eq!(stats["cancelled"], "1");
    // Cancelled jobs are never delivered.
    let ids: Vec<String> = (0..3).map(|_| zrq.enqueue(Q, "t", "{}", &[])).collect();
    let later = zrq.enqueue(Q, "t", "{}", &["DELAY", "600000"]);
    for id in ids.iter().chain([&later]) {
        assert_eq!(int(&mut zrq, "cancel", &[Q, id]), 1);
    }
    assert!(zrq.fetch(Q, "w", 10).is_empty());
    assert_eq!(info_int(&mut zrq, Q, "pending"), 0);
    assert_eq!(info_int(&mut zrq, Q, "scheduled"), 0);
}

fn result_answers_once_the_job_has_finished(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let err = zrq
        .call::<Value>("result", &[Q, "ghost"])
        .expect_err("unknown");
    assert_eq!(
        error_text(&err),
        "NOJOB no job 'ghost' in queue 'cq'",
        "the documented error"
    );
    let id = zrq.enqueue(Q, "t", "{}", &["RETRIES", "1"]);
    let later = zrq.enqueue(Q, "t", "{}", &["DELAY", "600000"]);
    assert_eq!(ok(&mut zrq, "result", &[Q, &id]), Value::Nil, "pending");
    assert_eq!(
        ok(&mut zrq, "result", &[Q, &later]),
        Value::Nil,
        "scheduled"
    );
    zrq.fetch(Q, "w", 1);
    assert_eq!(ok(&mut zrq, "result", &[Q, &id]), Value::Nil, "active");
    ok(&mut zrq, "fail", &[Q, &id, "e", "RETRYIN", "600000"]);
    assert_eq!(ok(&mut zrq, "result", &[Q, &id]), Value::Nil, "retrying");

    let done = zrq.enqueue(Q, "t", "{}", &["PRIORITY", "9"]);
    assert_eq!(zrq.fetch(Q, "w", 1)[0]["id"], done);
    assert_eq!(
        int(&mut zrq, "ack", &[Q, &done, "RESULT", r#"{"n":[1,2]}"#]),
        1
    );
    let result = map(ok(&mut zrq, "result", &[Q, &done]));
    assert_eq!(result["state"], "completed");
    assert_eq!(result["result"], r#"{"n":[1,2]}"#);
    assert_eq!(
        result["finished_at"],
        field(&mut zrq, Q, &done, "finished_at")
    );
    assert!(!result.contains_key("error"));
    let keys: Vec<&str> = result.keys().map(String::as_str).collect();
    assert_eq!(keys, ["finished_at", "result", "state"]);

    let bare = zrq.enqueue(Q, "t", "{}", &["PRIORITY", "9"]);
    zrq.fetch(Q, "w", 1);
    assert_eq!(int(&mut zrq, "ack", &[Q, &bare]), 1);
    let result = map(ok(&mut zrq, "result", &[Q, &bare]));
    assert_eq!(result["state"], "completed");
    assert!(
        !result.contains_key("result"),
        "no RESULT given: {result:?}"
    );

    let dead = zrq.enqueue(Q, "t", "{}", &["PRIORITY", "9", "RETRIES", "0"]);
    zrq.fetch(Q, "w", 1);
    ok(&mut zrq, "fail", &[Q, &dead, "bad input"]);
    let result = map(ok(&mut zrq, "result", &[Q, &dead]));
    assert_eq!(
        (result["state"].as_str(), result["error"].as_str()),
        ("dead", "bad input")
    );
}

/// The full text of an error reply: `CODE message`.
fn error_text(err: &redis::RedisError) -> String {
    match (err.code(), err.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        _ => err.to_string(),
    }
}

fn unique_returns_the_unfinished_holder(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let first = zrq.enqueue(Q, "t", r#"{"v":1}"#, &["UNIQUE", "user:7", "RETRIES", "1"]);
    let before = server.snapshot();
    let again = zrq.enqueue(Q, "other", r#"{"v":2}"#, &["UNIQUE", "user:7"]);
    assert_eq!(again, first, "the existing job's id");
    let with_id = zrq.enqueue(Q, "t", "{}", &["ID", "new-id", "UNIQUE", "user:7"]);
    assert_eq!(with_id, first);
    let delayed = zrq.enqueue(Q, "t", "{}", &["UNIQUE", "user:7", "DELAY", "1000"]);
    assert_eq!(delayed, first);
    assert_eq!(server.snapshot(), before, "nothing added");
    assert_eq!(zrq.state(Q, "new-id"), None);
    // Another key, another queue: independent.
    let other_key = zrq.enqueue(Q, "t", "{}", &["UNIQUE", "user:8"]);
    assert_ne!(other_key, first);
    let other_queue = zrq.enqueue("cq2", "t", "{}", &["UNIQUE", "user:7"]);
    assert_ne!(other_queue, first);
    // Still held while active and while retrying.
    let got = zrq.fetch(Q, "w", 1);
    assert_eq!(got[0]["id"], first);
    assert_eq!(zrq.enqueue(Q, "t", "{}", &["UNIQUE", "user:7"]), first);
    ok(&mut zrq, "fail", &[Q, &first, "e", "RETRYIN", "600000"]);
    assert_eq!(zrq.enqueue(Q, "t", "{}", &["UNIQUE", "user:7"]), first);
    // Free once finished (cancelled here; completed and dead below).
    assert_eq!(int(&mut zrq, "cancel", &[Q, &first]), 1);
    let second = zrq.enqueue(Q, "t", "{}", &["UNIQUE", "user:7", "PRIORITY", "9"]);
    assert_ne!(second, first);
    assert_eq!(zrq.fetch(Q, "w", 1)[0]["id"], second);
    assert_eq!(int(&mut zrq, "ack", &[Q, &second]), 1);
    let third = zrq.enqueue(
        Q,
        "t",
        "{}",
        &["UNIQUE", "user:7", "PRIORITY", "9", "RETRIES", "0"],
    );
    assert!(third != first && third != second);
    assert_eq!(zrq.fetch(Q, "w", 1)[0]["id"], third);
    assert_eq!(show(&ok(&mut zrq, "fail", &[Q, &third, "e"])), "dead");
    let fourth = zrq.enqueue(Q, "t", "{}", &["UNIQUE", "user:7"]);
    assert!(![&first, &second, &third].contains(&&fourth));
    assert_eq!(field(&mut zrq, Q, &fourth, "unique"), "user:7");
}

fn higher_priorities_are_fetched_first_fifo_within_one(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let plan = [
        ("a", "0"),
        ("b", "5"),
        ("c", "9"),
        ("d", "5"),
        ("e", "0"),
        ("f", "9"),
        ("g", "1"),
    ];
    for (id, priority) in plan {
        zrq.enqueue(Q, "t", "{}", &["ID", id, "PRIORITY", priority]);
    }
    assert_eq!(field(&mut zrq, Q, "b", "priority"), "5");
    let (_, listed) = list(&mut zrq, Q, "pending", &["COUNT", "100"]);
    assert_eq!(
        listed,
        ["c", "f", "b", "d", "g", "a", "e"],
        "LIST pending in delivery order"
    );
    let first: Vec<String> = zrq
        .fetch(Q, "w", 3)
        .into_iter()
        .map(|j| j["id"].clone())
        .collect();
    assert_eq!(first, ["c", "f", "b"]);
    // A new high-priority job overtakes the waiting ones.
    zrq.enqueue(Q, "t", "{}", &["ID", "h", "PRIORITY", "7"]);
    let rest: Vec<String> = zrq
        .fetch(Q, "w", 10)
        .into_iter()
        .map(|j| j["id"].clone())
        .collect();
    assert_eq!(rest, ["h", "d", "g", "a", "e"]);
    let mut conn = server.conn();
    assert_eq!(placement(&mut conn, Q, "c"), ["active".to_string()].into());
}

fn pause_stops_delivery_and_resume_restarts_it(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let running = zrq.enqueue(Q, "t", "{}", &[]);
    assert_eq!(zrq.fetch(Q, "w", 1).len(), 1);
    assert_eq!(show(&ok(&mut zrq, "pause", &[Q])), "OK");
    assert_eq!(show(&ok(&mut zrq, "pause", &[Q])), "OK", "idempotent");
    assert_eq!(info_int(&mut zrq, Q, "paused"), 1);
    let waiting = zrq.enqueue(Q, "t", "{}", &[]);
    assert_eq!(
        zrq.state(Q, &waiting).as_deref(),
        Some("pending"),
        "enqueue goes on"
    );
    assert!(
        zrq.fetch(Q, "w", 10).is_empty(),
        "paused: nothing delivered"
    );
    assert_eq!(
        int(&mut zrq, "ack", &[Q, &running]),
        1,
        "running jobs finish normally"
    );
    assert_eq!(info_int(&mut zrq, Q, "pending"), 1);
    // Other queues are not paused.
    zrq.enqueue("cq-other", "t", "{}", &[]);
    assert_eq!(zrq.fetch("cq-other", "w", 1).len(), 1);
    assert_eq!(show(&ok(&mut zrq, "resume", &[Q])), "OK");
    assert_eq!(info_int(&mut zrq, Q, "paused"), 0);
    assert_eq!(zrq.fetch(Q, "w", 10)[0]["id"], waiting);
    assert_eq!(
        show(&ok(&mut zrq, "resume", &[Q])),
        "OK",
        "resuming a running queue"
    );
    assert_eq!(show(&ok(&mut zrq, "resume", &["never-paused"])), "OK");
}

fn info_counts_jobs_by_state_with_totals(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let empty = info(&mut zrq, "nothing");
    for (k, v) in &empty {
        assert_eq!(v, "0", "{k} of an unknown queue");
    }
    for k in [
        "pending",
        "scheduled",
        "active",
        "retrying",
        "completed",
        "dead",
        "cancelled",
        "total_enqueued",
        "total_completed",
        "total_failed",
        "total_dead",
        "total_cancelled",
        "total_dropped",
        "oldest_pending_age_ms",
        "paused",
    ] {
        assert!(empty.contains_key(k), "INFO has {k}: {empty:?}");
    }
    // One job in each state (the pending ones first, so they are the oldest).
    zrq.enqueue(Q, "t", "{}", &["ID", "p1"]);
    zrq.enqueue(Q, "t", "{}", &["ID", "p2"]);
    std::thread::sleep(Duration::from_millis(120));
    zrq.enqueue(Q, "t", "{}", &["ID", "s1", "DELAY", "600000"]);
    for id in ["a1", "r1", "c1", "d1"] {
        let retries = if id == "d1" { "0" } else { "1" };
        zrq.enqueue(
            Q,
            "t",
            "{}",
            &["ID", id, "PRIORITY", "9", "RETRIES", retries],
        );
        assert_eq!(zrq.fetch(Q, "w", 1)[0]["id"], id);
    }
    ok(&mut zrq, "fail", &[Q, "r1", "e", "RETRYIN", "600000"]);
    ok(&mut zrq, "ack", &[Q, "c1"]);
    ok(&mut zrq, "fail", &[Q, "d1", "e"]);
    zrq.enqueue(Q, "t", "{}", &["ID", "x1", "DELAY", "600000"]);
    ok(&mut zrq, "cancel", &[Q, "x1"]);
    let stats = info(&mut zrq, Q);
    let want = [
        ("pending", "2"),
        ("scheduled", "1"),
        ("active", "1"),
        ("retrying", "1"),
        ("completed", "1"),
        ("dead", "1"),
        ("cancelled", "1"),
        ("total_enqueued", "8"),
        ("total_completed", "1"),
        ("total_failed", "2"),
        ("total_dead", "1"),
        ("total_cancelled", "1"),
        ("total_dropped", "0"),
        ("paused", "0"),
    ];
    for (k, v) in want {
        assert_eq!(stats[k], v, "{k}: {stats:?}");
    }
    let age: i64 = stats["oldest_pending_age_ms"].parse().unwrap();
    assert!(
        (120..60_000).contains(&age),
        "oldest pending waited {age} ms"
    );
    // Fetching the pending ones: no pending age any more.
    assert_eq!(zrq.fetch(Q, "w", 2).len(), 2);
    assert_eq!(info_int(&mut zrq, Q, "oldest_pending_age_ms"), 0);
    assert_eq!(info_int(&mut zrq, Q, "active"), 3);
}

fn queues_lists_every_queue_sorted(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    assert!(zrq.queues().is_empty());
    zrq.enqueue("zeta", "t", "{}", &[]);
    zrq.enqueue("alpha", "t", "{}", &["DELAY", "600000"]);
    zrq.enqueue("mid:dle", "t", "{}", &[]);
    zrq.enqueue("alpha", "t", "{}", &[]);
    // Reading does not create a queue.
    info(&mut zrq, "ghost");
    zrq.fetch("ghost2", "w", 1);
    assert_eq!(zrq.queues(), ["alpha", "mid:dle", "zeta"]);
}

fn list_pages_through_every_state(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let ids: Vec<String> = (0..25)
        .map(|i| zrq.enqueue(Q, "t", &format!("[{i}]"), &[]))
        .collect();
    let (c1, p1) = list(&mut zrq, Q, "pending", &["COUNT", "10"]);
    let (c2, p2) = list(&mut zrq, Q, "pending", &["COUNT", "10", "CURSOR", &c1]);
    let (c3, p3) = list(&mut zrq, Q, "pending", &["CURSOR", &c2, "COUNT", "10"]);
    // A pending page ends at its last job's place in its stream: `<priority>:<entry-id>`.
    let entry = |zrq: &mut Zrq, id: &str| zrq.job(Q, id).expect("job")["entry"].clone();
    let (after_10, after_20) = (entry(&mut zrq, &ids[9]), entry(&mut zrq, &ids[19]));
    assert_eq!(
        (c1.as_str(), c2.as_str(), c3.as_str()),
        (&*format!("0:{after_10}"), &*format!("0:{after_20}"), "0")
    );
    assert_eq!((p1.len(), p2.len(), p3.len()), (10, 10, 5));
    let all: Vec<String> = p1.into_iter().chain(p2).chain(p3).collect();
    assert_eq!(all, ids, "oldest first, each once");
    let (c, default) = list(&mut zrq, Q, "PENDING", &[]);
    assert_eq!(
        (c, default.len()),
        (format!("0:{after_10}"), 10),
        "default COUNT 10; state any case"
    );
    assert_eq!(list_all(&mut zrq, Q, "pending", 7), ids);
    // Active jobs carry their consumer and start time.
    let fetched = zrq.fetch(Q, "w9", 4);
    let (_, active) = lifecycle_support::page(ok(&mut zrq, "list", &[Q, "active"]));
    assert_eq!(active.len(), 4);
    for job in &active {
        assert_eq!(job["consumer"], "w9");
        assert!(job.contains_key("started_at"), "{job:?}");
        assert_eq!(job["state"], "active");
    }
    let mut want: Vec<String> = fetched.iter().map(|j| j["id"].clone()).collect();
    let mut got: Vec<String> = active.iter().map(|j| j["id"].clone()).collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    assert_eq!(list_all(&mut zrq, Q, "pending", 100).len(), 21);
    // One job in each other state.
    ok(
        &mut zrq,
        "fail",
        &[Q, &fetched[0]["id"], "e", "RETRYIN", "600000"],
    );
    ok(&mut zrq, "ack", &[Q, &fetched[1]["id"]]);
    ok(&mut zrq, "cancel", &[Q, &ids[24]]);
    let later = zrq.enqueue(Q, "t", "{}", &["DELAY", "600000"]);
    let dead = zrq.enqueue(Q, "t", "{}", &["RETRIES", "0", "PRIORITY", "9"]);
    zrq.fetch(Q, "w", 1);
    ok(&mut zrq, "fail", &[Q, &dead, "e"]);
    for (state, want) in [
        ("retrying", vec![fetched[0]["id"].clone()]),
        ("completed", vec![fetched[1]["id"].clone()]),
        ("cancelled", vec![ids[24].clone()]),
        ("scheduled", vec![later.clone()]),
        ("dead", vec![dead.clone()]),
    ] {
        let (cursor, got) = list(&mut zrq, Q, state, &[]);
        assert_eq!((cursor.as_str(), got), ("0", want), "LIST {state}");
    }
    assert_eq!(list_all(&mut zrq, Q, "active", 1).len(), 2);
    assert_eq!(list_all(&mut zrq, Q, "pending", 3).len(), 20);
    let (cursor, none) = list(&mut zrq, "nothing", "pending", &[]);
    assert_eq!((cursor.as_str(), none.len()), ("0", 0));
    let (cursor, past) = list(&mut zrq, Q, "pending", &["CURSOR", "0:99999999999999-0"]);
    assert_eq!(
        (cursor.as_str(), past.len()),
        ("0", 0),
        "a cursor past the end"
    );
}

fn list_pending_pages_across_priorities_in_delivery_order(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let mut order: Vec<(i64, usize, String)> = Vec::new();
    for i in 0..17 {
        let priority = [0, 5, 9, 5, 0, 2][i % 6];
        let id = format!("j{i:02}");
        zrq.enqueue(
            Q,
            "t",
            "{}",
            &["ID", &id, "PRIORITY", &priority.to_string()],
        );
        order.push((-priority, i, id));
    }
    order.sort();
    let want: Vec<String> = order.into_iter().map(|(_, _, id)| id).collect();
    for count in [1, 3, 4, 17, 100] {
        assert_eq!(
            list_all(&mut zrq, Q, "pending", count),
            want,
            "COUNT {count}"
        );
    }
    let fetched: Vec<String> = zrq
        .fetch(Q, "w", 100)
        .into_iter()
        .map(|j| j["id"].clone())
        .collect();
    assert_eq!(fetched, want, "FETCH follows the same order");
}

/// A subscriber to a queue's channel: a thread that owns the connection and forwards payloads.
struct Subscriber {
    rx: std::sync::mpsc::Receiver<String>,
}

/// Subscribes to the queue's channel on a new connection; returns once subscribed.
fn subscribe(server: &Server, queue: &str) -> Subscriber {
    let channel = format!("zrq:{{{queue}}}:events");
    let mut conn = server.conn();
    let (tx, rx) = std::sync::mpsc::channel();
    let name = channel.clone();
    std::thread::spawn(move || {
        let mut pubsub = conn.as_pubsub();
        pubsub.subscribe(&name).expect("SUBSCRIBE");
        while let Ok(msg) = pubsub.get_message() {
            let payload: String = msg.get_payload().expect("text payload");
            if tx.send(payload).is_err() {
                return;
            }
        }
    });
    server.wait_for(|conn| {
        let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(&channel)
            .query(conn)
            .unwrap_or_default();
        counts.first().is_some_and(|(_, n)| *n == 1)
    });
    Subscriber { rx }
}

/// The next `n` messages of a subscriber.
fn messages(sub: &mut Subscriber, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            sub.rx
                .recv_timeout(Duration::from_secs(5))
                .unwrap_or_else(|_| panic!("message {i} of {n} within 5 s"))
        })
        .collect()
}

fn state_changes_are_published(backend: Backend) {
    let server = backend.server();
    let mut sub = subscribe(&server, Q);
    let mut zrq = server.zrq(backend);
    let a = zrq.enqueue(Q, "t", "{}", &["RETRIES", "0"]);
    zrq.fetch(Q, "w", 1);
    ok(&mut zrq, "ack", &[Q, &a]);
    let b = zrq.enqueue(Q, "t", "{}", &["DELAY", "600000"]);
    ok(&mut zrq, "cancel", &[Q, &b]);
    let c = zrq.enqueue(Q, "t", "{}", &["RETRIES", "0"]);
    zrq.fetch(Q, "w", 1);
    ok(&mut zrq, "fail", &[Q, &c, "e"]);
    ok(&mut zrq, "requeue", &[Q, &c]);
    let d = zrq.enqueue(Q, "t", "{}", &["RETRIES", "1"]);
    // d is behind c in the stream: fetch both.
    assert_eq!(zrq.fetch(Q, "w", 2).len(), 2);
    ok(&mut zrq, "fail", &[Q, &d, "e", "RETRYIN", "600000"]);
    ok(&mut zrq, "cancel", &[Q, &c]);
    ok(&mut zrq, "ack", &[Q, &c]);
    let want = [
        format!("pending {a}"),
        format!("active {a}"),
        format!("completed {a}"),
        format!("scheduled {b}"),
        format!("cancelled {b}"),
        format!("pending {c}"),
        format!("active {c}"),
        format!("dead {c}"),
        format!("pending {c}"),
        format!("pending {d}"),
        format!("active {c}"),
        format!("active {d}"),
        format!("retrying {d}"),
        format!("cancelled {c}"),
    ];
    assert_eq!(messages(&mut sub, want.len()), want);
    // Other queues publish on their own channels.
    zrq.enqueue("elsewhere", "t", "{}", &[]);
    let e = zrq.enqueue(Q, "t", "{}", &[]);
    assert_eq!(messages(&mut sub, 1), [format!("pending {e}")]);
}

fn finished_jobs_get_their_retention_as_ttl(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let mut conn = server.conn();
    let pttl = |conn: &mut redis::Connection, id: &str| -> i64 {
        redis::cmd("PTTL")
            .arg(format!("zrq:{{{Q}}}:job:{id}"))
            .query(conn)
            .unwrap()
    };
    let done = zrq.enqueue(Q, "t", "{}", &["KEEP", "60000"]);
    let cancelled = zrq.enqueue(Q, "t", "{}", &["KEEP", "120000", "DELAY", "600000"]);
    let default = zrq.enqueue(Q, "t", "{}", &[]);
    let dead = zrq.enqueue(Q, "t", "{}", &["RETRIES", "0", "KEEP", "1000"]);
    // (A plain pending job has no record at all: -2.)
    for id in [&done, &cancelled, &default, &dead] {
        let ttl = pttl(&mut conn, id);
        assert!(
            ttl == -1 || ttl == -2,
            "unfinished jobs do not expire: {ttl}"
        );
    }
    assert_eq!(pttl(&mut conn, &cancelled), -1, "a scheduled job's record");
    assert_eq!(field(&mut zrq, Q, &done, "keep"), "60000");
    zrq.fetch(Q, "w", 3);
    ok(&mut zrq, "ack", &[Q, &done]);
    ok(&mut zrq, "cancel", &[Q, &cancelled]);
    ok(&mut zrq, "ack", &[Q, &default]);
    ok(&mut zrq, "fail", &[Q, &dead, "e"]);
    let t = pttl(&mut conn, &done);
    assert!((55_000..=60_000).contains(&t), "KEEP 60000: PTTL {t}");
    let t = pttl(&mut conn, &cancelled);
    assert!((115_000..=120_000).contains(&t), "KEEP 120000: PTTL {t}");
    // Without a KEEP of its own, the queue's retention (zrq.keep-ms): no key of its own, a
    // field of the completed records hash with a log entry at its finish (the retention is the
    // timer's, from the log).
    assert_eq!(pttl(&mut conn, &default), -2, "no key of its own");
    assert!(support::kept_raw(&mut conn, Q, "completed", &default).is_some());
    let logged: Vec<i64> = support::log_entries(&mut conn, Q, "completed")
        .iter()
        .filter(|(_, id)| *id == default)
        .map(|(entry, _)| support::entry_ms(entry))
        .collect();
    let finished: i64 = field(&mut zrq, Q, &default, "finished_at").parse().unwrap();
    assert_eq!(
        logged,
        [finished],
        "default retention: one log entry at its finish"
    );
    assert_eq!(
        pttl(&mut conn, &dead),
        -1,
        "dead jobs are kept until requeued or deleted"
    );
    // The completed index is scored by the end of retention.
    let score: i64 = redis::cmd("ZSCORE")
        .arg(format!("zrq:{{{Q}}}:completed"))
        .arg(&done)
        .query(&mut conn)
        .unwrap();
    let finished: i64 = field(&mut zrq, Q, &done, "finished_at").parse().unwrap();
    assert_eq!(score, finished + 60_000);
    // Requeue of a dead job and its later completion: the TTL comes with the completion only.
    ok(&mut zrq, "requeue", &[Q, &dead]);
    assert_eq!(pttl(&mut conn, &dead), -1);
    wait_until(Duration::from_secs(1), "fetch", || {
        !zrq.fetch(Q, "w", 1).is_empty()
    });
    ok(&mut zrq, "ack", &[Q, &dead]);
    let t = pttl(&mut conn, &dead);
    assert!((1..=1000).contains(&t), "KEEP 1000 after requeue: PTTL {t}");
}

conformance!(
    touch_extends_the_lease_and_records_progress,
    cancel_reaches_the_worker_through_touch_and_ack,
    result_answers_once_the_job_has_finished,
    unique_returns_the_unfinished_holder,
    higher_priorities_are_fetched_first_fifo_within_one,
    pause_stops_delivery_and_resume_restarts_it,
    info_counts_jobs_by_state_with_totals,
    queues_lists_every_queue_sorted,
    list_pages_through_every_state,
    list_pending_pages_across_priorities_in_delivery_order,
    state_changes_are_published,
    finished_jobs_get_their_retention_as_ttl,
);

#[test]
fn promotions_by_the_timer_are_published() {
    let server = Backend::Module.server();
    let mut sub = subscribe(&server, Q);
    let mut zrq = server.zrq(Backend::Module);
    let id = zrq.enqueue(Q, "t", "{}", &["DELAY", "50", "RETRIES", "1"]);
    assert_eq!(
        messages(&mut sub, 2),
        [format!("scheduled {id}"), format!("pending {id}")]
    );
    zrq.fetch(Q, "w", 1);
    ok(&mut zrq, "fail", &[Q, &id, "e", "RETRYIN", "50"]);
    assert_eq!(
        messages(&mut sub, 3),
        [
            format!("active {id}"),
            format!("retrying {id}"),
            format!("pending {id}")
        ]
    );
}

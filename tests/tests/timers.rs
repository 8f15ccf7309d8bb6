//! The server-side timer and server-side blocking (module only): delayed jobs and retries promoted
//! on time with no client polling, a blocked worker woken by a promotion, RESULT BLOCK woken by
//! the end of a job, PAUSE/RESUME with blocked workers, retention expiry, and `INFO zrq`.

use crate::support;

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use lifecycle_support::{
    field, info, info_int, int, now_ms, ok, placement, set_config, show, wait_until,
};
use support::info_field;
use support::lifecycle as lifecycle_support;
use zrq_tests::redis::{self, Value};
use zrq_tests::{jobs, map, Backend, Server, Zrq};

const Q: &str = "tq";

fn server() -> Server {
    Backend::Module.server()
}

fn zrq(server: &Server) -> Zrq {
    server.zrq(Backend::Module)
}

/// A reply that arrived on another connection, and when (client clock, unix ms).
struct Arrival {
    reply: redis::RedisResult<Value>,
    at_ms: i64,
}

/// Runs `ZRQ.<name> args…` on a new connection in a thread; its reply comes on the channel.
fn spawn_call(server: &Server, name: &str, args: &[&str]) -> mpsc::Receiver<Arrival> {
    let (tx, rx) = mpsc::channel();
    let mut conn = server.conn();
    let mut cmd = redis::cmd(&format!("ZRQ.{}", name.to_uppercase()));
    cmd.arg(args);
    thread::spawn(move || {
        let reply = cmd.query::<Value>(&mut conn);
        let _ = tx.send(Arrival {
            reply,
            at_ms: now_ms(),
        });
    });
    rx
}

/// Clients currently blocked in `ZRQ.<command>`.
fn blocked(conn: &mut redis::Connection, command: &str) -> usize {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query(conn)
        .expect("CLIENT LIST");
    list.lines()
        .filter(|l| l.contains(" flags=b ") && l.contains(&format!(" cmd=zrq.{command}")))
        .count()
}

fn wait_blocked(server: &Server, command: &str, n: usize) {
    server.wait_for(|conn| blocked(conn, command) == n);
}

fn recv(rx: &mpsc::Receiver<Arrival>, what: &str) -> Arrival {
    rx.recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("{what}: no reply within 10 s"))
}

fn run_at(zrq: &mut Zrq, id: &str) -> i64 {
    field(zrq, Q, id, "run_at").parse().expect("run_at")
}

#[test]
fn delay_and_at_schedule_a_job_until_the_timer_promotes_it() {
    let server = server();
    let mut zrq = zrq(&server);
    let mut conn = server.conn();
    let before = now_ms();
    let delayed = zrq.enqueue(Q, "t", "{}", &["DELAY", "300"]);
    let after = now_ms();
    let at = (now_ms() + 400).to_string();
    let timed = zrq.enqueue(Q, "t", "{}", &["AT", &at]);
    for id in [&delayed, &timed] {
        assert_eq!(zrq.state(Q, id).as_deref(), Some("scheduled"));
        assert_eq!(
            placement(&mut conn, Q, id),
            ["scheduled".to_string()].into()
        );
    }
    let due = run_at(&mut zrq, &delayed);
    assert!(
        (before + 300..=after + 300).contains(&due),
        "run_at = now + DELAY"
    );
    assert_eq!(run_at(&mut zrq, &timed).to_string(), at, "run_at = AT");
    assert_eq!(info_int(&mut zrq, Q, "scheduled"), 2);
    assert!(zrq.fetch(Q, "w", 10).is_empty(), "not before their time");
    // Promoted by the timer alone: this loop only reads STATE.
    for (id, due) in [(&delayed, due), (&timed, at.parse::<i64>().unwrap())] {
        wait_until(Duration::from_secs(5), "promotion", || {
            zrq.state(Q, id).as_deref() == Some("pending")
        });
        let late = now_ms() - due;
        assert!(late >= 0, "promoted {} ms before its due time", -late);
        assert!(late < 1000, "promoted {late} ms after its due time");
        let job = zrq.job(Q, id).expect("job");
        assert!(!job.contains_key("run_at"), "{job:?}");
        assert_eq!(placement(&mut conn, Q, id), ["stream".to_string()].into());
    }
    assert_eq!(info_int(&mut zrq, Q, "scheduled"), 0);
    assert_eq!(info_int(&mut zrq, Q, "pending"), 2);
    let got: Vec<String> = zrq
        .fetch(Q, "w", 10)
        .into_iter()
        .map(|j| j["id"].clone())
        .collect();
    assert_eq!(got, [delayed, timed], "in promotion order");
    // Due already: pending at once.
    let past = (now_ms() - 1000).to_string();
    let id = zrq.enqueue(Q, "t", "{}", &["AT", &past]);
    assert_eq!(zrq.state(Q, &id).as_deref(), Some("pending"));
    let id = zrq.enqueue(Q, "t", "{}", &["DELAY", "0"]);
    assert_eq!(zrq.state(Q, &id).as_deref(), Some("pending"));
    let passes: i64 = info_field(&mut conn, "zrq", "zrq_timer_passes_total")
        .expect("INFO zrq")
        .parse()
        .unwrap();
    assert!(passes >= 1, "the timer did the promotions: {passes}");
}

#[test]
fn a_blocked_worker_receives_a_delayed_job_right_after_its_due_time() {
    let server = server();
    let mut zrq = zrq(&server);
    for delay in ["200", "500"] {
        let rx = spawn_call(&server, "fetch", &[Q, "w", "BLOCK", "0"]);
        wait_blocked(&server, "fetch", 1);
        let id = zrq.enqueue(Q, "t", "{}", &["DELAY", delay]);
        let due = run_at(&mut zrq, &id);
        let arrival = recv(&rx, "the delayed job");
        let got = jobs(arrival.reply.expect("FETCH"));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["id"], id);
        assert_eq!(got[0]["state"], "active");
        let lag = arrival.at_ms - due;
        assert!(
            (0..1000).contains(&lag),
            "DELAY {delay}: delivered {lag} ms after its due time (want 0 <= lag < 1000)"
        );
        eprintln!("DELAY {delay}: blocked worker got the job {lag} ms after its due time");
        assert_eq!(int(&mut zrq, "ack", &[Q, &id]), 1);
    }
    // AT, with two workers blocked: one gets it, the other stays blocked.
    let rx1 = spawn_call(&server, "fetch", &[Q, "w1", "BLOCK", "2000"]);
    let rx2 = spawn_call(&server, "fetch", &[Q, "w2", "BLOCK", "2000"]);
    wait_blocked(&server, "fetch", 2);
    let at = now_ms() + 300;
    let id = zrq.enqueue(Q, "t", "{}", &["AT", &at.to_string()]);
    let (first, other) = loop {
        if let Ok(a) = rx1.recv_timeout(Duration::from_millis(10)) {
            break (a, rx2);
        }
        if let Ok(a) = rx2.recv_timeout(Duration::from_millis(10)) {
            break (a, rx1);
        }
        assert!(now_ms() < at + 10_000, "nobody got the job");
    };
    let lag = first.at_ms - at;
    assert!(
        (0..1000).contains(&lag),
        "AT: delivered {lag} ms after its due time"
    );
    assert_eq!(jobs(first.reply.expect("FETCH"))[0]["id"], id);
    let second = recv(&other, "the other worker");
    let empty = second.reply.expect("FETCH");
    // The other worker stays blocked until its own timeout, and gets nothing.
    assert!(jobs(empty).is_empty(), "one job, one worker");
}

#[test]
fn a_retry_reaches_a_blocked_worker_after_retryin() {
    let server = server();
    let mut zrq = zrq(&server);
    let id = zrq.enqueue(Q, "t", "{}", &["RETRIES", "1"]);
    assert_eq!(zrq.fetch(Q, "w1", 1).len(), 1);
    let rx = spawn_call(&server, "fetch", &[Q, "w2", "BLOCK", "0"]);
    wait_blocked(&server, "fetch", 1);
    assert_eq!(
        show(&ok(
            &mut zrq,
            "fail",
            &[Q, &id, "transient", "RETRYIN", "300"]
        )),
        "retrying"
    );
    let due = run_at(&mut zrq, &id);
    let arrival = recv(&rx, "the retry");
    let got = jobs(arrival.reply.expect("FETCH"));
    assert_eq!(got[0]["id"], id);
    assert_eq!(got[0]["attempt"], "2");
    assert_eq!(got[0]["consumer"], "w2");
    assert_eq!(
        got[0]["error"], "transient",
        "the last error travels with the retry"
    );
    let lag = arrival.at_ms - due;
    assert!(
        (0..1000).contains(&lag),
        "retry delivered {lag} ms after its due time"
    );
    assert_eq!(info_int(&mut zrq, Q, "retrying"), 0);
}

#[test]
fn many_delayed_jobs_are_all_promoted_once() {
    let server = server();
    let mut zrq = zrq(&server);
    let start = now_ms();
    let ids: Vec<String> = (0..200)
        .map(|i| {
            let delay = (50 + (i * 7) % 400).to_string();
            zrq.enqueue(Q, "t", "{}", &["DELAY", &delay])
        })
        .collect();
    let mut got: Vec<String> = Vec::new();
    wait_until(Duration::from_secs(10), "all promoted and fetched", || {
        got.extend(zrq.fetch(Q, "w", 100).into_iter().map(|j| j["id"].clone()));
        got.len() >= ids.len()
    });
    thread::sleep(Duration::from_millis(100));
    assert!(zrq.fetch(Q, "w", 100).is_empty(), "each promoted once");
    let mut sorted = got.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len());
    assert!(now_ms() - start >= 400, "the last one was due after 400 ms");
}

#[test]
fn result_block_waits_for_the_end_of_the_job() {
    let server = server();
    let mut zrq = zrq(&server);

    // Woken by ACK.
    let id = zrq.enqueue(Q, "t", "{}", &[]);
    let rx = spawn_call(&server, "result", &[Q, &id, "BLOCK", "0"]);
    wait_blocked(&server, "result", 1);
    assert_eq!(zrq.fetch(Q, "w", 1).len(), 1);
    assert!(rx.try_recv().is_err(), "still running: still blocked");
    assert_eq!(int(&mut zrq, "ack", &[Q, &id, "RESULT", r#"{"sum":3}"#]), 1);
    let result = map(recv(&rx, "RESULT after ACK").reply.expect("RESULT"));
    assert_eq!(result["state"], "completed");
    assert_eq!(result["result"], r#"{"sum":3}"#);
    assert!(result.contains_key("finished_at"));

    // Not woken by a FAIL that retries; woken by the final FAIL.
    let id = zrq.enqueue(Q, "t", "{}", &["RETRIES", "1"]);
    let rx = spawn_call(&server, "result", &[Q, &id, "BLOCK", "0"]);
    wait_blocked(&server, "result", 1);
    assert_eq!(zrq.fetch(Q, "w", 1).len(), 1);
    ok(&mut zrq, "fail", &[Q, &id, "first", "RETRYIN", "0"]);
    wait_until(Duration::from_secs(5), "retry delivered", || {
        !zrq.fetch(Q, "w", 1).is_empty()
    });
    assert!(rx.try_recv().is_err(), "a retry is not the end");
    assert_eq!(blocked(&mut server.conn(), "result"), 1);
    assert_eq!(show(&ok(&mut zrq, "fail", &[Q, &id, "second"])), "dead");
    let result = map(recv(&rx, "RESULT after the final FAIL")
        .reply
        .expect("RESULT"));
    assert_eq!(result["state"], "dead");
    assert_eq!(result["error"], "second");

    // Woken by CANCEL of a pending job.
    let id = zrq.enqueue(Q, "t", "{}", &[]);
    let rx = spawn_call(&server, "result", &[Q, &id, "BLOCK", "5000"]);
    wait_blocked(&server, "result", 1);
    assert_eq!(int(&mut zrq, "cancel", &[Q, &id]), 1);
    let result = map(recv(&rx, "RESULT after CANCEL").reply.expect("RESULT"));
    assert_eq!(result["state"], "cancelled");

    // An active job: CANCEL only flags it; the worker's ACK (-1) ends it, cancelled.
    let id = zrq.enqueue(Q, "t", "{}", &[]);
    assert_eq!(zrq.fetch(Q, "w", 1).len(), 1);
    let rx = spawn_call(&server, "result", &[Q, &id, "BLOCK", "0"]);
    wait_blocked(&server, "result", 1);
    assert_eq!(int(&mut zrq, "cancel", &[Q, &id]), 2);
    thread::sleep(Duration::from_millis(100));
    assert!(
        rx.try_recv().is_err(),
        "cancel requested, job still running"
    );
    assert_eq!(int(&mut zrq, "ack", &[Q, &id]), -1);
    let result = map(recv(&rx, "RESULT after ACK of a cancelled job")
        .reply
        .expect("RESULT"));
    assert_eq!(result["state"], "cancelled");

    // Times out with nil, after at least the timeout.
    let id = zrq.enqueue(Q, "t", "{}", &[]);
    let start = Instant::now();
    let rx = spawn_call(&server, "result", &[Q, &id, "BLOCK", "200"]);
    let arrival = recv(&rx, "RESULT timeout");
    assert_eq!(arrival.reply.expect("RESULT"), Value::Nil);
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert_eq!(zrq.state(Q, &id).as_deref(), Some("pending"));

    // Unknown job: NOJOB at once, even with BLOCK; finished job: at once.
    let err = zrq
        .call::<Value>("result", &[Q, "ghost", "BLOCK", "0"])
        .expect_err("NOJOB");
    assert_eq!(err.code(), Some("NOJOB"));
    assert_eq!(int(&mut zrq, "cancel", &[Q, &id]), 1);
    let start = Instant::now();
    let done = map(ok(&mut zrq, "result", &[Q, &id, "BLOCK", "0"]));
    assert_eq!(done["state"], "cancelled");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "a finished job answers at once (BLOCK 0 would wait forever)"
    );
    assert_eq!(blocked(&mut server.conn(), "result"), 0);
}

#[test]
fn several_result_waiters_are_all_woken() {
    let server = server();
    let mut zrq = zrq(&server);
    let id = zrq.enqueue(Q, "t", "{}", &[]);
    let waiters: Vec<_> = (0..3)
        .map(|_| spawn_call(&server, "result", &[Q, &id, "BLOCK", "0"]))
        .collect();
    wait_blocked(&server, "result", 3);
    assert_eq!(zrq.fetch(Q, "w", 1).len(), 1);
    assert_eq!(int(&mut zrq, "ack", &[Q, &id, "RESULT", "42"]), 1);
    for rx in waiters {
        let result = map(recv(&rx, "waiter").reply.expect("RESULT"));
        assert_eq!(result["result"], "42");
    }
}

#[test]
fn a_paused_queue_keeps_blocked_workers_blocked_until_resume() {
    let server = server();
    let mut zrq = zrq(&server);
    let rx = spawn_call(&server, "fetch", &[Q, "w", "BLOCK", "0"]);
    wait_blocked(&server, "fetch", 1);
    assert_eq!(show(&ok(&mut zrq, "pause", &[Q])), "OK");
    assert_eq!(info_int(&mut zrq, Q, "paused"), 1);
    let now = zrq.enqueue(Q, "t", "{}", &[]);
    let later = zrq.enqueue(Q, "t", "{}", &["DELAY", "100"]);
    wait_until(Duration::from_secs(5), "promotion while paused", || {
        zrq.state(Q, &later).as_deref() == Some("pending")
    });
    thread::sleep(Duration::from_millis(300));
    assert!(rx.try_recv().is_err(), "a paused queue delivers nothing");
    assert_eq!(blocked(&mut server.conn(), "fetch"), 1, "still blocked");
    assert!(zrq.fetch(Q, "w2", 10).is_empty());
    assert_eq!(info_int(&mut zrq, Q, "pending"), 2, "enqueue goes on");
    assert_eq!(show(&ok(&mut zrq, "resume", &[Q])), "OK");
    let got = jobs(recv(&rx, "woken by RESUME").reply.expect("FETCH"));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["id"], now, "oldest first");
    assert_eq!(info_int(&mut zrq, Q, "paused"), 0);
    assert_eq!(zrq.fetch(Q, "w2", 10)[0]["id"], later);
}

#[test]
fn finished_jobs_vanish_after_their_retention() {
    let server = server();
    set_config(&server, "keep-ms", "300");
    let mut zrq = zrq(&server);
    let mut conn = server.conn();
    // Config retention for a completed job, per-job KEEP for a cancelled one.
    let done = zrq.enqueue(Q, "t", "{}", &[]);
    assert_eq!(zrq.fetch(Q, "w", 1).len(), 1);
    let acked_at = now_ms();
    assert_eq!(int(&mut zrq, "ack", &[Q, &done, "RESULT", "1"]), 1);
    let gone = zrq.enqueue(Q, "t", "{}", &["KEEP", "150"]);
    assert_eq!(int(&mut zrq, "cancel", &[Q, &gone]), 1);
    let dead = zrq.enqueue(Q, "t", "{}", &["RETRIES", "0", "KEEP", "10"]);
    assert_eq!(zrq.fetch(Q, "w", 1).len(), 1);
    assert_eq!(show(&ok(&mut zrq, "fail", &[Q, &dead, "x"])), "dead");
    // The per-job KEEP: its own key with that TTL; the queue's retention: a field of the
    // completed records hash (with a log entry), which the timer removes.
    let ttl: i64 = redis::cmd("PTTL")
        .arg(format!("zrq:{{{Q}}}:job:{gone}"))
        .query(&mut conn)
        .unwrap();
    assert!(ttl > 0 && ttl <= 150, "PTTL {ttl} for keep 150");
    assert!(
        support::kept_raw(&mut conn, Q, "completed", &done).is_some() || now_ms() - acked_at >= 300,
        "the completed job is kept until its retention ends"
    );
    assert_eq!(info_int(&mut zrq, Q, "completed"), 1);
    assert_eq!(info_int(&mut zrq, Q, "cancelled"), 1);
    // The own key expires by its TTL, the indexes are trimmed by the timer, which removes the
    // kept job's field and log entry (the hash goes with its last field).
    server.wait_for(|c| {
        let completed: i64 = redis::cmd("ZCARD")
            .arg(format!("zrq:{{{Q}}}:completed"))
            .query(c)
            .unwrap();
        let cancelled: i64 = redis::cmd("ZCARD")
            .arg(format!("zrq:{{{Q}}}:cancelled"))
            .query(c)
            .unwrap();
        let records: i64 = redis::cmd("EXISTS")
            .arg(format!("zrq:{{{Q}}}:job:{done}"))
            .arg(format!("zrq:{{{Q}}}:job:{gone}"))
            .arg(support::records_key(Q, "completed"))
            .query(c)
            .unwrap();
        // (A stream emptied by trimming stays, empty.)
        let logged: i64 = redis::cmd("XLEN")
            .arg(support::log_key(Q, "completed"))
            .query(c)
            .unwrap();
        completed + cancelled + records + logged == 0
    });
    assert!(now_ms() - acked_at >= 300, "not before the retention");
    let stats = info(&mut zrq, Q);
    assert_eq!(
        (stats["completed"].as_str(), stats["cancelled"].as_str()),
        ("0", "0")
    );
    assert_eq!(stats["total_completed"], "1", "totals stay");
    assert_eq!(stats["total_cancelled"], "1");
    let err = zrq.call::<Value>("result", &[Q, &done]).expect_err("gone");
    assert_eq!(err.code(), Some("NOJOB"));
    // Dead jobs are not subject to retention (KEEP applies to completed and cancelled only).
    thread::sleep(Duration::from_millis(50));
    assert_eq!(zrq.state(Q, &dead).as_deref(), Some("dead"));
    assert_eq!(info_int(&mut zrq, Q, "dead"), 1);
}

#[test]
fn info_zrq_section_counts_transitions_and_timer_passes() {
    let server = server();
    let mut conn = server.conn();
    let section: String = redis::cmd("INFO").arg("zrq").query(&mut conn).unwrap();
    assert!(section.contains("# zrq"), "{section}");
    for state in [
        "scheduled",
        "pending",
        "active",
        "retrying",
        "completed",
        "dead",
        "cancelled",
    ] {
        let value = info_field(&mut conn, "zrq", &format!("zrq_entered_{state}_total"));
        assert_eq!(
            value.as_deref(),
            Some("0"),
            "zrq_entered_{state}_total: {section}"
        );
    }
    assert_eq!(
        info_field(&mut conn, "zrq", "zrq_timer_passes_total").as_deref(),
        Some("0")
    );
    let everything: String = redis::cmd("INFO")
        .arg("everything")
        .query(&mut conn)
        .unwrap();
    assert!(
        everything.contains("zrq_timer_passes_total:"),
        "INFO everything includes zrq"
    );
    let mut zrq = zrq(&server);
    let id = zrq.enqueue(Q, "t", "{}", &["DELAY", "50"]);
    wait_until(Duration::from_secs(5), "promotion", || {
        zrq.state(Q, &id).as_deref() == Some("pending")
    });
    assert_eq!(zrq.fetch(Q, "w", 1).len(), 1);
    assert_eq!(int(&mut zrq, "ack", &[Q, &id]), 1);
    let get = |conn: &mut redis::Connection, f: &str| -> i64 {
        info_field(conn, "zrq", f)
            .unwrap_or_default()
            .parse()
            .unwrap_or(-1)
    };
    for (f, want) in [
        ("zrq_entered_scheduled_total", 1),
        ("zrq_entered_pending_total", 1),
        ("zrq_entered_active_total", 1),
        ("zrq_entered_completed_total", 1),
        ("zrq_entered_dead_total", 0),
    ] {
        assert_eq!(get(&mut conn, f), want, "{f}");
    }
    assert!(get(&mut conn, "zrq_timer_passes_total") >= 1);
    assert!(get(&mut conn, "zrq_timed_queues_current") >= 0);
}

#[test]
fn result_block_is_woken_by_every_way_a_job_ends() {
    let server = server();
    let mut zrq = zrq(&server);
    // The lease of the last attempt runs out and RECLAIM buries the job.
    let id = zrq.enqueue(Q, "t", "{}", &["RETRIES", "0", "TIMEOUT", "50"]);
    assert_eq!(zrq.fetch(Q, "w", 1).len(), 1);
    let rx = spawn_call(&server, "result", &[Q, &id, "BLOCK", "0"]);
    wait_blocked(&server, "result", 1);
    thread::sleep(Duration::from_millis(80));
    assert_eq!(jobs(ok(&mut zrq, "reclaim", &[Q, "w2"])).len(), 0);
    let result = map(recv(&rx, "RESULT after RECLAIM").reply.expect("RESULT"));
    assert_eq!(result["state"], "dead");
    assert!(result["error"].contains("lease expired"), "{result:?}");

    // A cancel-requested job whose worker reports a failure.
    let id = zrq.enqueue(Q, "t", "{}", &[]);
    assert_eq!(zrq.fetch(Q, "w", 1).len(), 1);
    let rx = spawn_call(&server, "result", &[Q, &id, "BLOCK", "0"]);
    wait_blocked(&server, "result", 1);
    assert_eq!(int(&mut zrq, "cancel", &[Q, &id]), 2);
    assert_eq!(
        show(&ok(&mut zrq, "fail", &[Q, &id, "stopped"])),
        "cancelled"
    );
    let result = map(recv(&rx, "RESULT after FAIL of a cancelled job")
        .reply
        .expect("RESULT"));
    assert_eq!(result["state"], "cancelled");
    assert_eq!(result["error"], "stopped");

    // A scheduled job cancelled before its time.
    let id = zrq.enqueue(Q, "t", "{}", &["DELAY", "600000"]);
    let rx = spawn_call(&server, "result", &[Q, &id, "BLOCK", "0"]);
    wait_blocked(&server, "result", 1);
    assert_eq!(int(&mut zrq, "cancel", &[Q, &id]), 1);
    let result = map(recv(&rx, "RESULT after CANCEL of a scheduled job")
        .reply
        .expect("RESULT"));
    assert_eq!(result["state"], "cancelled");
}

#[test]
fn result_block_on_a_job_that_is_deleted_answers_nojob() {
    // The job can never finish once deleted: a waiter must not stay blocked forever.
    let server = server();
    let mut zrq = zrq(&server);
    let id = zrq.enqueue(Q, "t", "{}", &[]);
    let rx = spawn_call(&server, "result", &[Q, &id, "BLOCK", "0"]);
    wait_blocked(&server, "result", 1);
    assert_eq!(int(&mut zrq, "delete", &[Q, &id]), 1);
    let arrival = rx.recv_timeout(Duration::from_secs(3)).unwrap_or_else(|_| {
        panic!(
            "ZRQ.RESULT {Q} {id} BLOCK 0 is still blocked 3 s after ZRQ.DELETE removed the \
                 job ({} client(s) blocked in zrq.result): it can never be answered",
            blocked(&mut server.conn(), "result")
        )
    });
    let err = arrival.reply.expect_err("NOJOB");
    assert_eq!(err.code(), Some("NOJOB"), "{err}");
}

#[test]
fn a_promoted_high_priority_job_wakes_a_blocked_worker() {
    let server = server();
    let mut zrq = zrq(&server);
    let rx = spawn_call(&server, "fetch", &[Q, "w", "BLOCK", "0"]);
    wait_blocked(&server, "fetch", 1);
    let id = zrq.enqueue(Q, "t", "{}", &["DELAY", "200", "PRIORITY", "9"]);
    let due = run_at(&mut zrq, &id);
    let arrival = recv(&rx, "the priority-9 job");
    let got = jobs(arrival.reply.expect("FETCH"));
    assert_eq!(got[0]["id"], id);
    assert_eq!(got[0]["priority"], "9");
    let lag = arrival.at_ms - due;
    assert!(
        (0..1000).contains(&lag),
        "delivered {lag} ms after its due time"
    );
}

#[test]
fn resume_wakes_as_many_blocked_workers_as_there_are_jobs() {
    let server = server();
    let mut zrq = zrq(&server);
    ok(&mut zrq, "pause", &[Q]);
    let workers: Vec<_> = (0..4)
        .map(|i| spawn_call(&server, "fetch", &[Q, &format!("w{i}"), "BLOCK", "3000"]))
        .collect();
    wait_blocked(&server, "fetch", 4);
    let ids: Vec<String> = (0..3).map(|_| zrq.enqueue(Q, "t", "{}", &[])).collect();
    thread::sleep(Duration::from_millis(200));
    assert_eq!(
        blocked(&mut server.conn(), "fetch"),
        4,
        "paused: all still blocked"
    );
    ok(&mut zrq, "resume", &[Q]);
    let mut got = Vec::new();
    let mut empty = 0;
    for rx in workers {
        let jobs = jobs(recv(&rx, "worker").reply.expect("FETCH"));
        match jobs.len() {
            0 => empty += 1,
            1 => got.push(jobs[0]["id"].clone()),
            n => panic!("{n} jobs for one worker"),
        }
    }
    got.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(got, want, "each job to one woken worker");
    assert_eq!(empty, 1, "the fourth worker timed out empty-handed");
}

#[test]
fn result_block_inside_multi_does_not_block() {
    let server = server();
    let mut zrq = zrq(&server);
    let id = zrq.enqueue(Q, "t", "{}", &[]);
    let mut conn = server.conn();
    let start = Instant::now();
    let (reply,): (Value,) = redis::pipe()
        .atomic()
        .cmd("ZRQ.RESULT")
        .arg(Q)
        .arg(&id)
        .arg("BLOCK")
        .arg(0)
        .query(&mut conn)
        .expect("MULTI RESULT");
    assert_eq!(reply, Value::Nil);
    // BLOCK 0 would wait forever; inside MULTI it must not block at all.
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn more_due_jobs_than_one_pass_handles_are_all_promoted() {
    // A pass promotes at most 1000 jobs per index; the rest follow in the next passes.
    let server = server();
    let mut conn = server.conn();
    // Far enough ahead that all 2500 are still scheduled when the pipeline returns, even on a
    // loaded machine (at 500 ms the timer sometimes promoted the first ones before the count).
    let at = (now_ms() + 5000).to_string();
    let n = 2500;
    let mut pipe = redis::pipe();
    for i in 0..n {
        pipe.cmd("ZRQ.ENQUEUE")
            .arg(Q)
            .arg("t")
            .arg(format!("[{i}]"))
            .arg("AT")
            .arg(&at)
            .ignore();
    }
    let _: () = pipe.query(&mut conn).expect("pipelined ENQUEUE");
    let mut zrq = zrq(&server);
    assert_eq!(info_int(&mut zrq, Q, "scheduled"), n);
    wait_until(Duration::from_secs(20), "all promoted", || {
        info_int(&mut zrq, Q, "pending") == n
    });
    assert_eq!(info_int(&mut zrq, Q, "scheduled"), 0);
    let mut seen = std::collections::BTreeSet::new();
    loop {
        let got = zrq.fetch(Q, "w", 1000);
        if got.is_empty() {
            break;
        }
        for job in got {
            assert!(seen.insert(job["id"].clone()), "delivered twice");
        }
    }
    assert_eq!(seen.len() as i64, n);
}

#[test]
fn delayed_jobs_are_promoted_in_every_database() {
    // zrq commands work in any logical database; the timer must promote there too, also when
    // another database's queue armed it.
    let server = server();
    let mut db3 = Zrq {
        conn: redis::Client::open(format!("{}/3", server.url()))
            .and_then(|c| c.get_connection())
            .expect("connection to db 3"),
        backend: Backend::Module,
    };
    let mut db0 = zrq(&server);
    let in3 = db3.enqueue(Q, "t", "{}", &["DELAY", "300"]);
    let in0 = db0.enqueue(Q, "t", "{}", &["DELAY", "100"]);
    assert_eq!(db0.state(Q, &in3), None, "databases are separate");
    let due: i64 = field(&mut db3, Q, &in3, "run_at").parse().unwrap();
    wait_until(Duration::from_secs(5), "promotion in db 0", || {
        db0.state(Q, &in0).as_deref() == Some("pending")
    });
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        if db3.state(Q, &in3).as_deref() == Some("pending") {
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "a DELAY 300 job in database 3 is still {:?} {} ms after its due time (the db-0 job \
         was promoted)",
        db3.state(Q, &in3),
        now_ms() - due
    );
}

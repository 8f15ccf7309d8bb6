//! Failures: FAIL with RETRYIN and with backoff (module configs and per-job BACKOFF), burial after
//! the last attempt, RECLAIM as a failure, and the dead letters (DEAD, REQUEUE, DELETE, the cap).

use crate::support;

use std::time::Duration;

use lifecycle_support::{
    field, info, info_int, int, now_ms, ok, page, placement, set_config, show, wait_until,
};
use support::lifecycle as lifecycle_support;
use zrq_tests::redis::{self, Value};
use zrq_tests::{conformance, Backend, Options, Zrq};

/// Fetches one job (it must be `id`) for `consumer`.
fn fetch_one(zrq: &mut Zrq, queue: &str, consumer: &str, id: &str) {
    let got = zrq.fetch(queue, consumer, 1);
    assert_eq!(got.len(), 1, "job {id} is delivered");
    assert_eq!(got[0]["id"], id);
}

/// FAILs job `id`; returns (reply, run_at - time before, run_at - time after).
fn fail_timed(zrq: &mut Zrq, queue: &str, id: &str, extra: &[&str]) -> (String, i64, i64) {
    let mut args = vec![queue, id, "failed here"];
    args.extend_from_slice(extra);
    let before = now_ms();
    let reply = show(&ok(zrq, "fail", &args));
    let after = now_ms();
    let run_at: i64 = field(zrq, queue, id, "run_at").parse().expect("run_at");
    (reply, run_at - before, run_at - after)
}

fn fail_with_retryin_retries_after_exactly_that(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let id = zrq.enqueue("q", "t", "{}", &["RETRIES", "2"]);
    fetch_one(&mut zrq, "q", "w", &id);
    let (reply, from_before, from_after) = fail_timed(&mut zrq, "q", &id, &["RETRYIN", "5000"]);
    assert_eq!(reply, "retrying");
    assert!(
        from_after <= 5000 && 5000 <= from_before,
        "run_at is now + 5000: {from_after}..{from_before}"
    );
    let job = zrq.job("q", &id).expect("job");
    assert_eq!(job["state"], "retrying");
    assert_eq!(job["error"], "failed here");
    assert_eq!(job["attempt"], "1");
    assert!(!job.contains_key("entry"), "out of the stream: {job:?}");
    let mut conn = server.conn();
    assert_eq!(
        placement(&mut conn, "q", &id),
        ["retrying".to_string()].into()
    );
    let score: i64 = zrq_tests::redis::cmd("ZSCORE")
        .arg("zrq:{q}:retrying")
        .arg(&id)
        .query(&mut conn)
        .expect("ZSCORE");
    assert_eq!(score.to_string(), job["run_at"], "indexed by its due time");
    assert!(
        zrq.fetch("q", "w", 1).is_empty(),
        "not delivered before its retry"
    );
    assert_eq!(info_int(&mut zrq, "q", "retrying"), 1);
    assert_eq!(info_int(&mut zrq, "q", "total_failed"), 1);
    // RETRYIN 0 is allowed (retry as soon as the timer runs).
    let id0 = zrq.enqueue("q", "t", "{}", &[]);
    fetch_one(&mut zrq, "q", "w", &id0);
    assert_eq!(
        show(&ok(&mut zrq, "fail", &["q", &id0, "e", "RETRYIN", "0"])),
        "retrying"
    );
    wait_until(Duration::from_secs(5), "RETRYIN 0 is redelivered", || {
        zrq.fetch("q", "w", 1)
            .first()
            .is_some_and(|j| j["id"] == id0)
    });
}

fn per_job_backoff_is_within_the_jitter_bounds(backend: Backend) {
    // Equal jitter: the first retry waits between half and all of BACKOFF.
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let mut delays = Vec::new();
    for _ in 0..20 {
        let id = zrq.enqueue("q", "t", "{}", &["BACKOFF", "10000", "RETRIES", "5"]);
        fetch_one(&mut zrq, "q", "w", &id);
        let (reply, from_before, from_after) = fail_timed(&mut zrq, "q", &id, &[]);
        assert_eq!(reply, "retrying");
        assert!(
            from_before >= 5000 && from_after <= 10_000,
            "delay of the first retry within [5000, 10000]: {from_after}..{from_before}"
        );
        assert_eq!(field(&mut zrq, "q", &id, "backoff"), "10000");
        delays.push(from_before);
    }
    let spread = delays.iter().max().unwrap() - delays.iter().min().unwrap();
    assert!(spread > 100, "jitter spreads the retries: {delays:?}");
}

fn fail_on_the_last_attempt_buries_the_job_with_its_error(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let id = zrq.enqueue("q", "t", r#"{"k":1}"#, &["RETRIES", "0"]);
    fetch_one(&mut zrq, "q", "w", &id);
    assert_eq!(
        show(&ok(&mut zrq, "fail", &["q", &id, "no luck: ünïcode ✓"])),
        "dead"
    );
    let job = zrq.job("q", &id).expect("dead jobs are kept");
    assert_eq!(job["state"], "dead");
    assert_eq!(job["error"], "no luck: ünïcode ✓");
    assert!(job.contains_key("finished_at"));
    let mut conn = server.conn();
    assert_eq!(placement(&mut conn, "q", &id), ["dead".to_string()].into());
    let stats = info(&mut zrq, "q");
    assert_eq!(stats["dead"], "1");
    assert_eq!(stats["total_dead"], "1");
    assert_eq!(stats["total_failed"], "1");
    let (cursor, dead) = page(ok(&mut zrq, "dead", &["q"]));
    assert_eq!(cursor, "0");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["id"], id);
    assert_eq!(dead[0]["error"], "no luck: ünïcode ✓");
    let result = zrq_tests::map(ok(&mut zrq, "result", &["q", &id]));
    assert_eq!(result["state"], "dead");
    assert_eq!(result["error"], "no luck: ünïcode ✓");
}

fn a_job_fails_through_all_its_attempts(backend: Backend) {
    // RETRIES 2: three attempts; FAIL with RETRYIN 0 and the timer (module) or the next FETCH
    // brings it back.
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let id = zrq.enqueue("q", "t", "{}", &["RETRIES", "2"]);
    for attempt in 1..=3 {
        let mut got = Vec::new();
        wait_until(Duration::from_secs(5), "the retry is delivered", || {
            got = zrq.fetch("q", "w", 1);
            !got.is_empty()
        });
        assert_eq!(got[0]["id"], id);
        assert_eq!(got[0]["attempt"], attempt.to_string());
        let reply = show(&ok(
            &mut zrq,
            "fail",
            &["q", &id, &format!("e{attempt}"), "RETRYIN", "0"],
        ));
        assert_eq!(reply, if attempt < 3 { "retrying" } else { "dead" });
    }
    assert_eq!(field(&mut zrq, "q", &id, "error"), "e3");
    assert_eq!(info_int(&mut zrq, "q", "total_failed"), 3);
    assert_eq!(info_int(&mut zrq, "q", "total_dead"), 1);
}

fn reclaim_counts_as_a_failed_attempt(backend: Backend) {
    let server = backend.server();
    server.leave_leases_to_reclaim();
    let mut zrq = server.zrq(backend);
    let id = zrq.enqueue("q", "t", "{}", &["RETRIES", "1", "TIMEOUT", "1"]);
    fetch_one(&mut zrq, "q", "w1", &id);
    std::thread::sleep(Duration::from_millis(10));
    assert_eq!(info_int(&mut zrq, "q", "total_failed"), 0);
    let first = zrq_tests::jobs(ok(&mut zrq, "reclaim", &["q", "w2"]));
    assert_eq!(first.len(), 1);
    assert_eq!(
        info_int(&mut zrq, "q", "total_failed"),
        1,
        "an expired lease is a failure"
    );
    assert!(
        first[0]["error"].contains("lease expired"),
        "{:?}",
        first[0]
    );
    std::thread::sleep(Duration::from_millis(10));
    let second = zrq_tests::jobs(ok(&mut zrq, "reclaim", &["q", "w3"]));
    assert!(second.is_empty());
    let stats = info(&mut zrq, "q");
    assert_eq!(stats["total_failed"], "2");
    assert_eq!(stats["total_dead"], "1");
    assert_eq!(stats["dead"], "1");
    assert_eq!(stats["active"], "0");
    let (_, dead) = page(ok(&mut zrq, "dead", &["q"]));
    assert_eq!(dead[0]["id"], id);
    assert!(dead[0]["error"].contains("lease expired"), "{:?}", dead[0]);
    assert!(dead[0]["error"].contains("attempt 2 of 2"), "{:?}", dead[0]);
}

/// Kills `n` jobs (RETRIES 0) in order, 2 ms apart so their death times differ.
fn kill(zrq: &mut Zrq, queue: &str, n: usize, tag: &str) -> Vec<String> {
    (0..n)
        .map(|i| {
            let id = format!("{tag}{i}");
            zrq.enqueue(queue, "t", "{}", &["ID", &id, "RETRIES", "0"]);
            fetch_one(zrq, queue, "w", &id);
            assert_eq!(
                show(&ok(zrq, "fail", &[queue, &id, &format!("err {i}")])),
                "dead"
            );
            std::thread::sleep(Duration::from_millis(2));
            id
        })
        .collect()
}

fn dead_lists_oldest_first_in_pages(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let ids = kill(&mut zrq, "q", 5, "d");
    let mut seen = Vec::new();
    let mut cursor = "0".to_string();
    let mut cursors = Vec::new();
    loop {
        let (next, jobs) = page(ok(
            &mut zrq,
            "dead",
            &["q", "COUNT", "2", "CURSOR", &cursor],
        ));
        for job in &jobs {
            assert!(job["error"].starts_with("err "), "{job:?}");
            assert_eq!(job["state"], "dead");
        }
        seen.extend(jobs.into_iter().map(|j| j["id"].clone()));
        cursors.push(next.clone());
        if next == "0" {
            break;
        }
        cursor = next;
    }
    assert_eq!(seen, ids, "oldest death first, each once");
    assert_eq!(cursors, ["2", "4", "0"]);
    let (next, all) = page(ok(&mut zrq, "dead", &["q", "COUNT", "100"]));
    assert_eq!((next.as_str(), all.len()), ("0", 5));
    let (next, none) = page(ok(&mut zrq, "dead", &["empty"]));
    assert_eq!((next.as_str(), none.len()), ("0", 0));
}

/// `REQUEUE … ALL` with `args`: the next cursor and how many were requeued.
fn requeue_page(zrq: &mut Zrq, args: &[&str]) -> (String, i64) {
    match ok(zrq, "requeue", args) {
        Value::Array(items) => match items.as_slice() {
            [Value::BulkString(next), Value::Int(n)] => {
                (String::from_utf8_lossy(next).into_owned(), *n)
            }
            other => panic!("REQUEUE ALL reply: {other:?}"),
        },
        other => panic!("REQUEUE ALL reply: {other:?}"),
    }
}

/// `REQUEUE <queue> ALL` works in bounded pages: COUNT jobs at most, oldest death first, and a
/// cursor that steps over what a page left in place (an unreadable record) — never over a dead
/// job — until `0`. COUNT beyond `zrq.requeue-max` is refused (limits.rs); an id takes no options.
fn requeue_all_goes_page_by_page(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let ids = kill(&mut zrq, "q", 7, "d");
    // The third dead job's record is unreadable: it stays dead, in place, and is stepped over.
    support::tamper(&mut zrq.conn, "q", "d2", |record| {
        record.insert("state".to_string(), "weird".to_string());
    });
    let mut pages = Vec::new();
    let mut cursor = "0".to_string();
    loop {
        let (next, requeued) =
            requeue_page(&mut zrq, &["q", "ALL", "COUNT", "2", "CURSOR", &cursor]);
        let pending: Vec<String> = ids
            .iter()
            .filter(|id| *id != "d2" && zrq.state("q", id).as_deref() == Some("pending"))
            .cloned()
            .collect();
        pages.push((next.clone(), requeued, pending.len()));
        if next == "0" {
            break;
        }
        cursor = next;
    }
    // d0 d1 | d2 (left) d3 | d4 d5 | d6: cursors are the next page's rank plus one.
    assert_eq!(
        pages,
        [
            ("1".to_string(), 2, 2),
            ("2".to_string(), 1, 3),
            ("2".to_string(), 2, 5),
            ("0".to_string(), 1, 6),
        ]
    );
    let left: i64 = redis::cmd("ZCARD")
        .arg("zrq:{q}:dead")
        .query(&mut zrq.conn)
        .expect("ZCARD");
    assert_eq!(left, 1, "the unreadable one stays in place");
    // Without COUNT a page is zrq.requeue-max jobs; a page past the end is empty.
    for id in ids.iter().filter(|id| *id != "d2") {
        assert_eq!(int(&mut zrq, "delete", &["q", id]), 1);
    }
    kill(&mut zrq, "q", 3, "e");
    assert_eq!(requeue_page(&mut zrq, &["q", "ALL"]), ("0".to_string(), 3));
    assert_eq!(
        requeue_page(&mut zrq, &["q", "ALL", "CURSOR", "99"]),
        ("0".to_string(), 0)
    );
    let err = zrq
        .call::<Value>("requeue", &["q", "e0", "COUNT", "2"])
        .expect_err("an id takes no options");
    assert_eq!(
        support::error_text(&err),
        "ERR wrong number of arguments for 'zrq.requeue' command"
    );
}

fn requeue_gives_dead_jobs_a_fresh_attempt_budget(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let ids: Vec<String> = (0..3)
        .map(|i| {
            let id = format!("r{i}");
            zrq.enqueue("q", "t", "{}", &["ID", &id, "RETRIES", "1"]);
            id
        })
        .collect();
    for id in &ids {
        fetch_one(&mut zrq, "q", "w", id);
        assert_eq!(
            show(&ok(&mut zrq, "fail", &["q", id, "e", "RETRYIN", "0"])),
            "retrying"
        );
    }
    // Second attempts (after the timer or at the next FETCH).
    for _ in &ids {
        wait_until(Duration::from_secs(5), "retry delivered", || {
            let got = zrq.fetch("q", "w", 1);
            if let Some(job) = got.first() {
                assert_eq!(job["attempt"], "2");
                let reply = show(&ok(&mut zrq, "fail", &["q", &job["id"], "final"]));
                assert_eq!(reply, "dead");
                true
            } else {
                false
            }
        });
    }
    assert_eq!(info_int(&mut zrq, "q", "dead"), 3);
    assert_eq!(int(&mut zrq, "requeue", &["q", &ids[0]]), 1);
    assert_eq!(
        int(&mut zrq, "requeue", &["q", &ids[0]]),
        0,
        "no longer dead"
    );
    assert_eq!(
        requeue_page(&mut zrq, &["q", "all"]),
        ("0".to_string(), 2),
        "ALL, any case"
    );
    assert_eq!(requeue_page(&mut zrq, &["q", "ALL"]), ("0".to_string(), 0));
    let stats = info(&mut zrq, "q");
    assert_eq!(
        (stats["dead"].as_str(), stats["pending"].as_str()),
        ("0", "3")
    );
    for id in &ids {
        let job = zrq.job("q", id).expect("job");
        assert_eq!(job["state"], "pending");
        assert_eq!(job["attempt"], "0");
        assert_eq!(job["max_attempts"], "2");
        assert_eq!(
            job["error"], "final",
            "the last error is kept for reference"
        );
    }
    // The fresh budget: two attempts again.
    let got = zrq.fetch("q", "w", 3);
    assert_eq!(got.len(), 3);
    for job in &got {
        assert_eq!(job["attempt"], "1");
        let reply = show(&ok(
            &mut zrq,
            "fail",
            &["q", &job["id"], "again", "RETRYIN", "600000"],
        ));
        assert_eq!(reply, "retrying", "a requeued job has attempts left");
    }
}

/// Every state but `waiting` (a job needs a parent to wait).
const STATES_BUT_WAITING: [&str; 7] = [
    "pending",
    "scheduled",
    "active",
    "retrying",
    "completed",
    "cancelled",
    "dead",
];

fn delete_removes_a_job_in_any_state(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let mut made = Vec::new();
    // pending, scheduled, active, retrying, completed, cancelled, dead — each with a UNIQUE key,
    // each in its own queue.
    for (i, state) in STATES_BUT_WAITING.iter().enumerate() {
        let (q, id, unique) = (format!("q{i}"), format!("x{i}"), format!("u{i}"));
        let retries = if *state == "dead" { "0" } else { "1" };
        let mut opts = vec!["ID", &id, "UNIQUE", &unique, "RETRIES", retries];
        if *state == "scheduled" {
            opts.extend(["DELAY", "600000"]);
        }
        zrq.enqueue(&q, "t", "{}", &opts);
        if matches!(*state, "active" | "retrying" | "completed" | "dead") {
            fetch_one(&mut zrq, &q, "w", &id);
        }
        match *state {
            "retrying" => {
                ok(&mut zrq, "fail", &[&q, &id, "e", "RETRYIN", "600000"]);
            }
            "completed" => {
                ok(&mut zrq, "ack", &[&q, &id]);
            }
            "cancelled" => {
                ok(&mut zrq, "cancel", &[&q, &id]);
            }
            "dead" => {
                ok(&mut zrq, "fail", &[&q, &id, "e"]);
            }
            _ => {}
        }
        assert_eq!(zrq.state(&q, &id).as_deref(), Some(*state));
        made.push((q, id, unique, *state));
    }
    let mut conn = server.conn();
    for (q, id, unique, state) in &made {
        let q = q.as_str();
        assert_eq!(int(&mut zrq, "delete", &[q, id]), 1, "{state}");
        assert_eq!(zrq.state(q, id), None, "{state}");
        assert!(
            placement(&mut conn, q, id).is_empty(),
            "{state}: {:?}",
            placement(&mut conn, q, id)
        );
        assert_eq!(
            int(&mut zrq, "delete", &[q, id]),
            0,
            "{state}: already gone"
        );
        let held: Option<String> = zrq_tests::redis::cmd("HGET")
            .arg(format!("zrq:{{{q}}}:unique"))
            .arg(unique)
            .query(&mut conn)
            .expect("HGET");
        assert_eq!(held, None, "{state}: its UNIQUE key is free");
        let result = zrq.call::<Value>("result", &[q, id]).expect_err("deleted");
        assert_eq!(result.code(), Some("NOJOB"), "{state}");
        let stats = info(&mut zrq, q);
        for state in STATES_BUT_WAITING {
            assert_eq!(stats[state], "0", "{state}: {stats:?}");
        }
        assert!(zrq.fetch(q, "w", 10).is_empty());
        // The UNIQUE key can be used again.
        let fresh = zrq.enqueue(q, "t", "{}", &["UNIQUE", unique]);
        assert_ne!(&fresh, id);
    }
}

/// A command that moves a job takes it out of the one index of the state it leaves (an ACK
/// does not look in `scheduled` for a running job); DELETE, the operator's way to clear a job,
/// takes it out of every index, even one its record does not explain.
fn delete_clears_every_index_even_one_the_record_does_not_explain(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let mut conn = server.conn();
    let id = zrq.enqueue("q", "t", "{}", &["ID", "x"]);
    fetch_one(&mut zrq, "q", "w", &id);
    let indexes = [
        "scheduled",
        "retrying",
        "waiting",
        "completed",
        "cancelled",
        "dead",
    ];
    for index in indexes {
        let _: i64 = redis::cmd("ZADD")
            .arg(format!("zrq:{{q}}:{index}"))
            .arg(1)
            .arg(&id)
            .query(&mut conn)
            .expect("ZADD");
    }
    assert_eq!(int(&mut zrq, "delete", &["q", &id]), 1);
    for index in indexes.iter().chain(&["active"]) {
        let score: Option<f64> = redis::cmd("ZSCORE")
            .arg(format!("zrq:{{q}}:{index}"))
            .arg(&id)
            .query(&mut conn)
            .expect("ZSCORE");
        assert_eq!(score, None, "{index}");
    }
    assert_eq!(zrq.state("q", &id), None);
}

conformance!(
    fail_with_retryin_retries_after_exactly_that,
    per_job_backoff_is_within_the_jitter_bounds,
    fail_on_the_last_attempt_buries_the_job_with_its_error,
    a_job_fails_through_all_its_attempts,
    reclaim_counts_as_a_failed_attempt,
    dead_lists_oldest_first_in_pages,
    requeue_gives_dead_jobs_a_fresh_attempt_budget,
    requeue_all_goes_page_by_page,
    delete_removes_a_job_in_any_state,
    delete_clears_every_index_even_one_the_record_does_not_explain,
);

// Module configs (`zrq.*`): module only.

#[test]
fn backoff_follows_the_module_configs_with_jitter() {
    let server = Backend::Module.server();
    set_config(&server, "backoff-base-ms", "40");
    set_config(&server, "backoff-max-ms", "100");
    let mut zrq = server.zrq(Backend::Module);
    let id = zrq.enqueue("q", "t", "{}", &["RETRIES", "4"]);
    // Retry k waits min(40 * 2^(k-1), 100) in full, at least half of it.
    let bounds = [(20, 40), (40, 80), (50, 100), (50, 100)];
    for (k, (low, high)) in bounds.iter().enumerate() {
        let mut got = Vec::new();
        wait_until(Duration::from_secs(5), "the retry is delivered", || {
            got = zrq.fetch("q", "w", 1);
            !got.is_empty()
        });
        assert_eq!(got[0]["attempt"], (k + 1).to_string());
        let (reply, from_before, from_after) = fail_timed(&mut zrq, "q", &id, &[]);
        assert_eq!(reply, "retrying");
        assert!(
            from_before >= *low && from_after <= *high,
            "retry {}: delay within [{low}, {high}]: {from_after}..{from_before}",
            k + 1
        );
    }
    // Per-job BACKOFF overrides the base, the cap still applies.
    let id = zrq.enqueue("q", "t", "{}", &["BACKOFF", "1000000"]);
    wait_until(Duration::from_secs(5), "delivered", || {
        !zrq.fetch("q", "w", 1).is_empty()
    });
    let (_, from_before, from_after) = fail_timed(&mut zrq, "q", &id, &[]);
    assert!(
        from_before >= 50 && from_after <= 100,
        "capped by zrq.backoff-max-ms: {from_after}..{from_before}"
    );
}

#[test]
fn the_dead_cap_drops_the_oldest_and_counts_them() {
    // Given at start-up as a config directive (the other tests use CONFIG SET).
    let server = Backend::Module.server_with(Options {
        config: vec![("zrq.dead-max".into(), "3".into())],
        ..Options::default()
    });
    let max: Vec<String> = zrq_tests::redis::cmd("CONFIG")
        .arg("GET")
        .arg("zrq.dead-max")
        .query(&mut server.conn())
        .expect("CONFIG GET");
    assert_eq!(max, ["zrq.dead-max", "3"]);
    let mut zrq = server.zrq(Backend::Module);
    let ids = kill(&mut zrq, "q", 5, "d");
    let (_, dead) = page(ok(&mut zrq, "dead", &["q", "COUNT", "10"]));
    let kept: Vec<&String> = dead.iter().map(|j| &j["id"]).collect();
    assert_eq!(
        kept,
        ids[2..].iter().collect::<Vec<_>>(),
        "the two oldest dropped"
    );
    for dropped in &ids[..2] {
        assert_eq!(
            zrq.state("q", dropped),
            None,
            "{dropped}: its record is gone too"
        );
    }
    let stats = info(&mut zrq, "q");
    assert_eq!(stats["dead"], "3");
    assert_eq!(stats["total_dead"], "5");
    assert_eq!(stats["total_dropped"], "2");
    // Lowering the cap applies at the next death.
    set_config(&server, "dead-max", "1");
    let more = kill(&mut zrq, "q", 1, "e");
    let (_, dead) = page(ok(&mut zrq, "dead", &["q"]));
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["id"], more[0]);
    assert_eq!(info_int(&mut zrq, "q", "total_dropped"), 5);
    // dead-max 0 keeps no dead jobs at all.
    set_config(&server, "dead-max", "0");
    kill(&mut zrq, "q", 1, "f");
    assert_eq!(info_int(&mut zrq, "q", "dead"), 0);
    assert_eq!(info_int(&mut zrq, "q", "total_dropped"), 7);
}

#[test]
fn module_configs_are_checked_and_can_be_given_as_module_arguments() {
    // `MODULE LOAD libzrq.so <name> <value> …` (as `--loadmodule` takes them).
    let path = zrq_tests::module_path().display().to_string();
    let server = zrq_tests::Server::start(Options::default());
    let _: () = zrq_tests::redis::cmd("MODULE")
        .arg("LOAD")
        .arg(&path)
        .arg(&["keep-ms", "500", "dead-max", "2", "backoff-base-ms", "7"][..])
        .arg(&["backoff-max-ms", "70"][..])
        .query(&mut server.conn())
        .expect("MODULE LOAD with arguments");
    let mut conn = server.conn();
    let got: Vec<String> = zrq_tests::redis::cmd("CONFIG")
        .arg("GET")
        .arg("zrq.*")
        .query(&mut conn)
        .expect("CONFIG GET");
    let got: std::collections::BTreeMap<String, String> = got
        .chunks(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect();
    for (name, value) in [
        ("zrq.keep-ms", "500"),
        ("zrq.dead-max", "2"),
        ("zrq.backoff-base-ms", "7"),
        ("zrq.backoff-max-ms", "70"),
    ] {
        assert_eq!(
            got.get(name).map(String::as_str),
            Some(value),
            "{name}: {got:?}"
        );
    }
    // Applied: retention from zrq.keep-ms (the job, kept in the completed records hash, goes
    // once 500 ms have passed since it finished, not before).
    let mut zrq = server.zrq(Backend::Module);
    let id = zrq.enqueue("q", "t", "{}", &[]);
    zrq.fetch("q", "w", 1);
    let before = now_ms();
    assert_eq!(int(&mut zrq, "ack", &["q", &id]), 1);
    assert!(support::kept_raw(&mut conn, "q", "completed", &id).is_some());
    wait_until(Duration::from_secs(5), "the end of the retention", || {
        support::kept_raw(&mut conn, "q", "completed", &id).is_none()
    });
    assert!(now_ms() - before >= 500, "removed before its retention");
    // Out-of-range and non-numeric values are refused and change nothing.
    for (name, value) in [
        ("keep-ms", "0"),
        ("keep-ms", "-1"),
        ("dead-max", "-1"),
        ("backoff-base-ms", "abc"),
        ("backoff-max-ms", "315360000001"),
    ] {
        let err = zrq_tests::redis::cmd("CONFIG")
            .arg("SET")
            .arg(format!("zrq.{name}"))
            .arg(value)
            .query::<()>(&mut conn)
            .expect_err("refused");
        assert_eq!(err.code(), Some("ERR"), "zrq.{name} {value}: {err}");
    }
    let after: Vec<String> = zrq_tests::redis::cmd("CONFIG")
        .arg("GET")
        .arg("zrq.keep-ms")
        .query(&mut conn)
        .expect("CONFIG GET");
    assert_eq!(after, ["zrq.keep-ms", "500"]);
}

/// RECLAIM drops consumers idle longer than `zrq.consumer-idle-ms` that have no pending entry:
/// worker names that never come back do not pile up in the group. FETCH delivers without
/// acknowledgement, so a worker running a job has no pending entry either: its job is the
/// record's and the lease's, and it stays the worker's (ACK with its lease still works). A
/// consumer still holding entries an older zrq delivered is kept (deleting it would drop them
/// from the pending list before their jobs end).
#[test]
fn reclaim_drops_idle_consumers_that_hold_nothing() {
    let server = Backend::Module.server();
    let mut zrq = server.zrq(Backend::Module);
    let mut conn = server.conn();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("zrq.consumer-idle-ms")
        .arg(100)
        .query(&mut conn)
        .unwrap();
    zrq.enqueue("cq", "t", "{}", &[]);
    zrq.enqueue("cq", "t", "{}", &[]);
    let held = zrq.fetch("cq", "holder", 1);
    assert_eq!(held.len(), 1);
    let done = zrq.fetch("cq", "gone", 1);
    let acked: i64 = zrq.call("ack", &["cq", &done[0]["id"]]).unwrap();
    assert_eq!(acked, 1);
    // A consumer with a pending entry, as an older zrq's FETCH left one.
    let _: Value = redis::cmd("XADD")
        .arg("zrq:{cq}:stream")
        .arg("*")
        .arg("job")
        .arg("elsewhere")
        .query(&mut conn)
        .unwrap();
    let _: Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("zrq")
        .arg("legacy")
        .arg("STREAMS")
        .arg("zrq:{cq}:stream")
        .arg(">")
        .query(&mut conn)
        .unwrap();
    let names = |conn: &mut redis::Connection| -> Vec<String> {
        let info: Vec<Vec<redis::Value>> = redis::cmd("XINFO")
            .arg("CONSUMERS")
            .arg("zrq:{cq}:stream")
            .arg("zrq")
            .query(conn)
            .unwrap();
        let mut names: Vec<String> = info
            .iter()
            .map(|c| redis::from_redis_value(c[1].clone()).unwrap())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(&mut conn), ["gone", "holder", "legacy"]);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let _: redis::Value = zrq.call("reclaim", &["cq", "janitor"]).unwrap();
    assert_eq!(
        names(&mut conn),
        ["legacy"],
        "only the consumer with a pending entry stays"
    );
    let acked: i64 = zrq
        .call("ack", &["cq", &held[0]["id"], "LEASE", &held[0]["lease"]])
        .unwrap();
    assert_eq!(acked, 1, "the pruned holder's job is still its own");
}

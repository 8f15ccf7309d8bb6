//! The compact job record, and queues written in the full format before it (both backends).
//!
//! The fixture `tests/fixtures/full-format` is a queue written by the module of main before the
//! compact record (see its `generate` script): one job in each state, every record storing `id`,
//! `queue` and its defaults. Loaded as it was written, it must read the same (JOB, LIST, DEAD,
//! INFO: same fields, same values as that build answered), pass the audit, and go on through
//! FETCH, ACK, FAIL, TOUCH, RELEASE, REQUEUE, CANCEL and the release of a waiting child, with no
//! migration step. New records are compact: no `id`, no `queue`, no field at its default.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};

use zrq_tests::audit::{assert_consistent, State};
use zrq_tests::redis::{self, Value};
use zrq_tests::{conformance, jobs, map, Backend, JobMap, Server, Zrq};

const Q: &str = "legacy";
/// The queue's keys, as commands (tab-separated arguments), written by the full-format build.
const KEYS: &str = include_str!("../fixtures/full-format/keys.txt");
/// That build's ZRQ.JOB of each job: id, then field and value pairs (tab-separated).
const JOBS: &str = include_str!("../fixtures/full-format/jobs.txt");

/// Writes the fixture's keys into `server`, command by command.
fn load(server: &Server) {
    let mut conn = server.conn();
    for line in KEYS.lines() {
        let args: Vec<&str> = line.split('\t').collect();
        let mut cmd = redis::cmd(args[0]);
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        let _: Value = cmd
            .query(&mut conn)
            .unwrap_or_else(|e| panic!("{line}: {e}"));
    }
}

/// The full-format build's JOB reply of each job.
fn answered() -> BTreeMap<String, JobMap> {
    JOBS.lines()
        .map(|line| {
            let mut parts = line.split('\t');
            let id = parts.next().unwrap_or_default().to_string();
            let rest: Vec<&str> = parts.collect();
            let fields = rest
                .chunks(2)
                .map(|pair| (pair[0].to_string(), pair[1].to_string()))
                .collect();
            (id, fields)
        })
        .collect()
}

/// A job's stored record (packed or a hash: `support::stored_record`); empty if none.
fn raw(server: &Server, id: &str) -> BTreeMap<String, String> {
    support::stored_record(&mut server.conn(), &support::job_key(Q, id)).unwrap_or_default()
}

/// The Redis type of a job's record: `hash` while it is as the full-format build wrote it,
/// `string` (packed) once a command wrote it.
fn kind(server: &Server, id: &str) -> String {
    support::key_type(&mut server.conn(), &support::job_key(Q, id))
}

fn list(zrq: &mut Zrq, state: &str) -> Vec<JobMap> {
    let (_, page): (String, Value) = zrq.call("list", &[Q, state, "COUNT", "100"]).expect("LIST");
    jobs(page)
}

fn audited(server: &Server, backend: Backend, ids: &BTreeSet<String>) {
    assert_consistent(&mut server.conn(), backend, Q, Some(ids));
}

fn full_format_queue_reads_the_same_and_keeps_working(backend: Backend) {
    let server = backend.server();
    server.leave_leases_to_reclaim();
    load(&server);
    let answered = answered();
    let mut ids: BTreeSet<String> = answered.keys().cloned().collect();
    assert_eq!(ids.len(), 9, "one job per state and more");
    let mut zrq = server.zrq(backend);
    assert_eq!(
        raw(&server, "p1").get("queue").map(String::as_str),
        Some(Q),
        "the fixture is in the full format"
    );
    for id in &ids {
        assert_eq!(
            kind(&server, id),
            "hash",
            "{id}: the fixture's records are hashes"
        );
    }

    // Read as written: every job, every listing, the counts.
    let report = assert_consistent(&mut server.conn(), backend, Q, Some(&ids));
    for (state, n) in [
        (State::Pending, 2),
        (State::Active, 1),
        (State::Retrying, 1),
        (State::Dead, 1),
        (State::Completed, 1),
        (State::Cancelled, 1),
        (State::Scheduled, 1),
        (State::Waiting, 1),
    ] {
        assert_eq!(report.count(state), n, "{state}");
        assert_eq!(report.info(state.as_str()), n as i64, "INFO {state}");
    }
    for (id, want) in &answered {
        assert_eq!(zrq.job(Q, id).as_ref(), Some(want), "JOB {id}");
    }
    for state in [
        "waiting",
        "scheduled",
        "pending",
        "active",
        "retrying",
        "completed",
        "dead",
        "cancelled",
    ] {
        for job in list(&mut zrq, state) {
            assert_eq!(Some(&job), answered.get(&job["id"]), "LIST {state}");
        }
    }
    let listed: Vec<String> = list(&mut zrq, "pending")
        .iter()
        .map(|j| j["id"].clone())
        .collect();
    assert_eq!(listed, ["p2", "p1"], "priority 5 first");
    let (_, dead): (String, Value) = zrq.call("dead", &[Q]).expect("DEAD");
    assert_eq!(jobs(dead), [answered["d1"].clone()]);
    let info: JobMap = map(zrq.call("info", &[Q]).expect("INFO"));
    assert_eq!(info["total_enqueued"], "9");

    // The active job's worker acknowledges it under the lease the full-format record holds.
    let lease = answered["a1"]["lease"].clone();
    let acked: i64 = zrq
        .call("ack", &[Q, "a1", "RESULT", "{\"v\":1}", "LEASE", &lease])
        .expect("ACK");
    assert_eq!(acked, 1);
    let a1 = zrq.job(Q, "a1").expect("a1");
    assert_eq!(
        (a1["state"].as_str(), a1["lease"].as_str()),
        ("completed", lease.as_str())
    );
    assert_eq!((a1["id"].as_str(), a1["queue"].as_str()), ("a1", Q));
    assert_eq!(a1["timeout"], "315360000000");
    // Its end moved it, packed compact and without its state, into the completed records hash
    // (kept for the queue's retention, no KEEP of its own): its full-format key is gone.
    assert_eq!(kind(&server, "a1"), "none", "ACK moves the record");
    let stored = support::kept_record(&mut server.conn(), Q, "completed", "a1")
        .expect("a1 in the completed records hash");
    assert!(
        !stored.contains_key("id") && !stored.contains_key("queue"),
        "{stored:?}"
    );
    assert_eq!(
        support::log_entries(&mut server.conn(), Q, "completed")
            .into_iter()
            .filter(|(_, id)| id == "a1")
            .count(),
        1,
        "a1 in the completed log"
    );

    // FETCH serves the full-format pending jobs with their options.
    let fetched = zrq.fetch(Q, "worker-9", 2);
    let got: Vec<(&str, &str, &str, &str, &str)> = fetched
        .iter()
        .map(|j| {
            (
                j["id"].as_str(),
                j["attempt"].as_str(),
                j["max_attempts"].as_str(),
                j["timeout"].as_str(),
                j["priority"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("p2", "1", "2", "5000", "5"),
            ("p1", "1", "4", "30000", "0")
        ]
    );
    // A UNIQUE key held by an unfinished full-format job is still held.
    assert_eq!(
        zrq.enqueue(Q, "send", "{}", &["UNIQUE", "u2"]),
        "p2",
        "u2 is p2's"
    );
    // (Its retry far away: p2 has BACKOFF 10.)
    let state: String = zrq
        .call("fail", &[Q, "p2", "oops", "RETRYIN", "315360000000"])
        .expect("FAIL");
    assert_eq!(state, "retrying");
    audited(&server, backend, &ids);

    // p1's ACK releases its waiting child, with the result copied in (WITHRESULTS).
    let _: i64 = zrq
        .call("ack", &[Q, "p1", "RESULT", "{\"r\":1}"])
        .expect("ACK");
    let w1 = zrq.job(Q, "w1").expect("w1");
    assert_eq!(w1["state"], "pending");
    assert_eq!(w1["parents"], "{\"p1\":{\"r\":1}}");
    audited(&server, backend, &ids);

    // REQUEUE of the dead job: a fresh attempt budget, attempt back to 0 (its default).
    let requeued: i64 = zrq.call("requeue", &[Q, "d1"]).expect("REQUEUE");
    assert_eq!(requeued, 1);
    let d1 = zrq.job(Q, "d1").expect("d1");
    assert_eq!(
        (d1["state"].as_str(), d1["attempt"].as_str()),
        ("pending", "0")
    );
    assert!(
        !raw(&server, "d1").contains_key("attempt"),
        "0 is not stored"
    );
    assert_eq!(kind(&server, "d1"), "string", "REQUEUE packs the record");
    let fetched = zrq.fetch(Q, "worker-9", 10);
    let order: Vec<&str> = fetched.iter().map(|j| j["id"].as_str()).collect();
    assert_eq!(order, ["w1", "d1"]);
    let state: String = zrq.call("fail", &[Q, "d1", "again"]).expect("FAIL");
    assert_eq!(state, "dead", "RETRIES 0 kept: max_attempts 1");

    // TOUCH back to the default lease length, then RELEASE back to attempt 0: both defaults,
    // so both fields leave the record (written whole, packed and compact: p1's ACK packed it
    // when it released it), and the replies show the defaults.
    let touched: i64 = zrq
        .call("touch", &[Q, "w1", "TIMEOUT", "30000", "PROGRESS", "40"])
        .expect("TOUCH");
    assert_eq!(touched, 1);
    let released: i64 = zrq.call("release", &[Q, "w1"]).expect("RELEASE");
    assert_eq!(released, 1);
    let w1 = zrq.job(Q, "w1").expect("w1");
    assert_eq!(
        (
            w1["attempt"].as_str(),
            w1["timeout"].as_str(),
            w1["progress"].as_str()
        ),
        ("0", "30000", "40")
    );
    let stored = raw(&server, "w1");
    assert!(
        !stored.contains_key("attempt") && !stored.contains_key("timeout"),
        "{stored:?}"
    );
    assert_eq!(kind(&server, "w1"), "string");
    assert!(
        !stored.contains_key("id") && !stored.contains_key("queue"),
        "packed compact: {stored:?}"
    );
    assert_eq!(
        stored.get("parents").map(String::as_str),
        Some("{\"p1\":{\"r\":1}}"),
        "the rest is kept"
    );
    assert_eq!(stored.get("task").map(String::as_str), Some("send"));

    let cancelled: i64 = zrq.call("cancel", &[Q, "s1"]).expect("CANCEL");
    assert_eq!(cancelled, 1);
    audited(&server, backend, &ids);
    // Written: packed. Untouched: still the full-format hashes, read as they are. Finished
    // without a KEEP of their own: moved, packed without their state, into the records hashes.
    for id in ["a1", "p1", "p2", "w1", "d1", "s1"] {
        let job = zrq.job(Q, id).expect("job");
        let state = job["state"].as_str();
        if matches!(state, "completed" | "cancelled") && !job.contains_key("keep") {
            assert_eq!(kind(&server, id), "none", "{id} was moved");
            let kept = support::kept_record(&mut server.conn(), Q, state, id);
            assert!(kept.is_some(), "{id} is in the {state} records hash");
        } else {
            assert_eq!(kind(&server, id), "string", "{id} ({state}) was written");
        }
    }
    for id in ["c1", "x1", "r1"] {
        assert_eq!(kind(&server, id), "hash", "{id} was not written");
        assert_eq!(raw(&server, id).get("id").map(String::as_str), Some(id));
    }

    // A new plain job has no record (its stream entry holds it); a new job's record is
    // compact, and reads like the others.
    let plain = zrq.enqueue(Q, "send", "{}", &[]);
    ids.insert(plain.clone());
    assert!(raw(&server, &plain).is_empty(), "no record");
    assert_eq!(kind(&server, &plain), "none");
    let id = zrq.enqueue(Q, "send", "{\"n\":\"new\"}", &["ID", "new"]);
    ids.insert(id.clone());
    let stored: Vec<String> = raw(&server, &id).into_keys().collect();
    assert_eq!(
        stored,
        ["created_at", "entry", "payload", "state", "task"],
        "no id, queue or defaults"
    );
    assert_eq!(kind(&server, &id), "string", "a new record is packed");
    let job = zrq.job(Q, &id).expect("new job");
    for (field, value) in [
        ("id", id.as_str()),
        ("queue", Q),
        ("attempt", "0"),
        ("max_attempts", "4"),
        ("timeout", "30000"),
        ("priority", "0"),
    ] {
        assert_eq!(job[field], value, "{field}");
    }
    let report = assert_consistent(&mut server.conn(), backend, Q, Some(&ids));
    let info: JobMap = map(zrq.call("info", &[Q]).expect("INFO"));
    for (state, n) in [
        ("pending", 3),
        ("active", 0),
        ("retrying", 2),
        ("dead", 1),
        ("completed", 3),
        ("cancelled", 2),
        ("scheduled", 0),
        ("waiting", 0),
    ] {
        assert_eq!(info[state], n.to_string(), "INFO {state}");
        assert_eq!(
            report.count(State::parse(state).expect("state")),
            n,
            "{state}"
        );
    }
    assert_eq!(info["total_enqueued"], "11");
}

/// A record that stores `queue` (the full format) naming another queue is still `CORRUPT`, and a
/// compact record without `queue` reads as the command's queue.
fn stored_queue_still_checked(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let mut conn = server.conn();
    let _: () = redis::cmd("HSET")
        .arg("zrq:{q}:job:j")
        .arg(&[
            "id",
            "j",
            "queue",
            "other",
            "task",
            "t",
            "payload",
            "{}",
            "state",
            "pending",
            "attempt",
            "0",
            "max_attempts",
            "4",
            "timeout",
            "30000",
            "priority",
            "0",
            "created_at",
            "1",
        ])
        .query(&mut conn)
        .expect("HSET");
    let err = zrq.call::<Value>("job", &["q", "j"]).expect_err("CORRUPT");
    assert_eq!(
        support::error_text(&err),
        "CORRUPT 'zrq:{q}:job:j' is not a zrq record: field 'queue' does not name its queue"
    );
    let _: () = redis::cmd("HDEL")
        .arg("zrq:{q}:job:j")
        .arg(&[
            "id",
            "queue",
            "attempt",
            "max_attempts",
            "timeout",
            "priority",
        ])
        .query(&mut conn)
        .expect("HDEL");
    let job = zrq.job("q", "j").expect("compact");
    assert_eq!((job["id"].as_str(), job["queue"].as_str()), ("j", "q"));
}

conformance!(
    full_format_queue_reads_the_same_and_keeps_working,
    stored_queue_still_checked
);

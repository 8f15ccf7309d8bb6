//! Chains, dependencies and batches resolved inside Redis (`AFTER`, `WITHRESULTS`,
//! `ONPARENTFAIL`, `ZRQ.BATCH`, `ZRQ.BATCHINFO`).

use crate::support;

use std::thread;

use support::{error_text, job_ids, record, stream_state, wait_replica_caught_up};
use zrq_tests::redis::{self, Value};
use zrq_tests::{conformance, jobs, map, Backend, JobMap, Options, Zrq};

const Q: &str = "flow";

/// Fetches exactly one job and returns it.
fn fetch_one(zrq: &mut Zrq, consumer: &str) -> JobMap {
    let mut got = zrq.fetch(Q, consumer, 1);
    assert_eq!(got.len(), 1, "expected one job to fetch");
    got.remove(0)
}

fn ack(zrq: &mut Zrq, id: &str, result: &str) {
    let acked: i64 = zrq.call("ack", &[Q, id, "RESULT", result]).unwrap();
    assert_eq!(acked, 1, "ACK {id}");
}

fn a_chain_of_three_passes_each_result_on(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let a = zrq.enqueue(Q, "a", "{}", &[]);
    let b = zrq.enqueue(Q, "b", "{}", &["AFTER", &a, "WITHRESULTS"]);
    let c = zrq.enqueue(Q, "c", "{}", &["AFTER", &b, "WITHRESULTS"]);
    assert_eq!(zrq.state(Q, &b).as_deref(), Some("waiting"));
    assert_eq!(zrq.state(Q, &c).as_deref(), Some("waiting"));

    let job = fetch_one(&mut zrq, "w");
    assert_eq!(job["id"], a);
    assert!(zrq.fetch(Q, "w", 10).is_empty(), "b waits for a");
    ack(&mut zrq, &a, r#"{"step":1}"#);

    let job = fetch_one(&mut zrq, "w");
    assert_eq!(job["id"], b);
    let parents: serde_json::Value = serde_json::from_str(&job["parents"]).unwrap();
    assert_eq!(parents, serde_json::json!({ a.clone(): {"step": 1} }));
    ack(&mut zrq, &b, "[2]");

    let job = fetch_one(&mut zrq, "w");
    assert_eq!(job["id"], c);
    let parents: serde_json::Value = serde_json::from_str(&job["parents"]).unwrap();
    assert_eq!(parents, serde_json::json!({ b.clone(): [2] }));

    // JOB shows both directions of the link.
    let record = zrq.job(Q, &a).unwrap();
    let children: Vec<String> = serde_json::from_str(&record["children"]).unwrap();
    assert_eq!(children, vec![b.clone()]);
}

fn a_child_waits_for_every_parent(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let p1 = zrq.enqueue(Q, "p", "1", &[]);
    let p2 = zrq.enqueue(Q, "p", "2", &[]);
    let child = zrq.enqueue(Q, "c", "{}", &["AFTER", &p1, "AFTER", &p2]);
    assert_eq!(zrq.job(Q, &child).unwrap()["waiting_on"], "2");
    let both = zrq.fetch(Q, "w", 10);
    assert_eq!(both.len(), 2);
    ack(&mut zrq, &p1, "null");
    assert_eq!(zrq.state(Q, &child).as_deref(), Some("waiting"));
    assert_eq!(zrq.job(Q, &child).unwrap()["waiting_on"], "1");
    ack(&mut zrq, &p2, "null");
    assert_eq!(zrq.state(Q, &child).as_deref(), Some("pending"));
    // Without WITHRESULTS the parents are listed without results.
    let parents: serde_json::Value =
        serde_json::from_str(&zrq.job(Q, &child).unwrap()["parents"]).unwrap();
    assert_eq!(parents, serde_json::json!({ p1: null, p2: null }));
}

fn a_completed_parent_counts_at_once(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let parent = zrq.enqueue(Q, "p", "{}", &[]);
    fetch_one(&mut zrq, "w");
    ack(&mut zrq, &parent, "5");
    let child = zrq.enqueue(Q, "c", "{}", &["AFTER", &parent, "WITHRESULTS"]);
    assert_eq!(zrq.state(Q, &child).as_deref(), Some("pending"));
    let job = fetch_one(&mut zrq, "w");
    assert_eq!(job["parents"], format!("{{\"{parent}\":5}}"));
}

fn results_of_parents_that_completed_before_the_child(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let p1 = zrq.enqueue(Q, "p", "{}", &[]);
    let p2 = zrq.enqueue(Q, "p", "{}", &[]);
    zrq.fetch(Q, "w", 2);
    ack(&mut zrq, &p1, "3");
    ack(&mut zrq, &p2, "4");
    let child = zrq.enqueue(Q, "c", "{}", &["AFTER", &p1, "AFTER", &p2, "WITHRESULTS"]);
    let job = fetch_one(&mut zrq, "w");
    assert_eq!(job["id"], child);
    let parents: serde_json::Value = serde_json::from_str(&job["parents"]).unwrap();
    assert_eq!(parents, serde_json::json!({ p1: 3, p2: 4 }));
}

fn a_dead_parent_cancels_its_descendants(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let parent = zrq.enqueue(Q, "p", "{}", &["RETRIES", "0"]);
    let child = zrq.enqueue(Q, "c", "{}", &["AFTER", &parent]);
    let grandchild = zrq.enqueue(Q, "g", "{}", &["AFTER", &child]);
    let released = zrq.enqueue(Q, "r", "{}", &["AFTER", &parent, "ONPARENTFAIL", "run"]);
    fetch_one(&mut zrq, "w");
    let state: String = zrq.call("fail", &[Q, &parent, "boom"]).unwrap();
    assert_eq!(state, "dead");

    assert_eq!(zrq.state(Q, &child).as_deref(), Some("cancelled"));
    assert_eq!(zrq.state(Q, &grandchild).as_deref(), Some("cancelled"));
    let child_record = zrq.job(Q, &child).unwrap();
    assert_eq!(child_record["error"], format!("parent {parent} ended dead"));
    assert_eq!(
        zrq.job(Q, &grandchild).unwrap()["error"],
        format!("parent {child} ended cancelled")
    );
    assert_eq!(zrq.state(Q, &released).as_deref(), Some("pending"));
    assert_eq!(
        zrq.job(Q, &released).unwrap()["error"],
        format!("released although parent {parent} ended dead")
    );
    let only = zrq.fetch(Q, "w", 10);
    assert_eq!(only.len(), 1, "only the `run` child is delivered");
    assert_eq!(only[0]["id"], released);
}

fn cancelling_a_parent_or_a_waiting_child(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let parent = zrq.enqueue(Q, "p", "{}", &[]);
    let child = zrq.enqueue(Q, "c", "{}", &["AFTER", &parent]);
    let other = zrq.enqueue(Q, "o", "{}", &["AFTER", &parent]);
    let cancelled: i64 = zrq.call("cancel", &[Q, &child]).unwrap();
    assert_eq!(cancelled, 1, "a waiting child can be cancelled");
    assert_eq!(zrq.state(Q, &child).as_deref(), Some("cancelled"));
    let cancelled: i64 = zrq.call("cancel", &[Q, &parent]).unwrap();
    assert_eq!(cancelled, 1);
    assert_eq!(zrq.state(Q, &other).as_deref(), Some("cancelled"));
    assert!(zrq.fetch(Q, "w", 10).is_empty());
}

fn deleting_a_parent_settles_its_children(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let parent = zrq.enqueue(Q, "p", "{}", &[]);
    let child = zrq.enqueue(Q, "c", "{}", &["AFTER", &parent]);
    let deleted: i64 = zrq.call("delete", &[Q, &parent]).unwrap();
    assert_eq!(deleted, 1);
    assert_eq!(zrq.state(Q, &child).as_deref(), Some("cancelled"));
}

fn list_and_info_show_waiting_jobs(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let parent = zrq.enqueue(Q, "p", "{}", &[]);
    let child = zrq.enqueue(Q, "c", "{}", &["AFTER", &parent]);
    let page: Value = zrq.call("list", &[Q, "waiting"]).unwrap();
    let Value::Array(parts) = page else {
        panic!("LIST replies with [cursor, jobs]: {page:?}");
    };
    let listed = jobs(parts[1].clone());
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], child);
    let info = map(zrq.call("info", &[Q]).unwrap());
    assert_eq!(info["waiting"], "1");
    assert_eq!(info["pending"], "1");
}

fn dependency_errors_are_clear_and_write_nothing(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let parent = zrq.enqueue(Q, "p", "{}", &[]);
    let cases: &[(&[&str], &str)] = &[
        (
            &[Q, "c", "{}", "AFTER", "nope"],
            "NOJOB AFTER names job 'nope', which does not exist in queue 'flow' (parents must be in the same queue)",
        ),
        (&[Q, "c", "{}", "ID", "me", "AFTER", "me"], "ERR job 'me' cannot run AFTER itself"),
        (&[Q, "c", "{}", "AFTER", &parent, "DELAY", "5"], "ERR options DELAY and AFTER cannot be combined"),
        (&[Q, "c", "{}", "AT", "5", "AFTER", &parent], "ERR options AT and AFTER cannot be combined"),
        (
            &[Q, "c", "{}", "AFTER", &parent, "ONPARENTFAIL", "maybe"],
            "ERR ONPARENTFAIL must be one of cancel, run, got 'maybe'",
        ),
        (&[Q, "c", "{}", "AFTER"], "ERR option AFTER needs a value"),
    ];
    for (args, want) in cases {
        let before = server.snapshot();
        let err = zrq.call::<Value>("enqueue", args).expect_err("refused");
        assert_eq!(error_text(&err), *want, "{args:?}");
        assert_eq!(server.snapshot(), before, "{args:?} wrote something");
    }
}

fn a_batch_calls_back_once_with_counts(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let ids: Vec<String> = zrq
        .call(
            "batch",
            &[
                Q,
                "b1",
                "ON-COMPLETE",
                "report",
                r#"{"to":"ops"}"#,
                "RETRIES",
                "0",
                "JOB",
                "t",
                "1",
                "JOB",
                "t",
                "2",
                "JOB",
                "t",
                "3",
            ],
        )
        .unwrap();
    assert_eq!(ids.len(), 3);
    for id in &ids {
        assert_eq!(zrq.job(Q, id).unwrap()["batch"], "b1");
    }
    let info = map(zrq.call("batchinfo", &[Q, "b1"]).unwrap());
    assert_eq!((info["total"].as_str(), info["done"].as_str()), ("3", "0"));

    let delivered = zrq.fetch(Q, "w", 10);
    assert_eq!(delivered.len(), 3);
    ack(&mut zrq, &ids[0], "true");
    let state: String = zrq.call("fail", &[Q, &ids[1], "no"]).unwrap();
    assert_eq!(state, "dead");
    assert!(
        zrq.fetch(Q, "w", 10).is_empty(),
        "no callback before the last member"
    );
    ack(&mut zrq, &ids[2], "true");

    let callback = fetch_one(&mut zrq, "w");
    assert_eq!(callback["task"], "report");
    assert_eq!(
        callback["payload"],
        r#"{"batch":"b1","succeeded":2,"failed":1,"payload":{"to":"ops"}}"#
    );
    let info = map(zrq.call("batchinfo", &[Q, "b1"]).unwrap());
    assert_eq!(info["done"], "3");
    assert_eq!(info["succeeded"], "2");
    assert_eq!(info["failed"], "1");
    assert_eq!(info["callback_id"], callback["id"]);
    assert!(zrq.fetch(Q, "w", 10).is_empty(), "exactly one callback");
}

fn batch_errors(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let _: Vec<String> = zrq.call("batch", &[Q, "b", "JOB", "t", "{}"]).unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &[Q, "b", "JOB", "t", "{}"],
            "ERR batch 'b' already exists in queue 'flow'",
        ),
        (
            &[Q, "b2"],
            "ERR wrong number of arguments for 'zrq.batch' command",
        ),
        (&[Q, "b2", "JOB", "t"], "ERR option JOB needs a value"),
        (
            &[Q, "b2", "JOB", "t", "{"],
            "BADJSON payload is not valid JSON: EOF while parsing an object at line 1 column 1",
        ),
        (
            &[Q, "b2", "ON-COMPLETE", "t", "{}"],
            "ERR wrong number of arguments for 'zrq.batch' command",
        ),
        (
            &[Q, "b2", "ID", "x", "JOB", "t", "{}"],
            "ERR unknown option 'ID'",
        ),
    ];
    for (args, want) in cases {
        let before = server.snapshot();
        let err = zrq.call::<Value>("batch", args).expect_err("refused");
        let text = error_text(&err);
        let want_prefix = want.split(": EOF").next().unwrap_or(want);
        assert!(text.starts_with(want_prefix), "{args:?}: {text}");
        assert_eq!(server.snapshot(), before, "{args:?} wrote something");
    }
    let missing: Value = zrq.call("batchinfo", &[Q, "nope"]).unwrap();
    assert_eq!(missing, Value::Nil);
}

/// Each parent counts once per child: a parent that died (counted, the child running anyway)
/// and is requeued and completes does not count again, and a `children` entry left by a deleted
/// child does not count for a new job that took its id with other parents.
fn a_parent_counts_once_for_each_of_its_children(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let p1 = zrq.enqueue(Q, "p", "1", &["ID", "p1", "RETRIES", "0"]);
    let p2 = zrq.enqueue(Q, "p", "2", &["ID", "p2"]);
    let child = zrq.enqueue(
        Q,
        "c",
        "{}",
        &["AFTER", &p1, "AFTER", &p2, "ONPARENTFAIL", "run"],
    );
    assert_eq!(fetch_one(&mut zrq, "w")["id"], p1);
    let state: String = zrq.call("fail", &[Q, &p1, "boom"]).unwrap();
    assert_eq!(state, "dead");
    let record = zrq.job(Q, &child).unwrap();
    assert_eq!(
        (record["state"].as_str(), record["waiting_on"].as_str()),
        ("waiting", "1")
    );
    assert_eq!(record["parents_done"], format!("[\"{p1}\"]"));
    // Requeued, p1 runs again and completes: the child still waits for p2.
    assert_eq!(zrq.call::<i64>("requeue", &[Q, &p1]).unwrap(), 1);
    assert_eq!(fetch_one(&mut zrq, "w")["id"], p2, "p2 was first in line");
    assert_eq!(fetch_one(&mut zrq, "w")["id"], p1);
    ack(&mut zrq, &p1, "1");
    let record = zrq.job(Q, &child).unwrap();
    assert_eq!(
        (record["state"].as_str(), record["waiting_on"].as_str()),
        ("waiting", "1"),
        "p1 counted twice"
    );
    ack(&mut zrq, &p2, "2");
    assert_eq!(zrq.state(Q, &child).as_deref(), Some("pending"));
    assert_eq!(
        zrq.job(Q, &child).unwrap()["parents_done"],
        format!("[\"{p1}\",\"{p2}\"]")
    );
    assert_eq!(fetch_one(&mut zrq, "w")["id"], child);

    // A deleted child's id taken again: listed once by a parent, counted only by its parents.
    let a = zrq.enqueue(Q, "p", "{}", &["ID", "a"]);
    let b = zrq.enqueue(Q, "p", "{}", &["ID", "b"]);
    zrq.enqueue(Q, "c", "{}", &["ID", "c", "AFTER", &a, "AFTER", &b]);
    assert_eq!(zrq.call::<i64>("delete", &[Q, "c"]).unwrap(), 1);
    zrq.enqueue(Q, "c", "{}", &["ID", "c", "AFTER", &a, "AFTER", &b]);
    assert_eq!(zrq.job(Q, &a).unwrap()["children"], "[\"c\"]");
    assert_eq!(zrq.call::<i64>("delete", &[Q, "c"]).unwrap(), 1);
    zrq.enqueue(Q, "c", "{}", &["ID", "c", "AFTER", &b]);
    let both = zrq.fetch(Q, "w", 10);
    assert_eq!(both.len(), 2);
    ack(&mut zrq, &a, "null");
    assert_eq!(
        zrq.state(Q, "c").as_deref(),
        Some("waiting"),
        "a is not a parent of the new c"
    );
    ack(&mut zrq, &b, "null");
    assert_eq!(zrq.state(Q, "c").as_deref(), Some("pending"));
}

/// A parent's `children` are bounded by `zrq.children-max`: one more is refused with `LIMIT`,
/// writing nothing; a parent that has finished takes any number (it keeps no list).
fn children_per_parent_are_bounded(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let parent = zrq.enqueue(Q, "p", "{}", &["ID", "p"]);
    let max = zrq_core::config::Config::DEFAULT.children_max;
    let mut pipe = redis::pipe();
    for n in 0..max {
        let id = format!("c{n}");
        pipe.add_command(zrq.command(
            "enqueue",
            &[
                Q.as_bytes(),
                b"c",
                b"{}",
                b"ID",
                id.as_bytes(),
                b"AFTER",
                b"p",
            ],
        ))
        .ignore();
    }
    let _: () = pipe
        .query(&mut zrq.conn)
        .expect("children up to children-max");
    let other = zrq.enqueue(Q, "p", "{}", &["ID", "other"]);
    let before = server.snapshot();
    let err = zrq
        .call::<Value>(
            "enqueue",
            &[Q, "c", "{}", "AFTER", &other, "AFTER", &parent],
        )
        .expect_err("one child too many");
    assert_eq!(
        error_text(&err),
        format!("LIMIT parent 'p' has {max} children already: zrq.children-max is {max}")
    );
    assert_eq!(
        server.snapshot(),
        before,
        "the refused ENQUEUE wrote something"
    );
    // A child already listed may be enqueued again under its id once deleted (listed once).
    assert_eq!(zrq.call::<i64>("delete", &[Q, "c0"]).unwrap(), 1);
    zrq.enqueue(Q, "c", "{}", &["ID", "c0", "AFTER", &parent]);
    // Finished, the parent counts at once for any new child.
    assert_eq!(fetch_one(&mut zrq, "w")["id"], parent);
    ack(&mut zrq, &parent, "null");
    let late = zrq.enqueue(Q, "c", "{}", &["AFTER", &parent]);
    assert_eq!(zrq.state(Q, &late).as_deref(), Some("pending"));
    let last = format!("c{}", max - 1);
    assert_eq!(zrq.state(Q, &last).as_deref(), Some("pending"));
}

conformance!(
    a_parent_counts_once_for_each_of_its_children,
    children_per_parent_are_bounded,
    a_chain_of_three_passes_each_result_on,
    a_child_waits_for_every_parent,
    a_completed_parent_counts_at_once,
    results_of_parents_that_completed_before_the_child,
    a_dead_parent_cancels_its_descendants,
    cancelling_a_parent_or_a_waiting_child,
    deleting_a_parent_settles_its_children,
    list_and_info_show_waiting_jobs,
    dependency_errors_are_clear_and_write_nothing,
    a_batch_calls_back_once_with_counts,
    batch_errors,
);

/// Fan-out of 1,000 children and a fan-in callback enqueued exactly once while four workers
/// acknowledge concurrently.
#[test]
fn fan_out_and_fan_in_with_concurrent_workers() {
    // 1,000 members: beyond the default zrq.batch-max, so the test raises it.
    let server = Backend::Module.server_with(Options {
        config: vec![("zrq.batch-max".into(), "1000".into())],
        ..Options::default()
    });
    let mut zrq = server.zrq(Backend::Module);
    let mut args: Vec<String> = vec![
        Q.into(),
        "fan".into(),
        "ON-COMPLETE".into(),
        "fan_in".into(),
        "{}".into(),
    ];
    for i in 0..1000 {
        args.extend([
            "JOB".to_string(),
            "child".to_string(),
            format!("{{\"i\":{i}}}"),
        ]);
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let ids: Vec<String> = zrq.call("batch", &refs).unwrap();
    assert_eq!(ids.len(), 1000);

    let workers: Vec<_> = (0..4)
        .map(|w| {
            let mut zrq = server.zrq(Backend::Module);
            thread::spawn(move || {
                let (mut children, mut callbacks) = (0, Vec::new());
                loop {
                    let got = zrq.fetch(Q, &format!("w{w}"), 25);
                    if got.is_empty() {
                        // Idle: the callback may still be on its way from another worker's ACK.
                        let done: Value = zrq.call("batchinfo", &[Q, "fan"]).unwrap();
                        let done = map(done);
                        if done["done"] == "1000" && done.contains_key("callback_id") {
                            let rest = zrq.fetch(Q, &format!("w{w}"), 25);
                            if rest.is_empty() {
                                return (children, callbacks);
                            }
                            for job in rest {
                                callbacks.push(job["id"].clone());
                            }
                        }
                        continue;
                    }
                    for job in got {
                        if job["task"] == "fan_in" {
                            callbacks.push(job["id"].clone());
                        } else {
                            children += 1;
                        }
                        let acked: i64 = zrq.call("ack", &[Q, &job["id"]]).unwrap();
                        assert_eq!(acked, 1);
                    }
                }
            })
        })
        .collect();
    let (mut children, mut callbacks) = (0, Vec::new());
    for worker in workers {
        let (c, cb) = worker.join().unwrap();
        children += c;
        callbacks.extend(cb);
    }
    assert_eq!(children, 1000);
    assert_eq!(callbacks.len(), 1, "the fan-in callback ran exactly once");
    let callback = zrq.job(Q, &callbacks[0]).unwrap();
    assert_eq!(
        callback["payload"],
        r#"{"batch":"fan","succeeded":1000,"failed":0,"payload":{}}"#
    );
}

/// A workflow half done replicates exactly, and survives an AOF restart.
#[test]
fn workflows_replicate_and_survive_restart() {
    let mut primary = Backend::Module.server_with(Options {
        appendonly: true,
        config: vec![("repl-diskless-sync-delay".into(), "0".into())],
        ..Options::default()
    });
    let replica = primary.start_replica();
    let mut zrq = primary.zrq(Backend::Module);
    let a = zrq.enqueue(Q, "a", "{}", &[]);
    let b = zrq.enqueue(Q, "b", "{}", &["AFTER", &a, "WITHRESULTS"]);
    let c = zrq.enqueue(Q, "c", "{}", &["AFTER", &b]);
    let _: Vec<String> = zrq
        .call(
            "batch",
            &[
                Q,
                "bt",
                "ON-COMPLETE",
                "cb",
                "{}",
                "JOB",
                "m",
                "{}",
                "JOB",
                "m",
                "{}",
            ],
        )
        .unwrap();
    assert_eq!(fetch_one(&mut zrq, "w")["id"], a);
    ack(&mut zrq, &a, r#""A""#);

    wait_replica_caught_up(&primary, &replica);
    assert_eq!(primary.digest(), replica.digest());
    let (mut pc, mut rc) = (primary.conn(), replica.conn());
    assert_eq!(stream_state(&mut pc, Q), stream_state(&mut rc, Q));
    for id in job_ids(&mut pc, Q) {
        assert_eq!(record(&mut pc, Q, &id), record(&mut rc, Q, &id), "job {id}");
    }
    drop((pc, rc, replica));

    primary.restart();
    let mut zrq = primary.zrq(Backend::Module);
    assert_eq!(zrq.state(Q, &b).as_deref(), Some("pending"));
    assert_eq!(zrq.state(Q, &c).as_deref(), Some("waiting"));
    // The workflow goes on after the restart: b, the two members, then c and the callback.
    let mut seen = Vec::new();
    for _ in 0..10 {
        let got = zrq.fetch(Q, "w", 10);
        if got.is_empty() {
            break;
        }
        for job in got {
            ack(&mut zrq, &job["id"], "1");
            seen.push(job["task"].clone());
        }
    }
    seen.sort();
    assert_eq!(seen, ["b", "c", "cb", "m", "m"]);
    let mut conn = primary.conn();
    let record = record(&mut conn, Q, &b);
    assert_eq!(record.get("parents"), Some(&format!("{{\"{a}\":\"A\"}}")));
}

/// A dead member requeued after its batch completed does not fire the callback again.
#[test]
fn a_requeued_member_does_not_call_back_twice() {
    let server = Backend::Module.server();
    let mut zrq = server.zrq(Backend::Module);
    let ids: Vec<String> = zrq
        .call(
            "batch",
            &[
                Q,
                "b",
                "ON-COMPLETE",
                "cb",
                "{}",
                "RETRIES",
                "0",
                "JOB",
                "t",
                "{}",
            ],
        )
        .unwrap();
    fetch_one(&mut zrq, "w");
    let state: String = zrq.call("fail", &[Q, &ids[0], "no"]).unwrap();
    assert_eq!(state, "dead");
    assert_eq!(fetch_one(&mut zrq, "w")["task"], "cb");
    let requeued: i64 = zrq.call("requeue", &[Q, &ids[0]]).unwrap();
    assert_eq!(requeued, 1);
    let member = fetch_one(&mut zrq, "w");
    ack(&mut zrq, &member["id"], "1");
    assert!(zrq.fetch(Q, "w", 10).is_empty(), "no second callback");
}

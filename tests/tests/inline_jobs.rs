//! A plain pending job is its stream entry (both backends): ENQUEUE without `ID`, `DELAY`/`AT`
//! and `AFTER` writes no record, only an inline entry (task, payload, the options that differ
//! from their defaults), and the job's id is derived from the entry (`<ms>-<seq>`, or
//! `p<n>:<ms>-<seq>` for priority n). Such a job reads like a recorded pending job (STATE, JOB,
//! LIST), is fetched, acknowledged, cancelled and deleted as one, gets its whole record when a
//! command writes to it while it is pending (an AFTER child registering with it), survives
//! replication and an AOF reload, and passes the audit. An `ID` of the generated form is refused.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};

use support::{assert_refused, key_digests, wait_replica_caught_up};
use zrq_tests::audit::assert_consistent;
use zrq_tests::redis::{self, Connection, Value};
use zrq_tests::{conformance, jobs, Backend, JobMap, Options, Server, Zrq};

const Q: &str = "iq";

fn key(suffix: &str) -> String {
    format!("zrq:{{{Q}}}:{suffix}")
}

fn exists(conn: &mut Connection, key: &str) -> bool {
    redis::cmd("EXISTS")
        .arg(key)
        .query::<i64>(conn)
        .expect("EXISTS")
        == 1
}

/// The entries of a stream, fields in order.
fn entries(conn: &mut Connection, stream: &str) -> Vec<(String, Vec<(String, String)>)> {
    redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query(conn)
        .expect("XRANGE")
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A JOB reply without what differs between two jobs enqueued one after the other.
fn shape(mut job: JobMap) -> JobMap {
    for field in ["id", "created_at", "entry"] {
        job.remove(field);
    }
    job
}

fn audited(server: &Server, backend: Backend, ids: &[&str]) {
    let ids: BTreeSet<String> = ids.iter().map(|id| id.to_string()).collect();
    assert_consistent(&mut server.conn(), backend, Q, Some(&ids));
}

fn list_pending(zrq: &mut Zrq) -> Vec<JobMap> {
    let (_, page): (String, Value) = zrq
        .call("list", &[Q, "pending", "COUNT", "100"])
        .expect("LIST");
    jobs(page)
}

fn plain_pending_job_is_its_stream_entry(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let mut conn = server.conn();
    let options = [
        "RETRIES", "5", "KEEP", "60000", "UNIQUE", "u1", "BACKOFF", "10",
    ];
    let id = zrq.enqueue(Q, "send", r#"{"to":"a"}"#, &options);
    // The id is the entry's, and the entry holds the job.
    let stream = entries(&mut conn, &key("stream"));
    assert_eq!(stream.len(), 1);
    assert_eq!(stream[0].0, id, "the id is the stream entry id");
    assert_eq!(
        stream[0].1,
        pairs(&[
            ("task", "send"),
            ("payload", r#"{"to":"a"}"#),
            ("max_attempts", "6"),
            ("backoff", "10"),
            ("keep", "60000"),
            ("unique", "u1"),
        ]),
        "the record's fields but state, created_at, priority and entry; defaults left out"
    );
    assert!(!exists(&mut conn, &key(&format!("job:{id}"))), "no record");
    let unique: BTreeMap<String, String> = redis::cmd("HGETALL")
        .arg(key("unique"))
        .query(&mut conn)
        .unwrap();
    assert_eq!(
        unique.get("u1"),
        Some(&id),
        "UNIQUE maps to the generated id"
    );
    assert_eq!(
        zrq.enqueue(Q, "send", "{}", &["UNIQUE", "u1"]),
        id,
        "the UNIQUE key is held"
    );
    assert_eq!(zrq.state(Q, &id).as_deref(), Some("pending"));

    // Reads like a recorded pending job with the same options.
    let mut recorded_options = vec!["ID", "rec"];
    recorded_options.extend(&options[..4]);
    recorded_options.extend(["BACKOFF", "10"]);
    let rec = zrq.enqueue(Q, "send", r#"{"to":"a"}"#, &recorded_options);
    assert_eq!(rec, "rec");
    let inline = zrq.job(Q, &id).expect("JOB of the inline job");
    let recorded = zrq.job(Q, &rec).expect("JOB of the recorded job");
    assert_eq!(inline["id"], id);
    assert_eq!(inline["entry"], id);
    let (ms, _) = id.split_once('-').unwrap();
    assert_eq!(inline["created_at"], ms, "created at the entry id's time");
    assert_eq!(inline["state"], "pending");
    assert_eq!(inline["attempt"], "0");
    let mut want = shape(recorded.clone());
    want.insert("unique".into(), "u1".into());
    assert_eq!(shape(inline.clone()), want);
    let listed = list_pending(&mut zrq);
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0], inline, "LIST shows what JOB shows");
    assert_eq!(listed[1], recorded);
    let (_, first): (String, Value) = zrq
        .call("list", &[Q, "pending", "COUNT", "1"])
        .expect("LIST page");
    assert_eq!(jobs(first), vec![inline.clone()]);
    let result: Value = zrq.call("result", &[Q, &id]).expect("RESULT");
    assert_eq!(result, Value::Nil, "not finished");
    let info: Value = zrq.call("info", &[Q]).expect("INFO");
    let info = zrq_tests::map(info);
    assert_eq!(info["pending"], "2");
    audited(&server, backend, &[&id, "rec"]);

    // Ids of the generated form that name no inline entry: no job.
    for other in ["0-1", "1-0", "p3:1-0", "01-0", &format!("p1:{id}")] {
        assert_eq!(zrq.state(Q, other), None, "{other}");
        assert_eq!(zrq.job(Q, other), None, "{other}");
    }
    // A reference entry's id is not a job id.
    let stream = entries(&mut conn, &key("stream"));
    assert_eq!(zrq.state(Q, &stream[1].0), None);
}

fn plain_jobs_take_about_fifty_bytes(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let mut conn = server.conn();
    let used = |conn: &mut Connection| -> i64 {
        support::info_field(conn, "memory", "used_memory")
            .and_then(|v| v.parse().ok())
            .expect("used_memory")
    };
    zrq.enqueue(Q, "t", "{}", &[]);
    const N: i64 = 5_000;
    let before = used(&mut conn);
    let payload = r#"{"n":12345678901234}"#; // 20 bytes
    let mut pipe = redis::pipe();
    for _ in 0..N {
        pipe.add_command(backend.command("enqueue", &[Q.as_bytes(), b"t", payload.as_bytes()]));
    }
    let ids: Vec<String> = pipe.query(&mut conn).expect("ENQUEUE");
    let per_job = (used(&mut conn) - before) / N;
    let records: Vec<String> = redis::cmd("KEYS")
        .arg(key("job:*"))
        .query(&mut conn)
        .unwrap();
    assert!(records.is_empty(), "no records: {records:?}");
    assert_eq!(ids.len() as i64, N);
    // A stream entry of task and payload: about 50 bytes (a record was about 300).
    assert!(per_job <= 100, "{per_job} bytes per queued job");
    eprintln!("{backend:?}: {per_job} bytes per queued plain job");
}

fn inline_jobs_are_fetched_acked_cancelled_and_deleted(backend: Backend) {
    let server = backend.server();
    server.leave_leases_to_reclaim();
    let mut zrq = server.zrq(backend);
    let mut conn = server.conn();
    let a = zrq.enqueue(Q, "t", "[1]", &["TIMEOUT", "5000"]);
    let b = zrq.enqueue(Q, "t", "[2]", &["UNIQUE", "ub"]);
    let c = zrq.enqueue(Q, "t", "[3]", &["UNIQUE", "uc"]);
    let rec = zrq.enqueue(Q, "t", "[2]", &["UNIQUE", "ur", "ID", "rec"]);
    assert!(a < b && b < c, "ids ordered as enqueued: {a} {b} {c}");

    // FETCH writes the whole record of the running job, in one write.
    let fetched = zrq.fetch(Q, "w1", 1);
    assert_eq!(fetched.len(), 1);
    let job = &fetched[0];
    assert_eq!(job["id"], a);
    assert_eq!(job["state"], "active");
    assert_eq!(job["attempt"], "1");
    assert_eq!(job["timeout"], "5000");
    assert_eq!(job["lease"], format!("{a}:1"));
    assert!(!job.contains_key("entry"));
    let record = support::record(&mut conn, Q, &a);
    let names: BTreeSet<&str> = record.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "task",
            "payload",
            "state",
            "attempt",
            "timeout",
            "started_at",
            "consumer",
        ]),
        "its id says its creation time and its lease: {record:?}"
    );
    assert_eq!(zrq.job(Q, &a).as_ref(), Some(job));
    let done: i64 = zrq
        .call(
            "ack",
            &[Q, &a, "RESULT", "[\"ok\"]", "LEASE", &job["lease"]],
        )
        .expect("ACK");
    assert_eq!(done, 1);
    let result = zrq_tests::map(zrq.call("result", &[Q, &a]).expect("RESULT"));
    assert_eq!(result["state"], "completed");
    assert_eq!(result["result"], "[\"ok\"]");

    // CANCEL of a pending inline job: its entry goes, its record is that of a cancelled job.
    let cancelled: i64 = zrq.call("cancel", &[Q, &b]).expect("CANCEL");
    assert_eq!(cancelled, 1);
    assert_eq!(zrq.state(Q, &b).as_deref(), Some("cancelled"));
    let cancelled_rec: i64 = zrq.call("cancel", &[Q, &rec]).expect("CANCEL");
    assert_eq!(cancelled_rec, 1);
    let (jb, jr) = (zrq.job(Q, &b).unwrap(), zrq.job(Q, &rec).unwrap());
    let without = |mut job: JobMap| {
        for f in ["id", "created_at", "finished_at", "unique"] {
            job.remove(f);
        }
        job
    };
    assert_eq!(without(jb.clone()), without(jr.clone()));
    assert!(!jb.contains_key("entry"));
    let mut rb = support::record(&mut conn, Q, &b);
    let mut rr = support::record(&mut conn, Q, &rec);
    // b's id says its creation time (not stored); rec's may not.
    assert!(!rb.contains_key("created_at"), "{rb:?}");
    rr.remove("created_at");
    for r in [&mut rb, &mut rr] {
        for f in ["finished_at", "unique"] {
            assert!(r.remove(f).is_some(), "{f} in {r:?}");
        }
    }
    assert_eq!(
        rb, rr,
        "the same record as a recorded job cancelled while pending"
    );
    // Kept for the queue's retention: a field of the cancelled records hash, with a log entry.
    assert!(!exists(&mut conn, &key(&format!("job:{b}"))));
    assert!(support::kept_raw(&mut conn, Q, "cancelled", &b).is_some());
    assert!(support::log_entries(&mut conn, Q, "cancelled")
        .iter()
        .any(|(_, id)| *id == b));
    let unique: BTreeMap<String, String> = redis::cmd("HGETALL")
        .arg(key("unique"))
        .query(&mut conn)
        .unwrap();
    assert_eq!(unique.get("ub"), None, "UNIQUE released");
    assert_eq!(unique.get("uc"), Some(&c));

    // DELETE of a pending inline job: nothing remains.
    let deleted: i64 = zrq.call("delete", &[Q, &c]).expect("DELETE");
    assert_eq!(deleted, 1);
    assert_eq!(zrq.state(Q, &c), None);
    assert!(!exists(&mut conn, &key(&format!("job:{c}"))));
    let unique: BTreeMap<String, String> = redis::cmd("HGETALL")
        .arg(key("unique"))
        .query(&mut conn)
        .unwrap();
    assert_eq!(unique.get("uc"), None, "UNIQUE released");
    assert!(
        entries(&mut conn, &key("stream")).is_empty(),
        "no entry left"
    );
    let again: i64 = zrq.call("cancel", &[Q, &c]).expect("CANCEL");
    assert_eq!(again, 0, "nothing to cancel");
    assert!(zrq.fetch(Q, "w1", 10).is_empty());
    audited(&server, backend, &[&a, &b, "rec"]);
}

fn priority_ids_name_their_stream(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let mut conn = server.conn();
    let low = zrq.enqueue(Q, "t", "{}", &[]);
    let high = zrq.enqueue(Q, "t", "{}", &["PRIORITY", "7"]);
    let mid = zrq.enqueue(Q, "t", "{}", &["PRIORITY", "1"]);
    let stream7 = entries(&mut conn, &key("stream:7"));
    assert_eq!(stream7.len(), 1);
    assert_eq!(high, format!("p7:{}", stream7[0].0));
    assert_eq!(stream7[0].1, pairs(&[("task", "t"), ("payload", "{}")]));
    assert!(mid.starts_with("p1:"), "{mid}");
    let job = zrq.job(Q, &high).expect("JOB");
    assert_eq!(job["priority"], "7");
    assert_eq!(job["entry"], stream7[0].0);
    assert_eq!(zrq.state(Q, &high).as_deref(), Some("pending"));
    // Not found under another priority's prefix, nor without one.
    for other in [stream7[0].0.clone(), format!("p6:{}", stream7[0].0)] {
        if other != low {
            assert_eq!(zrq.state(Q, &other), None, "{other}");
        }
    }
    let listed: Vec<String> = list_pending(&mut zrq)
        .into_iter()
        .map(|j| j["id"].clone())
        .collect();
    assert_eq!(listed, [high.clone(), mid.clone(), low.clone()]);
    let fetched: Vec<String> = zrq
        .fetch(Q, "w", 3)
        .into_iter()
        .map(|j| j["id"].clone())
        .collect();
    assert_eq!(fetched, [high.clone(), mid.clone(), low.clone()]);
    audited(&server, backend, &[&low, &mid, &high]);
}

fn an_inline_parent_gets_its_record(backend: Backend) {
    let server = backend.server();
    server.leave_leases_to_reclaim();
    let mut zrq = server.zrq(backend);
    let mut conn = server.conn();
    let parent = zrq.enqueue(Q, "p", r#"{"big":"payload"}"#, &["RETRIES", "1"]);
    let child = zrq.enqueue(Q, "c", "{}", &["AFTER", &parent, "WITHRESULTS"]);
    assert_eq!(zrq.state(Q, &child).as_deref(), Some("waiting"));
    // The parent's whole record, written before its children list.
    let record = support::record(&mut conn, Q, &parent);
    assert_eq!(record["state"], "pending");
    assert_eq!(record["entry"], parent);
    assert_eq!(record["payload"], r#"{"big":"payload"}"#);
    assert_eq!(record["max_attempts"], "2");
    assert_eq!(record["children"], format!("[\"{child}\"]"));
    // Its creation time is its id's: not stored.
    assert!(!record.contains_key("created_at"), "{record:?}");
    // Its entry stays; the record is authoritative.
    assert_eq!(entries(&mut conn, &key("stream")).len(), 1);
    let job = zrq.job(Q, &parent).unwrap();
    assert_eq!(job["children"], format!("[\"{child}\"]"));
    audited(&server, backend, &[&parent, &child]);
    let fetched = zrq.fetch(Q, "w", 1);
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0]["id"], parent);
    assert_eq!(fetched[0]["children"], format!("[\"{child}\"]"));
    assert_eq!(fetched[0]["payload"], r#"{"big":"payload"}"#);
    let done: i64 = zrq
        .call(
            "ack",
            &[Q, &parent, "RESULT", "[7]", "LEASE", &fetched[0]["lease"]],
        )
        .expect("ACK");
    assert_eq!(done, 1);
    assert_eq!(zrq.state(Q, &child).as_deref(), Some("pending"));
    let released = zrq.fetch(Q, "w", 1);
    assert_eq!(released[0]["id"], child);
    assert_eq!(released[0]["parents"], format!("{{\"{parent}\":[7]}}"));
    audited(&server, backend, &[&parent, &child]);

    // A parent cancelled while pending cancels its child; a deleted one too.
    let p2 = zrq.enqueue(Q, "p", "{}", &[]);
    let c2 = zrq.enqueue(Q, "c", "{}", &["AFTER", &p2]);
    let p3 = zrq.enqueue(Q, "p", "{}", &[]);
    let c3 = zrq.enqueue(Q, "c", "{}", &["AFTER", &p3]);
    let _: i64 = zrq.call("cancel", &[Q, &p2]).expect("CANCEL");
    let _: i64 = zrq.call("delete", &[Q, &p3]).expect("DELETE");
    assert_eq!(zrq.state(Q, &c2).as_deref(), Some("cancelled"));
    assert_eq!(zrq.state(Q, &c3).as_deref(), Some("cancelled"));
    assert_eq!(zrq.state(Q, &p3), None);
    audited(&server, backend, &[&parent, &child, &p2, &c2, &c3]);
}

/// A plain job sent back to its stream (RELEASE) is named by a reference entry, and its record
/// leaves out the creation time its id says: INFO reads that age from the id.
fn a_released_plain_job_is_as_old_as_its_id(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let mut conn = server.conn();
    let id = zrq.enqueue(Q, "t", "{}", &[]);
    let fetched = zrq.fetch(Q, "w", 1);
    assert_eq!(fetched[0]["id"], id);
    let released: i64 = zrq.call("release", &[Q, &id]).expect("RELEASE");
    assert_eq!(released, 1);
    let stream = entries(&mut conn, &key("stream"));
    assert_eq!(
        stream.last().map(|(_, fields)| fields.clone()),
        Some(pairs(&[(zrq_core::keys::ENTRY_FIELD, id.as_str())])),
        "a reference entry"
    );
    let record = support::record(&mut conn, Q, &id);
    assert_eq!(record["state"], "pending");
    assert!(!record.contains_key("created_at"), "{record:?}");
    // At least this long after its entry was added (no upper bound: the machine may be slow).
    std::thread::sleep(std::time::Duration::from_millis(50));
    let info = zrq_tests::map(zrq.call("info", &[Q]).expect("INFO"));
    assert_eq!(info["pending"], "1");
    let age: i64 = info["oldest_pending_age_ms"].parse().expect("an age");
    assert!(age >= 50, "{info:?}");
}

fn generated_ids_are_refused_as_id(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    zrq.enqueue(Q, "t", "{}", &[]);
    for id in [
        "1-0",
        "1764489600000-3",
        "p7:1764489600000-3",
        "01-0",
        "p1:0-0",
    ] {
        let args: Vec<Vec<u8>> = [Q, "t", "{}", "ID", id]
            .iter()
            .map(|a| a.as_bytes().to_vec())
            .collect();
        assert_refused(&server, &mut zrq, &id, "enqueue", &args, |text, _| {
            assert_eq!(
                text,
                format!("ERR ID must not have the form of a generated job id, got '{id}'")
            );
        });
    }
    // Only a job enqueued without ID, DELAY/AT and AFTER is plain: DELAY 0 (due at once) gives a
    // pending job with a UUID and a record.
    let delayed = zrq.enqueue(Q, "t", "{}", &["DELAY", "0"]);
    assert_eq!(delayed.len(), 36, "a UUID: {delayed}");
    assert_eq!(zrq.state(Q, &delayed).as_deref(), Some("pending"));
    assert!(exists(&mut server.conn(), &key(&format!("job:{delayed}"))));
    // Names near the form are ids as any other.
    for id in ["p0:1-0", "p10:1-0", "1-2-3", "a1-0", "1-0x", "P1:1-0"] {
        assert_eq!(zrq.enqueue(Q, "t", "{}", &["ID", id]), id);
        assert!(
            exists(&mut server.conn(), &key(&format!("job:{id}"))),
            "{id}"
        );
    }
}

fn batch_members_and_callbacks_are_inline(backend: Backend) {
    let server = backend.server();
    server.leave_leases_to_reclaim();
    let mut zrq = server.zrq(backend);
    let mut conn = server.conn();
    let ids: Vec<String> = zrq
        .call(
            "batch",
            &[
                Q,
                "b",
                "ON-COMPLETE",
                "done",
                "{}",
                "JOB",
                "t",
                "[1]",
                "JOB",
                "t",
                "[2]",
            ],
        )
        .expect("BATCH");
    assert_eq!(ids.len(), 2);
    for id in &ids {
        assert!(zrq_core::job::inline_entry(id).is_some(), "{id}");
        assert!(!exists(&mut conn, &key(&format!("job:{id}"))));
        assert_eq!(zrq.job(Q, id).unwrap()["batch"], "b");
    }
    for job in zrq.fetch(Q, "w", 2) {
        let _: i64 = zrq
            .call("ack", &[Q, &job["id"], "LEASE", &job["lease"]])
            .expect("ACK");
    }
    let info = zrq_tests::map(zrq.call("batchinfo", &[Q, "b"]).expect("BATCHINFO"));
    assert_eq!(info["done"], "2");
    let callback = &info["callback_id"];
    assert!(
        zrq_core::job::inline_entry(callback).is_some(),
        "{callback}"
    );
    assert_eq!(zrq.state(Q, callback).as_deref(), Some("pending"));
    let mut all: Vec<&str> = ids.iter().map(String::as_str).collect();
    all.push(callback);
    audited(&server, backend, &all);
}

/// Plain jobs enqueued, fetched, cancelled, deleted and made parents on a primary.
fn workload(zrq: &mut Zrq) {
    let ids: Vec<String> = (0..20)
        .map(|n| {
            let priority = (n % 3 * 4).to_string();
            zrq.enqueue(Q, "t", &format!("[{n}]"), &["PRIORITY", &priority])
        })
        .collect();
    let _child = zrq.enqueue(Q, "c", "{}", &["AFTER", &ids[0]]);
    let _: i64 = zrq.call("cancel", &[Q, &ids[1]]).expect("CANCEL");
    let _: i64 = zrq.call("delete", &[Q, &ids[2]]).expect("DELETE");
    let fetched = zrq.fetch(Q, "w", 5);
    for job in &fetched[..2] {
        let _: i64 = zrq
            .call(
                "ack",
                &[Q, &job["id"], "RESULT", "1", "LEASE", &job["lease"]],
            )
            .expect("ACK");
    }
}

fn inline_jobs_replicate(backend: Backend) {
    let mut config = vec![("repl-diskless-sync-delay".into(), "0".into())];
    if backend == Backend::Module {
        config.push(("zrq.expire-leases".into(), "no".into()));
    }
    let primary = backend.server_with(Options {
        config,
        ..Options::default()
    });
    let replica = primary.start_replica();
    let mut zrq = primary.zrq(backend);
    workload(&mut zrq);
    wait_replica_caught_up(&primary, &replica);
    assert_eq!(
        key_digests(&primary),
        key_digests(&replica),
        "every key the same"
    );
    assert_eq!(primary.digest(), replica.digest());
    // A replica attached later gets the same data too.
    let late = primary.start_replica();
    workload(&mut zrq);
    wait_replica_caught_up(&primary, &late);
    wait_replica_caught_up(&primary, &replica);
    assert_eq!(primary.digest(), late.digest());
    assert_eq!(primary.digest(), replica.digest());
    assert_consistent(&mut replica.conn(), backend, Q, None);
}

fn inline_jobs_survive_an_aof_reload(backend: Backend) {
    let config = match backend {
        Backend::Module => vec![("zrq.expire-leases".into(), "no".into())],
        Backend::Lua => Vec::new(),
    };
    let mut server = backend.server_with(Options {
        appendonly: true,
        config,
        ..Options::default()
    });
    let mut zrq = server.zrq(backend);
    workload(&mut zrq);
    let pending: Vec<JobMap> = list_pending(&mut zrq);
    assert!(!pending.is_empty());
    let digest = server.digest();
    let _: Value = redis::cmd("DEBUG")
        .arg("LOADAOF")
        .query(&mut server.conn())
        .expect("DEBUG LOADAOF");
    assert_eq!(server.digest(), digest, "DEBUG LOADAOF");
    server.restart();
    assert_eq!(server.digest(), digest, "restart");
    let mut zrq = server.zrq(backend);
    assert_eq!(list_pending(&mut zrq), pending);
    assert_consistent(&mut server.conn(), backend, Q, None);
    let fetched = zrq.fetch(Q, "w2", 100);
    let ids: Vec<&String> = fetched.iter().map(|j| &j["id"]).collect();
    let want: Vec<&String> = pending.iter().map(|j| &j["id"]).collect();
    assert_eq!(ids, want);
    assert_consistent(&mut server.conn(), backend, Q, None);
}

conformance!(
    plain_pending_job_is_its_stream_entry,
    plain_jobs_take_about_fifty_bytes,
    inline_jobs_are_fetched_acked_cancelled_and_deleted,
    priority_ids_name_their_stream,
    an_inline_parent_gets_its_record,
    generated_ids_are_refused_as_id,
    a_released_plain_job_is_as_old_as_its_id,
    batch_members_and_callbacks_are_inline,
    inline_jobs_replicate,
    inline_jobs_survive_an_aof_reload,
);

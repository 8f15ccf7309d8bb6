//! Finished jobs kept with the queue's retention as fields of a records hash, with one entry each
//! in a log stream (DONE-SPEC), on both backends.
//!
//! A job that ends `completed` or `cancelled` without a per-job `KEEP` leaves its own key: its
//! packed record, without the state (the hash says it), becomes the field `<id>` of
//! `zrq:{Q}:<state>:records`, and `zrq:{Q}:<state>:log` gets one entry `id <id>` whose ms is the
//! job's `finished_at`. Checked here: what is stored (raw), that every reader still finds the job
//! (STATE, JOB, RESULT, INFO, LIST), that retention removes both the field and the entry (and
//! nothing finished later), that DELETE removes both, that the new keys' types are checked before
//! anything is written, and that jobs with their own `KEEP`, or finished by an earlier version
//! (own key with a TTL, member of the state's sorted set), keep working as before.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};

use support::lifecycle::{field, info_int, int, list, list_all, now_ms, ok, set_config, show};
use support::{
    assert_refused, entry_ms, job_key, kept_raw, kept_record, log_entries, log_key, records_key,
};
use zrq_tests::audit::assert_consistent;
use zrq_tests::redis::{self, Connection, Value};
use zrq_tests::{conformance, Backend, Server, Zrq};

/// Two days in ms: a job finished this long ago is past the queue's retention whatever
/// `zrq.keep-ms` is (its default is one day; the Lua library always uses the default).
const LONG_AGO_MS: i64 = 2 * 86_400_000;

/// Whether `key` exists.
fn exists(conn: &mut Connection, key: &str) -> bool {
    let n: i64 = redis::cmd("EXISTS").arg(key).query(conn).expect("EXISTS");
    n == 1
}

/// The score of `id` in the `state` sorted set of `queue`, if it is a member.
fn zscore(conn: &mut Connection, queue: &str, state: &str, id: &str) -> Option<f64> {
    redis::cmd("ZSCORE")
        .arg(format!("zrq:{{{queue}}}:{state}"))
        .arg(id)
        .query(conn)
        .expect("ZSCORE")
}

/// The entries of the `state` log that name `id`.
fn logged(conn: &mut Connection, queue: &str, state: &str, id: &str) -> Vec<String> {
    log_entries(conn, queue, state)
        .into_iter()
        .filter(|(_, job)| job == id)
        .map(|(entry, _)| entry)
        .collect()
}

/// Asserts job `id` is kept in the `state` records hash and log, and nowhere else: no own key,
/// no member of the state's sorted set, one log entry whose ms is the record's and JOB's
/// `finished_at`. Returns the record (state filled in).
fn assert_kept(
    conn: &mut Connection,
    zrq: &mut Zrq,
    queue: &str,
    state: &str,
    id: &str,
) -> BTreeMap<String, String> {
    assert!(
        !exists(conn, &job_key(queue, id)),
        "job {id} ({state}) still has its own key"
    );
    assert_eq!(zscore(conn, queue, state, id), None, "job {id} in the zset");
    let record = kept_record(conn, queue, state, id)
        .unwrap_or_else(|| panic!("job {id} is not in {}", records_key(queue, state)));
    let entries = logged(conn, queue, state, id);
    assert_eq!(entries.len(), 1, "job {id}: log entries {entries:?}");
    let finished = field(zrq, queue, id, "finished_at");
    assert_eq!(
        entry_ms(&entries[0]).to_string(),
        finished,
        "job {id}: log entry vs JOB finished_at"
    );
    assert_eq!(record.get("finished_at"), Some(&finished), "job {id}");
    assert_eq!(zrq.state(queue, id).as_deref(), Some(state));
    record
}

/// Asserts job `id` is gone from every place a finished job is kept.
fn assert_gone(conn: &mut Connection, zrq: &mut Zrq, queue: &str, id: &str) {
    for state in support::FINISHED_STATES {
        assert_eq!(kept_raw(conn, queue, state, id), None, "job {id} ({state})");
        assert!(
            logged(conn, queue, state, id).is_empty(),
            "job {id} ({state})"
        );
        assert_eq!(zscore(conn, queue, state, id), None, "job {id} ({state})");
    }
    assert!(!exists(conn, &job_key(queue, id)), "job {id}");
    assert_eq!(zrq.state(queue, id), None, "STATE of job {id}");
    assert_eq!(zrq.job(queue, id), None, "JOB of job {id}");
}

/// Enqueues a job (with `options`), fetches it (it must be the only one pending) and ACKs it
/// with RESULT `result`. Returns its id.
fn complete(zrq: &mut Zrq, queue: &str, options: &[&str], result: &str) -> String {
    let id = zrq.enqueue(queue, "t", "{}", options);
    let fetched = zrq.fetch(queue, "w", 1);
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0]["id"], id, "the only pending job");
    assert_eq!(int(zrq, "ack", &[queue, &id, "RESULT", result]), 1);
    id
}

/// Waits until a retention pass of `queue` has run: a job with a KEEP of 1 ms is completed, and
/// its sorted set member is gone once a pass has run after the end of its retention (the module's
/// timer wakes for it; the Lua library sweeps on each FETCH, issued while waiting). The queue
/// must have no pending job (the FETCH would take it).
fn run_a_retention_pass(server: &Server, zrq: &mut Zrq, queue: &str) {
    let marker = complete(zrq, queue, &["KEEP", "1"], "0");
    let mut conn = server.conn();
    server.wait_for(|_| {
        assert!(
            zrq.fetch(queue, "sweeper", 1).is_empty(),
            "a job was pending"
        );
        zscore(&mut conn, queue, "completed", &marker).is_none()
    });
}

/// Moves kept job `id`'s finish `LONG_AGO_MS` into the past: its record's `finished_at` and its
/// log entry (the log is written again, so the job must be the only one in it).
fn backdate(conn: &mut Connection, queue: &str, state: &str, id: &str) -> i64 {
    let mut record = kept_record(conn, queue, state, id).expect("kept record");
    let ms = now_ms() - LONG_AGO_MS;
    record.insert("finished_at".to_string(), ms.to_string());
    assert_eq!(log_entries(conn, queue, state).len(), 1, "only {id} logged");
    support::write_kept(conn, queue, state, id, &record);
    let log = log_key(queue, state);
    let _: () = redis::cmd("DEL").arg(&log).query(conn).expect("DEL");
    let _: String = redis::cmd("XADD")
        .arg(&log)
        .arg(format!("{ms}-0"))
        .arg("id")
        .arg(id)
        .query(conn)
        .expect("XADD");
    ms
}

/// ACK of a job without a KEEP of its own: no own key afterwards; its packed record without the
/// state is a field of `completed:records` (checked raw: the spec's encoding, no `s`, nor what
/// the id says: a generated id's `created_at` and lease); one `completed:log` entry at its
/// `finished_at`; STATE, JOB, RESULT and INFO find it.
fn ack_keeps_a_plain_job_in_the_completed_records(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let mut conn = server.conn();
    let q = "acked";
    // (options, whether the id is generated)
    let cases: &[(&[&str], bool)] = &[
        (&[], true),
        (&["ID", "mine-1"], false),
        (&["RETRIES", "3", "TIMEOUT", "900"], true),
        (&["PRIORITY", "7", "UNIQUE", "u1"], true),
    ];
    let mut ids = Vec::new();
    for (n, (options, generated)) in cases.iter().enumerate() {
        let result = format!("\"r{n}\"");
        let id = complete(&mut zrq, q, options, &result);
        let record = assert_kept(&mut conn, &mut zrq, q, "completed", &id);
        let raw = kept_raw(&mut conn, q, "completed", &id).expect("raw");
        let text = String::from_utf8_lossy(&raw).into_owned();
        assert!(
            !text.contains("s9:completed"),
            "{options:?}: state stored: {text}"
        );
        // Every stored field is what JOB says (the record is the job's, nothing more).
        let job = zrq.job(q, &id).expect("JOB");
        for (name, value) in &record {
            assert_eq!(job.get(name), Some(value), "{options:?}: {name} in {text}");
        }
        assert_eq!(job["state"], "completed");
        assert_eq!(job["result"], result);
        assert!(!record.contains_key("id") && !record.contains_key("queue"));
        assert_eq!(
            record.contains_key("created_at"),
            !generated,
            "{options:?}: created_at stored only when the id does not say it: {text}"
        );
        if *generated {
            assert!(!record.contains_key("lease"), "{options:?}: {text}");
        }
        let reply = zrq
            .call::<Value>("result", &[q, &id])
            .map(zrq_tests::map)
            .expect("RESULT");
        assert_eq!(reply["state"], "completed");
        assert_eq!(reply["result"], result);
        assert_eq!(reply["finished_at"], job["finished_at"]);
        ids.push(id);
        assert_eq!(info_int(&mut zrq, q, "completed"), ids.len() as i64);
    }
    // The log is in order of finishing.
    let order: Vec<String> = log_entries(&mut conn, q, "completed")
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_eq!(order, ids);
    // UNIQUE freed at the end: the key can be taken again.
    let again = zrq.enqueue(q, "t", "{}", &["UNIQUE", "u1"]);
    assert!(
        !ids.contains(&again),
        "UNIQUE u1 still held by a completed job"
    );
    // The queue's keys carry no TTL (retention is the timer's).
    for key in [records_key(q, "completed"), log_key(q, "completed")] {
        let ttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut conn).expect("PTTL");
        assert_eq!(ttl, -1, "{key}");
    }
    assert_consistent(&mut conn, backend, q, None);
}

/// A job that has a record of its own when it ends (written when it was retried, delayed,
/// released, requeued from the dead set, or enqueued with a producer id) ends the same way:
/// its own key deleted, its record moved into the records hash, one log entry. The last
/// attempt's result is the one kept.
fn jobs_with_a_record_of_their_own_move_into_the_records_hash(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let mut conn = server.conn();
    let q = "moved";
    /// How the job comes to run the last time.
    #[derive(Debug, Clone, Copy)]
    enum Path {
        Retried,
        Delayed,
        Released,
        Requeued,
    }
    for path in [Path::Retried, Path::Delayed, Path::Released, Path::Requeued] {
        let options: &[&str] = match path {
            Path::Retried => &["RETRIES", "3"],
            Path::Delayed => &["DELAY", "1"],
            Path::Released => &[],
            Path::Requeued => &["RETRIES", "0"],
        };
        let id = zrq.enqueue(q, "t", "{}", options);
        // Fetches the job (waiting for its promotion if need be); returns its lease.
        let take = |zrq: &mut Zrq| -> String {
            let mut got = Vec::new();
            server.wait_for(|_| {
                got = zrq.fetch(q, "w", 1);
                !got.is_empty()
            });
            assert_eq!(got[0]["id"], id, "{path:?}");
            got[0]["lease"].clone()
        };
        match path {
            Path::Retried => {
                let _ = take(&mut zrq);
                let state = ok(&mut zrq, "fail", &[q, &id, "e", "RETRYIN", "1"]);
                assert_eq!(show(&state), "retrying");
            }
            Path::Delayed => {}
            Path::Released => {
                let _ = take(&mut zrq);
                assert_eq!(int(&mut zrq, "release", &[q, &id]), 1);
            }
            Path::Requeued => {
                let _ = take(&mut zrq);
                assert_eq!(show(&ok(&mut zrq, "fail", &[q, &id, "e"])), "dead");
                assert_eq!(int(&mut zrq, "requeue", &[q, &id]), 1);
            }
        }
        // Under its lease, as a worker acknowledges.
        let lease = take(&mut zrq);
        let attempt = field(&mut zrq, q, &id, "attempt");
        let args = [q, id.as_str(), "RESULT", &attempt, "LEASE", &lease];
        assert_eq!(int(&mut zrq, "ack", &args), 1, "{path:?}");
        let record = assert_kept(&mut conn, &mut zrq, q, "completed", &id);
        assert_eq!(record.get("result"), Some(&attempt), "{path:?}");
        assert_eq!(zrq.state(q, &id).as_deref(), Some("completed"), "{path:?}");
        for index in ["active", "retrying", "scheduled", "dead"] {
            assert_eq!(zscore(&mut conn, q, index, &id), None, "{path:?}: {index}");
        }
    }
    assert_eq!(info_int(&mut zrq, q, "completed"), 4);
    assert_consistent(&mut conn, backend, q, None);
}

/// ENQUEUE with the producer id of a finished job kept in a records hash answers that job's id
/// and writes nothing, as for a job with a key of its own: an id names one job until it is
/// deleted or its retention ends.
fn an_id_kept_in_a_records_hash_is_not_enqueued_again(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let mut conn = server.conn();
    let q = "dup";
    let done = complete(&mut zrq, q, &["ID", "once"], "1");
    let gone = zrq.enqueue(q, "t", "{}", &["ID", "twice"]);
    assert_eq!(int(&mut zrq, "cancel", &[q, &gone]), 1);
    for (id, state) in [(&done, "completed"), (&gone, "cancelled")] {
        let before = server.snapshot();
        assert_eq!(
            &zrq.enqueue(q, "t", "{\"v\":2}", &["ID", id]),
            id,
            "{state}"
        );
        assert_eq!(server.snapshot(), before, "ENQUEUE of a {state} id wrote");
        assert_eq!(zrq.state(q, id).as_deref(), Some(state));
    }
    assert!(zrq.fetch(q, "w", 10).is_empty(), "no second job");
    assert_eq!(info_int(&mut zrq, q, "total_enqueued"), 2);
    assert_consistent(&mut conn, backend, q, None);
}

/// CANCEL of a job in each state it can be cancelled from, without a KEEP of its own: the job
/// ends in `cancelled:records` and `cancelled:log`, its own key (if it had one) deleted.
fn cancel_keeps_plain_jobs_in_the_cancelled_records(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let mut conn = server.conn();
    let q = "cancelled";
    // (what, options, cancelled while running)
    let cases: &[(&str, &[&str], bool)] = &[
        ("pending, held by its inline entry", &[], false),
        ("pending with a producer id", &["ID", "p-1"], false),
        ("scheduled", &["DELAY", "3600000"], false),
        ("running, cancelled by its worker's ACK", &[], true),
    ];
    let mut ids = Vec::new();
    for (what, options, running) in cases {
        let id = zrq.enqueue(q, "t", "{}", options);
        if *running {
            assert_eq!(zrq.fetch(q, "w", 1).len(), 1, "{what}");
            assert_eq!(int(&mut zrq, "cancel", &[q, &id]), 2, "{what}");
            assert_eq!(zrq.state(q, &id).as_deref(), Some("active"), "{what}");
            assert_eq!(int(&mut zrq, "ack", &[q, &id]), -1, "{what}");
        } else {
            assert_eq!(int(&mut zrq, "cancel", &[q, &id]), 1, "{what}");
        }
        let record = assert_kept(&mut conn, &mut zrq, q, "cancelled", &id);
        assert!(!record.contains_key("entry"), "{what}: {record:?}");
        let reply = zrq
            .call::<Value>("result", &[q, &id])
            .map(zrq_tests::map)
            .expect("RESULT");
        assert_eq!(reply["state"], "cancelled", "{what}");
        ids.push(id);
        assert_eq!(info_int(&mut zrq, q, "cancelled"), ids.len() as i64);
    }
    assert_eq!(info_int(&mut zrq, q, "completed"), 0);
    assert_eq!(info_int(&mut zrq, q, "pending"), 0);
    let (_, listed) = list(&mut zrq, q, "cancelled", &["COUNT", "100"]);
    assert_eq!(listed, ids);
    assert_consistent(&mut conn, backend, q, None);
}

/// A job with a KEEP of its own is kept as before: its own key with that TTL, a member of its
/// state's sorted set; never in a records hash or log. INFO counts both kinds.
fn a_job_with_its_own_keep_keeps_its_own_key(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let mut conn = server.conn();
    let q = "own";
    let keep = 600_000;
    let keep_text = keep.to_string();
    let plain = complete(&mut zrq, q, &[], "1");
    let done = complete(&mut zrq, q, &["KEEP", &keep_text], "2");
    let gone = zrq.enqueue(q, "t", "{}", &["KEEP", &keep_text]);
    assert_eq!(int(&mut zrq, "cancel", &[q, &gone]), 1);
    for (id, state) in [(&done, "completed"), (&gone, "cancelled")] {
        let key = job_key(q, id);
        assert_eq!(support::key_type(&mut conn, &key), "string", "{state}");
        let ttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut conn).expect("PTTL");
        assert!(ttl > 0 && ttl <= keep, "{state}: PTTL {ttl}");
        let record = support::stored_record(&mut conn, &key).expect("record");
        assert_eq!(record["state"], state);
        assert_eq!(record["keep"], keep_text);
        assert!(zscore(&mut conn, q, state, id).is_some(), "{state}: zset");
        assert_eq!(kept_raw(&mut conn, q, state, id), None, "{state}: records");
        assert!(logged(&mut conn, q, state, id).is_empty(), "{state}: log");
        assert_eq!(zrq.state(q, id).as_deref(), Some(state));
    }
    assert_kept(&mut conn, &mut zrq, q, "completed", &plain);
    assert_eq!(info_int(&mut zrq, q, "completed"), 2);
    assert_eq!(info_int(&mut zrq, q, "cancelled"), 1);
    assert_consistent(&mut conn, backend, q, None);
}

/// Retention: a job finished longer ago than the queue's retention leaves its records hash and
/// its log at the next pass (STATE nil, RESULT NOJOB, INFO no longer counts it, the totals
/// stay), jobs finished later stay. On the module, with a short `zrq.keep-ms`, a job that just
/// finished goes once it has passed, and lowering the config shortens the retention of jobs
/// already kept (the current value applies).
fn retention_removes_kept_jobs_from_records_and_log(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let mut conn = server.conn();
    let q = "ret";
    // Finished two days ago (moved back by hand; each log must hold only it for that).
    let old = complete(&mut zrq, q, &["ID", "old"], "1");
    backdate(&mut conn, q, "completed", &old);
    let old_cancelled = zrq.enqueue(q, "t", "{}", &["ID", "old-c"]);
    assert_eq!(int(&mut zrq, "cancel", &[q, &old_cancelled]), 1);
    backdate(&mut conn, q, "cancelled", &old_cancelled);
    let mut stay = Vec::new();
    if backend == Backend::Module {
        // With a retention of 300 ms, a job that just finished goes too, after it.
        set_config(&server, "keep-ms", "300");
        let short = complete(&mut zrq, q, &[], "2");
        let acked_at = now_ms();
        server.wait_for(|c| {
            [&old, &short]
                .iter()
                .all(|id| kept_raw(c, q, "completed", id).is_none())
                && kept_raw(c, q, "cancelled", &old_cancelled).is_none()
        });
        assert!(now_ms() - acked_at >= 300, "not before its retention");
        assert_gone(&mut conn, &mut zrq, q, &short);
        // Lowering the retention applies to the jobs already kept.
        set_config(&server, "keep-ms", "86400000");
        let long = complete(&mut zrq, q, &[], "3");
        set_config(&server, "keep-ms", "200");
        std::thread::sleep(std::time::Duration::from_millis(250));
        run_a_retention_pass(&server, &mut zrq, q);
        assert_gone(&mut conn, &mut zrq, q, &long);
        set_config(&server, "keep-ms", "86400000");
    } else {
        // The library's retention is zrq.keep-ms's default (a day): only the old ones are due.
        let recent = complete(&mut zrq, q, &[], "2");
        run_a_retention_pass(&server, &mut zrq, q);
        stay.push(recent);
    }
    assert_gone(&mut conn, &mut zrq, q, &old);
    assert_gone(&mut conn, &mut zrq, q, &old_cancelled);
    let err = zrq
        .call::<Value>("result", &[q, &old])
        .expect_err("past its retention");
    assert_eq!(err.code(), Some("NOJOB"));
    // Finished later: kept through a pass.
    stay.push(complete(&mut zrq, q, &[], "4"));
    let cancelled = zrq.enqueue(q, "t", "{}", &[]);
    assert_eq!(int(&mut zrq, "cancel", &[q, &cancelled]), 1);
    run_a_retention_pass(&server, &mut zrq, q);
    for id in &stay {
        assert_kept(&mut conn, &mut zrq, q, "completed", id);
    }
    assert_kept(&mut conn, &mut zrq, q, "cancelled", &cancelled);
    assert_eq!(info_int(&mut zrq, q, "completed"), stay.len() as i64);
    assert_eq!(info_int(&mut zrq, q, "cancelled"), 1);
    assert!(info_int(&mut zrq, q, "total_completed") > stay.len() as i64);
    assert_eq!(info_int(&mut zrq, q, "total_cancelled"), 2);
    assert_consistent(&mut conn, backend, q, None);
}

/// LIST completed: first the sorted set (jobs with a KEEP of their own) by rank, then the log
/// from its head; paged with any COUNT, every job exactly once, the cursor ending at `0`. The
/// page that ends the sorted set returns `log:0-0`, a page in the log `log:<entry id>` of its
/// last job (docs/PROTOCOL.md); a deleted job is not listed, and a log entry whose record is
/// gone is skipped.
fn list_pages_through_the_zset_then_the_log(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let mut conn = server.conn();
    let q = "listed";
    let mut own = Vec::new();
    for n in 0..3 {
        // Distinct retentions: the zset's order is theirs.
        let keep = (600_000 + n * 1000).to_string();
        own.push(complete(&mut zrq, q, &["KEEP", &keep], "1"));
    }
    let mut logged_ids = Vec::new();
    for _ in 0..6 {
        logged_ids.push(complete(&mut zrq, q, &[], "1"));
    }
    let deleted = logged_ids.remove(2);
    assert_eq!(int(&mut zrq, "delete", &[q, &deleted]), 1);
    let lost = logged_ids.remove(3);
    // A record gone under its log entry (not something zrq leaves: written by hand).
    let _: i64 = redis::cmd("HDEL")
        .arg(records_key(q, "completed"))
        .arg(&lost)
        .query(&mut conn)
        .expect("HDEL");
    let want: Vec<String> = own.iter().chain(&logged_ids).cloned().collect();
    for count in [1, 2, 3, 4, 5, 100] {
        assert_eq!(
            list_all(&mut zrq, q, "completed", count),
            want,
            "COUNT {count}"
        );
    }
    // docs/PROTOCOL.md: a page never mixes the two. A page of 4 ends the sorted set with its
    // three jobs and returns `log:0-0` (the log holds jobs); from there, each page's cursor is
    // the log entry of its last job.
    let (cursor, page) = list(&mut zrq, q, "completed", &["COUNT", "4"]);
    assert_eq!(page, want[..3], "the sorted set's page");
    assert_eq!(cursor, "log:0-0");
    let (cursor, page) = list(&mut zrq, q, "completed", &["COUNT", "1", "CURSOR", &cursor]);
    assert_eq!(page, want[3..4]);
    let first = &log_entries(&mut conn, q, "completed")[0];
    assert_eq!(first.1, logged_ids[0]);
    assert_eq!(cursor, format!("log:{}", first.0));
    let (cursor, page) = list(
        &mut zrq,
        q,
        "completed",
        &["COUNT", "10", "CURSOR", &cursor],
    );
    assert_eq!(page, want[4..]);
    assert_eq!(cursor, "0");
    // Without jobs of a KEEP of their own, the first page is the log's; nothing at all: "0".
    let (cursor, page) = list(&mut zrq, "only-log", "completed", &[]);
    assert_eq!((cursor.as_str(), page.len()), ("0", 0), "an empty queue");
    let only = [
        complete(&mut zrq, "only-log", &[], "1"),
        complete(&mut zrq, "only-log", &[], "1"),
    ];
    let (cursor, page) = list(&mut zrq, "only-log", "completed", &["COUNT", "1"]);
    assert_eq!(page, only[..1]);
    let head = &log_entries(&mut conn, "only-log", "completed")[0];
    assert_eq!(cursor, format!("log:{}", head.0));
    assert_eq!(list_all(&mut zrq, "only-log", "completed", 1), only);
    // Each listed job is a whole job map.
    let value = ok(&mut zrq, "list", &[q, "completed", "COUNT", "100"]);
    let (_, jobs) = support::lifecycle::page(value);
    for job in jobs {
        assert_eq!(job["state"], "completed");
        assert_eq!(job["result"], "1", "{job:?}");
    }
    // Cancelled: the same, from its own keys.
    let plain = zrq.enqueue(q, "t", "{}", &[]);
    let own_cancelled = zrq.enqueue(q, "t", "{}", &["KEEP", "600000"]);
    for id in [&plain, &own_cancelled] {
        assert_eq!(int(&mut zrq, "cancel", &[q, id]), 1);
    }
    assert_eq!(
        list_all(&mut zrq, q, "cancelled", 1),
        [own_cancelled, plain]
    );
}

/// DELETE of a job kept in a records hash removes its field and its log entry (INFO no longer
/// counts it, STATE says nil, a second DELETE finds nothing). A job enqueued again with the same
/// producer id and finished is a new one: the old one's log entry (finished two days ago, so due)
/// must not take the new one's record with it at the next retention pass.
fn delete_removes_a_kept_job_from_records_and_log(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let mut conn = server.conn();
    let q = "del";
    for (state, n) in [("completed", 1), ("cancelled", 2)] {
        let id = format!("again-{n}");
        let finish = |zrq: &mut Zrq| {
            if state == "completed" {
                complete(zrq, q, &["ID", &id], "1");
            } else {
                zrq.enqueue(q, "t", "{}", &["ID", &id]);
                assert_eq!(int(zrq, "cancel", &[q, &id]), 1);
            }
        };
        finish(&mut zrq);
        let old_ms = backdate(&mut conn, q, state, &id);
        let before = info_int(&mut zrq, q, state);
        assert_eq!(int(&mut zrq, "delete", &[q, &id]), 1, "{state}");
        assert_gone(&mut conn, &mut zrq, q, &id);
        assert!(log_entries(&mut conn, q, state).is_empty(), "{state}");
        assert_eq!(info_int(&mut zrq, q, state), before - 1, "{state}");
        assert_eq!(int(&mut zrq, "delete", &[q, &id]), 0, "{state}: twice");
        // Again, with the same id.
        finish(&mut zrq);
        let record = assert_kept(&mut conn, &mut zrq, q, state, &id);
        assert_ne!(record["finished_at"], old_ms.to_string());
        run_a_retention_pass(&server, &mut zrq, q);
        assert_kept(&mut conn, &mut zrq, q, state, &id);
        assert_eq!(info_int(&mut zrq, q, state), 1, "{state}");
    }
    // One of several finished in the same ms: only its entry goes (the others' stay).
    let ids: Vec<String> = (0..3)
        .map(|n| zrq.enqueue(q, "t", "{}", &["ID", &format!("same-{n}")]))
        .collect();
    let ms = now_ms() - LONG_AGO_MS;
    let log = log_key(q, "cancelled");
    let _: () = redis::cmd("DEL").arg(&log).query(&mut conn).expect("DEL");
    let _: () = redis::cmd("DEL")
        .arg(records_key(q, "cancelled"))
        .query(&mut conn)
        .expect("DEL");
    for id in &ids {
        assert_eq!(int(&mut zrq, "cancel", &[q, id]), 1);
        let mut record = kept_record(&mut conn, q, "cancelled", id).expect("kept");
        record.insert("finished_at".to_string(), ms.to_string());
        support::write_kept(&mut conn, q, "cancelled", id, &record);
    }
    // Rewrite the log: the three entries in one ms, in order.
    let _: () = redis::cmd("DEL").arg(&log).query(&mut conn).expect("DEL");
    for (seq, id) in ids.iter().enumerate() {
        let _: String = redis::cmd("XADD")
            .arg(&log)
            .arg(format!("{ms}-{seq}"))
            .arg("id")
            .arg(id)
            .query(&mut conn)
            .expect("XADD");
    }
    assert_eq!(int(&mut zrq, "delete", &[q, &ids[1]]), 1);
    let left: Vec<String> = log_entries(&mut conn, q, "cancelled")
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_eq!(left, [ids[0].clone(), ids[2].clone()]);
    assert_consistent(&mut conn, backend, q, None);
}

/// A records hash or log of another type makes the command that would finish a job there fail
/// with WRONGTYPE, having written nothing (the keyspace is compared before and after).
fn a_records_hash_or_log_of_another_type_is_wrongtype(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let mut conn = server.conn();
    // (key suffix, command that finishes the job, the job running or pending)
    let cases: &[(&str, &str, bool)] = &[
        ("completed:records", "ack", true),
        ("completed:log", "ack", true),
        ("cancelled:records", "cancel", false),
        ("cancelled:log", "cancel", false),
    ];
    let wrong: &[(&str, &[&str])] = &[
        ("a string", &["SET", "{key}", "x"]),
        ("a list", &["RPUSH", "{key}", "x"]),
        ("a set", &["SADD", "{key}", "x"]),
    ];
    for (n, (suffix, command, running)) in cases.iter().enumerate() {
        for (m, (kind, setup)) in wrong.iter().enumerate() {
            let q = format!("wt{n}-{m}");
            let id = zrq.enqueue(&q, "t", "{}", &[]);
            if *running {
                assert_eq!(zrq.fetch(&q, "w", 1).len(), 1);
            }
            let key = format!("zrq:{{{q}}}:{suffix}");
            let args: Vec<String> = setup.iter().map(|a| a.replace("{key}", &key)).collect();
            let _: Value = redis::cmd(&args[0])
                .arg(&args[1..])
                .query(&mut conn)
                .expect("setup");
            let case = format!("{command} with {suffix} {kind}");
            assert_refused(
                &server,
                &mut zrq,
                &case,
                command,
                &[q.clone().into_bytes(), id.into_bytes()],
                |text, code| assert_eq!(code, "WRONGTYPE", "{case}: {text}"),
            );
        }
    }
}

/// Finished jobs written by an earlier version (own key with the retention's TTL, member of the
/// state's sorted set scored by the end of its retention) are read, listed, counted and expired
/// as before, beside jobs kept the new way.
fn finished_jobs_of_an_earlier_version_still_work(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let mut conn = server.conn();
    let q = "older";
    let now = now_ms();
    // (id, state, retention left in ms)
    let olds: &[(&str, &str, i64)] = &[
        ("old-done", "completed", 600_000),
        ("old-gone", "cancelled", 600_000),
        ("old-short", "completed", 500_000),
    ];
    for (id, state, left) in olds {
        let fields: BTreeMap<String, String> = [
            ("task", "t"),
            ("payload", "{}"),
            ("state", state),
            ("attempt", "1"),
            ("created_at", &(now - 1000).to_string()),
            ("started_at", &(now - 900).to_string()),
            ("finished_at", &(now - 800).to_string()),
            ("result", "7"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let key = job_key(q, id);
        support::write_packed(&mut conn, &key, &fields);
        let _: i64 = redis::cmd("PEXPIRE")
            .arg(&key)
            .arg(*left)
            .query(&mut conn)
            .expect("PEXPIRE");
        let _: i64 = redis::cmd("ZADD")
            .arg(format!("zrq:{{{q}}}:{state}"))
            .arg(now + left)
            .arg(id)
            .query(&mut conn)
            .expect("ZADD");
    }
    // Counted in the totals as that version did.
    for (counter, n) in [("enqueued", 3), ("completed", 2), ("cancelled", 1)] {
        let _: i64 = redis::cmd("HINCRBY")
            .arg(format!("zrq:{{{q}}}:stats"))
            .arg(counter)
            .arg(n)
            .query(&mut conn)
            .expect("HINCRBY");
    }
    let new = complete(&mut zrq, q, &[], "8");
    // Read.
    for (id, state, _) in olds {
        assert_eq!(zrq.state(q, id).as_deref(), Some(*state));
        assert_eq!(field(&mut zrq, q, id, "result"), "7");
        assert_eq!(
            field(&mut zrq, q, id, "finished_at"),
            (now - 800).to_string()
        );
    }
    // Listed (the sorted set first) and counted.
    assert_eq!(
        list_all(&mut zrq, q, "completed", 1),
        ["old-short", "old-done", new.as_str()]
    );
    assert_eq!(list_all(&mut zrq, q, "cancelled", 1), ["old-gone"]);
    assert_eq!(info_int(&mut zrq, q, "completed"), 3);
    assert_eq!(info_int(&mut zrq, q, "cancelled"), 1);
    // Expired: its retention cut short by hand, the key goes by its TTL, its member by a pass.
    let _: i64 = redis::cmd("PEXPIRE")
        .arg(job_key(q, "old-short"))
        .arg(1)
        .query(&mut conn)
        .expect("PEXPIRE");
    let _: i64 = redis::cmd("ZADD")
        .arg(format!("zrq:{{{q}}}:completed"))
        .arg(now_ms())
        .arg("old-short")
        .query(&mut conn)
        .expect("ZADD");
    server.wait_for(|c| !exists(c, &job_key(q, "old-short")));
    run_a_retention_pass(&server, &mut zrq, q);
    assert_gone(&mut conn, &mut zrq, q, "old-short");
    assert_eq!(info_int(&mut zrq, q, "completed"), 2);
    assert_eq!(zrq.state(q, "old-done").as_deref(), Some("completed"));
    assert_kept(&mut conn, &mut zrq, q, "completed", &new);
    // DELETE of an old one works as before (own key and member).
    assert_eq!(int(&mut zrq, "delete", &[q, "old-done"]), 1);
    assert_gone(&mut conn, &mut zrq, q, "old-done");
    assert_eq!(show(&ok(&mut zrq, "state", &[q, "old-gone"])), "cancelled");
    let ids: BTreeSet<String> = support::job_ids(&mut conn, q).into_iter().collect();
    assert_eq!(ids, ["old-gone".to_string(), new].into());
    assert_consistent(&mut conn, backend, q, None);
}

conformance!(
    ack_keeps_a_plain_job_in_the_completed_records,
    jobs_with_a_record_of_their_own_move_into_the_records_hash,
    an_id_kept_in_a_records_hash_is_not_enqueued_again,
    cancel_keeps_plain_jobs_in_the_cancelled_records,
    a_job_with_its_own_keep_keeps_its_own_key,
    retention_removes_kept_jobs_from_records_and_log,
    list_pages_through_the_zset_then_the_log,
    delete_removes_a_kept_job_from_records_and_log,
    a_records_hash_or_log_of_another_type_is_wrongtype,
    finished_jobs_of_an_earlier_version_still_work,
    a_malformed_kept_record_is_corrupt,
    kept_jobs_replicate_exactly,
    after_finds_parents_kept_in_records_hashes,
);

/// The module's timer plans the retention of kept jobs from the keyspace too: after a restart
/// (the plan rebuilt from the keys, as after a failover), a job kept in a records hash still
/// leaves it when `zrq.keep-ms` has passed, though no command touches its queue.
#[test]
fn module_retention_of_kept_jobs_survives_a_restart() {
    let mut server = Server::start(zrq_tests::Options {
        module: true,
        appendonly: true,
        config: vec![("zrq.keep-ms".to_string(), "1000".to_string())],
    });
    let q = "restarted";
    let id = {
        let mut zrq = server.zrq(Backend::Module);
        complete(&mut zrq, q, &[], "1")
    };
    server.restart();
    let mut conn = server.conn();
    // Still there after the restart (unless a loaded machine took more than the retention).
    let finished: i64 = {
        let mut zrq = server.zrq(Backend::Module);
        field(&mut zrq, q, &id, "finished_at")
            .parse()
            .expect("finished_at")
    };
    assert!(kept_raw(&mut conn, q, "completed", &id).is_some() || now_ms() >= finished + 1000);
    // Nothing but reads from here: only the timer can remove it.
    server.wait_for(|c| kept_raw(c, q, "completed", &id).is_none());
    assert!(log_entries(&mut conn, q, "completed").is_empty());
    assert!(now_ms() >= finished + 1000, "not before its retention");
}

/// What a finish writes with a generated value (the log entry's id, `finished_at` from it) and
/// what retention and DELETE remove reach a replica exactly: the two keyspaces are the same,
/// key by key.
fn kept_jobs_replicate_exactly(backend: Backend) {
    let primary = backend.server();
    let replica = primary.start_replica();
    let mut zrq = primary.zrq(backend);
    let mut conn = primary.conn();
    let q = "replicated";
    let old = complete(&mut zrq, q, &["ID", "old"], "1");
    backdate(&mut conn, q, "completed", &old);
    let mut done = Vec::new();
    for n in 0..5 {
        done.push(complete(&mut zrq, q, &[], &n.to_string()));
    }
    let cancelled = zrq.enqueue(q, "t", "{}", &[]);
    assert_eq!(int(&mut zrq, "cancel", &[q, &cancelled]), 1);
    assert_eq!(int(&mut zrq, "delete", &[q, &done[2]]), 1);
    run_a_retention_pass(&primary, &mut zrq, q);
    assert_gone(&mut conn, &mut zrq, q, &old);
    support::wait_replica_caught_up(&primary, &replica);
    assert_eq!(
        support::key_digests(&primary),
        support::key_digests(&replica)
    );
    let mut on_replica = replica.conn();
    assert_eq!(
        log_entries(&mut on_replica, q, "completed"),
        log_entries(&mut conn, q, "completed")
    );
}

/// A parent kept in a records hash is found by `AFTER`: completed, it counts at once (its result
/// copied `WITHRESULTS`); cancelled, the child is cancelled or, `ONPARENTFAIL run`, runs. The
/// parent stays where it is, unchanged: no key of its own appears.
fn after_finds_parents_kept_in_records_hashes(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let mut conn = server.conn();
    let q = "flow";
    let done = complete(&mut zrq, q, &[], "{\"r\":1}");
    let gone = zrq.enqueue(q, "t", "{}", &[]);
    assert_eq!(int(&mut zrq, "cancel", &[q, &gone]), 1);
    let before = [
        kept_raw(&mut conn, q, "completed", &done),
        kept_raw(&mut conn, q, "cancelled", &gone),
    ];
    let child = zrq.enqueue(q, "t", "{}", &["AFTER", &done, "WITHRESULTS"]);
    assert_eq!(zrq.state(q, &child).as_deref(), Some("pending"));
    let parents = field(&mut zrq, q, &child, "parents");
    assert_eq!(parents, format!("{{\"{done}\":{{\"r\":1}}}}"));
    let cancelled = zrq.enqueue(q, "t", "{}", &["AFTER", &gone]);
    assert_eq!(zrq.state(q, &cancelled).as_deref(), Some("cancelled"));
    let runs = zrq.enqueue(q, "t", "{}", &["AFTER", &gone, "ONPARENTFAIL", "run"]);
    assert_eq!(zrq.state(q, &runs).as_deref(), Some("pending"));
    let after = [
        kept_raw(&mut conn, q, "completed", &done),
        kept_raw(&mut conn, q, "cancelled", &gone),
    ];
    assert_eq!(after, before, "the parents' records are unchanged");
    for id in [&done, &gone] {
        assert!(!exists(&mut conn, &job_key(q, id)), "parent {id} got a key");
    }
    assert_kept(&mut conn, &mut zrq, q, "completed", &done);
    assert_kept(&mut conn, &mut zrq, q, "cancelled", &gone);
    assert_consistent(&mut conn, backend, q, None);
}

/// A field of a records hash is stored data, checked when read: one that does not decode, or
/// that stores a state other than its hash's, is `CORRUPT` naming the records hash, for every
/// command that reads the job, and nothing is written.
fn a_malformed_kept_record_is_corrupt(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let mut conn = server.conn();
    let q = "bad";
    // (what, the stored value, the error's detail)
    let cases: &[(&str, &[u8], &str)] = &[
        (
            "another state stored",
            b"t1:t p2:{} s4:dead c1:1 f1:2",
            "field 'state' does not match its place",
        ),
        ("not a packed record", b"t1:t p2:{} c1:1 f1:2 ", ""),
        ("no task", b"p2:{} c1:1 f1:2", "field 'task' is missing"),
    ];
    for (n, (what, stored, detail)) in cases.iter().enumerate() {
        let id = complete(&mut zrq, q, &["ID", &format!("bad-{n}")], "1");
        let _: i64 = redis::cmd("HSET")
            .arg(records_key(q, "completed"))
            .arg(&id)
            .arg(*stored)
            .query(&mut conn)
            .expect("HSET");
        let prefix = format!(
            "CORRUPT '{}' is not a zrq record: ",
            records_key(q, "completed")
        );
        for command in ["state", "job", "result", "delete"] {
            let case = format!("{command} of a kept record: {what}");
            assert_refused(
                &server,
                &mut zrq,
                &case,
                command,
                &[q.as_bytes().to_vec(), id.clone().into_bytes()],
                |text, code| {
                    assert_eq!(code, "CORRUPT", "{case}: {text}");
                    assert!(text.starts_with(&prefix), "{case}: {text}");
                    assert!(text.ends_with(detail), "{case}: {text}");
                },
            );
        }
    }
}

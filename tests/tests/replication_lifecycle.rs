//! Replication of the lifecycle (module only): promotions, retries, schedules and retention expiry
//! are done by the primary's timer and reach replicas as plain writes; a replica never promotes on
//! its own, and takes over promotions when it becomes a primary.

use crate::support;

use std::time::Duration;

use lifecycle_support::{info_int, int, now_ms, ok, set_config, show, stable_snapshot, wait_until};
use support::lifecycle as lifecycle_support;
use support::{
    expire_times, info_field, job_ids, key_digests, record, stream_state, wait_replica_caught_up,
};
use zrq_tests::redis::{self, Value};
use zrq_tests::{Backend, Options, Server, Zrq};

const Q: &str = "rlq";

fn primary() -> Server {
    Backend::Module.server_with(
        Options {
            config: vec![("repl-diskless-sync-delay".into(), "0".into())],
            ..Options::default()
        }
        .fast_schedules(),
    )
}

fn timer_passes(server: &Server) -> i64 {
    info_field(&mut server.conn(), "zrq", "zrq_timer_passes_total")
        .expect("INFO zrq")
        .parse()
        .expect("integer")
}

/// The replica has exactly the primary's data: digest, every key's value, the stream state with
/// its consumer group, and every job record field by field.
fn assert_same_data(primary: &Server, replica: &Server) {
    // Keys past their TTL stay in the keyspace (and in DEBUG DIGEST) until the primary's active
    // expiry deletes them and replicates the DEL: wait until none is left (KEYS skips them,
    // DBSIZE counts them).
    primary.wait_for(|c| {
        let size: usize = redis::cmd("DBSIZE").query(c).expect("DBSIZE");
        let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(c).expect("KEYS");
        size == keys.len()
    });
    wait_replica_caught_up(primary, replica);
    let (p, r) = (primary.digest(), replica.digest());
    let (ps, rs) = (stable_snapshot(primary), stable_snapshot(replica));
    let differ: Vec<&String> = ps
        .iter()
        .filter(|e| !rs.contains(e))
        .chain(rs.iter().filter(|e| !ps.contains(e)))
        .map(|(k, _)| k)
        .collect();
    assert!(differ.is_empty(), "keys that differ: {differ:?}");
    let (pe, re) = (expire_times(primary), expire_times(replica));
    let differ: Vec<_> = pe.iter().zip(&re).filter(|(a, b)| a != b).collect();
    assert!(
        differ.is_empty(),
        "expire times that differ (primary, replica): {differ:?}"
    );
    if p != r {
        let (pk, rk) = (key_digests(primary), key_digests(replica));
        let differ: Vec<_> = pk.iter().zip(&rk).filter(|(a, b)| a != b).collect();
        let (p2, r2) = (primary.digest(), replica.digest());
        panic!(
            "DEBUG DIGEST differs: primary {p}, replica {r}; keys whose DIGEST-VALUE differs: \
             {differ:?}; digests read again: {p2} {r2}"
        );
    }
    let (mut pc, mut rc) = (primary.conn(), replica.conn());
    assert_eq!(stream_state(&mut pc, Q), stream_state(&mut rc, Q));
    let ids = job_ids(&mut pc, Q);
    assert_eq!(ids, job_ids(&mut rc, Q));
    for id in &ids {
        assert_eq!(record(&mut pc, Q, id), record(&mut rc, Q, id), "job {id}");
    }
}

/// Works the queue like a set of workers until nothing is left to do: each job's payload says
/// how it ends (`ack`, `retry-then-ack`, `fail-always`).
fn work_until_idle(zrq: &mut Zrq) {
    wait_until(Duration::from_secs(20), "the workload drains", || {
        for job in zrq.fetch(Q, "w", 10) {
            let id = job["id"].clone();
            let attempt: i64 = job["attempt"].parse().unwrap();
            if job["payload"].contains("fail-always") {
                ok(zrq, "fail", &[Q, &id, &format!("failed {attempt}")]);
            } else if job["payload"].contains("retry-then-ack") && attempt == 1 {
                ok(zrq, "fail", &[Q, &id, "once", "RETRYIN", "60"]);
            } else {
                int(zrq, "touch", &[Q, &id, "PROGRESS", "50"]);
                let result = format!(r#"{{"attempt":{attempt}}}"#);
                assert_eq!(int(zrq, "ack", &[Q, &id, "RESULT", &result]), 1);
            }
        }
        let info = lifecycle_support::info(zrq, Q);
        ["pending", "active", "scheduled", "retrying"]
            .iter()
            .all(|k| info[*k] == "0")
    });
}

#[test]
fn replicas_match_the_primary_after_timers_retries_schedules_and_expiry() {
    let primary = primary();
    set_config(&primary, "backoff-base-ms", "20");
    set_config(&primary, "backoff-max-ms", "100");
    let replica = primary.start_replica();
    let mut zrq = primary.zrq(Backend::Module);
    let kinds = ["ack", "retry-then-ack", "fail-always"];
    for i in 0..30 {
        let kind = kinds[i % 3];
        let payload = format!(r#"{{"n":{i},"kind":"{kind}"}}"#);
        let delay = (50 + (i * 17) % 300).to_string();
        let priority = ["0", "3", "9"][i % 3].to_string();
        let mut opts = vec!["RETRIES", "2", "PRIORITY", &priority];
        if i % 2 == 0 {
            opts.extend(["DELAY", &delay]);
        }
        zrq.enqueue(Q, "t", &payload, &opts);
    }
    let at = (now_ms() + 200).to_string();
    for i in 0..5 {
        zrq.enqueue(Q, "t", &format!(r#"{{"at":{i}}}"#), &["AT", &at]);
    }
    // Retention: these vanish on the primary by TTL and timer, and so on the replica.
    for i in 0..5 {
        zrq.enqueue(Q, "short", &format!(r#"{{"keep":{i}}}"#), &["KEEP", "100"]);
    }
    let cancelled = zrq.enqueue(Q, "t", "{}", &["DELAY", "100000"]);
    assert_eq!(int(&mut zrq, "cancel", &[Q, &cancelled]), 1);
    int(
        &mut zrq,
        "schedule",
        &[Q, "tick", "EVERY", "100", "tick", r#"{"kind":"ack"}"#],
    );
    int(
        &mut zrq,
        "schedule",
        &[Q, "daily", "CRON", "0 3 * * *", "daily", "{}"],
    );
    ok(&mut zrq, "pause", &[Q]);
    std::thread::sleep(Duration::from_millis(150));
    ok(&mut zrq, "resume", &[Q]);
    wait_until(Duration::from_secs(10), "several ticks", || {
        info_int(&mut zrq, Q, "total_enqueued") >= 41 + 4
    });
    work_until_idle(&mut zrq);
    assert_eq!(int(&mut zrq, "unschedule", &[Q, "tick"]), 1);
    work_until_idle(&mut zrq);
    let dead = info_int(&mut zrq, Q, "dead");
    assert_eq!(dead, 10, "the fail-always jobs died after 3 attempts");
    let requeued = ok(&mut zrq, "requeue", &[Q, "ALL"]);
    assert_eq!(
        requeued,
        Value::Array(vec![Value::BulkString(b"0".to_vec()), Value::Int(10)])
    );
    // Requeued jobs still fail; let them die again, then delete one.
    work_until_idle(&mut zrq);
    let (_, dead_jobs) = lifecycle_support::page(ok(&mut zrq, "dead", &[Q, "COUNT", "100"]));
    assert_eq!(int(&mut zrq, "delete", &[Q, &dead_jobs[0]["id"]]), 1);
    // The short-lived results are gone from the primary.
    primary.wait_for(|c| {
        let left: Vec<String> = redis::cmd("KEYS")
            .arg(format!("zrq:{{{Q}}}:job:*"))
            .query(c)
            .unwrap();
        let short = left.iter().filter(|k| {
            let record = support::stored_record(c, k);
            record.and_then(|r| r.get("task").cloned()).as_deref() == Some("short")
        });
        short.count() == 0
    });
    primary.wait_for(|c| {
        // Their index entries are trimmed by the timer (and the cancelled one stays a day).
        let n: i64 = redis::cmd("ZCOUNT")
            .arg(format!("zrq:{{{Q}}}:completed"))
            .arg("-inf")
            .arg(now_ms() + 1000)
            .query(c)
            .unwrap();
        n == 0
    });
    assert!(
        timer_passes(&primary) > 5,
        "the primary's timer did the work"
    );

    assert_same_data(&primary, &replica);
    assert_eq!(
        timer_passes(&replica),
        0,
        "the replica never ran a timer pass"
    );
    // A replica that syncs now (full sync from the RDB) has the same data too.
    let late = primary.start_replica();
    assert_same_data(&primary, &late);
    assert_eq!(timer_passes(&late), 0);
    let mut r = replica.zrq(Backend::Module);
    assert_eq!(
        info_int(&mut r, Q, "total_enqueued"),
        info_int(&mut zrq, Q, "total_enqueued")
    );
    let p_sched = ok(&mut zrq, "schedules", &[Q]);
    assert_eq!(
        ok(&mut r, "schedules", &[Q]),
        p_sched,
        "the schedule state replicated"
    );
}

#[test]
fn a_replica_never_promotes_and_takes_over_when_promoted() {
    let primary = primary();
    let replica = primary.start_replica();
    let mut zrq = primary.zrq(Backend::Module);
    let due_soon = zrq.enqueue(Q, "t", "{}", &["DELAY", "3000"]);
    let retry = zrq.enqueue(Q, "t", "{}", &["RETRIES", "1"]);
    assert_eq!(zrq.fetch(Q, "w", 1)[0]["id"], retry);
    assert_eq!(
        show(&ok(&mut zrq, "fail", &[Q, &retry, "e", "RETRYIN", "3000"])),
        "retrying"
    );
    int(&mut zrq, "schedule", &[Q, "s", "EVERY", "3000", "t", "{}"]);
    wait_replica_caught_up(&primary, &replica);
    let due: i64 = lifecycle_support::field(&mut zrq, Q, &due_soon, "run_at")
        .parse()
        .unwrap();
    // The primary goes away before anything is due.
    drop(zrq);
    drop(primary);
    let killed_at = now_ms();
    assert!(
        killed_at < due,
        "the primary is gone {} ms before the due time",
        due - killed_at
    );
    let mut r = replica.zrq(Backend::Module);
    std::thread::sleep(Duration::from_millis(
        u64::try_from(due + 1200 - now_ms()).unwrap_or(0),
    ));
    assert_eq!(
        r.state(Q, &due_soon).as_deref(),
        Some("scheduled"),
        "not promoted on a replica"
    );
    assert_eq!(r.state(Q, &retry).as_deref(), Some("retrying"));
    assert_eq!(
        info_int(&mut r, Q, "total_enqueued"),
        2,
        "no schedule tick on a replica"
    );
    assert_eq!(timer_passes(&replica), 0);
    // Writes are refused on a replica anyway.
    let err = r
        .call::<redis::Value>("enqueue", &[Q, "t", "{}"])
        .expect_err("read-only replica");
    assert_eq!(err.code(), Some("READONLY"), "{err}");

    // Failover: the promoted replica rebuilds its plan and promotes what is overdue.
    let _: () = redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query(&mut replica.conn())
        .expect("REPLICAOF NO ONE");
    wait_until(Duration::from_secs(5), "promotion after failover", || {
        r.state(Q, &due_soon).as_deref() == Some("pending")
            && r.state(Q, &retry).as_deref() == Some("pending")
    });
    wait_until(
        Duration::from_secs(5),
        "the schedule ticks after failover",
        || info_int(&mut r, Q, "total_enqueued") >= 3,
    );
    assert!(timer_passes(&replica) >= 1);
    let got = r.fetch(Q, "w", 10);
    assert!(got.len() >= 3, "{got:?}");
}

#[test]
fn retention_goes_on_after_a_failover() {
    // A replica promoted to primary takes over retention: finished jobs of the old primary leave
    // the completed index when their retention ends, as their records do. KEEP is longer than
    // the failover plus the first timer pass (at most 1 s), so that pass cannot trim it itself.
    let primary = primary();
    let replica = primary.start_replica();
    let mut zrq = primary.zrq(Backend::Module);
    let done = zrq.enqueue(Q, "t", "{}", &["KEEP", "3000"]);
    zrq.fetch(Q, "w", 1);
    assert_eq!(int(&mut zrq, "ack", &[Q, &done]), 1);
    wait_replica_caught_up(&primary, &replica);
    drop(zrq);
    drop(primary);
    let _: () = redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query(&mut replica.conn())
        .expect("REPLICAOF NO ONE");
    let mut r = replica.zrq(Backend::Module);
    wait_until(Duration::from_secs(5), "the record expires", || {
        r.state(Q, &done).is_none()
    });
    let mut left = 1;
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(5) && left != 0 {
        left = info_int(&mut r, Q, "completed");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        left, 0,
        "ZRQ.INFO completed still counts the expired job 5 s after its retention ended"
    );
}

#[test]
fn deliveries_to_workers_woken_by_the_timer_replicate() {
    // A blocked FETCH served after a timer promotion (or a RESUME) writes from the unblock
    // callback: those writes must reach the replica like any other.
    let primary = primary();
    let replica = primary.start_replica();
    let mut zrq = primary.zrq(Backend::Module);
    let retry = zrq.enqueue(Q, "t", "{}", &["RETRIES", "1"]);
    assert_eq!(zrq.fetch(Q, "w9", 1)[0]["id"], retry);
    ok(&mut zrq, "fail", &[Q, &retry, "e", "RETRYIN", "400"]);
    let (tx, rx) = std::sync::mpsc::channel();
    let workers: Vec<_> = (0..3)
        .map(|i| {
            let mut conn = primary.conn();
            let tx = tx.clone();
            std::thread::spawn(move || {
                let reply: redis::Value = redis::cmd("ZRQ.FETCH")
                    .arg(Q)
                    .arg(format!("w{i}"))
                    .arg("BLOCK")
                    .arg(10_000)
                    .query(&mut conn)
                    .expect("FETCH");
                let _ = tx.send(zrq_tests::jobs(reply));
            })
        })
        .collect();
    primary.wait_for(|c| {
        let list: String = redis::cmd("CLIENT").arg("LIST").query(c).unwrap();
        list.lines().filter(|l| l.contains(" flags=b ")).count() == 3
    });
    zrq.enqueue(Q, "t", "{}", &["DELAY", "100"]);
    zrq.enqueue(Q, "t", "{}", &["DELAY", "150", "PRIORITY", "5"]);
    let mut got = 0;
    for _ in 0..3 {
        got += rx
            .recv_timeout(Duration::from_secs(10))
            .expect("a woken worker")
            .len();
    }
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(got, 3);
    assert_eq!(info_int(&mut zrq, Q, "active"), 3);
    assert_same_data(&primary, &replica);
    let mut r = replica.zrq(Backend::Module);
    assert_eq!(info_int(&mut r, Q, "active"), 3);
    let stream9 = format!("zrq:{{{Q}}}:stream:5");
    let (p, rr): (redis::Value, redis::Value) = (
        redis::cmd("XPENDING")
            .arg(&stream9)
            .arg("zrq")
            .query(&mut primary.conn())
            .unwrap(),
        redis::cmd("XPENDING")
            .arg(&stream9)
            .arg("zrq")
            .query(&mut replica.conn())
            .unwrap(),
    );
    assert_eq!(p, rr, "the priority-5 stream's pending entries");
}

//! Replication: a replica with the module loaded ends with exactly the primary's data after a
//! workload of every command, and never recomputes ids or timestamps.

use crate::support;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use support::{info_field, job_ids, key_digests, record, stream_state, wait_replica_caught_up};
use zrq_tests::redis::{self, Value};
use zrq_tests::{conformance, jobs, Backend, Options, Server};

const Q: &str = "rq";

/// A primary that starts a full sync at once (Redis 7 waits 5 s for more replicas by default).
/// The workload's short leases are taken over by RECLAIM on both backends: the module's timer
/// leaves them alone.
fn primary(backend: Backend) -> Server {
    let mut config = vec![("repl-diskless-sync-delay".into(), "0".into())];
    if backend == Backend::Module {
        config.push(("zrq.expire-leases".into(), "no".into()));
    }
    backend.server_with(Options {
        config,
        ..Options::default()
    })
}

fn assert_same_data(primary: &Server, replica: &Server) {
    wait_replica_caught_up(primary, replica);
    let (p, r) = (primary.digest(), replica.digest());
    if p != r {
        let (pk, rk) = (key_digests(primary), key_digests(replica));
        let differ: Vec<&String> = pk
            .iter()
            .filter(|entry| !rk.contains(entry))
            .map(|(key, _)| key)
            .chain(
                rk.iter()
                    .filter(|entry| !pk.contains(entry))
                    .map(|(key, _)| key),
            )
            .collect();
        panic!("DEBUG DIGEST differs: primary {p}, replica {r}; keys that differ: {differ:?}");
    }
    assert_ne!(p, "0".repeat(40), "the workload wrote nothing");
    // Field by field: ids and timestamps were copied, not recomputed.
    let (mut pc, mut rc) = (primary.conn(), replica.conn());
    let ids = job_ids(&mut pc, Q);
    assert_eq!(ids, job_ids(&mut rc, Q));
    for id in &ids {
        let (pj, rj) = (record(&mut pc, Q, id), record(&mut rc, Q, id));
        assert_eq!(pj, rj, "job {id}");
        // (`entry` is only there while the job is in its stream; the id is the key's, not a
        // field of the compact record, and so is `created_at` for a generated id.)
        for field in ["task", "state"] {
            assert!(pj.contains_key(field), "job {id} lacks {field}: {pj:?}");
        }
    }
    // DEBUG DIGEST on Redis 7.0 leaves out consumer groups: compare them explicitly.
    assert_eq!(
        stream_state(&mut pc, Q),
        stream_state(&mut rc, Q),
        "the stream or its consumer group differs between primary and replica"
    );
}

fn replica_ends_with_the_primarys_data(backend: Backend) {
    let primary = primary(backend);
    let replica = primary.start_replica();
    let mut zrq = primary.zrq(backend);

    // Enqueue with generated and given ids, options.
    let generated: Vec<String> = (0..5)
        .map(|i| zrq.enqueue(Q, "t", &format!("{{\"i\":{i}}}"), &[]))
        .collect();
    let given = zrq.enqueue(Q, "t", "{}", &["ID", "given-1", "RETRIES", "5"]);
    assert_eq!(given, "given-1");
    assert_eq!(zrq.enqueue(Q, "t", "{}", &["ID", "given-1"]), given);

    // Fetch and complete with a result.
    let fetched = zrq.fetch(Q, "w1", 3);
    assert_eq!(fetched.len(), 3);
    for job in &fetched[..2] {
        let acked: i64 = zrq
            .call("ack", &[Q, &job["id"], "RESULT", "{\"ok\":1}"])
            .expect("ACK");
        assert_eq!(acked, 1);
    }
    // Fetch them all: the remaining jobs go to w2.
    let rest = zrq.fetch(Q, "w2", 10);
    assert_eq!(rest.len(), 3);

    // A short lease reclaimed, and a job driven to dead.
    let retried = zrq.enqueue(
        Q,
        "t",
        "{}",
        &["ID", "retried", "RETRIES", "1", "TIMEOUT", "30"],
    );
    let doomed = zrq.enqueue(
        Q,
        "t",
        "{}",
        &["ID", "doomed", "RETRIES", "0", "TIMEOUT", "30"],
    );
    assert_eq!(zrq.fetch(Q, "w3", 2).len(), 2);
    thread::sleep(Duration::from_millis(60));
    let reclaimed = jobs(zrq.call("reclaim", &[Q, "w4"]).expect("RECLAIM"));
    let ids: Vec<&str> = reclaimed.iter().map(|j| j["id"].as_str()).collect();
    assert_eq!(ids, [retried.as_str()]);
    assert_eq!(zrq.state(Q, &doomed).as_deref(), Some("dead"));
    let acked: i64 = zrq.call("ack", &[Q, &retried]).expect("ACK");
    assert_eq!(acked, 1);

    // Reads replicate nothing but must not break anything either.
    for id in &generated {
        assert!(zrq.job(Q, id).is_some());
        assert!(zrq.state(Q, id).is_some());
    }

    if backend == Backend::Module {
        // A FETCH blocked on the primary is served by a later ENQUEUE: the reply callback's
        // writes must reach the replica too.
        let mut conn = primary.conn();
        let (tx, rx) = mpsc::channel();
        let waiter = thread::spawn(move || {
            let reply: Value = redis::cmd("ZRQ.FETCH")
                .arg(Q)
                .arg("blocked")
                .arg("BLOCK")
                .arg(0)
                .query(&mut conn)
                .expect("blocked FETCH");
            let _ = tx.send(jobs(reply));
        });
        primary.wait_for(|conn| {
            let list: String = redis::cmd("CLIENT")
                .arg("LIST")
                .query(conn)
                .unwrap_or_default();
            list.contains("cmd=zrq.fetch")
        });
        let late = zrq.enqueue(Q, "t", "{\"late\":true}", &[]);
        let served = rx.recv_timeout(Duration::from_secs(10)).expect("served");
        waiter.join().expect("waiter");
        assert_eq!(served.len(), 1);
        assert_eq!(served[0]["id"], late);
        assert_eq!(served[0]["consumer"], "blocked");
        // Its state on the replica, read directly.
        wait_replica_caught_up(&primary, &replica);
        let job = record(&mut replica.conn(), Q, &late);
        assert_eq!(job.get("state").map(String::as_str), Some("active"));
        assert_eq!(job.get("consumer").map(String::as_str), Some("blocked"));
        assert_eq!(
            job.get("started_at"),
            Some(&served[0]["started_at"]),
            "started_at recomputed on the replica"
        );
    }

    // Let a moment pass so a recomputed clock would show in the timestamps.
    thread::sleep(Duration::from_millis(20));
    assert_same_data(&primary, &replica);

    // The replica refuses writes (it must not run jobs of its own) but serves reads.
    let mut on_replica = replica.zrq(backend);
    let err = on_replica
        .call::<Value>("enqueue", &[Q, "t", "{}"])
        .expect_err("a replica refuses ENQUEUE");
    assert_eq!(err.code(), Some("READONLY"), "{err:?}");
    assert_eq!(on_replica.state(Q, &doomed).as_deref(), Some("dead"));
    assert_eq!(
        info_field(&mut replica.conn(), "replication", "role").as_deref(),
        Some("slave")
    );
}

fn a_replica_attached_later_gets_the_same_data(backend: Backend) {
    let primary = primary(backend);
    let mut zrq = primary.zrq(backend);
    for i in 0..20 {
        zrq.enqueue(Q, "t", &format!("{{\"i\":{i}}}"), &["TIMEOUT", "40"]);
    }
    let fetched = zrq.fetch(Q, "w", 12);
    for job in &fetched[..6] {
        let _: i64 = zrq.call("ack", &[Q, &job["id"]]).expect("ACK");
    }
    // Full sync from an RDB, then the rest of the workload streams in.
    let replica = primary.start_replica();
    thread::sleep(Duration::from_millis(60));
    let reclaimed = jobs(
        zrq.call("reclaim", &[Q, "w2", "COUNT", "100"])
            .expect("RECLAIM"),
    );
    assert_eq!(reclaimed.len(), 6);
    assert_same_data(&primary, &replica);
}

conformance!(
    replica_ends_with_the_primarys_data,
    a_replica_attached_later_gets_the_same_data,
);

//! Queues written by an older zrq keep working (both backends).
//!
//! Before FETCH delivered without acknowledgement, a running job stayed in its stream and in the
//! consumer group's pending-entries list until its ACK. Such a queue is built here with the
//! commands that older FETCH ran (`XREADGROUP` without `NOACK`, then the record's HSET and the
//! lease's ZADD, exactly as it wrote them: the record a hash, the format of the time), and then
//! driven with today's commands: the old deliveries end through every way out (ACK before and
//! after a FETCH trimmed their entries, FAIL, a lease taken over by RECLAIM), INFO and LIST count
//! and list the pending jobs right at every step, the audit holds throughout, and the pending
//! list ends empty.

use crate::support;

use std::collections::BTreeSet;

use support::lifecycle::{info_int, list_all, now_ms};
use support::pending_entries;
use zrq_tests::audit::assert_consistent;
use zrq_tests::redis::{self, Connection, Value};
use zrq_tests::{conformance, Backend, Server, Zrq};

const Q: &str = "old";
const STREAM: &str = "zrq:{old}:stream";

/// What an older zrq's `FETCH <queue> <consumer> COUNT <count>` wrote: the entries delivered to
/// `consumer` into the group's pending list, each job's record made active with the lease token
/// `<entry>:<attempt>` (its `entry` field left in place), and its lease in `active` with
/// `deadline`. Returns (job id, lease token) per delivery.
fn fetch_as_before(
    conn: &mut Connection,
    consumer: &str,
    count: usize,
    deadline: i64,
) -> Vec<(String, String)> {
    let reply: Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("zrq")
        .arg(consumer)
        .arg("COUNT")
        .arg(count)
        .arg("STREAMS")
        .arg(STREAM)
        .arg(">")
        .query(conn)
        .expect("XREADGROUP");
    let delivered: Vec<(String, Vec<(String, String)>)> = match reply {
        Value::Array(streams) => {
            let [Value::Array(stream)] = streams.as_slice() else {
                panic!("XREADGROUP reply {streams:?}")
            };
            redis::from_redis_value(stream[1].clone()).expect("entries")
        }
        other => panic!("XREADGROUP reply {other:?}"),
    };
    let mut out = Vec::new();
    for (entry, fields) in delivered {
        let id = fields[0].1.clone();
        // An older zrq's records were hashes (written field by field): this one is left as
        // such, as it wrote it, so today's commands meet the earlier format too.
        let mut lease = String::new();
        support::tamper_hash(conn, Q, &id, |record| {
            let attempt = record
                .get("attempt")
                .map_or(0, |a| a.parse::<i64>().expect("attempt"))
                + 1;
            lease = format!("{entry}:{attempt}");
            for (field, value) in [
                ("state", "active".to_string()),
                ("attempt", attempt.to_string()),
                ("consumer", consumer.to_string()),
                ("lease", lease.clone()),
                ("started_at", now_ms().to_string()),
            ] {
                record.insert(field.to_string(), value);
            }
        });
        let _: () = redis::cmd("ZADD")
            .arg(format!("zrq:{{{Q}}}:active"))
            .arg(deadline)
            .arg(&id)
            .query(conn)
            .expect("ZADD");
        out.push((id, lease));
    }
    out
}

/// INFO's pending count and LIST pending, which must agree with `want`.
fn assert_pending(zrq: &mut Zrq, want: &[&String], when: &str) {
    assert_eq!(
        info_int(zrq, Q, "pending"),
        want.len() as i64,
        "INFO pending {when}"
    );
    let listed = list_all(zrq, Q, "pending", 2);
    let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    assert_eq!(listed, want, "LIST pending {when}");
}

fn check(server: &Server, backend: Backend, ids: &BTreeSet<String>) {
    assert_consistent(&mut server.conn(), backend, Q, Some(ids));
}

fn jobs_delivered_by_an_older_zrq_end_and_leave_the_pending_list(backend: Backend) {
    let server = backend.server();
    server.leave_leases_to_reclaim();
    let mut zrq = server.zrq(backend);
    let mut conn = server.conn();
    // Own ids: jobs an older zrq wrote have records and reference entries.
    let ids: Vec<String> = (0..7)
        .map(|n| {
            let id = format!("old-{n}");
            zrq.enqueue(
                Q,
                "t",
                "{}",
                &["TIMEOUT", "3600000", "RETRIES", "2", "ID", &id],
            )
        })
        .collect();
    let all: BTreeSet<String> = ids.iter().cloned().collect();
    let hour = now_ms() + 3_600_000;
    // Four running jobs as an older zrq left them; the last one's lease has expired.
    let mut old = fetch_as_before(&mut conn, "old-worker", 3, hour);
    old.extend(fetch_as_before(&mut conn, "old-worker", 1, 1));
    assert_eq!(old.len(), 4);
    assert_eq!(pending_entries(&mut conn, STREAM).len(), 4);
    check(&server, backend, &all);
    assert_pending(
        &mut zrq,
        &[&ids[4], &ids[5], &ids[6]],
        "after the old FETCH",
    );

    // ACK while the old entries are still in the stream: acknowledged and deleted.
    let acked: i64 = zrq
        .call("ack", &[Q, &old[0].0, "LEASE", &old[0].1])
        .expect("ACK");
    assert_eq!(acked, 1);
    assert_eq!(pending_entries(&mut conn, STREAM).len(), 3);
    check(&server, backend, &all);
    assert_pending(
        &mut zrq,
        &[&ids[4], &ids[5], &ids[6]],
        "after the first ACK",
    );

    // Today's FETCH trims what it delivers, and with it the old entries before it; they stay in
    // the pending list until their jobs end.
    let fetched = zrq.fetch(Q, "new-worker", 1);
    assert_eq!(fetched[0]["id"], ids[4]);
    let length: i64 = redis::cmd("XLEN").arg(STREAM).query(&mut conn).unwrap();
    assert_eq!(
        length, 2,
        "only the two undelivered jobs are left in the stream"
    );
    assert_eq!(pending_entries(&mut conn, STREAM).len(), 3);
    check(&server, backend, &all);
    assert_pending(&mut zrq, &[&ids[5], &ids[6]], "after today's FETCH");

    // The ways out of a running job: ACK, FAIL (a retry), a lease taken over by RECLAIM.
    let acked: i64 = zrq
        .call("ack", &[Q, &old[1].0, "LEASE", &old[1].1])
        .expect("ACK");
    assert_eq!(acked, 1);
    let failed: String = zrq
        .call("fail", &[Q, &old[2].0, "boom", "LEASE", &old[2].1])
        .expect("FAIL");
    assert_eq!(failed, "retrying");
    let reclaimed = zrq_tests::jobs(zrq.call("reclaim", &[Q, "janitor"]).expect("RECLAIM"));
    assert_eq!(reclaimed.len(), 1);
    assert_eq!(reclaimed[0]["id"], old[3].0);
    let token = &reclaimed[0]["lease"];
    let entry = old[3].1.rsplit_once(':').map(|(e, _)| e).unwrap();
    assert_eq!(*token, format!("{entry}:2"), "the lease keeps its entry");
    assert_eq!(
        pending_entries(&mut conn, STREAM),
        Vec::new(),
        "every old delivery left the pending list"
    );
    check(&server, backend, &all);
    let acked: i64 = zrq
        .call("ack", &[Q, &old[3].0, "LEASE", token])
        .expect("ACK");
    assert_eq!(acked, 1);
    let acked: i64 = zrq
        .call("ack", &[Q, &ids[4], "LEASE", &fetched[0]["lease"]])
        .expect("ACK");
    assert_eq!(acked, 1);

    // The rest drains as on any queue.
    for job in zrq.fetch(Q, "new-worker", 10) {
        let acked: i64 = zrq
            .call("ack", &[Q, &job["id"], "LEASE", &job["lease"]])
            .expect("ACK");
        assert_eq!(acked, 1);
    }
    let length: i64 = redis::cmd("XLEN").arg(STREAM).query(&mut conn).unwrap();
    assert_eq!(length, 0);
    let report = assert_consistent(&mut server.conn(), backend, Q, Some(&all));
    assert_eq!(report.info("completed"), 6);
    assert_eq!(report.info("retrying") + report.info("pending"), 1);
    assert_pending(
        &mut zrq,
        &if report.info("pending") == 1 {
            vec![&old[2].0]
        } else {
            vec![]
        },
        "at the end",
    );
}

conformance!(jobs_delivered_by_an_older_zrq_end_and_leave_the_pending_list);

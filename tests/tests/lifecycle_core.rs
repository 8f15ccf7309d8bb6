//! The core commands' behaviour: ENQUEUE, FETCH, ACK, STATE, JOB, RECLAIM.

use zrq_tests::{conformance, redis, Backend};

fn enqueue_fetch_ack_round_trip(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let id = zrq.enqueue("default", "send_email", r#"{"to":"a@b.c"}"#, &[]);
    // A plain job's id is its stream entry's id.
    assert!(
        zrq_core::job::inline_entry(&id) == Some((0, id.as_str())),
        "a stream entry id: {id}"
    );
    assert_eq!(zrq.state("default", &id).as_deref(), Some("pending"));

    let jobs = zrq.fetch("default", "w1", 10);
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!(job["id"], id);
    assert_eq!(job["task"], "send_email");
    assert_eq!(job["payload"], r#"{"to":"a@b.c"}"#);
    assert_eq!(job["attempt"], "1");
    assert_eq!(job["state"], "active");
    assert_eq!(job["consumer"], "w1");
    assert_eq!(zrq.state("default", &id).as_deref(), Some("active"));

    let acked: i64 = zrq
        .call("ack", &["default", &id, "RESULT", "[1,2]"])
        .unwrap();
    assert_eq!(acked, 1);
    let again: i64 = zrq.call("ack", &["default", &id]).unwrap();
    assert_eq!(again, 0, "a second ACK finds the job finished");
    let job = zrq.job("default", &id).unwrap();
    assert_eq!(job["state"], "completed");
    assert_eq!(job["result"], "[1,2]");
    assert!(job.contains_key("finished_at"));

    // The entry left the stream and the pending list: memory stays flat on a busy queue.
    let mut conn = server.conn();
    let len: i64 = redis::cmd("XLEN")
        .arg("zrq:{default}:stream")
        .query(&mut conn)
        .unwrap();
    assert_eq!(len, 0);
    let pending: redis::Value = redis::cmd("XPENDING")
        .arg("zrq:{default}:stream")
        .arg("zrq")
        .query(&mut conn)
        .unwrap();
    assert!(matches!(pending, redis::Value::Array(ref v) if v[0] == redis::Value::Int(0)));
}

fn fetch_delivers_oldest_first_up_to_count(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let ids: Vec<String> = (0..5)
        .map(|i| zrq.enqueue("q", "t", &format!("{{\"n\":{i}}}"), &[]))
        .collect();
    let first = zrq.fetch("q", "w", 3);
    let second = zrq.fetch("q", "w", 3);
    let third = zrq.fetch("q", "w", 3);
    let got: Vec<String> = first
        .iter()
        .chain(&second)
        .map(|j| j["id"].clone())
        .collect();
    assert_eq!(got, ids);
    assert_eq!((first.len(), second.len(), third.len()), (3, 2, 0));
}

fn fetch_on_unknown_queue_is_empty_and_writes_nothing(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let before = server.snapshot();
    assert!(zrq.fetch("nowhere", "w", 5).is_empty());
    assert_eq!(server.snapshot(), before);
}

fn enqueue_with_existing_id_adds_nothing(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let id = zrq.enqueue("q", "t", "{}", &["ID", "order-42"]);
    assert_eq!(id, "order-42");
    let before = server.snapshot();
    let again = zrq.enqueue("q", "other", "[]", &["ID", "order-42"]);
    assert_eq!(again, "order-42");
    assert_eq!(server.snapshot(), before);
    assert_eq!(zrq.fetch("q", "w", 10).len(), 1);
}

fn enqueue_options_are_recorded(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let id = zrq.enqueue("q", "t", "{}", &["RETRIES", "0", "TIMEOUT", "1500"]);
    let job = zrq.job("q", &id).unwrap();
    assert_eq!(job["max_attempts"], "1");
    assert_eq!(job["timeout"], "1500");
    assert_eq!(job["attempt"], "0");
    let id = zrq.enqueue("q", "t", "{}", &[]);
    let job = zrq.job("q", &id).unwrap();
    assert_eq!(job["max_attempts"], "4", "default RETRIES is 3");
    assert_eq!(job["timeout"], "30000", "default TIMEOUT is 30000");
}

fn unknown_jobs(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    assert_eq!(zrq.state("q", "nope"), None);
    assert_eq!(zrq.job("q", "nope"), None);
    let acked: i64 = zrq.call("ack", &["q", "nope"]).unwrap();
    assert_eq!(acked, 0);
}

fn ack_of_a_pending_job_is_refused(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let id = zrq.enqueue("q", "t", "{}", &[]);
    let acked: i64 = zrq.call("ack", &["q", &id]).unwrap();
    assert_eq!(acked, 0);
    assert_eq!(zrq.state("q", &id).as_deref(), Some("pending"));
}

fn reclaim_takes_over_expired_leases_then_kills(backend: Backend) {
    let server = backend.server();
    server.leave_leases_to_reclaim();
    let mut zrq = server.zrq(backend);
    let id = zrq.enqueue("q", "t", "{}", &["RETRIES", "1", "TIMEOUT", "50"]);
    assert_eq!(zrq.fetch("q", "dead-worker", 1).len(), 1);
    let early: redis::Value = zrq.call("reclaim", &["q", "w2"]).unwrap();
    assert_eq!(
        zrq_tests::jobs(early).len(),
        0,
        "the lease has not expired yet"
    );

    std::thread::sleep(std::time::Duration::from_millis(80));
    let reclaimed = zrq_tests::jobs(zrq.call("reclaim", &["q", "w2"]).unwrap());
    assert_eq!(reclaimed.len(), 1);
    assert_eq!(reclaimed[0]["id"], id);
    assert_eq!(reclaimed[0]["consumer"], "w2");
    assert_eq!(reclaimed[0]["attempt"], "2");
    assert!(reclaimed[0]["error"].contains("lease expired"));

    std::thread::sleep(std::time::Duration::from_millis(80));
    let none = zrq_tests::jobs(zrq.call("reclaim", &["q", "w3"]).unwrap());
    assert!(none.is_empty(), "the last attempt's expiry kills the job");
    assert_eq!(zrq.state("q", &id).as_deref(), Some("dead"));
    let acked: i64 = zrq.call("ack", &["q", &id]).unwrap();
    assert_eq!(acked, 0, "a dead job cannot be acknowledged");
}

fn replies_are_maps_in_resp3(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let id = zrq.enqueue("q", "t", "{}", &[]);
    let mut resp3 = zrq_tests::Zrq {
        conn: server.conn_resp3(),
        backend,
    };
    let value: redis::Value = resp3.call("job", &["q", &id]).unwrap();
    let redis::Value::Map(pairs) = value else {
        panic!("RESP3 reply is not a map: {value:?}");
    };
    assert!(pairs.contains(&(
        redis::Value::BulkString(b"attempt".to_vec()),
        redis::Value::Int(0)
    )));
}

conformance!(
    enqueue_fetch_ack_round_trip,
    fetch_delivers_oldest_first_up_to_count,
    fetch_on_unknown_queue_is_empty_and_writes_nothing,
    enqueue_with_existing_id_adds_nothing,
    enqueue_options_are_recorded,
    unknown_jobs,
    ack_of_a_pending_job_is_refused,
    reclaim_takes_over_expired_leases_then_kills,
    replies_are_maps_in_resp3,
);

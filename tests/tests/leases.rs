//! Fenced leases (issue #11): every delivery carries a lease token; ACK, FAIL, TOUCH and RELEASE
//! with a token that is not the job's current one change nothing and reply "not active", so a
//! worker that lost its lease cannot complete, fail or extend another worker's attempt. RELEASE
//! gives a job back without using up an attempt. Both backends, same replies.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use zrq_tests::redis::Value;
use zrq_tests::{conformance, Backend, JobMap, Zrq};

const Q: &str = "q";

/// Takes over job `id` once its lease has expired, as a second worker would on either backend:
/// RECLAIM (the Lua backend's way), or FETCH once the module's timer has put it back to pending.
fn take_over(zrq: &mut Zrq, id: &str, consumer: &str) -> JobMap {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let mut got = zrq_tests::jobs(zrq.call("reclaim", &[Q, consumer]).expect("RECLAIM"));
        got.extend(zrq.fetch(Q, consumer, 1));
        if let Some(job) = got.into_iter().find(|j| j["id"] == id) {
            return job;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("job {id} was not taken over within 5 s");
}

fn error_text(err: &zrq_tests::redis::RedisError) -> String {
    format!(
        "{} {}",
        err.code().unwrap_or("?"),
        err.detail().unwrap_or("")
    )
}

fn int(zrq: &mut Zrq, command: &str, args: &[&str]) -> i64 {
    zrq.call(command, args)
        .unwrap_or_else(|e| panic!("{command}: {e}"))
}

fn reply(zrq: &mut Zrq, command: &str, args: &[&str]) -> Value {
    zrq.call(command, args)
        .unwrap_or_else(|e| panic!("{command}: {e}"))
}

/// The issue's scenario: worker A's lease expires while it is stalled, worker B takes the job over;
/// A's TOUCH and ACK are refused and the record keeps B's attempt, consumer and result.
fn a_stale_worker_cannot_touch_or_ack_a_job_taken_over(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let id = zrq.enqueue(Q, "t", "{}", &["RETRIES", "3", "TIMEOUT", "200"]);
    let a = zrq.fetch(Q, "worker-a", 1).remove(0);
    assert!(
        !a["lease"].is_empty(),
        "FETCH hands out a lease token: {a:?}"
    );

    std::thread::sleep(Duration::from_millis(300));
    let b = take_over(&mut zrq, &id, "worker-b");
    assert_eq!(b["attempt"], "2");
    assert_ne!(b["lease"], a["lease"], "a new delivery has a new token");

    // Everything A says is refused and changes nothing.
    let before = server.snapshot();
    let lease_a = a["lease"].as_str();
    assert_eq!(int(&mut zrq, "touch", &[Q, &id, "LEASE", lease_a]), 0);
    assert_eq!(
        int(
            &mut zrq,
            "ack",
            &[Q, &id, "RESULT", r#""A""#, "LEASE", lease_a]
        ),
        0
    );
    assert_eq!(
        reply(&mut zrq, "fail", &[Q, &id, "A failed", "LEASE", lease_a]),
        Value::Nil
    );
    assert_eq!(int(&mut zrq, "release", &[Q, &id, "LEASE", lease_a]), 0);
    assert_eq!(
        server.snapshot(),
        before,
        "a stale worker changed the keyspace"
    );

    // B's lease holds.
    let lease_b = b["lease"].as_str();
    assert_eq!(int(&mut zrq, "touch", &[Q, &id, "LEASE", lease_b]), 1);
    assert_eq!(
        int(
            &mut zrq,
            "ack",
            &[Q, &id, "RESULT", r#""B""#, "LEASE", lease_b]
        ),
        1
    );
    let record = zrq.job(Q, &id).expect("job");
    assert_eq!(record["state"], "completed");
    assert_eq!(record["attempt"], "2");
    assert_eq!(record["consumer"], "worker-b");
    assert_eq!(record["result"], r#""B""#);
}

/// With a token that is not the current one, every command replies as for a job that is not
/// active and writes nothing; without LEASE (an operator's override) they act as before.
fn a_wrong_lease_changes_nothing_and_no_lease_overrides(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let id = zrq.enqueue(Q, "t", "{}", &[]);
    let job = zrq.fetch(Q, "w", 1).remove(0);
    let cases: &[(&str, &[&str], Value)] = &[
        ("touch", &["LEASE", "1-0:1"], Value::Int(0)),
        ("touch", &["PROGRESS", "5", "LEASE", "1-0:1"], Value::Int(0)),
        ("ack", &["LEASE", "nope"], Value::Int(0)),
        ("ack", &["RESULT", "1", "LEASE", "nope"], Value::Int(0)),
        ("fail", &["boom", "LEASE", "nope"], Value::Nil),
        (
            "fail",
            &["boom", "RETRYIN", "5", "LEASE", "nope"],
            Value::Nil,
        ),
        ("release", &["LEASE", "nope"], Value::Int(0)),
    ];
    let before = server.snapshot();
    for (command, options, want) in cases {
        let mut args = vec![Q, id.as_str()];
        args.extend_from_slice(options);
        assert_eq!(
            reply(&mut zrq, command, &args),
            *want,
            "{command} {options:?}"
        );
    }
    assert_eq!(
        server.snapshot(),
        before,
        "a wrong lease changed the keyspace"
    );

    // The right token, in any letter case of the option name, is accepted.
    let lease = job["lease"].as_str();
    assert_eq!(int(&mut zrq, "touch", &[Q, &id, "lease", lease]), 1);
    // Without LEASE: the operator's override acts on the current delivery.
    assert_eq!(int(&mut zrq, "ack", &[Q, &id, "RESULT", "7"]), 1);
    assert_eq!(zrq.state(Q, &id).as_deref(), Some("completed"));
    assert_eq!(
        int(&mut zrq, "ack", &[Q, &id, "LEASE", lease]),
        0,
        "a finished job's lease is over"
    );
}

/// A token never repeats for a job: not across retries, releases, expiries or a REQUEUE that
/// resets its attempts.
fn lease_tokens_never_repeat_for_a_job(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let id = zrq.enqueue(Q, "t", "{}", &["RETRIES", "1", "TIMEOUT", "100"]);
    let mut tokens = Vec::new();
    let deliver = |zrq: &mut Zrq, tokens: &mut Vec<String>| -> JobMap {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(job) = zrq.fetch(Q, "w", 1).pop() {
                tokens.push(job["lease"].clone());
                return job;
            }
            assert!(Instant::now() < deadline, "no delivery within 5 s");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let first = deliver(&mut zrq, &mut tokens);
    assert_eq!(
        reply(
            &mut zrq,
            "fail",
            &[Q, &id, "x", "RETRYIN", "0", "LEASE", &first["lease"]]
        ),
        Value::BulkString(b"retrying".to_vec())
    );
    let second = deliver(&mut zrq, &mut tokens);
    assert_eq!(
        int(&mut zrq, "release", &[Q, &id, "LEASE", &second["lease"]]),
        1
    );
    let third = deliver(&mut zrq, &mut tokens);
    assert_eq!(
        third["attempt"], second["attempt"],
        "a release does not use an attempt"
    );
    assert_eq!(
        reply(&mut zrq, "fail", &[Q, &id, "x", "LEASE", &third["lease"]]),
        Value::BulkString(b"dead".to_vec())
    );
    assert_eq!(int(&mut zrq, "requeue", &[Q, &id]), 1);
    let fourth = deliver(&mut zrq, &mut tokens);
    assert_eq!(fourth["attempt"], "1", "REQUEUE resets the attempts");
    std::thread::sleep(Duration::from_millis(150));
    take_over(&mut zrq, &id, "w2");
    let record = zrq.job(Q, &id).expect("job");
    tokens.push(record["lease"].clone());
    let distinct: BTreeSet<&String> = tokens.iter().collect();
    assert_eq!(distinct.len(), tokens.len(), "a token repeated: {tokens:?}");
}

/// RELEASE puts an active job back to pending at once, and the attempt does not count: a job
/// without retries runs again in full.
fn release_gives_a_job_back_without_using_an_attempt(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let id = zrq.enqueue(Q, "t", "{}", &["RETRIES", "0"]);
    assert_eq!(
        int(&mut zrq, "release", &[Q, &id]),
        0,
        "a pending job is not held"
    );
    let job = zrq.fetch(Q, "w", 1).remove(0);
    assert_eq!(
        int(&mut zrq, "release", &[Q, &id, "LEASE", &job["lease"]]),
        1
    );
    let record = zrq.job(Q, &id).expect("job");
    assert_eq!(record["state"], "pending");
    assert_eq!(record["attempt"], "0");
    let info = zrq_tests::map(zrq.call("info", &[Q]).expect("INFO"));
    assert_eq!(info["total_failed"], "0", "a release is not a failure");
    let again = zrq.fetch(Q, "w2", 1).remove(0);
    assert_eq!(again["attempt"], "1");
    assert_eq!(int(&mut zrq, "ack", &[Q, &id, "LEASE", &again["lease"]]), 1);

    // A job whose cancellation was requested ends cancelled when given back.
    let id = zrq.enqueue(Q, "t", "{}", &[]);
    let job = zrq.fetch(Q, "w", 1).remove(0);
    assert_eq!(int(&mut zrq, "cancel", &[Q, &id]), 2);
    assert_eq!(
        int(&mut zrq, "release", &[Q, &id, "LEASE", &job["lease"]]),
        -1
    );
    assert_eq!(zrq.state(Q, &id).as_deref(), Some("cancelled"));
}

/// LEASE takes a name-like token; anything else is refused before anything is written.
fn bad_lease_tokens_are_refused(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let id = zrq.enqueue(Q, "t", "{}", &[]);
    zrq.fetch(Q, "w", 1);
    let before = server.snapshot();
    for command in ["ack", "touch", "release"] {
        let err = zrq
            .call::<Value>(command, &[Q, &id, "LEASE", ""])
            .expect_err("empty token");
        assert_eq!(
            error_text(&err),
            "ERR LEASE must be 1 to 200 printable ASCII characters without spaces, got ''",
            "{command}"
        );
        let err = zrq
            .call::<Value>(command, &[Q, &id, "LEASE"])
            .expect_err("no token");
        assert_eq!(
            error_text(&err),
            "ERR option LEASE needs a value",
            "{command}"
        );
    }
    assert_eq!(server.snapshot(), before);
}

conformance!(
    a_stale_worker_cannot_touch_or_ack_a_job_taken_over,
    a_wrong_lease_changes_nothing_and_no_lease_overrides,
    lease_tokens_never_repeat_for_a_job,
    release_gives_a_job_back_without_using_an_attempt,
    bad_lease_tokens_are_refused,
);

fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(since.as_millis()).expect("ms fit in i64")
}

/// How late after a lease's deadline the server may act and still count as "within
/// milliseconds": generous, for a loaded test machine.
const TIMER_SLACK_MS: i64 = 400;

/// A worker vanishes: nobody calls RECLAIM, yet the module's timer puts its job back to pending
/// right after the lease's deadline (a failed attempt), which wakes a worker blocked in FETCH; when
/// the last attempt's lease expires too, the job dies and a `RESULT … BLOCK` waiter wakes. The
/// replica, fed the timer's effects, ends with the same data.
#[test]
fn the_module_handles_expired_leases_by_itself_and_wakes_waiters() {
    let server = Backend::Module.server();
    let replica = server.start_replica();
    let mut zrq = server.zrq(Backend::Module);
    let id = zrq.enqueue(Q, "t", "{}", &["RETRIES", "1", "TIMEOUT", "300"]);
    let first = zrq.fetch(Q, "vanished", 1).remove(0);
    let deadline: i64 = first["started_at"].parse::<i64>().expect("started_at") + 300;

    let mut blocked = server.zrq(Backend::Module);
    let waiter = std::thread::spawn(move || {
        let reply: Value = blocked
            .call("fetch", &[Q, "w2", "BLOCK", "5000"])
            .expect("FETCH BLOCK");
        (zrq_tests::jobs(reply), now_ms())
    });
    let (got, woke) = waiter.join().expect("blocked FETCH");
    assert_eq!(got.len(), 1, "the blocked FETCH got the job back");
    let second = &got[0];
    assert_eq!(second["id"], id);
    assert_eq!(second["attempt"], "2");
    assert_eq!(
        second["error"],
        "lease expired after 300 ms (attempt 1 of 2, consumer vanished)"
    );
    assert!(
        (deadline..=deadline + TIMER_SLACK_MS).contains(&woke),
        "woken {} ms after the lease's deadline",
        woke - deadline
    );
    let info = zrq_tests::map(zrq.call("info", &[Q]).expect("INFO"));
    assert_eq!(
        info["total_failed"], "1",
        "an expired lease is a failed attempt"
    );

    // The last attempt's lease runs out as well: the job dies and its waiter wakes.
    let deadline: i64 = second["started_at"].parse::<i64>().expect("started_at") + 300;
    let mut waiting = server.zrq(Backend::Module);
    let job = id.clone();
    let waiter = std::thread::spawn(move || {
        let reply: Value = waiting
            .call("result", &[Q, &job, "BLOCK", "5000"])
            .expect("RESULT BLOCK");
        (reply, now_ms())
    });
    let (outcome, woke) = waiter.join().expect("blocked RESULT");
    let outcome = zrq_tests::map(outcome);
    assert_eq!(outcome["state"], "dead");
    assert_eq!(
        outcome["error"],
        "lease expired after 300 ms (attempt 2 of 2, consumer w2)"
    );
    assert!(
        (deadline..=deadline + TIMER_SLACK_MS).contains(&woke),
        "woken {} ms after the lease's deadline",
        woke - deadline
    );

    let synced: i64 = zrq_tests::redis::cmd("WAIT")
        .arg(1)
        .arg(5000)
        .query(&mut server.conn())
        .expect("WAIT");
    assert_eq!(synced, 1);
    assert_eq!(
        replica.digest(),
        server.digest(),
        "the replica has the timer's effects"
    );
}

/// `zrq.expire-leases no` leaves expired leases to RECLAIM, as on the Lua backend.
#[test]
fn expire_leases_no_leaves_expired_leases_to_reclaim() {
    let server = Backend::Module.server();
    server.leave_leases_to_reclaim();
    let mut zrq = server.zrq(Backend::Module);
    let id = zrq.enqueue(Q, "t", "{}", &["TIMEOUT", "50"]);
    zrq.fetch(Q, "w1", 1);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(zrq.state(Q, &id).as_deref(), Some("active"));
    let taken = zrq_tests::jobs(zrq.call("reclaim", &[Q, "w2"]).expect("RECLAIM"));
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0]["consumer"], "w2");
}

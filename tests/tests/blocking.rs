//! Blocking FETCH in the module: true blocking inside Redis, one job wakes one worker.
//!
//! Module backend only: the Lua backend cannot block inside Redis (its client polls), so these are
//! plain tests rather than conformance tests. Each blocked worker is a thread with its own
//! connection; the test watches the workers through `CLIENT LIST` and a channel of replies.

use std::collections::BTreeSet;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use zrq_tests::redis::{self, Value};
use zrq_tests::{jobs, Backend, JobMap, Server};

const Q: &str = "bq";

fn server() -> Server {
    Backend::Module.server()
}

/// Clients currently blocked in ZRQ.FETCH.
fn blocked_fetches(conn: &mut redis::Connection) -> usize {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query(conn)
        .expect("CLIENT LIST");
    list.lines()
        .filter(|line| line.contains(" flags=b ") && line.contains(" cmd=zrq.fetch"))
        .count()
}

fn wait_blocked(server: &Server, n: usize) {
    server.wait_for(|conn| blocked_fetches(conn) == n);
}

/// A worker thread: one blocking FETCH on its own connection; its reply goes to `tx`.
fn spawn_worker(
    server: &Server,
    consumer: &str,
    args: &[&str],
    tx: mpsc::Sender<(String, redis::RedisResult<Value>)>,
) -> thread::JoinHandle<()> {
    let mut conn = server.conn();
    let mut cmd = redis::cmd("ZRQ.FETCH");
    cmd.arg(Q).arg(consumer).arg(args);
    let consumer = consumer.to_string();
    thread::spawn(move || {
        let reply = cmd.query::<Value>(&mut conn);
        let _ = tx.send((consumer, reply));
    })
}

fn enqueue(server: &Server, n: usize, tag: &str) -> BTreeSet<String> {
    let mut zrq = server.zrq(Backend::Module);
    (0..n)
        .map(|i| zrq.enqueue(Q, "t", &format!("{{\"{tag}\":{i}}}"), &[]))
        .collect()
}

#[test]
fn each_job_wakes_exactly_one_of_several_blocked_workers() {
    let server = server();
    let (tx, rx) = mpsc::channel();
    let workers = 5;
    let handles: Vec<_> = (0..workers)
        .map(|i| spawn_worker(&server, &format!("w{i}"), &["BLOCK", "0"], tx.clone()))
        .collect();
    wait_blocked(&server, workers);

    let first = enqueue(&server, 3, "first");
    let mut delivered: Vec<(String, JobMap)> = Vec::new();
    for _ in 0..first.len() {
        let (consumer, reply) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("a blocked worker is woken by each job");
        let got = jobs(reply.expect("FETCH reply"));
        assert_eq!(got.len(), 1, "{consumer} got {got:?}");
        delivered.push((consumer, got.into_iter().next().expect("one job")));
    }
    // The other two stay blocked: no reply, still parked in Redis.
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "a worker was woken without a job"
    );
    let mut conn = server.conn();
    assert_eq!(blocked_fetches(&mut conn), workers - first.len());

    let ids: BTreeSet<String> = delivered.iter().map(|(_, j)| j["id"].clone()).collect();
    assert_eq!(ids, first, "each job delivered once, to one worker");
    let consumers: BTreeSet<&String> = delivered.iter().map(|(c, _)| c).collect();
    assert_eq!(consumers.len(), first.len(), "one job per woken worker");
    let mut zrq = server.zrq(Backend::Module);
    for (consumer, job) in &delivered {
        assert_eq!(&job["consumer"], consumer);
        assert_eq!(job["attempt"], "1");
        assert_eq!(zrq.state(Q, &job["id"]).as_deref(), Some("active"));
    }

    // More jobs release the rest.
    let second = enqueue(&server, 2, "second");
    for _ in 0..second.len() {
        let (consumer, reply) = rx.recv_timeout(Duration::from_secs(10)).expect("woken");
        let got = jobs(reply.expect("FETCH reply"));
        assert_eq!(got.len(), 1, "{consumer} got {got:?}");
        assert!(second.contains(&got[0]["id"]));
        assert!(!consumers.contains(&consumer), "{consumer} replied twice");
    }
    for handle in handles {
        handle.join().expect("worker thread");
    }
    assert_eq!(blocked_fetches(&mut conn), 0);
    assert!(zrq.fetch(Q, "late", 10).is_empty(), "nothing left over");
}

#[test]
fn a_woken_worker_takes_what_there_is_up_to_count() {
    let server = server();
    let (tx, rx) = mpsc::channel();
    let handle = spawn_worker(&server, "w", &["COUNT", "3", "BLOCK", "0"], tx);
    wait_blocked(&server, 1);
    let ids = enqueue(&server, 1, "n");
    let (_, reply) = rx.recv_timeout(Duration::from_secs(10)).expect("woken");
    let got = jobs(reply.expect("FETCH"));
    assert_eq!(got.len(), 1, "does not wait to fill COUNT");
    assert!(ids.contains(&got[0]["id"]));
    handle.join().expect("worker");
}

#[test]
fn block_timeout_returns_an_empty_array_after_the_timeout() {
    let server = server();
    let mut zrq = server.zrq(Backend::Module);
    // On a queue that does not exist, and on one that exists with nothing waiting.
    for queue in ["nowhere", "empty"] {
        if queue == "empty" {
            let id = zrq.enqueue(queue, "t", "{}", &[]);
            assert_eq!(zrq.fetch(queue, "w", 1)[0]["id"], id);
        }
        let before = server.snapshot();
        let start = Instant::now();
        let reply: Value = zrq
            .call("fetch", &[queue, "w", "BLOCK", "300"])
            .expect("FETCH");
        let waited = start.elapsed();
        assert_eq!(reply, Value::Array(vec![]), "{queue}");
        assert!(waited >= Duration::from_millis(300), "{queue}: {waited:?}");
        // Not much longer than BLOCK (generous: a loaded machine delays the reply).
        assert!(waited < Duration::from_secs(5), "{queue}: {waited:?}");
        assert_eq!(
            server.snapshot(),
            before,
            "{queue}: a timed-out FETCH wrote"
        );
    }
}

#[test]
fn blocking_on_a_queue_that_does_not_exist_yet_is_woken_by_its_first_job() {
    let server = server();
    let (tx, rx) = mpsc::channel();
    let handle = spawn_worker(&server, "early", &["BLOCK", "0"], tx);
    wait_blocked(&server, 1);
    let mut conn = server.conn();
    let exists: i64 = redis::cmd("EXISTS")
        .arg(format!("zrq:{{{Q}}}:stream"))
        .query(&mut conn)
        .expect("EXISTS");
    assert_eq!(exists, 0, "blocking creates nothing");
    let ids = enqueue(&server, 1, "first");
    let (consumer, reply) = rx.recv_timeout(Duration::from_secs(10)).expect("woken");
    let got = jobs(reply.expect("FETCH"));
    assert_eq!(consumer, "early");
    assert_eq!(got.len(), 1);
    assert!(ids.contains(&got[0]["id"]));
    handle.join().expect("worker");
}

#[test]
fn fetch_does_not_block_inside_multi_or_scripts() {
    let server = server();
    let mut conn = server.conn();
    conn.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    let start = Instant::now();
    let mut fetch = redis::cmd("ZRQ.FETCH");
    fetch.arg(Q).arg("w").arg("BLOCK").arg(0);
    let reply: Value = redis::pipe()
        .atomic()
        .add_command(fetch)
        .cmd("PING")
        .query(&mut conn)
        .expect("MULTI/EXEC");
    assert_eq!(
        reply,
        Value::Array(vec![
            Value::Array(vec![]),
            Value::SimpleString("PONG".into())
        ])
    );
    let reply: Value = redis::cmd("EVAL")
        .arg("return redis.call('ZRQ.FETCH', KEYS[1], 'w', 'BLOCK', '0')")
        .arg(1)
        .arg(Q)
        .query(&mut conn)
        .expect("EVAL");
    assert_eq!(reply, Value::Array(vec![]));
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(blocked_fetches(&mut conn), 0);

    // Inside MULTI a FETCH with a job waiting delivers it as usual.
    let id = enqueue(&server, 1, "m").into_iter().next().expect("id");
    let mut fetch = redis::cmd("ZRQ.FETCH");
    fetch.arg(Q).arg("w").arg("BLOCK").arg(0);
    let reply: Vec<Value> = redis::pipe()
        .atomic()
        .add_command(fetch)
        .query(&mut conn)
        .expect("MULTI/EXEC");
    let got = jobs(reply.into_iter().next().expect("one reply"));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["id"], id);
}

#[test]
fn a_blocked_worker_that_disconnects_does_not_swallow_jobs() {
    let server = server();
    // One worker disconnects, another is killed by the server; a third stays.
    let gone = {
        let mut conn = server.conn();
        let packed = redis::cmd("ZRQ.FETCH")
            .arg(Q)
            .arg("gone")
            .arg("BLOCK")
            .arg(0)
            .get_packed_command();
        conn.send_packed_command(&packed).expect("send FETCH");
        conn
    };
    let (tx, rx) = mpsc::channel();
    let killed = spawn_worker(&server, "killed", &["BLOCK", "0"], tx.clone());
    wait_blocked(&server, 2);
    drop(gone);
    wait_blocked(&server, 1);
    let mut conn = server.conn();
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query(&mut conn)
        .expect("CLIENT LIST");
    let victim = list
        .lines()
        .find(|l| l.contains(" cmd=zrq.fetch") && l.contains(" flags=b "))
        .and_then(|l| l.split(' ').find_map(|f| f.strip_prefix("id=")))
        .expect("a blocked client")
        .to_string();
    let _: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(&victim)
        .query(&mut conn)
        .expect("CLIENT KILL");
    wait_blocked(&server, 0);
    let (_, reply) = rx.recv_timeout(Duration::from_secs(10)).expect("killed");
    assert!(reply.is_err(), "a killed client gets no job: {reply:?}");
    killed.join().expect("worker");

    // Jobs enqueued now wait for a live worker; nothing was handed to the dead connections.
    let ids = enqueue(&server, 2, "after");
    let mut zrq = server.zrq(Backend::Module);
    for id in &ids {
        assert_eq!(zrq.state(Q, id).as_deref(), Some("pending"));
    }
    let handle = spawn_worker(&server, "alive", &["BLOCK", "0"], tx);
    let (consumer, reply) = rx.recv_timeout(Duration::from_secs(10)).expect("served");
    assert_eq!(consumer, "alive");
    let got = jobs(reply.expect("FETCH"));
    assert_eq!(got.len(), 1);
    handle.join().expect("worker");
    assert_eq!(zrq.fetch(Q, "w", 10).len(), 1);
    let pong: String = redis::cmd("PING").query(&mut conn).expect("PING");
    assert_eq!(pong, "PONG");
}

#[test]
fn jobs_enqueued_in_one_transaction_wake_as_many_workers() {
    let server = server();
    let (tx, rx) = mpsc::channel();
    let handles: Vec<_> = (0..4)
        .map(|i| spawn_worker(&server, &format!("w{i}"), &["BLOCK", "0"], tx.clone()))
        .collect();
    wait_blocked(&server, 4);
    let mut pipe = redis::pipe();
    pipe.atomic();
    for i in 0..3 {
        pipe.cmd("ZRQ.ENQUEUE")
            .arg(Q)
            .arg("t")
            .arg(format!("{{\"i\":{i}}}"));
    }
    let ids: BTreeSet<String> = pipe
        .query::<Vec<String>>(&mut server.conn())
        .expect("MULTI")
        .into_iter()
        .collect();
    let mut got = BTreeSet::new();
    for _ in 0..3 {
        let (_, reply) = rx.recv_timeout(Duration::from_secs(10)).expect("woken");
        let jobs = jobs(reply.expect("FETCH"));
        assert_eq!(jobs.len(), 1);
        assert!(got.insert(jobs[0]["id"].clone()), "delivered twice");
    }
    assert_eq!(got, ids);
    let mut conn = server.conn();
    assert_eq!(blocked_fetches(&mut conn), 1);
    enqueue(&server, 1, "last");
    for handle in handles {
        handle.join().expect("worker");
    }
}

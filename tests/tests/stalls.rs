//! No single command holds the server long: with the default limits, the worst input of each
//! kind the limits allow keeps a PING from another connection waiting at most 250 ms, on both
//! backends.
//!
//! The figure is a bound with a generous margin, not a performance target (those live in the
//! benchmarks). Other work on a shared machine can delay a PING too, so each case runs up to five
//! times and the best run counts: a command that really holds the server fails every run.

use crate::support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use zrq_core::config::Config;
use zrq_tests::redis::{self, Value};
use zrq_tests::{Backend, Server, Zrq};

const BOUND: Duration = Duration::from_millis(250);
const DEFAULTS: Config = Config::DEFAULT;

/// The longest a PING waited on another connection while `run` ran.
fn longest_ping_during(server: &Server, run: impl FnOnce()) -> Duration {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicBool::new(false));
    let mut conn = server.conn();
    let pinger = {
        let (stop, started) = (Arc::clone(&stop), Arc::clone(&started));
        thread::spawn(move || {
            let mut longest = Duration::ZERO;
            while !stop.load(Ordering::Relaxed) {
                let sent = Instant::now();
                let pong: String = redis::cmd("PING").query(&mut conn).expect("PING");
                assert_eq!(pong, "PONG");
                longest = longest.max(sent.elapsed());
                started.store(true, Ordering::Relaxed);
                thread::sleep(Duration::from_millis(1));
            }
            longest
        })
    };
    while !started.load(Ordering::Relaxed) {
        thread::sleep(Duration::from_millis(1));
    }
    run();
    // One more PING round after the command, so a PING queued behind it is counted.
    thread::sleep(Duration::from_millis(5));
    stop.store(true, Ordering::Relaxed);
    pinger.join().expect("pinger")
}

/// The arguments of a command, as bytes.
type Args = Vec<Vec<u8>>;

/// A JSON array `[1,1,…]` of `bytes` bytes (odd): the most values per byte, the slowest document
/// to check.
fn dense_array(bytes: i64) -> Vec<u8> {
    let values = usize::try_from((bytes - 1) / 2).expect("size");
    let mut doc = b"[1".to_vec();
    doc.extend(std::iter::repeat_n(*b",1", values - 1).flatten());
    doc.push(b']');
    doc
}

fn bytes(parts: &[&str]) -> Args {
    parts.iter().map(|p| p.as_bytes().to_vec()).collect()
}

/// A worst case: a setup that returns the command's arguments, then the window measured: a
/// wait (for the timer's work to fall inside it), then the command.
struct Case {
    name: &'static str,
    setup: fn(&mut Zrq) -> Args,
    wait: Duration,
    command: &'static str,
}

fn after_max_parents(zrq: &mut Zrq) -> Args {
    let mut args = bytes(&["q", "t", "{}"]);
    for n in 0..DEFAULTS.after_max {
        let parent = format!("p{n}");
        zrq.enqueue("q", "t", "{}", &["ID", &parent]);
        args.extend(bytes(&["AFTER", &parent]));
    }
    args
}

fn batch_max_members(_: &mut Zrq) -> Args {
    let mut args = bytes(&["q", "b"]);
    for _ in 0..DEFAULTS.batch_max {
        args.extend(bytes(&["JOB", "t", "{}"]));
    }
    args
}

fn payload_max_array(_: &mut Zrq) -> Args {
    let mut args = bytes(&["q", "t"]);
    args.push(dense_array(DEFAULTS.payload_max_bytes - 1));
    args
}

fn ten_megabytes(_: &mut Zrq) -> Args {
    let mut args = bytes(&["q", "t"]);
    args.push(dense_array(10_000_001));
    args
}

fn result_max_array(zrq: &mut Zrq) -> Args {
    zrq.enqueue("q", "t", "{}", &["ID", "a1"]);
    zrq.fetch("q", "w", 1);
    let mut args = bytes(&["q", "a1", "RESULT"]);
    args.push(dense_array(DEFAULTS.result_max_bytes - 1));
    args
}

fn schedules_max_due(zrq: &mut Zrq) -> Args {
    let every = DEFAULTS.every_min_ms.to_string();
    for n in 0..DEFAULTS.schedules_max {
        let _: i64 = zrq
            .call(
                "schedule",
                &["q", &format!("s{n}"), "EVERY", &every, "t", "{}"],
            )
            .expect("SCHEDULE");
    }
    bytes(&["q", "w"])
}

/// 20,000 pending jobs (pipelined, so the setup stays quick) and a cursor near their end.
fn deep_pending_cursor(zrq: &mut Zrq) -> Args {
    let mut pipe = redis::pipe();
    for _ in 0..20_000 {
        pipe.add_command(zrq.command("enqueue", &[b"q", b"t", b"{}"]))
            .ignore();
    }
    let _: () = pipe.query(&mut zrq.conn).expect("enqueue 20000");
    let last: Value = redis::cmd("XREVRANGE")
        .arg("zrq:{q}:stream")
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(11)
        .query(&mut zrq.conn)
        .expect("XREVRANGE");
    let Value::Array(entries) = last else {
        panic!("XREVRANGE: {last:?}")
    };
    let Some(Value::Array(entry)) = entries.last() else {
        panic!("entries: {entries:?}")
    };
    let Value::BulkString(id) = &entry[0] else {
        panic!("entry: {entry:?}")
    };
    let cursor = format!("0:{}", String::from_utf8_lossy(id));
    bytes(&["q", "pending", "COUNT", "10", "CURSOR", &cursor])
}

/// Kills `n` jobs with `payload` (RETRIES 0: enqueued, fetched and failed, pipelined).
fn kill_many(zrq: &mut Zrq, n: usize, payload: &[u8]) {
    let mut pipe = redis::pipe();
    for _ in 0..n {
        pipe.add_command(zrq.command("enqueue", &[b"q", b"t", payload, b"RETRIES", b"0"]))
            .ignore();
    }
    let _: () = pipe.query(&mut zrq.conn).expect("enqueue");
    let mut killed = 0;
    while killed < n {
        let jobs = zrq.fetch("q", "w", 1000);
        assert!(!jobs.is_empty(), "fetched {killed} of {n}");
        let mut pipe = redis::pipe();
        for job in &jobs {
            pipe.add_command(zrq.command("fail", &[b"q", job["id"].as_bytes(), b"boom"]))
                .ignore();
        }
        let _: () = pipe.query(&mut zrq.conn).expect("fail");
        killed += jobs.len();
    }
}

/// A dead set larger than one page (jobs with payload-max payloads), then `REQUEUE ALL`: one
/// page of at most zrq.requeue-max jobs.
fn requeue_all_of_a_big_dead_set(zrq: &mut Zrq) -> Args {
    let payload = payload_max_text();
    let n = usize::try_from(DEFAULTS.requeue_max).expect("requeue-max") + 20;
    kill_many(zrq, n, &payload);
    bytes(&["q", "ALL"])
}

/// A parent with children-max waiting children, then its ACK (which releases them all).
fn parent_of_children_max(zrq: &mut Zrq) -> Args {
    zrq.enqueue("q", "t", "{}", &["ID", "p"]);
    let mut pipe = redis::pipe();
    for _ in 0..DEFAULTS.children_max {
        pipe.add_command(zrq.command("enqueue", &[b"q", b"t", b"{}", b"AFTER", b"p"]))
            .ignore();
    }
    let _: () = pipe.query(&mut zrq.conn).expect("children");
    assert_eq!(zrq.fetch("q", "w", 1).len(), 1, "the parent");
    bytes(&["q", "p"])
}

/// schedules-max schedules whose payloads are payload-max JSON arrays (the slowest to check
/// again when a tick fires), all due at once: the module's timer fires them, the Lua library in
/// FETCHes, about payload-max-bytes of definitions per step.
fn schedules_max_due_with_payload_max_payloads(zrq: &mut Zrq) -> Args {
    let every = DEFAULTS.every_min_ms.to_string();
    let payload = dense_array(DEFAULTS.payload_max_bytes - 1);
    for n in 0..DEFAULTS.schedules_max {
        let name = format!("s{n}");
        let args: [&[u8]; 6] = [
            b"q",
            name.as_bytes(),
            b"EVERY",
            every.as_bytes(),
            b"t",
            &payload,
        ];
        let _: i64 = zrq
            .command("schedule", &args)
            .query(&mut zrq.conn)
            .expect("SCHEDULE");
    }
    bytes(&["q", "w"])
}

/// A running job, and a million finished jobs whose retention ended long ago (their index
/// entries written directly, as a server back after a long downtime holds them), then the job's
/// ACK: finishing a job drops expired index entries, a bounded number per command.
fn ack_over_a_million_expired_finished_jobs(zrq: &mut Zrq) -> Args {
    zrq.enqueue("q", "t", "{}", &["ID", "running"]);
    assert_eq!(zrq.fetch("q", "w", 1).len(), 1, "the running job");
    let completed = zrq_core::keys::QueueKeys::new("q").completed();
    for chunk in 0..1_000 {
        let mut zadd = redis::cmd("ZADD");
        zadd.arg(&completed);
        for n in chunk * 1_000..(chunk + 1) * 1_000 {
            zadd.arg(1_000 + n).arg(format!("expired-{n}"));
        }
        let _: i64 = zadd.query(&mut zrq.conn).expect("ZADD");
    }
    bytes(&["q", "running"])
}

/// after-max parents, each listing children-max - 1 children (written directly: ids of jobs
/// that are gone, as a deleted child leaves), then an ENQUEUE after all of them.
fn after_max_parents_with_children(zrq: &mut Zrq) -> Args {
    let listed = usize::try_from(DEFAULTS.children_max - 1).expect("children-max");
    let children: Vec<String> = (0..listed).map(|n| format!("gone-child-{n}")).collect();
    let children = serde_json::to_string(&children).expect("JSON");
    let args = after_max_parents(zrq);
    for n in 0..DEFAULTS.after_max {
        support::tamper(&mut zrq.conn, "q", &format!("p{n}"), |record| {
            record.insert("children".to_string(), children.clone());
        });
    }
    args
}

/// A JSON string of `bytes` bytes of `unit` repeated (its length divides `bytes - 2`, or the
/// string is a little shorter): non-ASCII text is the slowest to check as UTF-8.
fn json_text(bytes: i64, unit: &str) -> Vec<u8> {
    let units = usize::try_from(bytes - 2).expect("size") / unit.len();
    format!("\"{}\"", unit.repeat(units)).into_bytes()
}

/// A payload-max payload of characters with every kind of UTF-8 lead byte (2, 3 and 4 bytes
/// long, and the special cases of each), the slowest text to read on the Lua backend.
fn payload_max_text() -> Vec<u8> {
    let mixed = "é\u{920}\u{1000}\u{d000}\u{e000}\u{1f600}\u{40000}\u{100000}a";
    json_text(DEFAULTS.payload_max_bytes, mixed)
}

/// `n` pending jobs with payload-max payloads (pipelined), with `options`.
fn payload_max_jobs(zrq: &mut Zrq, n: usize, options: &[&str]) {
    let payload = payload_max_text();
    let mut pipe = redis::pipe();
    for _ in 0..n {
        let mut args: Vec<&[u8]> = vec![b"q", b"t", &payload];
        args.extend(options.iter().map(|o| o.as_bytes()));
        pipe.add_command(zrq.command("enqueue", &args)).ignore();
    }
    let _: () = pipe.query(&mut zrq.conn).expect("enqueue");
}

/// Jobs enough for many pages of payload-max jobs: without the budget, a page of them would hold
/// the Lua backend for seconds.
const MANY: usize = 40;

fn fetch_count_max_of_payload_max_jobs(zrq: &mut Zrq) -> Args {
    payload_max_jobs(zrq, MANY, &[]);
    bytes(&["q", "w", "COUNT", "1000"])
}

fn list_count_max_of_payload_max_jobs(zrq: &mut Zrq) -> Args {
    payload_max_jobs(zrq, MANY, &[]);
    bytes(&["q", "pending", "COUNT", "1000"])
}

fn dead_count_max_of_payload_max_jobs(zrq: &mut Zrq) -> Args {
    kill_many(zrq, MANY, &payload_max_text());
    bytes(&["q", "COUNT", "1000"])
}

/// Many jobs with payload-max payloads whose 1 ms leases expired (the module's timer is told to
/// leave them to RECLAIM, as the Lua backend does).
fn reclaim_count_max_of_payload_max_jobs(zrq: &mut Zrq) -> Args {
    let _: redis::RedisResult<()> = redis::cmd("CONFIG")
        .arg("SET")
        .arg("zrq.expire-leases")
        .arg("no")
        .query(&mut zrq.conn);
    payload_max_jobs(zrq, MANY, &["TIMEOUT", "1"]);
    let mut fetched = 0;
    while fetched < MANY {
        let jobs = zrq.fetch("q", "w", 1000);
        assert!(!jobs.is_empty(), "fetched {fetched} of {MANY}");
        fetched += jobs.len();
    }
    thread::sleep(Duration::from_millis(10));
    bytes(&["q", "w2", "COUNT", "1000"])
}

/// A WITHRESULTS child of after-max parents, all but one of them completed with result-max
/// results; then the last parent's ACK, with a result-max result.
fn withresults_child_of_after_max_parents(zrq: &mut Zrq) -> Args {
    let mut child = bytes(&["q", "t", "{}", "WITHRESULTS"]);
    for n in 0..DEFAULTS.after_max {
        let parent = format!("p{n}");
        zrq.enqueue("q", "t", "{}", &["ID", &parent]);
        child.extend(bytes(&["AFTER", &parent]));
    }
    let child: Vec<&[u8]> = child.iter().map(Vec::as_slice).collect();
    let _: Value = zrq.call_raw("enqueue", &child).expect("the child");
    let result = dense_array(DEFAULTS.result_max_bytes - 1);
    let mut fetched = 0;
    while fetched < DEFAULTS.after_max {
        fetched += i64::try_from(zrq.fetch("q", "w", 1000).len()).expect("count");
    }
    let mut pipe = redis::pipe();
    for n in 1..DEFAULTS.after_max {
        let parent = format!("p{n}");
        pipe.add_command(zrq.command("ack", &[b"q", parent.as_bytes(), b"RESULT", &result]))
            .ignore();
    }
    let _: () = pipe.query(&mut zrq.conn).expect("ACK");
    let mut args = bytes(&["q", "p0", "RESULT"]);
    args.push(result);
    args
}

/// children-max WITHRESULTS children of one parent, each also the child of a second parent that
/// completed with a result of half zrq.parents-max-bytes; then the first parent's ACK with a
/// result of the other half (a dense array, the slowest to parse), which brings every child's
/// `parents` to the limit.
fn parent_of_children_max_withresults_children(zrq: &mut Zrq) -> Args {
    zrq.enqueue("q", "t", "{}", &["ID", "p"]);
    let mut pipe = redis::pipe();
    for n in 0..DEFAULTS.children_max {
        let other = format!("o{n}");
        pipe.add_command(zrq.command("enqueue", &[b"q", b"t", b"{}", b"ID", other.as_bytes()]))
            .ignore();
        pipe.add_command(zrq.command(
            "enqueue",
            &[
                b"q",
                b"t",
                b"{}",
                b"WITHRESULTS",
                b"AFTER",
                b"p",
                b"AFTER",
                other.as_bytes(),
            ],
        ))
        .ignore();
    }
    let _: () = pipe.query(&mut zrq.conn).expect("children");
    let half = DEFAULTS.parents_max_bytes / 2 - 100;
    let result = json_text(half, "a");
    let mut fetched = 0;
    while fetched < DEFAULTS.children_max + 1 {
        fetched += i64::try_from(zrq.fetch("q", "w", 1000).len()).expect("count");
    }
    let mut pipe = redis::pipe();
    for n in 0..DEFAULTS.children_max {
        let other = format!("o{n}");
        pipe.add_command(zrq.command("ack", &[b"q", other.as_bytes(), b"RESULT", &result]))
            .ignore();
    }
    let _: () = pipe.query(&mut zrq.conn).expect("ACK");
    let mut args = bytes(&["q", "p", "RESULT"]);
    args.push(dense_array(half - 1));
    args
}

/// A parent with children-max waiting children whose payloads are payload-max (mixed-width text),
/// then its ACK: each child is read (for its links only) and released.
fn parent_of_children_max_with_payload_max_payloads(zrq: &mut Zrq) -> Args {
    zrq.enqueue("q", "t", "{}", &["ID", "p"]);
    let payload = payload_max_text();
    let mut pipe = redis::pipe();
    for _ in 0..DEFAULTS.children_max {
        pipe.add_command(zrq.command("enqueue", &[b"q", b"t", &payload, b"AFTER", b"p"]))
            .ignore();
    }
    let _: () = pipe.query(&mut zrq.conn).expect("children");
    assert_eq!(zrq.fetch("q", "w", 1).len(), 1, "the parent");
    bytes(&["q", "p"])
}

/// after-max parents with payload-max payloads, completed with result-max results (mixed-width
/// text), then a WITHRESULTS child of all of them: each parent is read for its links, and results
/// are read only while they fit in the child's `parents`.
fn withresults_child_after_after_max_big_parents(zrq: &mut Zrq) -> Args {
    let payload = payload_max_text();
    let mixed = "é\u{920}\u{1000}\u{d000}\u{e000}\u{1f600}\u{40000}\u{100000}a";
    let result = json_text(DEFAULTS.result_max_bytes, mixed);
    let mut pipe = redis::pipe();
    let mut child = bytes(&["q", "t", "{}", "WITHRESULTS"]);
    for n in 0..DEFAULTS.after_max {
        let parent = format!("p{n}");
        pipe.add_command(zrq.command("enqueue", &[b"q", b"t", &payload, b"ID", parent.as_bytes()]))
            .ignore();
        child.extend(bytes(&["AFTER", &parent]));
    }
    let _: () = pipe.query(&mut zrq.conn).expect("parents");
    let mut fetched = 0;
    while fetched < DEFAULTS.after_max {
        fetched += i64::try_from(zrq.fetch("q", "w", 1000).len()).expect("count");
    }
    let mut pipe = redis::pipe();
    for n in 0..DEFAULTS.after_max {
        let parent = format!("p{n}");
        pipe.add_command(zrq.command("ack", &[b"q", parent.as_bytes(), b"RESULT", &result]))
            .ignore();
    }
    let _: () = pipe.query(&mut zrq.conn).expect("ACK");
    child
}

fn cases() -> Vec<Case> {
    let none = Duration::ZERO;
    vec![
        Case {
            name: "ENQUEUE with after-max parents",
            setup: after_max_parents,
            wait: none,
            command: "enqueue",
        },
        Case {
            name: "BATCH of batch-max members",
            setup: batch_max_members,
            wait: none,
            command: "batch",
        },
        Case {
            name: "ENQUEUE of a payload-max JSON array",
            setup: payload_max_array,
            wait: none,
            command: "enqueue",
        },
        Case {
            name: "ENQUEUE of a 10 MB payload (refused)",
            setup: ten_megabytes,
            wait: none,
            command: "enqueue",
        },
        Case {
            name: "ACK with a result-max JSON array",
            setup: result_max_array,
            wait: none,
            command: "ack",
        },
        Case {
            // Every tick falls due within the wait: the module's timer fires them all in one pass,
            // the Lua library in the FETCH.
            name: "schedules-max ticks due at once, then FETCH",
            setup: schedules_max_due,
            wait: Duration::from_millis(DEFAULTS.every_min_ms.unsigned_abs() + 100),
            command: "fetch",
        },
        Case {
            name: "schedules-max ticks with payload-max JSON arrays due at once, then FETCH",
            setup: schedules_max_due_with_payload_max_payloads,
            wait: Duration::from_millis(DEFAULTS.every_min_ms.unsigned_abs() + 100),
            command: "fetch",
        },
        Case {
            name: "REQUEUE ALL of requeue-max + 20 dead jobs with payload-max payloads (mixed-width text)",
            setup: requeue_all_of_a_big_dead_set,
            wait: none,
            command: "requeue",
        },
        Case {
            name: "ACK of a parent with children-max waiting children",
            setup: parent_of_children_max,
            wait: none,
            command: "ack",
        },
        Case {
            name: "ENQUEUE after after-max parents listing children-max - 1 children each",
            setup: after_max_parents_with_children,
            wait: none,
            command: "enqueue",
        },
        Case {
            name: "FETCH COUNT 1000 of 40 payload-max jobs (mixed-width text)",
            setup: fetch_count_max_of_payload_max_jobs,
            wait: none,
            command: "fetch",
        },
        Case {
            name: "LIST pending COUNT 1000 of 40 payload-max jobs (mixed-width text)",
            setup: list_count_max_of_payload_max_jobs,
            wait: none,
            command: "list",
        },
        Case {
            name: "DEAD COUNT 1000 of 40 payload-max jobs (mixed-width text)",
            setup: dead_count_max_of_payload_max_jobs,
            wait: none,
            command: "dead",
        },
        Case {
            name: "RECLAIM COUNT 1000 of 40 payload-max jobs (mixed-width text)",
            setup: reclaim_count_max_of_payload_max_jobs,
            wait: none,
            command: "reclaim",
        },
        Case {
            name: "ACK of the last of after-max parents of a WITHRESULTS child, result-max results",
            setup: withresults_child_of_after_max_parents,
            wait: none,
            command: "ack",
        },
        Case {
            name: "ACK of a parent of children-max WITHRESULTS children holding a result each",
            setup: parent_of_children_max_withresults_children,
            wait: none,
            command: "ack",
        },
        Case {
            name: "ACK of a parent of children-max children with payload-max payloads",
            setup: parent_of_children_max_with_payload_max_payloads,
            wait: none,
            command: "ack",
        },
        Case {
            name: "ENQUEUE WITHRESULTS after after-max completed parents, payload-max and result-max",
            setup: withresults_child_after_after_max_big_parents,
            wait: none,
            command: "enqueue",
        },
        Case {
            name: "ACK with a million finished jobs past their retention",
            setup: ack_over_a_million_expired_finished_jobs,
            wait: none,
            command: "ack",
        },
        Case {
            name: "LIST pending with a cursor deep in 20,000 jobs",
            setup: deep_pending_cursor,
            wait: none,
            command: "list",
        },
    ]
}

/// Runs `case` on a fresh server up to five times; the shortest longest-PING counts.
fn measure(backend: Backend, case: &Case) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let server = backend.server();
        let mut zrq = server.zrq(backend);
        let args = (case.setup)(&mut zrq);
        let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let gap = longest_ping_during(&server, || {
            thread::sleep(case.wait);
            let reply: redis::RedisResult<Value> =
                zrq.command(case.command, &args).query(&mut zrq.conn);
            if let Err(err) = reply {
                // Only the 10 MB payload is refused, by its size.
                assert!(err.to_string().contains("LIMIT"), "{}: {err}", case.name);
            }
        });
        best = best.min(gap);
        if best <= BOUND {
            break;
        }
    }
    eprintln!("{backend:?}, {}: longest PING {best:?}", case.name);
    best
}

/// Both backends in one test, one after the other: a test running beside it would delay the PINGs.
#[test]
fn no_command_holds_the_server_long() {
    let mut slow = Vec::new();
    for backend in [Backend::Module, Backend::Lua] {
        for case in cases() {
            let gap = measure(backend, &case);
            if gap > BOUND {
                slow.push((backend, case.name, gap));
            }
        }
    }
    assert!(slow.is_empty(), "held the server over {BOUND:?}: {slow:?}");
}

//! No single command holds the server long: with the default limits, the worst input of each
//! kind the limits allow keeps a PING from another connection waiting at most 250 ms, on both
//! backends.
//!
//! The figure is a bound with a generous margin, not a performance target (those live in the
//! benchmarks). Other work on a shared machine can delay a PING too, so each case runs up to five
//! times and the best run counts: a command that really holds the server fails every run.

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
/// page of zrq.requeue-max jobs.
fn requeue_all_of_a_big_dead_set(zrq: &mut Zrq) -> Args {
    let payload = dense_array(DEFAULTS.payload_max_bytes - 1);
    let n = usize::try_from(DEFAULTS.requeue_max).expect("requeue-max") + 200;
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

/// after-max parents, each listing children-max - 1 children (written directly: ids of jobs
/// that are gone, as a deleted child leaves), then an ENQUEUE after all of them.
fn after_max_parents_with_children(zrq: &mut Zrq) -> Args {
    let listed = usize::try_from(DEFAULTS.children_max - 1).expect("children-max");
    let children: Vec<String> = (0..listed).map(|n| format!("gone-child-{n}")).collect();
    let children = serde_json::to_string(&children).expect("JSON");
    let args = after_max_parents(zrq);
    for n in 0..DEFAULTS.after_max {
        let _: () = redis::cmd("HSET")
            .arg(format!("zrq:{{q}}:job:p{n}"))
            .arg("children")
            .arg(&children)
            .query(&mut zrq.conn)
            .expect("HSET children");
    }
    args
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
            name: "REQUEUE ALL of requeue-max + 200 dead jobs with payload-max payloads",
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

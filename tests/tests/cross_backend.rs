//! One keyspace, two implementations: data written by the module is served by the Lua library and
//! the other way round, and both give the same reply to the same input.
//!
//! Every test here runs one server with the module loaded AND the library loaded, so each step of
//! a job's life can be taken by either backend.

use crate::support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use zrq_core::args::MAX_DURATION_MS;
use zrq_core::keys::WAKE_CAP;
use zrq_tests::redis::{self, Connection, Value};
use zrq_tests::{jobs, Backend, JobMap, Options, Server, Zrq};

const MODULE: Backend = Backend::Module;
const LUA: Backend = Backend::Lua;

/// A server with the module and the library. Expired leases are left to RECLAIM, which both
/// backends have (the module's timer would otherwise race the Lua library's RECLAIM).
fn both() -> Server {
    let server = Server::start(Options {
        module: true,
        ..Options::default()
    });
    server.load_lua();
    server.leave_leases_to_reclaim();
    server
}

fn ack(zrq: &mut Zrq, queue: &str, id: &str, result: Option<&str>) -> i64 {
    let mut args = vec![queue, id];
    if let Some(result) = result {
        args.extend(["RESULT", result]);
    }
    zrq.call("ack", &args).expect("ACK")
}

fn reclaim(zrq: &mut Zrq, queue: &str, consumer: &str) -> Vec<JobMap> {
    jobs(zrq.call("reclaim", &[queue, consumer]).expect("RECLAIM"))
}

#[test]
fn jobs_move_between_backends_mid_flight() {
    let server = both();
    let (mut m, mut l) = (server.zrq(MODULE), server.zrq(LUA));

    // Enqueued by the module, fetched by Lua, acknowledged by the module.
    let a = m.enqueue("q", "send", r#"{"n":1}"#, &[]);
    assert_eq!(l.state("q", &a).as_deref(), Some("pending"));
    let fetched = l.fetch("q", "lua-worker", 10);
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0]["id"], a);
    assert_eq!(fetched[0]["attempt"], "1");
    assert_eq!(fetched[0]["consumer"], "lua-worker");
    assert_eq!(m.state("q", &a).as_deref(), Some("active"));
    assert_eq!(ack(&mut m, "q", &a, Some("[1]")), 1);
    assert_eq!(l.job("q", &a).expect("job")["result"], "[1]");
    assert_eq!(ack(&mut l, "q", &a, None), 0, "already completed, says Lua");

    // Enqueued by Lua, fetched by the module, acknowledged by Lua.
    let b = l.enqueue("q", "send", r#"{"n":2}"#, &[]);
    assert_eq!(m.state("q", &b).as_deref(), Some("pending"));
    let fetched = m.fetch("q", "module-worker", 10);
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0]["id"], b);
    assert_eq!(ack(&mut l, "q", &b, None), 1);
    assert_eq!(
        ack(&mut m, "q", &b, None),
        0,
        "already completed, says the module"
    );
    assert_eq!(m.job("q", &b), l.job("q", &b), "both read the record alike");

    // Interleaved on one queue: order is kept whichever backend enqueued.
    let ids: Vec<String> = (0..6_usize)
        .map(|i| {
            let zrq = if i.is_multiple_of(2) { &mut m } else { &mut l };
            zrq.enqueue("q", "t", &format!("[{i}]"), &[])
        })
        .collect();
    let first = m.fetch("q", "w", 3);
    let second = l.fetch("q", "w", 3);
    let got: Vec<String> = first
        .iter()
        .chain(&second)
        .map(|j| j["id"].clone())
        .collect();
    assert_eq!(got, ids);
    for (i, id) in ids.iter().enumerate() {
        let zrq = if i.is_multiple_of(2) { &mut l } else { &mut m };
        assert_eq!(ack(zrq, "q", id, None), 1);
    }

    // Memory stays flat: nothing left in the stream or its pending list, no leases.
    let mut conn = server.conn();
    let len: i64 = redis::cmd("XLEN")
        .arg("zrq:{q}:stream")
        .query(&mut conn)
        .unwrap();
    assert_eq!(len, 0);
    let active: i64 = redis::cmd("ZCARD")
        .arg("zrq:{q}:active")
        .query(&mut conn)
        .unwrap();
    assert_eq!(active, 0);
    let stats: BTreeMap<String, i64> = redis::cmd("HGETALL")
        .arg("zrq:{q}:stats")
        .query(&mut conn)
        .unwrap();
    assert_eq!(stats["enqueued"], 8);
    assert_eq!(stats["completed"], 8);
}

#[test]
fn leases_taken_by_one_backend_are_reclaimed_by_the_other() {
    let server = both();
    let (mut m, mut l) = (server.zrq(MODULE), server.zrq(LUA));
    let a = m.enqueue("q", "t", "{}", &["RETRIES", "1", "TIMEOUT", "50"]);
    let b = l.enqueue("q", "t", "{}", &["RETRIES", "1", "TIMEOUT", "50"]);
    assert_eq!(m.fetch("q", "w1", 1)[0]["id"], a);
    assert_eq!(l.fetch("q", "w1", 1)[0]["id"], b);
    std::thread::sleep(Duration::from_millis(80));

    // Lua reclaims both leases, the module's included.
    let taken = reclaim(&mut l, "q", "w2");
    // Oldest deadline first; both leases may end in the same millisecond (then by id).
    let mut ids: Vec<&str> = taken.iter().map(|j| j["id"].as_str()).collect();
    ids.sort_unstable();
    let mut want = [a.as_str(), b.as_str()];
    want.sort_unstable();
    assert_eq!(ids, want);
    for job in &taken {
        assert_eq!(job["consumer"], "w2");
        assert_eq!(job["attempt"], "2");
        assert_eq!(
            job["error"],
            "lease expired after 50 ms (attempt 1 of 2, consumer w1)"
        );
    }
    assert_eq!(
        ack(&mut m, "q", &b, None),
        1,
        "the module acks Lua's reclaim"
    );
    std::thread::sleep(Duration::from_millis(80));

    // The module finds a's last attempt expired: it dies, Lua sees it dead.
    assert!(reclaim(&mut m, "q", "w3").is_empty());
    assert_eq!(l.state("q", &a).as_deref(), Some("dead"));
    assert_eq!(ack(&mut l, "q", &a, None), 0);
    let dead: Vec<String> = redis::cmd("ZRANGE")
        .arg("zrq:{q}:dead")
        .arg(0)
        .arg(-1)
        .query(&mut server.conn())
        .unwrap();
    assert_eq!(dead, [a]);
}

// ------------------------------------------------------------------------------------------------
// The same workload, written by the module, by Lua, and by both taking turns, leaves keyspaces of
// the same shape (the Lua-only wake-up list aside).
// ------------------------------------------------------------------------------------------------

/// Who takes each step of the workload.
#[derive(Debug, Clone, Copy)]
enum Writer {
    Only(Backend),
    Alternating,
}

impl Writer {
    fn backend(self, step: usize) -> Backend {
        match self {
            Writer::Only(b) => b,
            Writer::Alternating if step.is_multiple_of(2) => MODULE,
            Writer::Alternating => LUA,
        }
    }
}

/// One step of the workload against `queue`; returns its reply, normalised.
#[test]
fn lease_tokens_are_honoured_across_backends() {
    let server = both();
    let (mut m, mut l) = (server.zrq(MODULE), server.zrq(LUA));
    let a = m.enqueue("q", "t", "{}", &[]);
    let job = m.fetch("q", "w", 1).remove(0);
    let touch: i64 = l.call("touch", &["q", &a, "LEASE", "1-0:1"]).unwrap();
    assert_eq!(touch, 0, "Lua refuses a token that is not the module's");
    let acked: i64 = l.call("ack", &["q", &a, "LEASE", &job["lease"]]).unwrap();
    assert_eq!(acked, 1, "Lua accepts the module's token");

    let b = l.enqueue("q", "t", "{}", &["RETRIES", "0"]);
    let first = l.fetch("q", "w", 1).remove(0);
    let released: i64 = m
        .call("release", &["q", &b, "LEASE", &first["lease"]])
        .unwrap();
    assert_eq!(released, 1, "the module gives back Lua's delivery");
    let second = m.fetch("q", "w", 1).remove(0);
    assert_eq!(second["attempt"], "1");
    assert_ne!(second["lease"], first["lease"]);
    let stale: i64 = l.call("ack", &["q", &b, "LEASE", &first["lease"]]).unwrap();
    assert_eq!(stale, 0);
    let acked: i64 = l
        .call("ack", &["q", &b, "LEASE", &second["lease"]])
        .unwrap();
    assert_eq!(acked, 1);
}

fn step(zrq: &mut Zrq, queue: &str, n: usize) -> String {
    let reply = |zrq: &mut Zrq, args: &[&str]| -> Value {
        let (cmd, args) = args.split_first().unwrap();
        let mut full = vec![queue];
        full.extend_from_slice(args);
        zrq.call(cmd, &full).unwrap()
    };
    let value = match n {
        0 => reply(
            zrq,
            &[
                "enqueue", "t", "[0]", "ID", "a", "RETRIES", "0", "TIMEOUT", "50",
            ],
        ),
        1 => reply(
            zrq,
            &[
                "enqueue", "t", "[1]", "ID", "b", "RETRIES", "1", "TIMEOUT", "50",
            ],
        ),
        2 => reply(zrq, &["enqueue", "t", "[2]", "ID", "c"]),
        3 => reply(zrq, &["enqueue", "u", r#"{"x":"y"}"#, "ID", "d"]),
        4 => reply(zrq, &["enqueue", "t", "[4]", "ID", "e"]),
        5 => reply(zrq, &["fetch", "w1", "COUNT", "3"]),
        6 => reply(zrq, &["ack", "c", "RESULT", r#"{"ok":true}"#]),
        7 => {
            std::thread::sleep(Duration::from_millis(80));
            reply(zrq, &["reclaim", "w2"])
        }
        8 => reply(zrq, &["fetch", "w3", "COUNT", "1"]),
        9 => reply(zrq, &["ack", "d"]),
        10 => reply(zrq, &["enqueue", "other", "{}", "ID", "a"]),
        11 => reply(zrq, &["state", "a"]),
        12 => reply(zrq, &["job", "b"]),
        13 => reply(zrq, &["enqueue", "t", "[13]", "ID", "f", "PRIORITY", "5"]),
        14 => reply(zrq, &["enqueue", "t", "[14]", "ID", "g", "DELAY", "600000"]),
        15 => reply(zrq, &["enqueue", "t", "[15]", "ID", "h", "UNIQUE", "u1"]),
        16 => reply(zrq, &["enqueue", "t", "[16]", "ID", "h2", "UNIQUE", "u1"]),
        17 => reply(
            zrq,
            &[
                "enqueue",
                "t",
                "[17]",
                "ID",
                "k",
                "AFTER",
                "e",
                "AFTER",
                "c",
                "WITHRESULTS",
            ],
        ),
        18 => reply(zrq, &["fetch", "w4", "COUNT", "2"]),
        19 => reply(zrq, &["ack", "e", "RESULT", "[42]"]),
        20 => reply(zrq, &["job", "k"]),
        21 => reply(zrq, &["enqueue", "t", "[21]", "ID", "m", "AFTER", "a"]),
        22 => reply(zrq, &["job", "m"]),
        23 => reply(zrq, &["enqueue", "t", "[23]", "ID", "n"]),
        24 => reply(zrq, &["fetch", "w5", "COUNT", "3"]),
        25 => reply(zrq, &["fail", "h", "boom", "RETRYIN", "600000"]),
        26 => reply(zrq, &["fail", "n", "with backoff"]),
        27 => reply(zrq, &["cancel", "k"]),
        28 => reply(zrq, &["ack", "k", "RESULT", "{}"]),
        29 => reply(
            zrq,
            &[
                "batch",
                "bb",
                "ON-COMPLETE",
                "cb",
                "{}",
                "JOB",
                "t",
                "[1]",
                "JOB",
                "t",
                "[2]",
            ],
        ),
        30 => reply(
            zrq,
            &[
                "schedule", "sc", "EVERY", "600000", "t", "{}", "UNIQUE", "sc",
            ],
        ),
        31 => reply(zrq, &["touch", "b", "PROGRESS", "10"]),
        32 => reply(zrq, &["requeue", "a"]),
        33 => reply(zrq, &["delete", "g"]),
        34 => reply(zrq, &["pause"]),
        35 => reply(zrq, &["fetch", "w6", "COUNT", "10"]),
        36 => reply(zrq, &["resume"]),
        37 => reply(zrq, &["fetch", "w6", "COUNT", "10"]),
        38 => {
            // Finish the batch (its callback is enqueued once) and the requeued job.
            let Value::Array(page) = reply(zrq, &["list", "active", "COUNT", "100"]) else {
                panic!("LIST page")
            };
            let Value::Array(active) = &page[1] else {
                panic!("LIST jobs: {page:?}")
            };
            let mut acked = Vec::new();
            for job in active {
                let Value::Map(fields) = job else {
                    panic!("job map: {job:?}")
                };
                let field = |name: &str| {
                    fields.iter().find_map(|(k, v)| match (k, v) {
                        (Value::BulkString(k), Value::BulkString(v)) if k == name.as_bytes() => {
                            Some(String::from_utf8_lossy(v).into_owned())
                        }
                        _ => None,
                    })
                };
                if field("batch").as_deref() == Some("bb") || field("id").as_deref() == Some("a") {
                    let id = field("id").unwrap();
                    acked.push(reply(zrq, &["ack", &id]));
                }
            }
            Value::Array(acked)
        }
        39 => reply(zrq, &["info"]),
        40 => reply(zrq, &["list", "retrying"]),
        41 => reply(zrq, &["dead"]),
        42 => reply(zrq, &["schedules"]),
        43 => reply(zrq, &["batchinfo", "bb"]),
        44 => reply(zrq, &["result", "k"]),
        45 => reply(zrq, &["list", "pending"]),
        _ => unreachable!(),
    };
    if n == 30 {
        assert!(matches!(value, Value::Int(_)), "{value:?}");
        return "<first run>".to_string();
    }
    canon(value).replace(queue, "<queue>")
}

const STEPS: usize = 46;

fn normalise_job(mut job: JobMap, queue: &str) -> JobMap {
    // A lease token is `<entry>:<attempt>`: the entry id differs between runs, the attempt not.
    if let Some(lease) = job.get_mut("lease") {
        if let Some((_, attempt)) = lease.rsplit_once(':') {
            *lease = format!("<entry>:{attempt}");
        }
    }
    for (field, value) in job.iter_mut() {
        let varies = match field.as_str() {
            "created_at" | "started_at" | "finished_at" | "run_at" => value.parse::<i64>().is_ok(),
            "entry" => value
                .split_once('-')
                .is_some_and(|(a, b)| a.parse::<u64>().is_ok() && b.parse::<u64>().is_ok()),
            "queue" => value == queue,
            _ => false,
        };
        if varies {
            *value = format!("<{field}>");
        }
    }
    job
}

/// Everything zrq keeps for `queue`, with timestamps and stream entry ids blanked out.
fn view(conn: &mut Connection, queue: &str) -> BTreeMap<String, String> {
    let prefix = format!("zrq:{{{queue}}}:");
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query(conn)
        .unwrap();
    keys.sort();
    let mut out = BTreeMap::new();
    for key in keys {
        let suffix = key.strip_prefix(&prefix).unwrap().to_string();
        let kind: String = redis::cmd("TYPE").arg(&key).query(conn).unwrap();
        let shown = match (suffix.as_str(), kind.as_str()) {
            ("wake", _) => continue,
            (_, "hash") if suffix.starts_with("job:") || suffix.starts_with("batch:") => {
                let raw: Vec<(Vec<u8>, Vec<u8>)> =
                    redis::cmd("HGETALL").arg(&key).query(conn).unwrap();
                let record: JobMap = raw
                    .into_iter()
                    .map(|(f, v)| {
                        let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
                        (text(f), text(v))
                    })
                    .collect();
                format!("{:?}", normalise_job(record, queue))
            }
            // A packed job record: its fields, normalised as a hash record's are (the raw
            // bytes, field order included, are compared by `raw_view`); it must be the spec's
            // exact encoding of them (`support::packed_fields`).
            // (One that does not decode, as a test wrote it, is shown as its bytes.)
            (_, "string") if suffix.starts_with("job:") => {
                let raw = support::raw_string(conn, &key).unwrap_or_default();
                if zrq_core::packed::decode(&key, &raw).is_err() {
                    format!("unreadable {:?}", String::from_utf8_lossy(&raw))
                } else {
                    // Field order included: both backends must store the same bytes.
                    let fields = support::packed_fields(&key, &raw);
                    let order: Vec<&str> = fields.iter().map(|(f, _)| f.as_str()).collect();
                    let order = format!("{order:?}");
                    let record: JobMap = fields.into_iter().collect();
                    format!("{order} {:?}", normalise_job(record, queue))
                }
            }
            // A records hash of finished jobs: each field a packed record without its state,
            // shown as a job record is (the field order of each record included).
            (_, "hash") if suffix.ends_with(":records") => {
                let raw: Vec<(String, Vec<u8>)> =
                    redis::cmd("HGETALL").arg(&key).query(conn).unwrap();
                let mut shown: Vec<String> = raw
                    .into_iter()
                    .map(|(id, value)| {
                        if zrq_core::packed::decode(&key, &value).is_err() {
                            return format!(
                                "{id}: unreadable {:?}",
                                String::from_utf8_lossy(&value)
                            );
                        }
                        let fields = support::packed_fields(&key, &value);
                        let order: Vec<&str> = fields.iter().map(|(f, _)| f.as_str()).collect();
                        let order = format!("{order:?}");
                        let record: JobMap = fields.into_iter().collect();
                        blank_uuids(&format!("{id}: {order} {:?}", normalise_job(record, queue)))
                    })
                    .collect();
                // Generated ids blanked, then sorted: a large hash keeps no order.
                shown.sort();
                shown.join("; ")
            }
            (_, "hash") => {
                let all: BTreeMap<String, String> =
                    redis::cmd("HGETALL").arg(&key).query(conn).unwrap();
                format!("{all:?}")
            }
            (_, "zset") => {
                // Members only: scores are times, and equal times order members by name.
                let mut members: Vec<String> = redis::cmd("ZRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(-1)
                    .query(conn)
                    .unwrap();
                members.sort();
                format!("{members:?}")
            }
            (_, "stream") => stream_view(conn, &key),
            _ => format!("unexpected {kind}"),
        };
        out.insert(format!("{suffix} ({kind})"), shown);
    }
    out
}

/// A stream's entries (job ids), its group and its pending list, entry ids replaced by job ids.
fn stream_view(conn: &mut Connection, key: &str) -> String {
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query(conn)
        .unwrap();
    // A reference entry shows the job it names; an inline entry its fields, in order.
    let job_of: BTreeMap<String, String> = entries
        .iter()
        .map(|(entry, fields)| {
            let shown = match fields.as_slice() {
                [(field, job)] if field == "job" => job.clone(),
                inline => format!("inline {inline:?}"),
            };
            (entry.clone(), shown)
        })
        .collect();
    let groups: Value = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(key)
        .query(conn)
        .unwrap();
    if groups == Value::Array(Vec::new()) {
        return format!(
            "entries {:?}; no group",
            job_of.values().collect::<Vec<_>>()
        );
    }
    let groups: Vec<JobMap> = jobs(groups)
        .into_iter()
        .map(|mut g| {
            g.remove("last-delivered-id");
            g
        })
        .collect();
    let pending: Vec<(String, String, i64, i64)> = redis::cmd("XPENDING")
        .arg(key)
        .arg("zrq")
        .arg("-")
        .arg("+")
        .arg(1000)
        .query(conn)
        .unwrap();
    let pending: Vec<(String, String, i64)> = pending
        .into_iter()
        .map(|(entry, consumer, _idle, deliveries)| {
            (
                job_of.get(&entry).cloned().unwrap_or(entry),
                consumer,
                deliveries,
            )
        })
        .collect();
    let consumers: Value = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg(key)
        .arg("zrq")
        .query(conn)
        .unwrap();
    let consumers: Vec<(String, String)> = jobs(consumers)
        .into_iter()
        .map(|c| (c["name"].clone(), c["pending"].clone()))
        .collect();
    let ids: Vec<&String> = job_of.values().collect();
    format!("entries {ids:?}; groups {groups:?}; pending {pending:?}; consumers {consumers:?}")
}

#[test]
fn the_keyspace_has_the_same_shape_whichever_backend_wrote_it() {
    let server = both();
    let runs = [
        ("by-module", Writer::Only(MODULE)),
        ("by-lua", Writer::Only(LUA)),
        ("by-turns", Writer::Alternating),
    ];
    let mut conns: Vec<(Zrq, Zrq)> = runs
        .iter()
        .map(|_| {
            let resp3 = |backend| Zrq {
                conn: server.conn_resp3(),
                backend,
            };
            (resp3(MODULE), resp3(LUA))
        })
        .collect();
    let mut replies: Vec<Vec<String>> = vec![Vec::new(); runs.len()];
    for n in 0..STEPS {
        for (r, (queue, writer)) in runs.iter().enumerate() {
            let (m, l) = &mut conns[r];
            let zrq = if writer.backend(n) == MODULE { m } else { l };
            replies[r].push(step(zrq, queue, n));
        }
    }
    for (r, (queue, _)) in runs.iter().enumerate().skip(1) {
        for (n, (got, want)) in replies[r].iter().zip(&replies[0]).enumerate() {
            assert_eq!(got, want, "step {n}: {queue} vs by-module");
        }
    }

    let mut conn = server.conn();
    // Generated ids (batch members, the callback) differ from run to run: blanked out.
    let blank = |view: BTreeMap<String, String>| -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (k, v) in view {
            let mut key = blank_uuids(&k);
            while out.contains_key(&key) {
                key.push('+');
            }
            out.insert(key, blank_uuids(&v));
        }
        out
    };
    let want = blank(view(&mut conn, "by-module"));
    let kinds: Vec<&str> = want.keys().map(String::as_str).collect();
    for kind in [
        "active (zset)",
        "batch:bb (hash)",
        "cancelled:log (stream)",
        "cancelled:records (hash)",
        "completed:log (stream)",
        "completed:records (hash)",
        "retrying (zset)",
        "schedules (hash)",
        "stats (hash)",
        "stream (stream)",
        "stream:5 (stream)",
        "ticks (zset)",
        "unique (hash)",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing: {want:#?}");
    }
    let jobs = kinds.iter().filter(|k| k.starts_with("job:")).count();
    assert_eq!(
        jobs, 4,
        "b and f (active), h and n (retrying); the finished a, c, d, e, k, m and the two batch \
         members are kept in records hashes, and the callback is pending (its inline entry holds \
         it): {want:#?}"
    );
    for (queue, _) in &runs[1..] {
        let got = blank(view(&mut conn, queue));
        for key in want.keys().chain(got.keys()) {
            assert_eq!(got.get(key), want.get(key), "{key}: {queue} vs by-module");
        }
    }

    // The Lua-only wake-up list: one token per job Lua added, none from the module.
    let wake = |conn: &mut Connection, queue: &str| -> i64 {
        redis::cmd("LLEN")
            .arg(format!("zrq:{{{queue}}}:wake"))
            .query(conn)
            .unwrap()
    };
    assert_eq!(wake(&mut conn, "by-module"), 0);
    // Lua pushes a token whenever a job enters a stream: enqueued a b c d e f h n, k released
    // by e's ACK, the two batch members, a requeued, RESUME, and the batch's callback.
    assert_eq!(wake(&mut conn, "by-lua"), 14);
    // Taking turns, Lua took the odd steps: b d f h n and the batch members enqueued, k released
    // (step 19); the module took the requeue, the resume and the callback (step 38).
    assert_eq!(wake(&mut conn, "by-turns"), 8);
}

// ------------------------------------------------------------------------------------------------
// Same input, same reply: arguments, JSON documents, wrong key types, unreadable records.
// ------------------------------------------------------------------------------------------------

/// A reply as comparable text: an error as `code detail`, maps with sorted keys, and what differs
/// from run to run (generated ids, timestamps, stream entry ids) blanked out.
/// Whether `text` is a UUID.
fn is_uuid(text: &str) -> bool {
    text.len() == 36
        && text.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}
/// A reply as comparable text: maps with sorted keys, and what differs from run to run
/// (generated ids, timestamps, stream entry ids) blanked out.
fn canon(value: Value) -> String {
    match value {
        Value::Map(pairs) => {
            let mut shown: Vec<String> = pairs
                .into_iter()
                .map(|(k, v)| {
                    let key = canon(k);
                    let varies = [
                        "created_at",
                        "started_at",
                        "finished_at",
                        "run_at",
                        "entry",
                        "lease",
                        "next_run",
                        "last_run",
                        "oldest_pending_age_ms",
                    ]
                    .iter()
                    .any(|f| key == format!("{f:?}"));
                    let value = if varies {
                        "<varies>".to_string()
                    } else {
                        canon(v)
                    };
                    format!("{key}={value}")
                })
                .collect();
            shown.sort();
            format!("{{{}}}", shown.join(", "))
        }
        Value::Array(items) => {
            let shown: Vec<String> = items.into_iter().map(canon).collect();
            format!("[{}]", shown.join(", "))
        }
        Value::BulkString(b) => {
            let text = String::from_utf8_lossy(&b);
            if is_uuid(&text) {
                "<uuid>".to_string()
            } else if zrq_core::job::has_generated_form(&text) {
                "<id>".to_string()
            } else {
                format!("{text:?}")
            }
        }
        other => format!("{other:?}"),
    }
}

/// A reply as comparable text (see [`canon`]); errors as `error <code> <detail>`.
fn outcome(zrq: &mut Zrq, command: &str, args: &[&[u8]]) -> String {
    match zrq.call_raw(command, args) {
        // SCHEDULE replies with its first run: a time.
        Ok(Value::Int(_)) if command == "schedule" => "<first run>".to_string(),
        Ok(value) => canon(value),
        Err(err) => match (err.code(), err.detail()) {
            (Some(code), Some(detail)) => format!("error {code} {detail}"),
            (Some(code), None) => format!("error {code}"),
            _ => format!("client error {err}"),
        },
    }
}

/// `text` with every UUID replaced by `<uuid>` and every generated job id (a stream entry id,
/// maybe prefixed `p<n>:`, see `zrq_core::job::inline_id`) by `<id>`: both differ from run to run.
fn blank_uuids(text: &str) -> String {
    let bytes = text.as_bytes();
    let is_uuid_at = |at: usize| {
        bytes.len() >= at + 36
            && (0..36).all(|i| match i {
                8 | 13 | 18 | 23 => bytes[at + i] == b'-',
                _ => bytes[at + i].is_ascii_hexdigit(),
            })
    };
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'-';
    let digits_from = |at: usize| {
        bytes[at..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    // The length of a generated id starting at `at`, if one does (as a whole word).
    let generated_at = |at: usize| {
        if at > 0 && word(bytes[at - 1]) {
            return None;
        }
        let prefix = match bytes.get(at..at + 3) {
            Some([b'p', b'1'..=b'9', b':']) => 3,
            _ => 0,
        };
        let ms = digits_from(at + prefix);
        let dash = at + prefix + ms;
        if ms == 0 || bytes.get(dash) != Some(&b'-') {
            return None;
        }
        let seq = digits_from(dash + 1);
        let end = dash + 1 + seq;
        (seq > 0 && !bytes.get(end).is_some_and(|b| word(*b))).then_some(end - at)
    };
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        if is_uuid_at(at) {
            out.extend_from_slice(b"<uuid>");
            at += 36;
        } else if let Some(len) = generated_at(at) {
            out.extend_from_slice(b"<id>");
            at += len;
        } else {
            out.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn blanking_finds_uuids_and_generated_ids() {
    let cases = [
        ("job:1764489600000-3", "job:<id>"),
        ("job:p7:1764489600000-3 (hash)", "job:<id> (hash)"),
        ("[\"5-0\",\"p1:6-2\"]", "[\"<id>\",\"<id>\"]"),
        ("0192f3a4-7b1c-7def-8000-0123456789ab", "<uuid>"),
        ("order-17", "order-17"),
        ("a1-2", "a1-2"),
        ("1-2-3", "1-2-3"),
        ("9:1-0", "9:<id>"),
        ("p0:1-0", "p0:<id>"),
    ];
    for (text, want) in cases {
        assert_eq!(blank_uuids(text), want, "{text}");
    }
}

/// Runs `setup` on a module server and on a Lua server, sends each case to both (in order, so
/// a case sees the effects of the ones before it), and collects every disagreement.
fn disagreements(setup: impl Fn(&mut Connection), cases: &[(&str, Vec<Vec<u8>>)]) -> Vec<String> {
    let servers = [MODULE.server(), LUA.server()];
    let mut conns: Vec<Zrq> = servers
        .iter()
        .zip([MODULE, LUA])
        .map(|(server, backend)| {
            server.leave_leases_to_reclaim();
            setup(&mut server.conn());
            Zrq {
                conn: server.conn_resp3(),
                backend,
            }
        })
        .collect();
    let mut out = Vec::new();
    for (command, args) in cases {
        let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let want = outcome(&mut conns[0], command, &args);
        let got = outcome(&mut conns[1], command, &args);
        if got != want {
            let shown: Vec<String> = args.iter().map(|a| zrq_core::error::show_arg(a)).collect();
            out.push(format!(
                "{command} {shown:?}\n  module: {want}\n  lua:    {got}"
            ));
        }
    }
    let views: Vec<BTreeMap<String, String>> = servers
        .iter()
        .map(|server| {
            let mut conn = server.conn();
            let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
            keys.retain(|k| !k.ends_with(":wake"));
            keys.sort();
            let mut queues: Vec<String> = keys
                .iter()
                .filter_map(|k| Some(k.strip_prefix("zrq:{")?.split_once("}:")?.0.to_string()))
                .collect();
            queues.sort();
            queues.dedup();
            let mut all = BTreeMap::new();
            for queue in queues {
                for (key, shown) in view(&mut conn, &queue) {
                    all.insert(format!("{queue} {key}"), shown);
                }
            }
            all.insert("keys".to_string(), format!("{keys:?}"));
            all.into_iter()
                .map(|(k, v)| (blank_uuids(&k), blank_uuids(&v)))
                .collect()
        })
        .collect();
    let names: std::collections::BTreeSet<&String> =
        views[0].keys().chain(views[1].keys()).collect();
    for name in names {
        let (want, got) = (views[0].get(name), views[1].get(name));
        if want != got {
            out.push(format!("key {name}\n  module: {want:?}\n  lua:    {got:?}"));
        }
    }
    out
}

fn args(items: &[&[u8]]) -> Vec<Vec<u8>> {
    items.iter().map(|a| a.to_vec()).collect()
}

/// A small deterministic generator (xorshift), so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// JSON documents and near misses: every branch of serde_json's parser, then random ones.
fn json_corpus() -> Vec<Vec<u8>> {
    let fixed: &[&[u8]] = &[
        b"",
        b" ",
        b"\n",
        b"{}",
        b"[]",
        b"{",
        b"}",
        b"[",
        b"]",
        b"[1,]",
        b"{\"a\":1,}",
        b"{'a':1}",
        b"{} {}",
        b"1 2",
        b"01",
        b"-",
        b"-0",
        b"-01",
        b"1.",
        b"1.e5",
        b"1e",
        b"1e+",
        b"1E-7",
        b"0.5e+10",
        b".5",
        b"+1",
        b"tru",
        b"true",
        b"trueX",
        b"nul",
        b"null ",
        b"fals",
        b"falsy",
        b"\"abc",
        b"\"a\\x\"",
        b"\"\\u12\"",
        b"\"\\u12G4\"",
        b"\"\\ud800\"",
        b"\"\\uDC00\\u0041\"",
        b"\"\x01\"",
        b"\"\t\"",
        b"\"\x7f\"",
        b"[1\n,\n2,\n]",
        b"{\"a\"}",
        b"{\"a\" 1}",
        b"{1:2}",
        b"{\"a\":}",
        b"[1 2]",
        b"{\"a\":1 \"b\":2}",
        b"\n\n  x",
        b"NaN",
        b"Infinity",
        b"-Infinity",
        b"0x10",
        b"1e400",
        b"-1e400",
        b"123456789012345678901234567890",
        b"\xff",
        b"\"\xc3\x28\"",
        b"\"\xc0\xaf\"",
        b"\"\xed\xa0\x80\"",
        b"\"\xf4\x90\x80\x80\"",
        b"\"\xe2\x82\xac \xf0\x9f\x98\x80\"",
        b"\xef\xbb\xbf{}",
        b"\"\\/\\b\\f\\n\\r\\t\\\"\\\\\"",
        b"{\"a\":[1,{\"b\":null}]}",
        b" \t\r\n[ 1 , 2 ] \t\r\n",
        b"[\r\n1,\r\n]",
        b"{\"a\":1}\n\nx",
        b"\"\\",
        b"\"\\u",
        b"[true,false,null]",
        b"[-]",
        b"[--1]",
        b"[1.5e]",
        b"{\"\":\"\"}",
        b"{,}",
        b"[,1]",
    ];
    let mut corpus: Vec<Vec<u8>> = fixed.iter().map(|d| d.to_vec()).collect();
    let deep = 5000;
    corpus.push([vec![b'['; deep], vec![b']'; deep]].concat());
    corpus.push(vec![b'['; deep]);
    corpus.push(format!("{}1{}", "{\"a\":[".repeat(300), "]}".repeat(300)).into_bytes());
    corpus.push(format!("\"{}\"", "x".repeat(100_000)).into_bytes());

    let pieces: &[&[u8]] = &[
        b"{",
        b"}",
        b"[",
        b"]",
        b",",
        b":",
        b"\"",
        b"\\",
        b"u",
        b"0",
        b"1",
        b"9",
        b"-",
        b"+",
        b".",
        b"e",
        b"E",
        b" ",
        b"\n",
        b"\t",
        b"\r",
        b"true",
        b"null",
        b"f",
        b"a",
        b"\"k\":",
        b"\x01",
        b"\xc3\xa9",
        b"\xff",
        b"\\u00e9",
        b"\\n",
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..1500 {
        let len = rng.below(10);
        let doc: Vec<u8> = (0..len)
            .flat_map(|_| pieces[rng.below(pieces.len())].to_vec())
            .collect();
        corpus.push(doc);
    }
    // Near misses of valid documents: one byte changed, inserted or removed.
    let valid: &[&[u8]] = &[
        b"{\"a\":[1,2.5e3,{\"b\":null}],\n\"c\":\"d\\u00e9\"}",
        b"[true, false, -0.0, \"x\"]",
    ];
    for _ in 0..1500 {
        let mut doc = valid[rng.below(valid.len())].to_vec();
        let at = rng.below(doc.len());
        let piece = pieces[rng.below(pieces.len())];
        match rng.below(3) {
            0 => {
                doc.remove(at);
            }
            1 => {
                doc.splice(at..at, piece.iter().copied());
            }
            _ => {
                doc.splice(at..at + 1, piece.iter().copied());
            }
        }
        corpus.push(doc);
    }
    corpus
}

#[test]
fn both_backends_judge_json_alike() {
    let mut cases = Vec::new();
    for doc in json_corpus() {
        cases.push(("enqueue", args(&[b"q", b"t", &doc, b"ID", b"j"])));
        cases.push(("ack", args(&[b"q", b"nope", b"RESULT", &doc])));
    }
    let wrong = disagreements(|_| {}, &cases);
    assert!(
        wrong.is_empty(),
        "{} of {}:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}

#[test]
fn both_backends_judge_arguments_alike() {
    let long = vec![b'n'; 201];
    let just = vec![b'n'; 200];
    let odd: &[&[u8]] = &[
        b"",
        b" ",
        b"a b",
        b"q{",
        b"}",
        b"a\x00b",
        b"caf\xc3\xa9",
        b"\xff",
        b"'",
        b"\\",
        b"\x7f",
        b"~!",
        &long,
        &just,
    ];
    let numbers: &[&[u8]] = &[
        b"0",
        b"1",
        b"-0",
        b"-1",
        b"007",
        b"+1",
        b"",
        b"-",
        b" 1",
        b"1 ",
        b"1.0",
        b"1e3",
        b"0x10",
        b"1000",
        b"1001",
        b"315360000000",
        b"315360000001",
        b"9223372036854775807",
        b"9223372036854775808",
        b"-9223372036854775809",
        b"00000000000000000000000000001",
        b"99999999999999999999999",
        b"\xef\xbc\x91",
        b"1\x00",
    ];
    let mut cases: Vec<(&str, Vec<Vec<u8>>)> = Vec::new();
    for command in ["enqueue", "fetch", "ack", "state", "job", "reclaim"] {
        cases.push((command, Vec::new()));
        cases.push((command, args(&[b"q"])));
    }
    cases.push(("state", args(&[b"q", b"a", b"b"])));
    cases.push(("job", args(&[b"q", b"a", b"b"])));
    for name in odd {
        cases.push(("enqueue", args(&[name, b"t", b"{}", b"ID", b"n"])));
        cases.push(("enqueue", args(&[b"q", name, b"{}", b"ID", b"n"])));
        cases.push(("enqueue", args(&[b"q", b"t", b"{}", b"ID", name])));
        cases.push(("fetch", args(&[name, b"w"])));
        cases.push(("fetch", args(&[b"nothing", name])));
        cases.push(("ack", args(&[b"q", name])));
        cases.push(("state", args(&[name, b"x"])));
        cases.push(("job", args(&[b"q", name])));
        cases.push(("reclaim", args(&[b"q", name])));
        // As option names.
        cases.push(("enqueue", args(&[b"q", b"t", b"{}", name, b"1"])));
        cases.push(("fetch", args(&[b"q", b"w", name, b"1"])));
    }
    for n in numbers {
        cases.push((
            "enqueue",
            args(&[b"q", b"t", b"{}", b"ID", b"n", b"RETRIES", n]),
        ));
        cases.push((
            "enqueue",
            args(&[b"q", b"t", b"{}", b"ID", b"n", b"TIMEOUT", n]),
        ));
        cases.push(("fetch", args(&[b"nothing", b"w", b"COUNT", n])));
        // A valid BLOCK would block the module's FETCH on an empty queue: only refusals here.
        if zrq_core::args::integer("BLOCK", n, 0, MAX_DURATION_MS).is_err() {
            cases.push(("fetch", args(&[b"nothing", b"w", b"BLOCK", n])));
        }
        cases.push(("reclaim", args(&[b"nothing", b"w", b"COUNT", n])));
    }
    let options: &[&[&[u8]]] = &[
        &[b"retries", b"2", b"Timeout", b"5"],
        &[b"RETRIES"],
        &[b"RETRIES", b"1", b"retries", b"2"],
        &[b"RETRIES", b"x", b"RETRIES"],
        &[b"RETRIES", b"1", b"TIMEOUT"],
        &[b"RETRIES", b"1", b"BOGUS"],
        &[b"ID", b"n", b"ID"],
        &[b"COUNT", b"1"],
    ];
    for opts in options {
        let mut a: Vec<&[u8]> = vec![b"q", b"t", b"{}"];
        a.extend_from_slice(opts);
        cases.push(("enqueue", args(&a)));
        let mut a: Vec<&[u8]> = vec![b"nothing", b"w"];
        a.extend_from_slice(opts);
        cases.push(("fetch", args(&a)));
        let mut a: Vec<&[u8]> = vec![b"q", b"n"];
        a.extend_from_slice(opts);
        cases.push(("ack", args(&a)));
    }
    cases.push((
        "fetch",
        args(&[
            b"nothing", b"w", b"count", b"2", b"block", b"1", b"COUNT", b"3",
        ]),
    ));
    cases.push((
        "ack",
        args(&[b"q", b"n", b"RESULT", b"{", b"RESULT", b"{}"]),
    ));
    cases.push(("ack", args(&[b"q", b"n", b"RESULT", b"{}", b"RESULT"])));
    cases.extend(lifecycle_cases());
    let wrong = disagreements(|_| {}, &cases);
    assert!(
        wrong.is_empty(),
        "{} of {}:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}

/// Arguments of the commands beyond the core six, good and bad, in an order that also exercises
/// them on live jobs.
fn lifecycle_cases() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let long_error = vec![b'e'; 65_537];
    let mut cases: Vec<(&'static str, Vec<Vec<u8>>)> = Vec::new();
    for spec in zrq_core::spec::COMMANDS {
        let short = spec.name.trim_start_matches("zrq.");
        cases.push((short, Vec::new()));
        cases.push((short, args(&[b"q{"])));
        cases.push((
            short,
            args(&[b"lq", b"a", b"b", b"c", b"d", b"e", b"f", b"g"]),
        ));
    }
    let fixed: &[(&str, &[&[u8]])] = &[
        (
            "enqueue",
            &[b"lq", b"t", b"{}", b"ID", b"j1", b"RETRIES", b"1"],
        ),
        (
            "enqueue",
            &[b"lq", b"t", b"{}", b"ID", b"j2", b"RETRIES", b"0"],
        ),
        (
            "enqueue",
            &[b"lq", b"t", b"{}", b"ID", b"j3", b"DELAY", b"600000"],
        ),
        ("fetch", &[b"lq", b"w", b"COUNT", b"2"]),
        ("touch", &[b"lq", b"j1", b"TIMEOUT", b"0"]),
        ("touch", &[b"lq", b"j1", b"PROGRESS", b"101"]),
        ("touch", &[b"lq", b"j1", b"PROGRESS", b"-1"]),
        ("touch", &[b"lq", b"j1", b"BOGUS", b"1"]),
        (
            "touch",
            &[b"lq", b"j1", b"progress", b"50", b"timeout", b"60000"],
        ),
        ("touch", &[b"lq", b"j3"]),
        ("touch", &[b"lq", b"j1", b"LEASE", b"stale:1"]),
        ("touch", &[b"lq", b"j1", b"LEASE", b""]),
        ("touch", &[b"lq", b"j1", b"LEASE"]),
        (
            "ack",
            &[b"lq", b"j1", b"LEASE", b"stale:1", b"RESULT", b"1"],
        ),
        ("ack", &[b"lq", b"j1", b"RESULT", b"{", b"LEASE", b"x y"]),
        ("ack", &[b"lq", b"j1", b"LEASE", b"a", b"lease", b"b"]),
        ("release", &[b"lq", b"j1", b"LEASE", b"stale:1"]),
        ("release", &[b"lq", b"j1", b"LEASE", b"\xff"]),
        ("release", &[b"lq", b"j1", b"BOGUS", b"1"]),
        ("release", &[b"lq", b"j3"]),
        ("release", &[b"lq", b"nope"]),
        ("fail", &[b"lq", b"j1", b"boom", b"LEASE", b"stale:1"]),
        (
            "fail",
            &[b"lq", b"j1", b"boom", b"RETRYIN", b"1", b"LEASE", b"{"],
        ),
        ("fail", &[b"lq", b"j1"]),
        ("fail", &[b"lq", b"j1", b"\xff"]),
        ("fail", &[b"lq", b"j1", &long_error]),
        ("fail", &[b"lq", b"j1", b"boom", b"RETRYIN", b"x"]),
        (
            "fail",
            &[b"lq", b"j1", b"boom", b"RETRYIN", b"5", b"RETRYIN", b"6"],
        ),
        ("fail", &[b"lq", b"j1", b"boom", b"RETRYIN", b"600000"]),
        ("fail", &[b"lq", b"j1", b"again"]),
        ("fail", &[b"lq", b"j2", b"last"]),
        ("result", &[b"lq", b"j2"]),
        ("result", &[b"lq", b"j1"]),
        ("result", &[b"lq", b"nope"]),
        ("result", &[b"lq", b"j2", b"BLOCK", b"x"]),
        ("result", &[b"lq", b"j2", b"BLOCK", b"5"]),
        ("dead", &[b"lq"]),
        ("dead", &[b"lq", b"COUNT", b"0"]),
        ("dead", &[b"lq", b"CURSOR", b"-1"]),
        ("dead", &[b"lq", b"CURSOR", b"9223372036854775807"]),
        ("dead", &[b"lq", b"CURSOR", b"9223372036854775808"]),
        (
            "dead",
            &[b"lq", b"COUNT", b"5", b"CURSOR", b"0", b"count", b"1"],
        ),
        ("list", &[b"lq", b"bogus"]),
        ("list", &[b"lq", b"\xff"]),
        ("list", &[b"lq", b"RETRYING"]),
        ("list", &[b"lq", b"scheduled", b"COUNT", b"1"]),
        ("list", &[b"lq", b"dead", b"COUNT", b"0"]),
        ("info", &[b"lq"]),
        ("requeue", &[b"lq", b"nope"]),
        ("requeue", &[b"lq", b"all"]),
        ("cancel", &[b"lq", b"j3"]),
        ("cancel", &[b"lq", b"j3"]),
        ("delete", &[b"lq", b"j3"]),
        ("delete", &[b"lq", b"j3"]),
        ("pause", &[b"lq"]),
        ("fetch", &[b"lq", b"w"]),
        ("resume", &[b"lq"]),
        ("fetch", &[b"lq", b"w"]),
        ("info", &[b"lq"]),
        ("queues", &[]),
        ("queues", &[b"x"]),
        ("batch", &[b"lq", b"b"]),
        ("batch", &[b"lq", b"b", b"JOB", b"t"]),
        ("batch", &[b"lq", b"b", b"JOB", b"t", b"{"]),
        ("batch", &[b"lq", b"b", b"DELAY", b"1", b"JOB", b"t", b"{}"]),
        (
            "batch",
            &[b"lq", b"b", b"RETRIES", b"x", b"JOB", b"t", b"{}"],
        ),
        (
            "batch",
            &[
                b"lq",
                b"b",
                b"ON-COMPLETE",
                b"t",
                b"{}",
                b"ON-COMPLETE",
                b"t",
                b"{}",
            ],
        ),
        (
            "batch",
            &[
                b"lq",
                b"b",
                b"ON-COMPLETE",
                b"t",
                b"[1]",
                b"PRIORITY",
                b"3",
                b"JOB",
                b"t",
                b"{}",
                b"JOB",
                b"u",
                b"[]",
            ],
        ),
        ("batch", &[b"lq", b"b", b"JOB", b"t", b"{}"]),
        ("batchinfo", &[b"lq", b"b"]),
        ("batchinfo", &[b"lq", b"nope"]),
        ("fetch", &[b"lq", b"w", b"COUNT", b"10"]),
        ("schedule", &[b"lq", b"s", b"BOGUS", b"1", b"t", b"{}"]),
        ("schedule", &[b"lq", b"s", b"EVERY", b"0", b"t", b"{}"]),
        ("schedule", &[b"lq", b"s", b"every", b"60000", b"t", b"{"]),
        (
            "schedule",
            &[b"lq", b"s", b"EVERY", b"60000", b"t", b"{}", b"DELAY", b"5"],
        ),
        (
            "schedule",
            &[
                b"lq", b"s", b"EVERY", b"60000", b"t", b"{}", b"UNIQUE", b"u", b"KEEP", b"0",
            ],
        ),
        (
            "schedule",
            &[
                b"lq",
                b"s",
                b"EVERY",
                b"60000",
                b"t",
                b"{\"a\":\"\\u00e9\"}",
                b"UNIQUE",
                b"u",
                b"KEEP",
                b"5",
            ],
        ),
        (
            "schedule",
            &[
                b"lq",
                b"c",
                b"CRON",
                b"0 0 1 1 *",
                b"t",
                b"[]",
                b"PRIORITY",
                b"2",
            ],
        ),
        ("schedules", &[b"lq"]),
        ("unschedule", &[b"lq", b"nope"]),
        ("unschedule", &[b"lq", b"s"]),
        ("schedules", &[b"lq"]),
    ];
    for (command, a) in fixed {
        cases.push((command, args(a)));
    }
    let crons: &[&[u8]] = &[
        "é * * * *".as_bytes(),
        b"5' * * * *",
        b"* * * * *",
        b"*/0 * * * *",
        b"60 * * * *",
        b"1-2-3 * * * *",
        b"+5 * * * *",
        b"5-1 * * * *",
        b"1,,2 * * * *",
        b"* * * *",
        b"* * * * * *",
        b"0 0 30 2 *",
        b"0 0 31 * 1",
        b"\t0  0 * * 7 ",
        b"0 0 * * 7/2",
        b"0 0 * * 8",
        b"*/15 9-17 * * 1-5",
        b"a * * * *",
        b"0-59/4294967296 * * * *",
        b"0/5 * * * *",
        b"1-/2 * * * *",
        b"\x0b0 0 * * *",
        b"\xff * * * *",
        b"",
        b"0 24 * * *",
        b"0 0 0 * *",
        b"0 0 * 13 *",
        b"0 0 * 0 *",
        b"-1 * * * *",
        b"*/+2 * * * *",
    ];
    for cron in crons {
        cases.push(("schedule", args(&[b"lq", b"k", b"CRON", cron, b"t", b"{}"])));
    }
    cases.push(("schedules", args(&[b"lq"])));
    cases
}

#[test]
fn both_backends_report_wrong_types_and_unreadable_records_alike() {
    let mut setup: Vec<redis::Cmd> = Vec::new();
    let mut cases: Vec<(&str, Vec<Vec<u8>>)> = Vec::new();
    let all_commands = |queue: &str, id: &str| -> Vec<(&'static str, Vec<Vec<u8>>)> {
        let (q, i) = (queue.as_bytes(), id.as_bytes());
        vec![
            ("enqueue", args(&[q, b"t", b"{}", b"ID", i])),
            ("fetch", args(&[q, b"w"])),
            ("ack", args(&[q, i])),
            ("state", args(&[q, i])),
            ("job", args(&[q, i])),
            ("reclaim", args(&[q, b"w"])),
            ("fail", args(&[q, i, b"boom"])),
            ("touch", args(&[q, i])),
            ("result", args(&[q, i])),
            ("cancel", args(&[q, i])),
            ("dead", args(&[q])),
            ("requeue", args(&[q, b"ALL"])),
            ("delete", args(&[q, i])),
            ("info", args(&[q])),
            ("list", args(&[q, b"pending"])),
            ("list", args(&[q, b"dead"])),
            (
                "schedule",
                args(&[q, b"s", b"EVERY", b"60000", b"t", b"{}"]),
            ),
            ("schedules", args(&[q])),
            ("unschedule", args(&[q, b"s"])),
            ("batchinfo", args(&[q, b"b"])),
            ("batch", args(&[q, b"b", b"JOB", b"t", b"{}"])),
            ("pause", args(&[q])),
            ("resume", args(&[q])),
        ]
    };
    // One queue per wrong key, each holding a string (or a list) where zrq expects its type.
    for (n, suffix) in [
        "stream",
        "stream:5",
        "job:j",
        "active",
        "waiting",
        "batch:b",
        "scheduled",
        "retrying",
        "completed",
        "cancelled",
        "dead",
        "unique",
        "paused",
        "schedules",
        "ticks",
        "stats",
    ]
    .iter()
    .enumerate()
    {
        for (kind, write) in [("s", "SET"), ("l", "RPUSH")] {
            let queue = format!("wt{n}{kind}");
            let mut cmd = redis::cmd(write);
            cmd.arg(format!("zrq:{{{queue}}}:{suffix}")).arg("x");
            setup.push(cmd);
            cases.extend(all_commands(&queue, "j"));
        }
    }
    // Unreadable job records, active with an expired lease so RECLAIM meets them too.
    let records: &[&[(&str, &[u8])]] = &[
        &[("id", b"j")],
        &[("state", b"weird"), ("id", b"j")],
        &[("state", b"Active")],
        &[
            ("state", b"active"),
            ("id", b"j"),
            ("queue", b"q"),
            ("task", b"t"),
        ],
        &[
            ("state", b"active"),
            ("id", b"j"),
            ("queue", b"q"),
            ("task", b"t"),
            ("payload", b"\xff"),
        ],
    ];
    let base: &[(&str, &[u8])] = &[
        ("id", b"j"),
        ("queue", b"q"),
        ("task", b"t"),
        ("payload", b"{}"),
        ("state", b"pending"),
        ("attempt", b"1"),
        ("max_attempts", b"3"),
        ("timeout", b"10"),
        ("created_at", b"1"),
    ];
    let mut variants: Vec<Vec<(&str, Vec<u8>)>> = records
        .iter()
        .map(|r| r.iter().map(|(f, v)| (*f, v.to_vec())).collect())
        .collect();
    let odd_integers: &[&[u8]] = &[
        b"x",
        b"+5",
        b"007",
        b"-0",
        b"",
        b" 1",
        b"1.5",
        b"99999999999999999999",
        b"-9223372036854775808",
        b"9007199254740992",
        b"\xff",
    ];
    for field in [
        "attempt",
        "max_attempts",
        "timeout",
        "created_at",
        "started_at",
        "finished_at",
    ] {
        for value in odd_integers {
            let mut record: Vec<(&str, Vec<u8>)> =
                base.iter().map(|(f, v)| (*f, v.to_vec())).collect();
            record.retain(|(f, _)| *f != field);
            record.push((field, value.to_vec()));
            variants.push(record);
        }
    }
    for state in ["pending", "completed", "dead"] {
        let mut record: Vec<(&str, Vec<u8>)> = base.iter().map(|(f, v)| (*f, v.to_vec())).collect();
        record.retain(|(f, _)| *f != "state");
        record.push(("state", state.as_bytes().to_vec()));
        record.push(("extra", b"kept out of replies".to_vec()));
        variants.push(record);
    }
    // Long payloads (the Lua library checks texts of 4 KB or more for UTF-8 by other means than
    // short ones): valid ones of every kind of character, and ones broken in each way UTF-8 can
    // be, which both backends must find unreadable.
    let mixed = "é\u{920}\u{1000}\u{d000}\u{e000}\u{1f600}\u{40000}\u{100000}a";
    let long_texts: Vec<Vec<u8>> = vec![
        "a".repeat(5000).into_bytes(),
        "é".repeat(3000).into_bytes(),
        mixed.repeat(300).into_bytes(),
    ];
    let breaks: &[&[u8]] = &[
        b"\xc0\x80",
        b"\xc1\xbf",
        b"\xe0\x80\x80",
        b"\xed\xa0\x80",
        b"\xf0\x80\x80\x80",
        b"\xf4\x90\x80\x80",
        b"\xf5\x80\x80\x80",
        b"\xff",
        b"\x80",
        b"a\xbf",
        b"\xe4\xc3\xa9\xb8\xad",
        b"\xc3\xa9\xa9",
        b"\xe4\xb8",
        b"\xf0\x9f\x98",
    ];
    let mut payloads = long_texts.clone();
    for (n, broken) in breaks.iter().enumerate() {
        let text = &long_texts[n % long_texts.len()];
        payloads.push([text.as_slice(), broken, text.as_slice()].concat());
        payloads.push([text.as_slice(), broken].concat());
    }
    for payload in payloads {
        let quoted = [b"\"".as_slice(), &payload, b"\""].concat();
        let mut record: Vec<(&str, Vec<u8>)> = base.iter().map(|(f, v)| (*f, v.to_vec())).collect();
        record.retain(|(f, _)| *f != "payload");
        record.push(("payload", quoted));
        variants.push(record);
    }
    for (n, record) in variants.iter().enumerate() {
        let queue = format!("cr{n}");
        let mut hset = redis::cmd("HSET");
        hset.arg(format!("zrq:{{{queue}}}:job:j"));
        for (field, value) in record {
            hset.arg(*field).arg(value.as_slice());
        }
        setup.push(hset);
        cases.extend(all_commands(&queue, "j").into_iter().filter(|(c, _)| {
            matches!(
                *c,
                "state" | "job" | "ack" | "enqueue" | "result" | "touch" | "fail" | "cancel"
            )
        }));
    }
    // The same records packed (PACKED.md), where that format can hold them (it has no `id`,
    // `queue` or unknown field: those are left out), fields in record order; and packed strings
    // that are not records at all. Both backends read a packed record by the same rules.
    let record_commands = |queue: &str| {
        all_commands(queue, "j").into_iter().filter(|(c, _)| {
            matches!(
                *c,
                "state" | "job" | "ack" | "enqueue" | "result" | "touch" | "fail" | "cancel"
            )
        })
    };
    for (n, record) in variants.iter().enumerate() {
        if record.iter().any(|(f, _)| *f == "extra") {
            continue;
        }
        let mut fields: Vec<(&str, &[u8])> = record
            .iter()
            .filter(|(f, _)| !matches!(*f, "id" | "queue"))
            .map(|(f, v)| (*f, v.as_slice()))
            .collect();
        fields.sort_by_key(|(f, _)| {
            zrq_core::job::FIELDS
                .iter()
                .position(|(name, _)| name == f)
                .unwrap_or(usize::MAX)
        });
        let queue = format!("cp{n}");
        let mut set = redis::cmd("SET");
        set.arg(format!("zrq:{{{queue}}}:job:j"))
            .arg(support::pack_by_spec(&fields));
        setup.push(set);
        cases.extend(record_commands(&queue));
    }
    for (n, (_, raw)) in support::malformed_packed().into_iter().enumerate() {
        let queue = format!("cm{n}");
        let mut set = redis::cmd("SET");
        set.arg(format!("zrq:{{{queue}}}:job:j")).arg(raw);
        setup.push(set);
        cases.extend(record_commands(&queue));
    }
    // A stream without the consumer group: both report Redis' own error the same way.
    let mut xadd = redis::cmd("XADD");
    xadd.arg("zrq:{nogroup}:stream")
        .arg("*")
        .arg("job")
        .arg("x");
    setup.push(xadd);
    cases.push(("fetch", args(&[b"nogroup", b"w"])));

    let run_setup = |conn: &mut Connection| {
        for cmd in &setup {
            let _: Value = cmd.query(conn).unwrap();
        }
    };
    let wrong = disagreements(run_setup, &cases);
    assert!(
        wrong.is_empty(),
        "{} of {}:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}

#[test]
fn entries_without_a_readable_job_are_dropped_alike() {
    // FETCH removes stream entries whose job record is missing, unreadable (a hash or a packed
    // string) or not pending, and RECLAIM drops leases without an active job; both backends
    // leave the same keyspace.
    let setup = |server: &Server| {
        let mut conn = server.conn();
        let _: () = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg("zrq:{q}:stream")
            .arg("zrq")
            .arg("0")
            .arg("MKSTREAM")
            .query(&mut conn)
            .unwrap();
        for id in ["missing", "corrupt", "done", "pcorrupt", "pdone"] {
            let _: String = redis::cmd("XADD")
                .arg("zrq:{q}:stream")
                .arg("1-*")
                .arg("job")
                .arg(id)
                .query(&mut conn)
                .unwrap();
        }
        let _: String = redis::cmd("XADD")
            .arg("zrq:{q}:stream")
            .arg("2-*")
            .arg("other")
            .arg("field")
            .query(&mut conn)
            .unwrap();
        let _: () = redis::cmd("HSET")
            .arg("zrq:{q}:job:corrupt")
            .arg("state")
            .arg("pending")
            .query(&mut conn)
            .unwrap();
        let _: () = redis::cmd("HSET")
            .arg("zrq:{q}:job:done")
            .arg("state")
            .arg("completed")
            .arg("id")
            .arg("done")
            .query(&mut conn)
            .unwrap();
        // The same as packed records: one that does not decode, one of a finished job.
        support::set_raw(&mut conn, "zrq:{q}:job:pcorrupt", b"s7:pending t1:x ");
        support::set_raw(
            &mut conn,
            "zrq:{q}:job:pdone",
            b"t1:t p2:{} s9:completed c1:1 f1:2",
        );
        let _: () = redis::cmd("ZADD")
            .arg("zrq:{q}:active")
            .arg(1)
            .arg("gone")
            .arg(2)
            .arg("done")
            .arg(3)
            .arg("pdone")
            .query(&mut conn)
            .unwrap();
    };
    let mut results = Vec::new();
    for backend in [MODULE, LUA] {
        let server = both();
        setup(&server);
        let mut zrq = server.zrq(backend);
        let fetched = zrq.fetch("q", "w", 10);
        let reclaimed = reclaim(&mut zrq, "q", "w");
        let mut conn = server.conn();
        let stream = stream_entries_and_group(&mut conn, "zrq:{q}:stream");
        let others: Vec<(String, Vec<u8>)> = server
            .snapshot()
            .into_iter()
            .filter(|(key, _)| !key.ends_with(":stream"))
            .collect();
        results.push((fetched, reclaimed, stream, others));
    }
    assert!(results[0].0.is_empty() && results[0].1.is_empty());
    assert_eq!(results[0], results[1]);
}

/// A stream's entries and its groups, all of it (the entry ids are fixed by the test).
fn stream_entries_and_group(conn: &mut Connection, key: &str) -> String {
    let entries: Value = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query(conn)
        .unwrap();
    let groups: Value = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(key)
        .query(conn)
        .unwrap();
    format!("{entries:?} {groups:?}")
}

// ------------------------------------------------------------------------------------------------
// Lua-only: generated ids, and the wake-up list that stands in for blocking FETCH.
// ------------------------------------------------------------------------------------------------

#[test]
fn lua_ids_are_unique_time_ordered_uuid_v7_even_within_a_millisecond() {
    let server = both();
    let mut conn = server.conn();
    let mut pipe = redis::pipe();
    // Jobs that enter the queue scheduled get UUIDs (a plain job's id is its stream entry's).
    for _ in 0..3000 {
        pipe.cmd("FCALL")
            .arg("zrq_enqueue")
            .arg(1)
            .arg("q")
            .arg("t")
            .arg("{}")
            .arg("DELAY")
            .arg(600_000);
    }
    // And many inside one transaction, where the clock may not move at all.
    pipe.cmd("MULTI").ignore();
    for _ in 0..500 {
        pipe.cmd("FCALL")
            .arg("zrq_enqueue")
            .arg(1)
            .arg("q")
            .arg("t")
            .arg("{}")
            .arg("DELAY")
            .arg(600_000)
            .ignore();
    }
    pipe.cmd("EXEC");
    let mut replies: Vec<Value> = pipe.query(&mut conn).unwrap();
    let Some(Value::Array(in_multi)) = replies.pop() else {
        panic!("EXEC reply")
    };
    let ids: Vec<String> = replies
        .into_iter()
        .chain(in_multi)
        .map(|v| redis::from_redis_value(v).unwrap())
        .collect();
    assert_eq!(ids.len(), 3500);
    for id in &ids {
        let hex: String = id.chars().filter(|c| *c != '-').collect();
        assert_eq!(id.len(), 36, "{id}");
        assert_eq!(
            id.char_indices()
                .filter(|(_, c)| *c == '-')
                .map(|(i, _)| i)
                .collect::<Vec<_>>(),
            [8, 13, 18, 23],
            "{id}"
        );
        assert!(
            hex.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
            "{id}"
        );
        assert_eq!(&hex[12..13], "7", "version 7: {id}");
        assert!("89ab".contains(&hex[16..17]), "variant 10xx: {id}");
    }
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(sorted, ids, "ids sort in creation order");
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len(), "ids are unique");
    // The timestamp is the server's clock, in ms.
    let ms = u64::from_str_radix(&ids[0].replace('-', "")[..12], 16).unwrap();
    let record = support::record(&mut conn, "q", &ids[0]);
    let created: u64 = record["created_at"].parse().unwrap();
    assert_eq!(ms, created);
}

#[test]
fn lua_enqueue_wakes_one_client_blocked_on_the_wake_list() {
    let server = both();
    let mut l = server.zrq(LUA);
    let wake = "zrq:{q}:wake";
    // A worker with nothing to do blocks on the list (after a FETCH that found nothing).
    assert!(l.fetch("q", "w", 1).is_empty());
    let url = server.url();
    let waiter = std::thread::spawn(move || {
        let mut conn = redis::Client::open(url).unwrap().get_connection().unwrap();
        let started = Instant::now();
        let popped: Option<(String, String)> = redis::cmd("BLPOP")
            .arg(wake)
            .arg(10)
            .query(&mut conn)
            .unwrap();
        (popped, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(200));
    let id = l.enqueue("q", "t", "{}", &[]);
    let (popped, waited) = waiter.join().unwrap();
    assert_eq!(popped, Some((wake.to_string(), "1".to_string())));
    assert!(
        waited < Duration::from_secs(5),
        "woken promptly (BLPOP waits 10 s otherwise): {waited:?}"
    );
    assert_eq!(l.fetch("q", "w", 1)[0]["id"], id);

    // Tokens are capped, so a queue nobody waits on keeps a tiny list.
    for _ in 0..WAKE_CAP + 172 {
        l.enqueue("q", "t", "{}", &[]);
    }
    let len: i64 = redis::cmd("LLEN")
        .arg(wake)
        .query(&mut server.conn())
        .unwrap();
    assert_eq!(len, WAKE_CAP as i64);
    // An idempotent re-enqueue adds no job and no token (an own id: a plain job's generated id
    // cannot be given as ID).
    l.enqueue("q", "t", "{}", &["ID", "idem"]);
    let len: i64 = redis::cmd("LLEN")
        .arg(wake)
        .query(&mut server.conn())
        .unwrap();
    assert_eq!(len, WAKE_CAP as i64);
    l.enqueue("q", "t", "{}", &["ID", "idem"]);
    let len: i64 = redis::cmd("LLEN")
        .arg(wake)
        .query(&mut server.conn())
        .unwrap();
    assert_eq!(len, WAKE_CAP as i64);

    // BLOCK is validated like the module's, then answered at once (a script cannot block).
    let started = Instant::now();
    let none = jobs(l.call("fetch", &["empty", "w", "BLOCK", "5000"]).unwrap());
    assert!(none.is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "answered before BLOCK 5000 ends"
    );

    // A wake key of another type is refused before anything is written.
    let _: () = redis::cmd("SET")
        .arg("zrq:{p}:wake")
        .arg("x")
        .query(&mut server.conn())
        .unwrap();
    let before = server.snapshot();
    let err = l.call::<String>("enqueue", &["p", "t", "{}"]).unwrap_err();
    assert_eq!(err.code(), Some("WRONGTYPE"));
    assert_eq!(
        err.detail(),
        Some("key 'zrq:{p}:wake' holds a string, zrq expects a list")
    );
    assert_eq!(server.snapshot(), before);
}

#[test]
fn fcall_must_name_the_queue_as_its_one_key() {
    let server = both();
    let mut conn = server.conn();
    for numkeys in [0, 2] {
        let err = redis::cmd("FCALL")
            .arg("zrq_state")
            .arg(numkeys)
            .arg("q")
            .arg("id")
            .query::<Value>(&mut conn)
            .unwrap_err();
        assert_eq!(err.code(), Some("ERR"), "{err}");
        assert_eq!(
            err.detail(),
            Some("zrq_state takes the queue as its one key: FCALL zrq_state 1 <queue> ..."),
        );
    }
}

#[test]
fn lua_fetch_and_reclaim_do_the_timers_work() {
    let server = Backend::Lua.server();
    let mut l = server.zrq(LUA);
    let mut conn = server.conn();
    let llen = |conn: &mut Connection| -> i64 {
        redis::cmd("LLEN").arg("zrq:{q}:wake").query(conn).unwrap()
    };
    let delayed = l.enqueue("q", "t", "{}", &["DELAY", "100"]);
    assert_eq!(l.state("q", &delayed).as_deref(), Some("scheduled"));
    assert_eq!(llen(&mut conn), 0, "no token for a job that is not due");
    std::thread::sleep(Duration::from_millis(150));
    // RECLAIM, the worker's periodic call, promotes it (and wakes blocked workers).
    assert!(reclaim(&mut l, "q", "w").is_empty());
    assert_eq!(l.state("q", &delayed).as_deref(), Some("pending"));
    assert_eq!(llen(&mut conn), 1);

    // A retry is promoted by the FETCH that delivers it.
    let fetched = l.fetch("q", "w", 1);
    assert_eq!(fetched[0]["id"], delayed);
    let state: String = l
        .call("fail", &["q", &delayed, "boom", "RETRYIN", "100"])
        .unwrap();
    assert_eq!(state, "retrying");
    assert!(l.fetch("q", "w", 1).is_empty(), "not due yet");
    std::thread::sleep(Duration::from_millis(150));
    let again = l.fetch("q", "w", 1);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0]["attempt"], "2");
}

#[test]
fn lua_schedule_ticks_fire_once_however_many_workers_call() {
    let server = Backend::Lua.server();
    let mut l = server.zrq(LUA);
    // The shortest period the library allows (zrq.every-min-ms, fixed at its default in Lua).
    let every = 1000;
    let _: i64 = l
        .call(
            "schedule",
            &["q", "tick", "EVERY", &every.to_string(), "t", "{}"],
        )
        .unwrap();
    let started = Instant::now();
    let run_for = Duration::from_millis(2600);
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let url = server.url();
            std::thread::spawn(move || {
                let conn = redis::Client::open(url).unwrap().get_connection().unwrap();
                let mut zrq = Zrq { conn, backend: LUA };
                let mut got = Vec::new();
                while started.elapsed() < run_for {
                    let consumer = format!("w{w}");
                    if w % 2 == 0 {
                        got.extend(zrq.fetch("q", &consumer, 10));
                    } else {
                        let _ = reclaim(&mut zrq, "q", &consumer);
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                got
            })
        })
        .collect();
    let mut jobs: Vec<JobMap> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    jobs.extend(l.fetch("q", "late", 100));
    let mut created: Vec<i64> = jobs
        .iter()
        .map(|j| j["created_at"].parse().unwrap())
        .collect();
    created.sort_unstable();
    let ticks = run_for.as_millis() as usize / every;
    assert!(
        (2..=ticks + 1).contains(&created.len()),
        "{} jobs for {ticks} ticks: {created:?}",
        created.len()
    );
    for pair in created.windows(2) {
        assert!(
            pair[1] - pair[0] >= (every as i64) / 2,
            "two jobs for one tick: {created:?}"
        );
    }
    let schedules: Value = l.call("schedules", &["q"]).unwrap();
    let listed = zrq_tests::jobs(schedules);
    assert_eq!(listed.len(), 1);
    assert!(listed[0].contains_key("last_run"));
}

/// Every key of `queue` as raw text in stored order (hash fields and stream entry fields in the
/// order Redis keeps them, a packed job record as its bytes), with times, entry ids and generated
/// ids blanked out: what the backends write must match byte for byte, field order included.
fn raw_view(conn: &mut Connection, queue: &str) -> Vec<String> {
    let prefix = format!("zrq:{{{queue}}}:");
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query(conn)
        .unwrap();
    keys.sort();
    let time = |field: &str| ["created_at", "started_at", "finished_at", "run_at"].contains(&field);
    let mut out = Vec::new();
    // (The Lua backend's wake-up list is its own.)
    for key in keys.into_iter().filter(|k| !k.ends_with(":wake")) {
        let kind: String = redis::cmd("TYPE").arg(&key).query(conn).unwrap();
        let shown = match kind.as_str() {
            // A records hash of finished jobs: each field a packed record, times blanked.
            "hash" if key.ends_with(":records") => {
                let fields: Vec<(String, Vec<u8>)> =
                    redis::cmd("HGETALL").arg(&key).query(conn).unwrap();
                let mut fields: Vec<String> = fields
                    .into_iter()
                    .map(|(id, value)| {
                        blank_uuids(&format!(
                            "{id}={}",
                            support::packed_view(&key, &value, time)
                        ))
                    })
                    .collect();
                // Generated ids blanked, then sorted: a large hash keeps no order.
                fields.sort();
                fields.join(" ")
            }
            "hash" => {
                let fields: Vec<(String, String)> =
                    redis::cmd("HGETALL").arg(&key).query(conn).unwrap();
                let fields: Vec<String> = fields
                    .into_iter()
                    .map(|(f, v)| {
                        let v = if time(&f) { "<time>".to_string() } else { v };
                        format!("{f}={v}")
                    })
                    .collect();
                fields.join(" ")
            }
            "stream" => {
                let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
                    .arg(&key)
                    .arg("-")
                    .arg("+")
                    .query(conn)
                    .unwrap();
                let entries: Vec<String> = entries
                    .into_iter()
                    .map(|(_, fields)| format!("{fields:?}"))
                    .collect();
                entries.join(" | ")
            }
            "zset" => {
                let members: Vec<String> = redis::cmd("ZRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(-1)
                    .query(conn)
                    .unwrap();
                format!("{members:?}")
            }
            "string" => {
                let raw = support::raw_string(conn, &key).unwrap_or_default();
                if zrq_core::packed::decode(&key, &raw).is_err() {
                    format!("unreadable {:?}", String::from_utf8_lossy(&raw))
                } else {
                    format!("packed {}", support::packed_view(&key, &raw, time))
                }
            }
            other => other.to_string(),
        };
        let key = key.strip_prefix(&prefix).unwrap_or(&key);
        out.push(blank_uuids(&format!("{key}: {shown}")));
    }
    out
}

/// Plain jobs are stored alike by both backends, field order included: their inline entries,
/// the record FETCH writes, the record of one cancelled while pending, an inline parent's record
/// written when a child registers with it.
#[test]
fn inline_jobs_are_stored_alike_field_order_included() {
    let server = both();
    let mut views = Vec::new();
    for backend in [MODULE, LUA] {
        let queue = format!("st{backend:?}");
        let q = queue.as_str();
        let mut zrq = server.zrq(backend);
        let options = [
            "RETRIES", "2", "TIMEOUT", "900", "BACKOFF", "5", "KEEP", "60000", "UNIQUE", "u",
        ];
        zrq.enqueue(q, "a", "[1]", &options);
        let cancelled = zrq.enqueue(q, "b", "[2]", &["PRIORITY", "3", "KEEP", "60000"]);
        let parent = zrq.enqueue(q, "c", "[3]", &["RETRIES", "0"]);
        zrq.enqueue(q, "d", "[4]", &["ID", "child", "AFTER", &parent]);
        zrq.enqueue(q, "e", "[5]", &["PRIORITY", "9"]);
        let stored_plain = raw_view(&mut server.conn(), q);
        assert_eq!(ack(&mut zrq, q, &cancelled, None), 0, "not active");
        let _: i64 = zrq.call("cancel", &[q, &cancelled]).unwrap();
        // Fetches e (priority 9) and a.
        let fetched = zrq.fetch(q, "w", 2);
        assert_eq!(fetched.len(), 2);
        views.push((stored_plain, raw_view(&mut server.conn(), q)));
    }
    let (module, lua) = (&views[0], &views[1]);
    assert_eq!(
        module.0, lua.0,
        "inline entries and the materialized parent"
    );
    assert_eq!(module.1, lua.1, "after CANCEL and FETCH");
}

/// Jobs read for their links (a waiting child when its parent finishes, a parent at ENQUEUE …
/// AFTER) with payloads, results and errors longer than the Lua library reads in one piece (it
/// reads such records in parts and patches what follows the payload) are stored alike by both
/// backends: a child released, one released with a parent's long result, one cancelled in
/// cascade (with its retention), one whose error note gets shorter (the whole record written
/// again), and parents given children.
#[test]
fn linked_records_read_in_parts_are_written_alike() {
    let server = both();
    let payload = format!("\"{}\"", "é\u{1f600}a".repeat(1500));
    let long_result = format!("[\"{}\"]", "ü".repeat(3000));
    let too_long = format!("\"{}\"", "a".repeat(40_000));
    let mut views = Vec::new();
    let mut kept = Vec::new();
    for backend in [MODULE, LUA] {
        let queue = format!("linked{backend:?}");
        let q = queue.as_str();
        let mut zrq = server.zrq(backend);
        let p = payload.as_str();
        // Q completes with a long result before its child is enqueued; P gets two children.
        zrq.enqueue(q, "t", p, &["ID", "q"]);
        zrq.enqueue(q, "t", p, &["ID", "p"]);
        zrq.enqueue(q, "t", p, &["ID", "f", "RETRIES", "0"]);
        for (id, _) in [("q", 0), ("p", 1), ("f", 2)] {
            assert_eq!(zrq.fetch(q, "w", 1)[0]["id"], id);
        }
        assert_eq!(ack(&mut zrq, q, "q", Some(&long_result)), 1);
        zrq.enqueue(q, "t", p, &["ID", "c1", "AFTER", "p"]);
        zrq.enqueue(
            q,
            "t",
            p,
            &["ID", "c2", "WITHRESULTS", "AFTER", "p", "AFTER", "q"],
        );
        zrq.enqueue(q, "t", p, &["ID", "g", "AFTER", "f"]);
        // A child of three parents: the first completes with a result too long to copy (a long
        // note), the second dies (the note gets shorter), the third stays unfinished.
        for id in ["a", "b", "c"] {
            zrq.enqueue(q, "t", p, &["ID", id, "RETRIES", "0"]);
            assert_eq!(zrq.fetch(q, "w", 1)[0]["id"], id);
        }
        let options = [
            "ID",
            "s",
            "WITHRESULTS",
            "ONPARENTFAIL",
            "run",
            "AFTER",
            "a",
            "AFTER",
            "b",
            "AFTER",
            "c",
        ];
        zrq.enqueue(q, "t", p, &options);
        assert_eq!(ack(&mut zrq, q, "a", Some(&too_long)), 1);
        let _: Value = zrq.call("fail", &[q, "b", "boom"]).expect("FAIL b");
        let _: Value = zrq.call("fail", &[q, "f", "boom"]).expect("FAIL f");
        assert_eq!(ack(&mut zrq, q, "p", Some(&long_result)), 1);
        let mut conn = server.conn();
        views.push(raw_view(&mut conn, q));
        // Cancelled in cascade without a KEEP of its own: kept in the records hash, its key gone.
        let field: bool = redis::cmd("HEXISTS")
            .arg(format!("zrq:{{{q}}}:cancelled:records"))
            .arg("g")
            .query(&mut conn)
            .expect("HEXISTS");
        let key: bool = redis::cmd("EXISTS")
            .arg(format!("zrq:{{{q}}}:job:g"))
            .query(&mut conn)
            .expect("EXISTS");
        kept.push((field, key));
        assert_eq!(zrq.state(q, "c1").as_deref(), Some("pending"));
        assert_eq!(zrq.state(q, "c2").as_deref(), Some("pending"));
        assert_eq!(zrq.state(q, "g").as_deref(), Some("cancelled"));
        assert_eq!(zrq.state(q, "s").as_deref(), Some("waiting"));
        let c2 = zrq.job(q, "c2").expect("c2");
        assert!(c2["parents"].contains("\\u00fc"), "{}", c2["parents"]);
    }
    assert_eq!(views[0], views[1]);
    assert!(
        kept.iter().all(|kept| *kept == (true, false)),
        "cancelled in cascade, kept in the records hash: {kept:?}"
    );
}

/// Malformed records read for their links, with payloads longer than the Lua library reads in
/// one piece: a waiting child (its parent's ACK skips it and leaves it as it is) and a parent at
/// ENQUEUE … AFTER (CORRUPT, with the same text) are treated alike by both backends.
#[test]
fn malformed_linked_records_read_in_parts_are_refused_alike() {
    let big = format!("[\"{}\"]", "x".repeat(9000));
    let big_field = format!("p{}:{big}", big.len());
    let mut cases: Vec<(String, Vec<u8>)> = support::malformed_packed()
        .into_iter()
        .map(|(what, raw)| {
            let text = String::from_utf8_lossy(&raw)
                .replace("p2:{}", &big_field)
                .replace("s7:pending", "s7:waiting");
            (what.to_string(), text.into_bytes())
        })
        .collect();
    let tail = |rest: &[u8]| {
        let mut raw = format!("t1:t {big_field} s7:waiting").into_bytes();
        raw.extend_from_slice(rest);
        raw
    };
    cases.extend([
        ("consumer not UTF-8".to_string(), tail(b" c1:1 w2:\xff\xfe")),
        ("payload stored twice".to_string(), tail(b" c1:1 p2:{}")),
        (
            "payload runs past the end".to_string(),
            format!("t1:t p{}:{big} s7:waiting c1:1", big.len() + 40).into_bytes(),
        ),
        (
            "payload ends the record".to_string(),
            format!("t1:t {big_field}").into_bytes(),
        ),
        (
            "space after the payload".to_string(),
            format!("t1:t {big_field} ").into_bytes(),
        ),
        (
            "no space after the payload".to_string(),
            format!("t1:t {big_field}s7:waiting c1:1").into_bytes(),
        ),
        (
            "long unknown field".to_string(),
            tail(format!(" c1:1 q6000:{}", "y".repeat(6000)).as_bytes()),
        ),
        (
            "long state".to_string(),
            format!("t1:t {big_field} s6000:{} c1:1", "y".repeat(6000)).into_bytes(),
        ),
    ]);
    let server = both();
    let mut conn = server.conn();
    let mut disagree = Vec::new();
    for (what, raw) in &cases {
        let mut seen = Vec::new();
        for backend in [MODULE, LUA] {
            let q = format!("bad{backend:?}");
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("zrq:{{{q}}}:*"))
                .query(&mut conn)
                .expect("KEYS");
            for key in keys {
                let _: i64 = redis::cmd("DEL").arg(key).query(&mut conn).expect("DEL");
            }
            let mut zrq = server.zrq(backend);
            zrq.enqueue(&q, "t", "{}", &["ID", "p"]);
            assert_eq!(zrq.fetch(&q, "w", 1).len(), 1);
            support::tamper(&mut conn, &q, "p", |record| {
                record.insert("children".to_string(), r#"["x"]"#.to_string());
            });
            let child = support::job_key(&q, "x");
            support::set_raw(&mut conn, &child, raw);
            let acked = outcome(&mut zrq, "ack", &[q.as_bytes(), b"p"]);
            let after = support::raw_string(&mut conn, &child);
            let enqueued = outcome(
                &mut zrq,
                "enqueue",
                &[q.as_bytes(), b"t", b"{}", b"AFTER", b"x"],
            );
            seen.push(format!(
                "ack {acked}; child {}; enqueue {}",
                after.as_deref() == Some(raw.as_slice()),
                enqueued.replace(&q, "<q>")
            ));
        }
        if seen[0] != seen[1] {
            disagree.push(format!("{what}: module {} | lua {}", seen[0], seen[1]));
        }
    }
    assert!(disagree.is_empty(), "{disagree:#?}");
}

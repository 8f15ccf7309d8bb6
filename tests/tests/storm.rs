//! A randomized storm of valid, mutated and tampered commands against both backends.
//!
//! Each step runs one command inside MULTI between two digests of the whole dataset (`DEBUG
//! DIGEST`, which covers values and expiry times, plus `XINFO GROUPS` of every stream of the
//! queue, as the digest leaves consumer groups out on Redis 7.0), so the timer cannot act in
//! between. Checked at every step: an error reply starts with a code of the error table, and an
//! error reply wrote nothing (both digests equal). Steps run in epochs on an emptied database;
//! each epoch ends with a phase where records are tampered with (junk fields written back packed
//! or as a hash of the earlier format, malformed packed strings, a key of another type) while
//! commands go on, then a PING (no crash). Before each tampering phase the invariant
//! audit of the queue (`zrq_tests::audit`) must pass.
//!
//! `ZRQ_STORM_STEPS` (default 2,000 per backend), `ZRQ_STORM_SECONDS` (default 30: no epoch starts
//! later, so a slow machine runs fewer steps) and `ZRQ_STORM_SEED` (default: from the clock) set
//! the size, the time bound and the seed; every failure message names the seed and the step, so
//! `ZRQ_STORM_SEED=<seed>` reproduces it.

use crate::support;

use zrq_core::state::State;
use zrq_core::ErrorCode;
use zrq_tests::audit::audit;
use zrq_tests::redis::{self, Value};
use zrq_tests::{conformance, Backend, Rng, Zrq};

const QUEUE: &str = "storm";
/// Steps per epoch (the database is emptied at the start of each).
const EPOCH: usize = 200;
/// Tampered steps at the end of each epoch.
const TAMPERED: usize = 20;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Argument values chosen by the generator.
struct Gen {
    rng: Rng,
    /// Job ids seen in replies, besides the `j<n>` ids the generator gives itself.
    seen: Vec<String>,
}

impl Gen {
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.rng.below(items.len() as u64) as usize]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.rng.below(100) < percent
    }

    fn number(&mut self, below: u64) -> String {
        self.rng.below(below).to_string()
    }

    fn id(&mut self) -> String {
        if !self.seen.is_empty() && self.chance(40) {
            let at = self.rng.below(self.seen.len() as u64) as usize;
            return self.seen[at].clone();
        }
        format!("j{}", self.rng.below(40))
    }

    fn payload(&mut self) -> String {
        self.pick(&[
            "{}",
            "[1,2]",
            "{\"a\":{\"b\":[true,null]}}",
            "\"text\"",
            "42",
        ])
        .to_string()
    }

    /// A command with arguments that are mostly valid (some combinations are refused, which is
    /// checked the same way).
    fn valid(&mut self) -> (&'static str, Vec<String>) {
        let q = QUEUE.to_string();
        let commands = [
            "enqueue",
            "enqueue",
            "enqueue",
            "fetch",
            "fetch",
            "ack",
            "ack",
            "fail",
            "touch",
            "reclaim",
            "state",
            "job",
            "result",
            "cancel",
            "dead",
            "requeue",
            "delete",
            "pause",
            "resume",
            "resume",
            "schedule",
            "unschedule",
            "schedules",
            "batch",
            "batchinfo",
            "info",
            "list",
        ];
        let command = self.pick(&commands);
        let consumer = format!("w{}", self.rng.below(3));
        let args: Vec<String> = match command {
            "enqueue" => {
                let mut a = vec![q, self.pick(&["t", "u"]).to_string(), self.payload()];
                if self.chance(60) {
                    a.extend(["ID".to_string(), self.id()]);
                }
                let options: [(&str, u64); 10] = [
                    ("RETRIES", 20),
                    ("TIMEOUT", 20),
                    ("DELAY", 15),
                    ("PRIORITY", 30),
                    ("UNIQUE", 15),
                    ("KEEP", 10),
                    ("AFTER", 20),
                    ("WITHRESULTS", 10),
                    ("ONPARENTFAIL", 10),
                    ("BACKOFF", 10),
                ];
                for (option, percent) in options {
                    if !self.chance(percent) {
                        continue;
                    }
                    a.push(option.to_string());
                    match option {
                        "RETRIES" => a.push(self.number(3)),
                        "TIMEOUT" => a.push(self.pick(&["5", "60000"]).to_string()),
                        "DELAY" => a.push(self.number(30)),
                        "PRIORITY" => a.push(self.number(10)),
                        "UNIQUE" => a.push(format!("u{}", self.rng.below(3))),
                        "KEEP" => a.push("600000".to_string()),
                        "AFTER" => a.push(self.id()),
                        "ONPARENTFAIL" => a.push(self.pick(&["cancel", "run"]).to_string()),
                        "BACKOFF" => a.push(self.number(50)),
                        _ => {}
                    }
                }
                a
            }
            "fetch" | "reclaim" => vec![q, consumer, "COUNT".to_string(), self.number(4) + "1"],
            "ack" => {
                let mut a = vec![q, self.id()];
                if self.chance(50) {
                    a.extend(["RESULT".to_string(), self.payload()]);
                }
                a
            }
            "fail" => {
                let mut a = vec![q, self.id(), "boom".to_string()];
                if self.chance(50) {
                    a.extend(["RETRYIN".to_string(), self.number(20)]);
                }
                a
            }
            "touch" => vec![q, self.id(), "PROGRESS".to_string(), self.number(101)],
            "state" | "job" | "result" | "cancel" | "delete" => vec![q, self.id()],
            "requeue" if self.chance(30) => {
                // A page of the dead set: small pages, and cursors in and past it.
                let mut a = vec![q, "ALL".to_string()];
                if self.chance(50) {
                    a.extend(["COUNT".to_string(), self.number(4)]);
                }
                if self.chance(30) {
                    a.extend(["CURSOR".to_string(), self.number(4)]);
                }
                a
            }
            "requeue" => vec![q, self.id()],
            "dead" => vec![q, "COUNT".to_string(), "5".to_string()],
            "list" => {
                let state = State::ALL[self.rng.below(State::ALL.len() as u64) as usize];
                vec![
                    q,
                    state.as_str().to_string(),
                    "COUNT".to_string(),
                    "5".to_string(),
                ]
            }
            "schedule" => {
                let name = format!("s{}", self.rng.below(3));
                let (kind, spec) = if self.chance(70) {
                    ("EVERY", self.pick(&["1000", "60000"]).to_string())
                } else {
                    ("CRON", "* * * * *".to_string())
                };
                vec![
                    q,
                    name,
                    kind.to_string(),
                    spec,
                    "t".to_string(),
                    self.payload(),
                ]
            }
            "unschedule" => vec![q, format!("s{}", self.rng.below(3))],
            "batch" => {
                let mut a = vec![q, format!("b{}", self.rng.below(20))];
                if self.chance(50) {
                    a.extend(["ON-COMPLETE".to_string(), "cb".to_string(), self.payload()]);
                }
                for _ in 0..=self.rng.below(3) {
                    a.extend(["JOB".to_string(), "t".to_string(), self.payload()]);
                }
                a
            }
            "batchinfo" => vec![q, format!("b{}", self.rng.below(20))],
            _ => vec![q],
        };
        (command, args)
    }

    /// A junk argument: bad names, bad numbers, bad JSON, bytes that are not UTF-8, huge values.
    fn junk(&mut self) -> Vec<u8> {
        let picks: [&[u8]; 18] = [
            b"",
            b" ",
            b"{",
            b"}",
            b"a b",
            b"\xff\xfe",
            b"-1",
            b"99999999999999999999",
            b"1e3",
            b"+5",
            b"0x10",
            b"COUNT",
            b"ALL",
            b"[",
            b"{\"a\":",
            b"null",
            b"zrq:{other}:job:x",
            b"other",
        ];
        match self.rng.below(22) {
            0 => vec![b'x'; 300],
            1 => vec![b'y'; 100_000],
            2 => {
                let depth = 100;
                let mut deep = vec![b'['; depth];
                deep.extend(vec![b']'; depth]);
                deep
            }
            3 => (0..1 + self.rng.below(20))
                .map(|_| self.rng.below(256) as u8)
                .collect(),
            n => picks[(n as usize - 4) % picks.len()].to_vec(),
        }
    }

    /// A valid command, mutated: an argument dropped, added, replaced by junk, an unknown or a
    /// repeated option.
    fn mutated(&mut self) -> (&'static str, Vec<Vec<u8>>) {
        let (command, args) = self.valid();
        let mut args: Vec<Vec<u8>> = args.into_iter().map(String::into_bytes).collect();
        let at = self.rng.below(args.len() as u64 + 1) as usize;
        match self.rng.below(5) {
            0 if !args.is_empty() => {
                args.remove(at.min(args.len() - 1));
            }
            1 => {
                let junk = self.junk();
                args.insert(at, junk);
            }
            2 if !args.is_empty() => {
                let junk = self.junk();
                let at = at.min(args.len() - 1);
                args[at] = junk;
            }
            3 => args.extend([b"FOO".to_vec(), b"1".to_vec()]),
            _ if args.len() >= 2 => {
                let tail = args[args.len() - 2..].to_vec();
                args.extend(tail);
            }
            _ => args.push(self.junk()),
        }
        (command, args)
    }

    /// A raw write that tampers with the queue's records, as a user with access to its keys could.
    fn tamper(&mut self) -> Vec<Vec<u8>> {
        let job = format!("zrq:{{{QUEUE}}}:job:{}", self.id());
        let field_values: [(&str, &[u8]); 12] = [
            ("state", b"weird"),
            ("priority", b"99"),
            ("priority", b"-2"),
            ("queue", b"other"),
            ("id", b"j0"),
            ("attempt", b"x"),
            ("children", b"[\"}x\",\"{other}:job:j1\",\"a b\",7]"),
            ("children", b"not json"),
            ("batch", b"b1"),
            ("unique", b"u 1"),
            ("parents", b"{\"j1\":"),
            ("entry", b"0-0"),
        ];
        match self.rng.below(17) {
            // (A job record's field is set by `tamper_record`: the record is a packed string.)
            n @ 0..=11 => {
                let (field, value) = field_values[n as usize];
                vec![b"RECORD-SET".to_vec(), job.into_bytes(), field.into(), value.to_vec()]
            }
            16 => {
                let malformed = support::malformed_packed();
                let at = self.rng.below(malformed.len() as u64) as usize;
                vec![b"SET".to_vec(), job.into_bytes(), malformed[at].1.clone()]
            }
            12 => {
                let batch = format!("zrq:{{{QUEUE}}}:batch:b{}", self.rng.below(20));
                let (field, value) =
                    *self.pick_pair(&[("queue", "other"), ("total", "x"), ("callback_task", "a b")]);
                vec![b"HSET".to_vec(), batch.into_bytes(), field.into(), value.into()]
            }
            13 => vec![
                b"HSET".to_vec(),
                format!("zrq:{{{QUEUE}}}:schedules").into_bytes(),
                format!("s{}", self.rng.below(3)).into_bytes(),
                b"{\"name\":\"s0\",\"every\":1,\"task\":\"t\",\"payload\":\"{}\",\"retries\":3,\"timeout\":30000,\"priority\":99}".to_vec(),
            ],
            14 => vec![
                b"ZADD".to_vec(),
                format!("zrq:{{{QUEUE}}}:scheduled").into_bytes(),
                b"0".to_vec(),
                self.id().into_bytes(),
            ],
            _ => vec![
                b"SET".to_vec(),
                format!("zrq:{{{QUEUE}}}:{}", self.pick(&["active", "stream:3", "unique", "wake"]))
                    .into_bytes(),
                b"x".to_vec(),
            ],
        }
    }

    fn pick_pair<'a>(&mut self, items: &'a [(&'a str, &'a str)]) -> &'a (&'a str, &'a str) {
        &items[self.rng.below(items.len() as u64) as usize]
    }
}

/// The state the digests compare: `DEBUG DIGEST` and `XINFO GROUPS` of every stream of the queue.
fn add_digest(pipe: &mut redis::Pipeline) {
    pipe.cmd("DEBUG").arg("DIGEST");
    for priority in 0..=9 {
        let stream = if priority == 0 {
            format!("zrq:{{{QUEUE}}}:stream")
        } else {
            format!("zrq:{{{QUEUE}}}:stream:{priority}")
        };
        pipe.cmd("XINFO").arg("GROUPS").arg(stream);
    }
}

const DIGEST_LEN: usize = 11;

/// Runs one command between two digests, atomically; its reply and whether the digests differ.
fn step(zrq: &mut Zrq, command: &str, args: &[Vec<u8>]) -> (Value, bool) {
    let raw: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
    let mut pipe = redis::pipe();
    pipe.atomic().ignore_errors();
    add_digest(&mut pipe);
    pipe.add_command(zrq.command(command, &raw));
    add_digest(&mut pipe);
    let replies: Vec<Value> = pipe.query(&mut zrq.conn).expect("the MULTI itself runs");
    assert_eq!(replies.len(), 2 * DIGEST_LEN + 1, "{replies:?}");
    let before = format!("{:?}", &replies[..DIGEST_LEN]);
    let after = format!("{:?}", &replies[DIGEST_LEN + 1..]);
    (replies[DIGEST_LEN].clone(), before != after)
}

/// Sets field `args[1]` of the job record at `args[0]` to `args[2]`, as a user with access to the
/// key could: a packed record is decoded, changed and written back packed (or, for `id` and
/// `queue`, which a packed record cannot hold, as a hash of the earlier format); a hash record
/// (or no record) gets an HSET, as before; a string that does not decode is left alone.
fn tamper_record(conn: &mut redis::Connection, args: &[Vec<u8>]) {
    let [key, field, value] = args else {
        panic!("RECORD-SET key field value: {args:?}")
    };
    let key = String::from_utf8_lossy(key).into_owned();
    let (field, value) = (
        String::from_utf8_lossy(field).into_owned(),
        String::from_utf8_lossy(value).into_owned(),
    );
    let kind: String = redis::cmd("TYPE").arg(&key).query(conn).expect("TYPE");
    if kind == "string" {
        let raw: Vec<u8> = redis::cmd("GET").arg(&key).query(conn).expect("GET");
        if zrq_core::packed::decode(&key, &raw).is_err() {
            return;
        }
        let set = |record: &mut std::collections::BTreeMap<String, String>| {
            record.insert(field.clone(), value.clone());
        };
        if matches!(field.as_str(), "id" | "queue") {
            support::tamper_hash_at(conn, &key, set);
        } else {
            support::tamper_at(conn, &key, set);
        }
    } else {
        let _: redis::RedisResult<Value> = redis::cmd("HSET")
            .arg(&key)
            .arg(&field)
            .arg(&value)
            .query(conn);
    }
}

/// Collects job ids from a reply (ids, job maps, arrays of them) into `seen`.
fn collect_ids(value: &Value, seen: &mut Vec<String>) {
    match value {
        // A UUID, or a generated id (a plain job's, from its stream entry).
        Value::BulkString(bytes)
            if bytes.len() == 36
                || zrq_core::job::has_generated_form(&String::from_utf8_lossy(bytes)) =>
        {
            seen.push(String::from_utf8_lossy(bytes).into_owned())
        }
        Value::Array(items) => {
            for item in items {
                collect_ids(item, seen);
            }
        }
        _ => {}
    }
    if seen.len() > 200 {
        seen.drain(..100);
    }
}

fn show(args: &[Vec<u8>]) -> String {
    let shown: Vec<String> = args.iter().map(|a| zrq_core::error::show_arg(a)).collect();
    shown.join(" ")
}

/// Runs the storm; the invariant audit must pass at the end of every epoch.
fn storm(backend: Backend) {
    let steps = env_number("ZRQ_STORM_STEPS", 2_000) as usize;
    let budget = std::time::Duration::from_secs(env_number("ZRQ_STORM_SECONDS", 30));
    let seed = env_number(
        "ZRQ_STORM_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    );
    println!("storm on {backend:?}: {steps} steps, ZRQ_STORM_SEED={seed}");
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let mut gen = Gen {
        rng: Rng::new(seed),
        seen: Vec::new(),
    };
    let started = std::time::Instant::now();
    let (mut errors, mut done) = (0usize, 0usize);
    while done < steps && started.elapsed() < budget {
        let _: () = redis::cmd("FLUSHALL")
            .query(&mut zrq.conn)
            .expect("FLUSHALL");
        gen.seen.clear();
        let epoch = EPOCH.min(steps - done);
        for n in 0..epoch + TAMPERED {
            let tampering = n >= epoch;
            if tampering {
                let write = gen.tamper();
                if write[0] == b"RECORD-SET" {
                    tamper_record(&mut zrq.conn, &write[1..]);
                } else {
                    let _: redis::RedisResult<Value> =
                        redis::cmd(&String::from_utf8_lossy(&write[0]))
                            .arg(&write[1..])
                            .query(&mut zrq.conn);
                }
            }
            let (command, args) = if gen.chance(50) {
                let (command, args) = gen.valid();
                (command, args.into_iter().map(String::into_bytes).collect())
            } else {
                gen.mutated()
            };
            let (reply, changed) = step(&mut zrq, command, &args);
            let case = format!(
                "seed {seed}, step {}: {command} {} ({backend:?})",
                done + n,
                show(&args)
            );
            match &reply {
                Value::ServerError(err) => {
                    errors += 1;
                    assert!(
                        ErrorCode::ALL.iter().any(|c| c.as_str() == err.code()),
                        "{case}: error without a documented code: {err:?}"
                    );
                    assert!(!changed, "{case}: replied {err:?} but wrote");
                }
                other => collect_ids(other, &mut gen.seen),
            }
            if n + 1 == epoch {
                let report = audit(&mut server.conn(), backend, QUEUE, None);
                assert!(
                    report.violations.is_empty(),
                    "seed {seed}, after step {}: invariants broken:\n  {}",
                    done + n,
                    report.violations.join("\n  ")
                );
            }
        }
        done += epoch;
        let pong: String = redis::cmd("PING").query(&mut zrq.conn).expect("PING");
        assert_eq!(
            pong, "PONG",
            "seed {seed}: the server answers after step {done}"
        );
    }
    println!(
        "storm on {backend:?}: {done} steps (+{} tampered) in {:?}, {errors} error replies, seed {seed}",
        TAMPERED * done.div_ceil(EPOCH),
        started.elapsed()
    );
}

conformance!(storm);

//! Stored data never steers zrq outside the command's keys (both backends).
//!
//! Module key access is not checked by Redis ACLs, so a value read from a key must never choose
//! which keys a command writes. Each case below has tenant A's ACL user — who may write any key of
//! its own queue, as any real tenant can — tamper with a record of queue `tenantA`, then run a
//! command on `tenantA` as that user. Checked every time: no key outside `zrq:{tenantA}:` was
//! created or changed (tenant B's queue is there to be hit), and a command that replied with an
//! error wrote nothing at all.

use crate::support;

use support::{error_text, text, TENANT_A};
use zrq_tests::redis::{self, Value};
use zrq_tests::{conformance, Backend, Server, Zrq};

/// What the command must reply.
#[derive(Debug)]
enum Expect {
    /// An error with exactly this text.
    Error(&'static str),
    /// This reply, shown as [`show`] does.
    Reply(&'static str),
}

/// One tampering: `$id` in any argument is the id the first setup command replied (the first one
/// of an array reply). Raw commands may be the record pseudo-commands of
/// `support::run_record_command` (`RECORD-SET`, `RECORD-SET-HASH`, `RECORD-GET`).
#[derive(Debug)]
struct Case {
    name: &'static str,
    /// zrq commands on tenant A's queue, run by the operator.
    setup: &'static [(&'static str, &'static [&'static str])],
    /// Raw commands run by tenant A's user: the tampering.
    tamper: &'static [&'static [&'static str]],
    /// Milliseconds to wait after tampering (for leases to expire).
    sleep_ms: u64,
    /// The zrq command run by tenant A's user.
    run: (&'static str, &'static [&'static str]),
    expect: Expect,
    /// Raw commands run afterwards, each with the reply it must give (shown as [`show`] does).
    after: &'static [(&'static [&'static str], &'static str)],
}

const MEMBER_TAKEN: &[(&str, &[&str])] = &[
    (
        "batch",
        &[
            "tenantA",
            "b1",
            "ON-COMPLETE",
            "cb",
            "{\"x\":1}",
            "RETRIES",
            "0",
            "TIMEOUT",
            "1",
            "JOB",
            "t",
            "{}",
        ],
    ),
    ("fetch", &["tenantA", "w"]),
];

const TAKEN: &[(&str, &[&str])] = &[
    (
        "enqueue",
        &["tenantA", "t", "{}", "ID", "j1", "KEEP", "60000"],
    ),
    ("enqueue", &["tenantA", "t", "{}", "ID", "j2"]),
    ("fetch", &["tenantA", "w"]),
];

const BATCH: &str = "zrq:{tenantA}:batch:b1";
const STATS: &str = "zrq:{tenantA}:stats";
const J1: &str = "zrq:{tenantA}:job:j1";

const CASES: &[Case] = &[
    // A counter is written after the command's other writes: one that holds no integer (or would
    // overflow) starts again rather than failing the command half-way through.
    Case {
        name: "a stats counter that holds no integer starts again: ENQUEUE",
        setup: &[("enqueue", &["tenantA", "t", "{}"])],
        tamper: &[&["HSET", STATS, "enqueued", "x"]],
        sleep_ms: 0,
        run: ("enqueue", &["tenantA", "t", "{}", "ID", "n1"]),
        expect: Expect::Reply("n1"),
        after: &[
            (&["HGET", STATS, "enqueued"], "1"),
            (&["RECORD-GET", "zrq:{tenantA}:job:n1", "state"], "pending"),
        ],
    },
    Case {
        name: "… ACK, of a counter that would overflow",
        setup: &[
            ("enqueue", &["tenantA", "t", "{}", "ID", "j1"]),
            ("fetch", &["tenantA", "w"]),
        ],
        tamper: &[&["HSET", STATS, "completed", "9223372036854775807"]],
        sleep_ms: 0,
        run: ("ack", &["tenantA", "j1"]),
        expect: Expect::Reply("1"),
        after: &[
            (&["HGET", STATS, "completed"], "1"),
            (&["RECORD-GET", J1, "state"], "completed"),
        ],
    },
    Case {
        name: "… FAIL of a job without attempts left",
        setup: &[
            ("enqueue", &["tenantA", "t", "{}", "ID", "j1", "RETRIES", "0"]),
            ("fetch", &["tenantA", "w"]),
        ],
        tamper: &[
            &["HSET", STATS, "failed", "1.5"],
            &["HSET", STATS, "dead", ""],
        ],
        sleep_ms: 0,
        run: ("fail", &["tenantA", "j1", "boom"]),
        expect: Expect::Reply("dead"),
        after: &[
            (&["HGET", STATS, "failed"], "1"),
            (&["HGET", STATS, "dead"], "1"),
            (&["RECORD-GET", J1, "state"], "dead"),
        ],
    },
    Case {
        name: "a batch record naming another queue is not obeyed by ACK",
        setup: MEMBER_TAKEN,
        tamper: &[&["HSET", BATCH, "queue", "tenantB"]],
        sleep_ms: 0,
        run: ("ack", &["tenantA", "$id"]),
        expect: Expect::Error(
            "CORRUPT 'zrq:{tenantA}:batch:b1' is not a zrq record: field 'queue' does not name its queue",
        ),
        after: &[],
    },
    Case {
        name: "… nor by FAIL",
        setup: MEMBER_TAKEN,
        tamper: &[&["HSET", BATCH, "queue", "tenantB"]],
        sleep_ms: 0,
        run: ("fail", &["tenantA", "$id", "boom"]),
        expect: Expect::Error(
            "CORRUPT 'zrq:{tenantA}:batch:b1' is not a zrq record: field 'queue' does not name its queue",
        ),
        after: &[],
    },
    Case {
        name: "… nor by CANCEL",
        setup: &[(
            "batch",
            &["tenantA", "b1", "ON-COMPLETE", "cb", "{}", "JOB", "t", "{}"],
        )],
        tamper: &[&["HSET", BATCH, "queue", "tenantB"]],
        sleep_ms: 0,
        run: ("cancel", &["tenantA", "$id"]),
        expect: Expect::Error(
            "CORRUPT 'zrq:{tenantA}:batch:b1' is not a zrq record: field 'queue' does not name its queue",
        ),
        after: &[],
    },
    Case {
        name: "… nor by DELETE",
        setup: &[(
            "batch",
            &["tenantA", "b1", "ON-COMPLETE", "cb", "{}", "JOB", "t", "{}"],
        )],
        tamper: &[&["HSET", BATCH, "queue", "tenantB"]],
        sleep_ms: 0,
        run: ("delete", &["tenantA", "$id"]),
        expect: Expect::Error(
            "CORRUPT 'zrq:{tenantA}:batch:b1' is not a zrq record: field 'queue' does not name its queue",
        ),
        after: &[],
    },
    Case {
        name: "… and a member that dies in RECLAIM leaves it alone (no callback anywhere)",
        setup: MEMBER_TAKEN,
        tamper: &[&["HSET", BATCH, "queue", "tenantB"]],
        sleep_ms: 20,
        run: ("reclaim", &["tenantA", "w2"]),
        expect: Expect::Reply("[]"),
        after: &[
            (&["HGET", BATCH, "done"], "0"),
            (&["HEXISTS", BATCH, "callback_id"], "0"),
            (&["RECORD-GET", "zrq:{tenantA}:job:$id", "state"], "dead"),
        ],
    },
    Case {
        name: "BATCHINFO refuses a batch record naming another queue",
        setup: MEMBER_TAKEN,
        tamper: &[&["HSET", BATCH, "queue", "tenantB"]],
        sleep_ms: 0,
        run: ("batchinfo", &["tenantA", "b1"]),
        expect: Expect::Error(
            "CORRUPT 'zrq:{tenantA}:batch:b1' is not a zrq record: field 'queue' does not name its queue",
        ),
        after: &[],
    },
    Case {
        name: "a batch count that is not an integer",
        setup: MEMBER_TAKEN,
        tamper: &[&["HSET", BATCH, "total", "lots"]],
        sleep_ms: 0,
        run: ("ack", &["tenantA", "$id"]),
        expect: Expect::Error(
            "CORRUPT 'zrq:{tenantA}:batch:b1' is not a zrq record: field 'total' is not an integer",
        ),
        after: &[],
    },
    Case {
        name: "a batch callback task that is no name",
        setup: MEMBER_TAKEN,
        tamper: &[&["HSET", BATCH, "callback_task", "a}b c"]],
        sleep_ms: 0,
        run: ("ack", &["tenantA", "$id"]),
        expect: Expect::Error(
            "CORRUPT 'zrq:{tenantA}:batch:b1' is not a zrq record: field 'callback_task' is not a valid name",
        ),
        after: &[],
    },
    Case {
        name: "a batch callback payload that is not JSON",
        setup: MEMBER_TAKEN,
        tamper: &[&["HSET", BATCH, "callback_payload", "{\"a\":"]],
        sleep_ms: 0,
        run: ("ack", &["tenantA", "$id"]),
        expect: Expect::Error(
            "CORRUPT 'zrq:{tenantA}:batch:b1' is not a zrq record: field 'callback_payload' is not JSON",
        ),
        after: &[],
    },
    Case {
        name: "an untampered batch still calls back into its own queue",
        setup: MEMBER_TAKEN,
        tamper: &[],
        sleep_ms: 0,
        run: ("ack", &["tenantA", "$id"]),
        expect: Expect::Reply("1"),
        after: &[
            (&["HGET", BATCH, "done"], "1"),
            (&["HEXISTS", BATCH, "callback_id"], "1"),
        ],
    },
    Case {
        name: "a job record naming another queue (ACK would register it with the timer)",
        setup: TAKEN,
        tamper: &[&["RECORD-SET-HASH", J1, "queue", "tenantB"]],
        sleep_ms: 0,
        run: ("ack", &["tenantA", "j1"]),
        expect: Expect::Error(
            "CORRUPT 'zrq:{tenantA}:job:j1' is not a zrq record: field 'queue' does not name its queue",
        ),
        after: &[],
    },
    Case {
        name: "a job record whose id names another job",
        setup: TAKEN,
        tamper: &[&["RECORD-SET-HASH", J1, "id", "j2"]],
        sleep_ms: 0,
        run: ("ack", &["tenantA", "j1"]),
        expect: Expect::Error(
            "CORRUPT 'zrq:{tenantA}:job:j1' is not a zrq record: field 'id' does not match its key",
        ),
        after: &[],
    },
    Case {
        name: "a priority beyond 9 (it names the job's stream)",
        setup: TAKEN,
        tamper: &[&["RECORD-SET", J1, "priority", "12"]],
        sleep_ms: 0,
        run: ("fail", &["tenantA", "j1", "boom"]),
        expect: Expect::Error(
            "CORRUPT 'zrq:{tenantA}:job:j1' is not a zrq record: field 'priority' is out of range",
        ),
        after: &[],
    },
    Case {
        name: "a UNIQUE key that is no name",
        setup: TAKEN,
        tamper: &[&["RECORD-SET", J1, "unique", "a b"]],
        sleep_ms: 0,
        run: ("ack", &["tenantA", "j1"]),
        expect: Expect::Error(
            "CORRUPT 'zrq:{tenantA}:job:j1' is not a zrq record: field 'unique' is not a valid name",
        ),
        after: &[],
    },
    Case {
        name: "a batch that is no name",
        setup: TAKEN,
        tamper: &[&["RECORD-SET", J1, "batch", ""]],
        sleep_ms: 0,
        run: ("job", &["tenantA", "j1"]),
        expect: Expect::Error(
            "CORRUPT 'zrq:{tenantA}:job:j1' is not a zrq record: field 'batch' is not a valid name",
        ),
        after: &[],
    },
    Case {
        name: "children naming keys of other queues and invalid ids are skipped",
        setup: &[
            ("enqueue", &["tenantA", "t", "{}", "ID", "p"]),
            ("enqueue", &["tenantA", "t", "{}", "ID", "c", "AFTER", "p"]),
            ("fetch", &["tenantA", "w"]),
        ],
        tamper: &[&[
            "RECORD-SET",
            "zrq:{tenantA}:job:p",
            "children",
            "[\"x}:y\",\"}:job:b\",\"{tenantB}:job:b\",\"../tenantB\",\"a b\",\"\",\"c\"]",
        ]],
        sleep_ms: 0,
        run: ("ack", &["tenantA", "p"]),
        expect: Expect::Reply("1"),
        after: &[
            (&["RECORD-GET", "zrq:{tenantA}:job:c", "state"], "pending"),
            (&["EXISTS", "zrq:{tenantA}:job:x}:y"], "0"),
            (&["EXISTS", "zrq:{tenantA}:job:{tenantB}:job:b"], "0"),
        ],
    },
    Case {
        name: "a schedule definition with a priority beyond 9 is refused by SCHEDULES",
        setup: &[("schedule", &["tenantA", "s", "EVERY", "1000", "t", "{}"])],
        tamper: &[&[
            "HSET",
            "zrq:{tenantA}:schedules",
            "s",
            "{\"name\":\"s\",\"every\":1000,\"task\":\"t\",\"payload\":\"{}\",\"retries\":3,\"timeout\":30000,\"priority\":99}",
        ]],
        sleep_ms: 0,
        run: ("schedules", &["tenantA"]),
        expect: Expect::Error(
            "CORRUPT 'zrq:{tenantA}:schedules' is not a zrq record: invalid value for `priority`",
        ),
        after: &[],
    },
    Case {
        name: "… and never fires (FETCH runs due ticks on Lua; the module's timer does)",
        setup: &[("schedule", &["tenantA", "s", "EVERY", "1000", "t", "{}"])],
        tamper: &[
            &[
                "HSET",
                "zrq:{tenantA}:schedules",
                "s",
                "{\"name\":\"s\",\"every\":1,\"task\":\"t\",\"payload\":\"{}\",\"retries\":3,\"timeout\":30000,\"priority\":99}",
            ],
            &["ZADD", "zrq:{tenantA}:ticks", "0", "s"],
        ],
        sleep_ms: 1200,
        run: ("fetch", &["tenantA", "w"]),
        expect: Expect::Reply("[]"),
        after: &[
            (&["EXISTS", "zrq:{tenantA}:stream:99"], "0"),
            (&["ZSCORE", "zrq:{tenantA}:ticks", "s"], "nil"),
        ],
    },
    Case {
        name: "REQUEUE ALL leaves an unreadable dead job alone and requeues the others",
        setup: &[
            ("enqueue", &["tenantA", "t", "{}", "ID", "d1", "RETRIES", "0"]),
            ("enqueue", &["tenantA", "t", "{}", "ID", "d2", "RETRIES", "0"]),
            ("fetch", &["tenantA", "w", "COUNT", "2"]),
            ("fail", &["tenantA", "d1", "x"]),
            ("fail", &["tenantA", "d2", "x"]),
        ],
        tamper: &[&["RECORD-SET", "zrq:{tenantA}:job:d1", "priority", "-3"]],
        sleep_ms: 0,
        run: ("requeue", &["tenantA", "ALL"]),
        // The page requeued one; the unreadable job stays in place and the page was the last.
        expect: Expect::Reply("[0,1]"),
        after: &[
            (&["RECORD-GET", "zrq:{tenantA}:job:d2", "state"], "pending"),
            (&["RECORD-GET", "zrq:{tenantA}:job:d1", "state"], "dead"),
        ],
    },
];

/// A reply as short text: integers and strings as they are, nil as `nil`, arrays in brackets.
fn show(value: &Value) -> String {
    match value {
        Value::Nil => "nil".to_string(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(show).collect();
            format!("[{}]", items.join(","))
        }
        other => text(other),
    }
}

/// Every key outside tenant A's queue, with its dump.
fn outside_tenant_a(server: &Server) -> Vec<(String, Vec<u8>)> {
    let mut all = server.snapshot();
    all.retain(|(key, _)| !key.starts_with("zrq:{tenantA}:"));
    all
}

fn substitute(args: &[&str], id: &str) -> Vec<String> {
    args.iter().map(|a| a.replace("$id", id)).collect()
}

fn stored_data_never_steers_the_command(backend: Backend) {
    for case in CASES {
        let server = backend.server();
        // The batch members' 1 ms leases wait for the cases' own ACK or RECLAIM.
        server.leave_leases_to_reclaim();
        let mut operator = server.zrq(backend);
        // Tenant B's queue, which a tampered record in A would reach.
        operator.enqueue("tenantB", "t", "{}", &["ID", "b"]);
        let mut id = String::new();
        for (n, (command, args)) in case.setup.iter().enumerate() {
            let reply: Value = operator
                .call(command, args)
                .unwrap_or_else(|e| panic!("{}: setup {command}: {e}", case.name));
            if n == 0 {
                id = match &reply {
                    Value::Array(items) => text(&items[0]),
                    other => text(other),
                };
            }
        }
        let mut tenant = server.zrq_as(backend, "ta", TENANT_A);
        for args in case.tamper {
            support::run_record_command(&mut tenant.conn, &substitute(args, &id))
                .unwrap_or_else(|e| panic!("{}: the tenant may tamper: {e}", case.name));
        }
        std::thread::sleep(std::time::Duration::from_millis(case.sleep_ms));
        let before = server.snapshot();
        let outside = outside_tenant_a(&server);
        let args = substitute(case.run.1, &id);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let reply: redis::RedisResult<Value> = tenant.call(case.run.0, &args);
        match (&case.expect, reply) {
            (Expect::Error(want), Err(err)) => {
                assert_eq!(error_text(&err), *want, "{} ({backend:?})", case.name);
                assert_eq!(
                    server.snapshot(),
                    before,
                    "{} ({backend:?}): an error reply wrote",
                    case.name
                );
            }
            (Expect::Reply(want), Ok(value)) => {
                assert_eq!(show(&value), *want, "{} ({backend:?})", case.name)
            }
            (want, got) => panic!("{} ({backend:?}): wanted {want:?}, got {got:?}", case.name),
        }
        assert_eq!(
            outside_tenant_a(&server),
            outside,
            "{} ({backend:?}) wrote outside tenant A's queue",
            case.name
        );
        for (args, want) in case.after {
            let got = support::run_record_command(&mut operator.conn, &substitute(args, &id))
                .expect("check");
            assert_eq!(show(&got), *want, "{} ({backend:?}): {args:?}", case.name);
        }
        check_server_answers(&mut operator);
    }
}

fn check_server_answers(zrq: &mut Zrq) {
    let pong: String = redis::cmd("PING").query(&mut zrq.conn).expect("PING");
    assert_eq!(pong, "PONG");
}

/// The 1 MB queue name of the issue: refused, and nothing is planned for it (the module's timer
/// plan used to grow by one such name per ACK).
fn a_huge_stored_queue_name_is_refused(backend: Backend) {
    let server = backend.server();
    let mut operator = server.zrq(backend);
    let mut tenant = server.zrq_as(backend, "ta", TENANT_A);
    let huge = "q".repeat(1 << 20);
    for n in 0..3 {
        let id = format!("j{n}");
        operator.enqueue("tenantA", "t", "{}", &["ID", &id]);
        operator.fetch("tenantA", "w", 1);
        // (A packed record has no queue field: one of the earlier format has.)
        support::tamper_hash(&mut tenant.conn, "tenantA", &id, |record| {
            record.insert("queue".to_string(), huge.clone());
        });
        let before = server.snapshot();
        let err = tenant
            .call::<Value>("ack", &["tenantA", &id])
            .expect_err("a record naming another queue is refused");
        assert!(error_text(&err).starts_with("CORRUPT "), "{err}");
        assert_eq!(server.snapshot(), before, "the refused ACK wrote");
    }
    if backend == Backend::Module {
        let planned = support::info_field(&mut operator.conn, "zrq", "zrq_timed_queues_current");
        assert!(
            matches!(planned.as_deref(), Some("0") | Some("1")),
            "the timer plans only real queues: {planned:?}"
        );
    }
}

conformance!(
    stored_data_never_steers_the_command,
    a_huge_stored_queue_name_is_refused
);

//! A command that replies with an error has written nothing, whatever the caller's ACL (both
//! backends).
//!
//! The Lua library runs its Redis calls with the caller's ACL, and a script cannot undo a write:
//! a call denied half-way would leave the first half written. So every function checks all the
//! commands it may call before its first write (NOPERM), and publishes events only where the
//! caller may (a denied PUBLISH used to fail ENQUEUE after the job was written, and the
//! producer's retry duplicated it). The module's own calls are not ACL-checked: Redis checks the
//! command and its key before it runs.
//!
//! For every command the library calls, a user that may do everything on tenant A's queue but
//! that one command runs every writing scenario below; so do users without the events channel
//! and with read-only keys.

use crate::support;

use support::{error_text, TENANT_A};
use zrq_tests::redis::{self, Value};
use zrq_tests::{conformance, Backend, Server, Zrq};

/// Every Redis command the Lua library calls (what `acl_probes` lists, and PUBLISH).
const LIBRARY_CALLS: &[&str] = &[
    "TIME",
    "TYPE",
    "HGET",
    "HGETALL",
    "XPENDING",
    "XRANGE",
    "XLEN",
    "XINFO",
    "ZCARD",
    "ZRANGE",
    "ZSCORE",
    "HSET",
    "HDEL",
    "HINCRBY",
    "DEL",
    "SET",
    "PEXPIRE",
    "RPUSH",
    "LTRIM",
    "XGROUP",
    "XADD",
    "XACK",
    "XDEL",
    "XREADGROUP",
    "XTRIM",
    "ZADD",
    "ZREM",
    "ZREMRANGEBYSCORE",
    "PUBLISH",
];

/// A restriction added to the tenant's rules, and whether the Lua library must then refuse its
/// writing functions (NOPERM) or serve them (an event it may not publish is not sent).
struct Variant {
    rules: Vec<String>,
    lua_refuses: bool,
}

fn variants() -> Vec<Variant> {
    let mut all: Vec<Variant> = LIBRARY_CALLS
        .iter()
        .map(|command| Variant {
            rules: vec![format!("-{}", command.to_lowercase())],
            lua_refuses: *command != "PUBLISH",
        })
        .collect();
    all.push(Variant {
        rules: vec!["resetchannels".to_string()],
        lua_refuses: false,
    });
    all.push(Variant {
        rules: vec![
            "resetkeys".to_string(),
            "~tenantA".to_string(),
            "%R~zrq:{tenantA}:*".to_string(),
        ],
        lua_refuses: true,
    });
    all
}

/// A writing command on tenant A's queue after the operator's setup; `$id` is the id the first
/// setup command replied.
struct Scenario {
    name: &'static str,
    setup: &'static [(&'static str, &'static [&'static str])],
    /// Wait after the setup, in ms (lease expiry, due times).
    sleep_ms: u64,
    run: (&'static str, &'static [&'static str]),
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "enqueue",
        setup: &[],
        sleep_ms: 0,
        run: ("enqueue", &["tenantA", "t", "{}", "ID", "j"]),
    },
    Scenario {
        name: "enqueue after a completed parent (released at once)",
        setup: &[
            ("enqueue", &["tenantA", "t", "{}", "ID", "p"]),
            ("fetch", &["tenantA", "w"]),
            ("ack", &["tenantA", "p"]),
        ],
        sleep_ms: 0,
        run: ("enqueue", &["tenantA", "t", "{}", "ID", "c", "AFTER", "p"]),
    },
    Scenario {
        name: "fetch promoting a due job and firing a due schedule",
        setup: &[
            ("enqueue", &["tenantA", "t", "{}", "ID", "d", "DELAY", "1"]),
            // The shortest period allowed (zrq.every-min-ms); the sleep makes its first tick due.
            ("schedule", &["tenantA", "s", "EVERY", "1000", "t", "{}"]),
        ],
        sleep_ms: 1005,
        run: ("fetch", &["tenantA", "w", "COUNT", "10"]),
    },
    Scenario {
        name: "ack releasing a child and completing a batch with a callback",
        setup: &[
            (
                "batch",
                &["tenantA", "b", "ON-COMPLETE", "cb", "{}", "JOB", "t", "{}"],
            ),
            (
                "enqueue",
                &["tenantA", "t", "{}", "ID", "c", "AFTER", "$id"],
            ),
            ("fetch", &["tenantA", "w"]),
        ],
        sleep_ms: 0,
        run: ("ack", &["tenantA", "$id", "RESULT", "{}"]),
    },
    Scenario {
        name: "fail with attempts left",
        setup: &[
            ("enqueue", &["tenantA", "t", "{}", "ID", "j"]),
            ("fetch", &["tenantA", "w"]),
        ],
        sleep_ms: 0,
        run: ("fail", &["tenantA", "j", "boom"]),
    },
    Scenario {
        name: "fail without attempts left, cancelling a waiting child",
        setup: &[
            (
                "enqueue",
                &["tenantA", "t", "{}", "ID", "j", "RETRIES", "0"],
            ),
            ("enqueue", &["tenantA", "t", "{}", "ID", "c", "AFTER", "j"]),
            ("fetch", &["tenantA", "w"]),
        ],
        sleep_ms: 0,
        run: ("fail", &["tenantA", "j", "boom"]),
    },
    Scenario {
        name: "reclaim of expired leases (one retried, one dead)",
        setup: &[
            (
                "enqueue",
                &["tenantA", "t", "{}", "ID", "r", "TIMEOUT", "1"],
            ),
            (
                "enqueue",
                &[
                    "tenantA", "t", "{}", "ID", "d", "TIMEOUT", "1", "RETRIES", "0",
                ],
            ),
            ("fetch", &["tenantA", "w", "COUNT", "2"]),
        ],
        sleep_ms: 5,
        run: ("reclaim", &["tenantA", "w2"]),
    },
    Scenario {
        name: "touch",
        setup: &[
            ("enqueue", &["tenantA", "t", "{}", "ID", "j"]),
            ("fetch", &["tenantA", "w"]),
        ],
        sleep_ms: 0,
        run: ("touch", &["tenantA", "j", "PROGRESS", "5"]),
    },
    Scenario {
        name: "cancel a pending job",
        setup: &[("enqueue", &["tenantA", "t", "{}", "ID", "j"])],
        sleep_ms: 0,
        run: ("cancel", &["tenantA", "j"]),
    },
    Scenario {
        name: "delete a waiting job's parent",
        setup: &[
            ("enqueue", &["tenantA", "t", "{}", "ID", "p"]),
            ("enqueue", &["tenantA", "t", "{}", "ID", "c", "AFTER", "p"]),
        ],
        sleep_ms: 0,
        run: ("delete", &["tenantA", "p"]),
    },
    Scenario {
        name: "requeue all dead jobs",
        setup: &[
            (
                "enqueue",
                &["tenantA", "t", "{}", "ID", "j", "RETRIES", "0"],
            ),
            ("fetch", &["tenantA", "w"]),
            ("fail", &["tenantA", "j", "boom"]),
        ],
        sleep_ms: 0,
        run: ("requeue", &["tenantA", "ALL"]),
    },
    Scenario {
        name: "resume",
        setup: &[("pause", &["tenantA"])],
        sleep_ms: 0,
        run: ("resume", &["tenantA"]),
    },
    Scenario {
        name: "schedule",
        setup: &[],
        sleep_ms: 0,
        run: ("schedule", &["tenantA", "s", "EVERY", "1000", "t", "{}"]),
    },
    Scenario {
        name: "batch",
        setup: &[],
        sleep_ms: 0,
        run: (
            "batch",
            &["tenantA", "b", "JOB", "t", "{}", "JOB", "t", "[]"],
        ),
    },
];

fn substitute(args: &[&str], id: &str) -> Vec<String> {
    args.iter().map(|a| a.replace("$id", id)).collect()
}

fn call(zrq: &mut Zrq, command: &str, args: &[String]) -> redis::RedisResult<Value> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    zrq.call(command, &args)
}

/// Runs `scenario` as a user with the tenant's rules plus `variant`'s; the reply, and whether the
/// keyspace changed.
fn run(
    server: &Server,
    backend: Backend,
    scenario: &Scenario,
    variant: &Variant,
) -> (redis::RedisResult<Value>, bool) {
    let mut operator = server.zrq(backend);
    let _: () = redis::cmd("FLUSHALL")
        .query(&mut operator.conn)
        .expect("FLUSHALL");
    let mut id = String::new();
    for (n, (command, args)) in scenario.setup.iter().enumerate() {
        let reply = call(&mut operator, command, &substitute(args, &id))
            .unwrap_or_else(|e| panic!("{}: setup {command}: {e}", scenario.name));
        if n == 0 {
            id = match reply {
                Value::Array(items) => support::text(&items[0]),
                other => support::text(&other),
            };
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(scenario.sleep_ms));
    let mut rules: Vec<&str> = TENANT_A.to_vec();
    rules.extend(variant.rules.iter().map(String::as_str));
    let mut tenant = server.zrq_as(backend, "ta", &rules);
    let before = server.snapshot();
    let reply = call(
        &mut tenant,
        scenario.run.0,
        &substitute(scenario.run.1, &id),
    );
    (reply, server.snapshot() != before)
}

fn an_error_writes_nothing_whatever_the_acl(backend: Backend) {
    let server = backend.server();
    let mut checked = 0;
    for variant in variants() {
        for scenario in SCENARIOS {
            let case = format!("{} with {:?} ({backend:?})", scenario.name, variant.rules);
            let (reply, wrote) = run(&server, backend, scenario, &variant);
            let refuses = backend == Backend::Lua && variant.lua_refuses;
            match reply {
                Err(err) => {
                    let text = error_text(&err);
                    assert!(
                        refuses && text.starts_with("NOPERM zrq_"),
                        "{case}: refused with {text}"
                    );
                    assert!(!wrote, "{case}: replied {text} but wrote");
                }
                Ok(value) => assert!(!refuses, "{case}: served ({value:?}) under a denial"),
            }
            checked += 1;
        }
    }
    assert_eq!(checked, (LIBRARY_CALLS.len() + 2) * SCENARIOS.len());
    let pong: String = redis::cmd("PING").query(&mut server.conn()).expect("PING");
    assert_eq!(pong, "PONG");
}

/// The issue's case: a producer without the events channel enqueues once, and the job is there
/// once; the events of an allowed caller still arrive.
fn enqueue_without_the_events_channel_succeeds_once(backend: Backend) {
    let server = backend.server();
    let mut rules: Vec<&str> = TENANT_A.to_vec();
    rules.push("resetchannels");
    let mut producer = server.zrq_as(backend, "producer", &rules);
    let id: String = producer
        .call("enqueue", &["tenantA", "t", "{}"])
        .expect("ENQUEUE without the events channel");
    let mut operator = server.zrq(backend);
    assert_eq!(operator.state("tenantA", &id).as_deref(), Some("pending"));
    let jobs = support::job_ids(&mut server.conn(), "tenantA");
    assert_eq!(jobs, vec![id], "one job, written once");

    let mut subscriber = server.conn();
    let mut pubsub = subscriber.as_pubsub();
    pubsub.subscribe("zrq:{tenantA}:events").expect("SUBSCRIBE");
    pubsub
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .expect("timeout");
    let mut tenant = server.zrq_as(backend, "ta", TENANT_A);
    let second: String = tenant
        .call("enqueue", &["tenantA", "t", "{}"])
        .expect("ENQUEUE");
    let message: String = pubsub
        .get_message()
        .and_then(|m| m.get_payload())
        .expect("an event");
    assert_eq!(message, format!("pending {second}"));
}

conformance!(
    an_error_writes_nothing_whatever_the_acl,
    enqueue_without_the_events_channel_succeeds_once
);

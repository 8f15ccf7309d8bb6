//! Command metadata: key positions (so cluster clients route each command to its queue's slot),
//! command flags as in the core command table, and the load-time warning about eviction.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};

use support::error_text;
use zrq_core::spec::COMMANDS;
use zrq_tests::redis::{self, Value};
use zrq_tests::{conformance, Backend, Options, Server};

/// Realistic arguments of each command of the core protocol (queue first).
const EXAMPLES: &[(&str, &[&str])] = &[
    ("enqueue", &["q", "t", "{}"]),
    (
        "enqueue",
        &["q", "t", "{}", "ID", "x", "RETRIES", "1", "TIMEOUT", "5"],
    ),
    ("fetch", &["q", "w"]),
    ("fetch", &["q", "w", "COUNT", "5", "BLOCK", "0"]),
    ("ack", &["q", "id"]),
    ("ack", &["q", "id", "RESULT", "{}"]),
    ("state", &["q", "id"]),
    ("job", &["q", "id"]),
    ("reclaim", &["q", "w"]),
    ("reclaim", &["q", "w", "COUNT", "3"]),
];

fn getkeys_returns_the_queue(backend: Backend) {
    let server = backend.server();
    let zrq = server.zrq(backend);
    let mut conn = server.conn();
    for (name, args) in EXAMPLES {
        for queue in ["q", "emails", "a:b.c"] {
            let mut args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
            args[0] = queue.as_bytes();
            let command = zrq.command(name, &args);
            let mut getkeys = redis::cmd("COMMAND");
            getkeys.arg("GETKEYS");
            for arg in command.args_iter() {
                if let redis::Arg::Simple(bytes) = arg {
                    getkeys.arg(bytes);
                }
            }
            let keys: Vec<String> = getkeys
                .query(&mut conn)
                .unwrap_or_else(|e| panic!("GETKEYS {name} {args:?}: {}", error_text(&e)));
            assert_eq!(keys, [queue], "{name} {args:?}");
        }
    }
}

/// A command flag as `COMMAND INFO` prints it.
fn printed(flag: &str) -> String {
    match flag {
        "deny-oom" => "denyoom".to_string(),
        "allow-loading" => "loading".to_string(),
        "allow-stale" => "stale".to_string(),
        other => other.replace('-', "_"),
    }
}

#[test]
fn command_info_has_the_flags_of_the_command_table() {
    let server = Backend::Module.server();
    let mut conn = server.conn();
    assert!(COMMANDS.len() >= 6);
    for spec in COMMANDS {
        let info: Value = redis::cmd("COMMAND")
            .arg("INFO")
            .arg(spec.name)
            .query(&mut conn)
            .expect("COMMAND INFO");
        let Value::Array(mut entries) = info else {
            panic!("COMMAND INFO {}: {info:?}", spec.name)
        };
        let Some(Value::Array(entry)) = entries.pop() else {
            panic!("{} is not registered", spec.name)
        };
        assert_eq!(support::text(&entry[0]), spec.name);
        assert_eq!(
            entry[1],
            Value::Int(-1),
            "{}: arity is checked by zrq",
            spec.name
        );
        let Value::Array(flags) = &entry[2] else {
            panic!("{}: flags {:?}", spec.name, entry[2])
        };
        let got: BTreeSet<String> = flags.iter().map(support::text).collect();
        let mut want: BTreeSet<String> = spec.flags.split_whitespace().map(printed).collect();
        want.insert("module".to_string());
        assert_eq!(got, want, "{} flags", spec.name);
        assert_eq!(
            got.contains("readonly"),
            spec.readonly,
            "{}: readonly in the table",
            spec.name
        );
        assert_ne!(
            got.contains("write"),
            spec.readonly,
            "{}: a command either writes or is read-only",
            spec.name
        );
        // The queue is the first key (first 1, last 1, step 1): one slot per command.
        if entry[3] != Value::Int(0) {
            assert_eq!(
                entry[3..6],
                [Value::Int(1), Value::Int(1), Value::Int(1)],
                "{} key positions",
                spec.name
            );
        }
    }
    // The six core commands all declare their queue as the key.
    for name in ["enqueue", "fetch", "ack", "state", "job", "reclaim"] {
        assert!(COMMANDS.iter().any(|c| c.name == format!("zrq.{name}")));
    }
}

#[test]
fn writing_commands_are_refused_on_a_read_only_replica_and_reads_are_not() {
    // The flags matter: a read-only replica accepts `readonly` commands only.
    let primary = Backend::Module.server_with(Options {
        config: vec![("repl-diskless-sync-delay".into(), "0".into())],
        ..Options::default()
    });
    let replica = primary.start_replica();
    let mut conn = replica.conn();
    for spec in COMMANDS
        .iter()
        .filter(|c| EXAMPLES.iter().any(|(n, _)| format!("zrq.{n}") == c.name))
    {
        let (_, args) = EXAMPLES
            .iter()
            .find(|(n, _)| format!("zrq.{n}") == spec.name)
            .expect("an example");
        let reply: redis::RedisResult<Value> = redis::cmd(spec.name).arg(*args).query(&mut conn);
        match reply {
            Err(err) if err.code() == Some("READONLY") => {
                assert!(!spec.readonly, "{} refused on a replica", spec.name)
            }
            other => assert!(spec.readonly, "{} ran on a replica: {other:?}", spec.name),
        }
    }
}

#[test]
fn lua_functions_are_flagged_like_the_command_table() {
    let server = Backend::Lua.server();
    let mut conn = server.conn();
    let list: Value = redis::cmd("FUNCTION")
        .arg("LIST")
        .arg("LIBRARYNAME")
        .arg("zrq")
        .query(&mut conn)
        .expect("FUNCTION LIST");
    // [[library_name, zrq, engine, LUA, functions, [[name, n, description, d, flags, [...]], …]]]
    let pairs = |v: &Value| -> Vec<(String, Value)> {
        let Value::Array(items) = v else {
            panic!("FUNCTION LIST: {v:?}")
        };
        items
            .chunks(2)
            .map(|p| (support::text(&p[0]), p[1].clone()))
            .collect()
    };
    let Value::Array(libraries) = list else {
        panic!("FUNCTION LIST: {list:?}")
    };
    assert_eq!(libraries.len(), 1, "one zrq library");
    let functions = pairs(&libraries[0])
        .into_iter()
        .find(|(k, _)| k == "functions")
        .map(|(_, v)| v)
        .expect("functions");
    let Value::Array(functions) = functions else {
        panic!("functions: {functions:?}")
    };
    let flags: BTreeMap<String, BTreeSet<String>> = functions
        .iter()
        .map(|f| {
            let fields = pairs(f);
            let get = |name: &str| {
                fields
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
                    .expect(name)
            };
            let flags = match get("flags") {
                Value::Array(items) | Value::Set(items) => {
                    items.iter().map(support::text).collect()
                }
                other => panic!("flags: {other:?}"),
            };
            (support::text(&get("name")), flags)
        })
        .collect();
    for spec in COMMANDS
        .iter()
        .filter(|c| EXAMPLES.iter().any(|(n, _)| format!("zrq.{n}") == c.name))
    {
        let name = spec.function_name();
        let got = flags
            .get(&name)
            .unwrap_or_else(|| panic!("function {name} is missing: {flags:?}"));
        assert_eq!(
            got.contains("no-writes"),
            spec.readonly,
            "{name}: no-writes flag vs table: {got:?}"
        );
    }
}

fn log_warnings(server: &Server) -> Vec<String> {
    server
        .log()
        .lines()
        .filter(|l| l.contains("<zrq>") && l.contains("maxmemory-policy"))
        .map(str::to_string)
        .collect()
}

#[test]
fn loading_warns_when_eviction_could_delete_jobs() {
    for policy in ["allkeys-lru", "volatile-ttl", "allkeys-random"] {
        let server = Backend::Module.server_with(Options {
            config: vec![("maxmemory-policy".into(), policy.into())],
            ..Options::default()
        });
        let warnings = log_warnings(&server);
        assert_eq!(warnings.len(), 1, "{policy}: {warnings:?}");
        let line = &warnings[0];
        assert!(
            line.contains(" # "),
            "{policy}: logged as a warning: {line}"
        );
        assert!(
            line.contains(&format!("maxmemory-policy is {policy};")),
            "{policy}: names the policy: {line}"
        );
        assert!(
            line.contains("noeviction"),
            "{policy}: says the fix: {line}"
        );
    }
}

#[test]
fn loading_does_not_warn_with_noeviction() {
    let server = Backend::Module.server_with(Options {
        config: vec![("maxmemory-policy".into(), "noeviction".into())],
        ..Options::default()
    });
    assert!(
        server.log().contains("Module 'zrq' loaded"),
        "{}",
        server.log()
    );
    assert_eq!(log_warnings(&server), Vec::<String>::new());
    // The default policy is noeviction too.
    let server = Backend::Module.server();
    assert_eq!(log_warnings(&server), Vec::<String>::new());
}

conformance!(getkeys_returns_the_queue);

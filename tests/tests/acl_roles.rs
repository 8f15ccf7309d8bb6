//! The ACL rules of docs/ACL.md hold, with real users on both backends.
//!
//! The users are created from the `ACL SETUSER` lines of docs/ACL.md itself, so the page cannot
//! drift from what is tested. Each role runs every zrq command on its own queue and on another
//! one: allowed where the page says so, else refused with `NOPERM` and nothing written. Then the
//! raw commands the page says a role must (not) have.

use crate::support;

use support::error_text;
use zrq_tests::redis::{self, Connection, Value};
use zrq_tests::{conformance, Backend, Server, Zrq};

const ROLES: [&str; 4] = ["producer", "worker", "operator", "tenant"];

/// The `ACL SETUSER` arguments of `role` on `backend`, read from docs/ACL.md (the line after
/// `# <backend> <role>`).
fn documented_rules(backend: Backend, role: &str) -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/ACL.md");
    let page = std::fs::read_to_string(path).expect("docs/ACL.md");
    let backend = match backend {
        Backend::Module => "module",
        Backend::Lua => "lua",
    };
    let marker = format!("# {backend} {role}");
    let mut lines = page.lines().skip_while(|line| *line != marker);
    lines
        .next()
        .unwrap_or_else(|| panic!("docs/ACL.md has no '{marker}'"));
    let line = lines.next().expect("the rule line");
    let rest = line
        .strip_prefix("ACL SETUSER ")
        .unwrap_or_else(|| panic!("'{marker}' is followed by an ACL SETUSER line: {line}"));
    rest.split_whitespace().map(str::to_string).collect()
}

/// Creates the documented user of `role` and connects as it.
fn connect(server: &Server, backend: Backend, role: &str) -> Zrq {
    let rules = documented_rules(backend, role);
    assert_eq!(rules[0], role, "the user is named after its role");
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg(&rules)
        .query(&mut server.conn())
        .expect("the documented rule is valid");
    Zrq {
        conn: user_conn(server, role),
        backend,
    }
}

fn user_conn(server: &Server, role: &str) -> Connection {
    redis::Client::open(format!(
        "redis://{role}:{role}-secret@127.0.0.1:{}",
        server.port()
    ))
    .and_then(|c| c.get_connection())
    .expect("the documented user can connect")
}

/// Every per-queue command, with arguments that are valid on queue `q` (whose job `j` and batch
/// `b` exist).
fn commands(q: &str) -> Vec<(&'static str, Vec<String>)> {
    let list: [(&str, &[&str]); 23] = [
        ("enqueue", &["t", "{}"]),
        ("fetch", &["w"]),
        ("ack", &["none"]),
        ("fail", &["none", "boom"]),
        ("touch", &["none"]),
        ("release", &["none"]),
        ("reclaim", &["w"]),
        ("state", &["j"]),
        ("job", &["j"]),
        ("result", &["j"]),
        ("cancel", &["none"]),
        ("dead", &[]),
        ("requeue", &["none"]),
        ("delete", &["none"]),
        ("pause", &[]),
        ("resume", &[]),
        ("schedule", &["s", "EVERY", "60000", "t", "{}"]),
        ("unschedule", &["s"]),
        ("schedules", &[]),
        ("batch", &["b2", "JOB", "t", "{}"]),
        ("batchinfo", &["b"]),
        ("info", &[]),
        ("list", &["pending"]),
    ];
    list.iter()
        .map(|(name, args)| {
            let mut all = vec![q.to_string()];
            all.extend(args.iter().map(|a| a.to_string()));
            (*name, all)
        })
        .collect()
}

/// What `role` may run on its own queue (every other queue: nothing, but for the operator).
fn allowed(role: &str, command: &str) -> bool {
    match role {
        "producer" => matches!(
            command,
            "enqueue" | "batch" | "state" | "job" | "result" | "batchinfo"
        ),
        "worker" => matches!(
            command,
            "fetch" | "ack" | "fail" | "touch" | "release" | "reclaim" | "state" | "job" | "result"
        ),
        _ => true,
    }
}

/// The role's own queue and a queue it must not reach.
fn queues(role: &str) -> (&'static str, &'static [&'static str]) {
    match role {
        "tenant" => ("tenantA", &["tenantB", "tenantAB"]),
        "operator" => ("emails", &[]),
        _ => ("emails", &["other"]),
    }
}

/// Asserts that `reply` is a refusal by the ACL that wrote nothing, or not a refusal.
fn check(
    server: &Server,
    case: &str,
    want_allowed: bool,
    run: impl FnOnce() -> redis::RedisResult<Value>,
) {
    let before = server.snapshot();
    let reply = run();
    let refused = match &reply {
        Err(err) => error_text(err).starts_with("NOPERM"),
        Ok(_) => false,
    };
    if want_allowed {
        assert!(!refused, "{case}: refused: {reply:?}");
    } else {
        assert!(refused, "{case}: not refused: {reply:?}");
        assert_eq!(server.snapshot(), before, "{case}: refused, but wrote");
    }
}

fn setup(server: &Server, backend: Backend) {
    let mut operator = server.zrq(backend);
    for q in ["emails", "other", "tenantA", "tenantB", "tenantAB"] {
        operator.enqueue(q, "t", "{}", &["ID", "j"]);
        let _: Value = operator
            .call("batch", &[q, "b", "JOB", "t", "{}"])
            .expect("BATCH");
    }
}

fn every_role_runs_what_the_page_says_on_its_queue_and_nothing_on_others(backend: Backend) {
    let server = backend.server();
    setup(&server, backend);
    for role in ROLES {
        let mut user = connect(&server, backend, role);
        let (own, others) = queues(role);
        for (command, args) in commands(own) {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            check(
                &server,
                &format!("{backend:?} {role}: {command} on {own}"),
                allowed(role, command),
                || user.call(command, &args),
            );
        }
        for other in others {
            for (command, args) in commands(other) {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                check(
                    &server,
                    &format!("{backend:?} {role}: {command} on {other}"),
                    false,
                    || user.call(command, &args),
                );
            }
        }
    }
}

/// Raw commands: (role, backend or both, command and arguments, allowed).
type RawCase = (&'static str, Option<Backend>, &'static [&'static str], bool);

const RAW: &[RawCase] = &[
    ("tenant", None, &["HGETALL", "zrq:{tenantA}:stats"], true),
    (
        "tenant",
        None,
        &["HSET", "zrq:{tenantB}:stats", "x", "1"],
        false,
    ),
    (
        "tenant",
        None,
        &["HSET", "zrq:{tenantAB}:stats", "x", "1"],
        false,
    ),
    ("tenant", None, &["DEL", "tenantB"], false),
    ("tenant", None, &["KEYS", "*"], false),
    ("tenant", None, &["SCAN", "0"], false),
    ("tenant", None, &["RANDOMKEY"], false),
    ("tenant", None, &["DBSIZE"], false),
    ("tenant", None, &["PUBSUB", "CHANNELS"], false),
    ("tenant", None, &["FUNCTION", "FLUSH"], false),
    ("tenant", None, &["FUNCTION", "DELETE", "zrq"], false),
    ("tenant", None, &["CONFIG", "GET", "*"], false),
    ("tenant", None, &["FLUSHALL"], false),
    // The module lists the tenant's own queues (checked below); the Lua library needs SCAN, which
    // a tenant may not run: NOPERM.
    ("tenant", Some(Backend::Module), &["ZRQ.QUEUES"], true),
    (
        "tenant",
        Some(Backend::Lua),
        &["FCALL", "zrq_queues", "0"],
        false,
    ),
    (
        "producer",
        Some(Backend::Module),
        &["HSET", "zrq:{emails}:stats", "x", "1"],
        false,
    ),
    ("producer", None, &["FUNCTION", "FLUSH"], false),
    (
        "producer",
        Some(Backend::Lua),
        &["FCALL", "zrq_version", "0"],
        true,
    ),
    (
        "worker",
        Some(Backend::Lua),
        &["BLPOP", "zrq:{emails}:wake", "0.01"],
        true,
    ),
    ("worker", None, &["FUNCTION", "FLUSH"], false),
    ("operator", Some(Backend::Module), &["ZRQ.QUEUES"], true),
    (
        "operator",
        Some(Backend::Lua),
        &["FCALL", "zrq_queues", "0"],
        true,
    ),
    ("operator", Some(Backend::Lua), &["FUNCTION", "LIST"], true),
];

/// Whether a fresh connection of `role` may SUBSCRIBE to `channel`.
fn may_subscribe(server: &Server, role: &str, channel: &str) -> bool {
    let mut conn = user_conn(server, role);
    let reply: redis::RedisResult<Value> = redis::cmd("SUBSCRIBE").arg(channel).query(&mut conn);
    match reply {
        Ok(_) => true,
        Err(err) if error_text(&err).starts_with("NOPERM") => false,
        Err(err) => panic!("SUBSCRIBE {channel} as {role}: {err}"),
    }
}

fn raw_commands_and_channels_are_as_documented(backend: Backend) {
    let server = backend.server();
    setup(&server, backend);
    for role in ROLES {
        connect(&server, backend, role);
    }
    for (role, only, args, want) in RAW {
        if only.is_some_and(|b| b != backend) {
            continue;
        }
        let mut conn = user_conn(&server, role);
        check(
            &server,
            &format!("{backend:?} {role}: {args:?}"),
            *want,
            || redis::cmd(args[0]).arg(&args[1..]).query(&mut conn),
        );
    }
    // Loading the library is for operators only.
    if backend == Backend::Lua {
        for role in ["producer", "worker", "tenant", "operator"] {
            let mut conn = user_conn(&server, role);
            check(
                &server,
                &format!("{role}: FUNCTION LOAD REPLACE"),
                role == "operator",
                || {
                    redis::cmd("FUNCTION")
                        .arg("LOAD")
                        .arg("REPLACE")
                        .arg(zrq_lua::library())
                        .query(&mut conn)
                },
            );
        }
    }
    // QUEUES lists what the caller may read.
    let list = |role: &str, cmd: &mut redis::Cmd| -> Vec<String> {
        let (cursor, names): (String, Vec<String>) =
            cmd.query(&mut user_conn(&server, role)).expect("QUEUES");
        assert_eq!(cursor, "0", "a small server answers in one step");
        names
    };
    match backend {
        Backend::Module => {
            let mut queues = redis::cmd("ZRQ.QUEUES");
            queues.arg("COUNT").arg(250);
            assert_eq!(list("tenant", &mut queues), ["tenantA"]);
            assert_eq!(
                list("operator", &mut queues),
                ["emails", "other", "tenantA", "tenantAB", "tenantB"]
            );
        }
        Backend::Lua => {
            let mut queues = redis::cmd("FCALL");
            queues.arg("zrq_queues").arg(0).arg("COUNT").arg(250);
            assert_eq!(
                list("operator", &mut queues),
                ["emails", "other", "tenantA", "tenantAB", "tenantB"]
            );
        }
    }
    let channels = [
        ("producer", "zrq:{emails}:events", true),
        ("producer", "zrq:{other}:events", false),
        ("worker", "zrq:{emails}:events", true),
        ("tenant", "zrq:{tenantA}:events", true),
        ("tenant", "zrq:{tenantB}:events", false),
        ("tenant", "zrq:{tenantAB}:events", false),
        ("operator", "zrq:{tenantB}:events", true),
    ];
    for (role, channel, want) in channels {
        assert_eq!(
            may_subscribe(&server, role, channel),
            want,
            "{backend:?} {role}: SUBSCRIBE {channel}"
        );
    }
}

conformance!(
    every_role_runs_what_the_page_says_on_its_queue_and_nothing_on_others,
    raw_commands_and_channels_are_as_documented
);

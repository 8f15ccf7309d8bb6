//! The invariant audit itself: silent on a consistent queue holding jobs in every state, and
//! reporting each kind of corruption when one index or record is damaged on purpose, so a chaos
//! test that relies on it cannot pass by the audit seeing nothing.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};

use support::run_commands;
use zrq_tests::audit::{assert_consistent, audit, State};
use zrq_tests::{conformance, Backend, Server, Zrq};

const Q: &str = "au";

/// The jobs of the fixture, one per situation, by role.
struct Fixture {
    server: Server,
    ids: BTreeMap<&'static str, String>,
}

impl Fixture {
    /// A queue with a pending, an active, a scheduled, a retrying, a completed and a dead job,
    /// a job holding a UNIQUE key, and a schedule; the completed job and a cancelled one are
    /// kept with the queue's retention (fields of the records hashes, with log entries), a
    /// completed job with a KEEP of its own (`kept`) has its own key.
    fn new(backend: Backend) -> Fixture {
        let server = backend.server();
        let mut zrq = server.zrq(backend);
        let mut ids = BTreeMap::new();
        let add = |zrq: &mut Zrq, ids: &mut BTreeMap<_, _>, role, options: &[&str]| {
            ids.insert(role, zrq.enqueue(Q, "t", "{}", options));
        };
        // Fetched first, oldest first: completed, dead, retrying, active; pending stays.
        add(&mut zrq, &mut ids, "completed", &[]);
        add(&mut zrq, &mut ids, "dead", &["RETRIES", "0"]);
        add(
            &mut zrq,
            &mut ids,
            "retrying",
            &["RETRIES", "3", "BACKOFF", "3600000"],
        );
        add(&mut zrq, &mut ids, "active", &[]);
        add(&mut zrq, &mut ids, "kept", &["KEEP", "3600000"]);
        let fetched = zrq.fetch(Q, "w1", 5);
        assert_eq!(fetched.len(), 5);
        for role in ["completed", "kept"] {
            let _: i64 = zrq.call("ack", &[Q, &ids[role]]).expect("ACK");
        }
        for role in ["dead", "retrying"] {
            let _: String = zrq.call("fail", &[Q, &ids[role], "boom"]).expect("FAIL");
        }
        // A pending job with a record (its own id) and one held by its inline entry.
        add(
            &mut zrq,
            &mut ids,
            "pending",
            &["UNIQUE", "u1", "ID", "p-1"],
        );
        add(
            &mut zrq,
            &mut ids,
            "inline",
            &["UNIQUE", "u3", "RETRIES", "5"],
        );
        add(&mut zrq, &mut ids, "scheduled", &["DELAY", "3600000"]);
        add(&mut zrq, &mut ids, "cancelled", &[]);
        let _: i64 = zrq.call("cancel", &[Q, &ids["cancelled"]]).expect("CANCEL");
        let _: i64 = zrq
            .call("schedule", &[Q, "hourly", "EVERY", "3600000", "t", "{}"])
            .expect("SCHEDULE");
        Fixture { server, ids }
    }

    fn expected(&self) -> BTreeSet<String> {
        self.ids.values().cloned().collect()
    }

    /// The fixture's job in `role`.
    fn id(&self, role: &str) -> &str {
        &self.ids[role]
    }

    fn field(&self, role: &str, field: &str) -> String {
        let record = support::record(&mut self.server.conn(), Q, self.id(role));
        record.get(field).cloned().unwrap_or_default()
    }
}

fn audit_is_silent_on_a_consistent_queue(backend: Backend) {
    let fixture = Fixture::new(backend);
    let report = assert_consistent(
        &mut fixture.server.conn(),
        backend,
        Q,
        Some(&fixture.expected()),
    );
    for (role, id) in &fixture.ids {
        let state = report.state(id).map(State::as_str);
        let role = match *role {
            "inline" => "pending",
            "kept" => "completed",
            role => role,
        };
        assert_eq!(state, Some(role), "job {id}");
    }
    assert_eq!(report.states.len(), fixture.ids.len());
    assert_eq!(report.count(State::Pending), 2);
    assert_eq!(report.count(State::Completed), 2);
    assert_eq!(report.count(State::Cancelled), 1);
    assert_eq!(report.info("total_enqueued"), 9);
}

/// One damage done by hand: the raw commands (`{role}` stands for the id of the fixture's job
/// in that role, `{role.field}` for a field of its record) and words the audit must report.
/// `RECORD-SET <id> <field> <value>` is not a Redis command: it sets a field of a job record
/// (`support::tamper`, which writes the record back packed).
struct Damage {
    commands: &'static [&'static [&'static str]],
    reported: &'static str,
}

const DAMAGES: &[Damage] = &[
    Damage {
        commands: &[&["ZADD", "zrq:{au}:completed", "99999999999999", "bogus"]],
        reported: "completed index holds bogus, which has no record",
    },
    Damage {
        commands: &[&["RECORD-SET", "{pending}", "state", "completed"]],
        reported: "is completed but not in the completed index",
    },
    Damage {
        commands: &[&["ZREM", "zrq:{au}:active", "{active}"]],
        reported: "is active but not in the active index",
    },
    Damage {
        commands: &[&["XGROUP", "SETID", "zrq:{au}:stream", "zrq", "$"]],
        reported: "no FETCH will ever see it",
    },
    Damage {
        commands: &[&["XADD", "zrq:{au}:stream", "*", "job", "{active}"]],
        reported: "is undelivered (so pending), its record says active",
    },
    Damage {
        commands: &[&["RECORD-SET", "{active}", "entry", "1-1"]],
        reported: "which is not in the group's pending list",
    },
    Damage {
        commands: &[&["RECORD-SET", "{kept}", "entry", "1-1"]],
        reported: "completed record has an entry field",
    },
    Damage {
        commands: &[&["XDEL", "zrq:{au}:stream", "{pending.entry}"]],
        reported: "is pending but has no stream entry",
    },
    Damage {
        commands: &[&["XADD", "zrq:{au}:stream", "*", "job", "{pending}"]],
        reported: "has two stream entries",
    },
    Damage {
        commands: &[&["HSET", "zrq:{au}:unique", "u2", "{completed}"]],
        reported: "UNIQUE key u2 is held by",
    },
    Damage {
        commands: &[&["HINCRBY", "zrq:{au}:stats", "completed", "-2"]],
        reported: "completed now but total_completed is only 0",
    },
    Damage {
        commands: &[&["HSET", "zrq:{au}:stats", "enqueued", "1"]],
        reported: "job records, but INFO counts only 1 enqueued",
    },
    Damage {
        commands: &[&["ZADD", "zrq:{au}:scheduled", "5", "{scheduled}"]],
        reported: "scheduled index scores",
    },
    Damage {
        commands: &[&["DEL", "zrq:{au}:job:{dead}"]],
        reported: "was enqueued but has no record: lost",
    },
    Damage {
        commands: &[&["XDEL", "zrq:{au}:stream", "{inline}"]],
        reported: "was enqueued but has no record: lost",
    },
    Damage {
        commands: &[&[
            "XADD",
            "zrq:{au}:stream",
            "*",
            "task",
            "t",
            "payload",
            "{}",
            "timeout",
            "30000",
        ]],
        reported: "inline entry",
    },
    Damage {
        commands: &[&["XADD", "zrq:{au}:stream", "*", "payload", "{}"]],
        reported: "does not read as a job",
    },
    Damage {
        commands: &[&["XADD", "zrq:{au}:stream", "*", "job", "{inline}"]],
        reported: "has two stream entries",
    },
    Damage {
        commands: &[&["HDEL", "zrq:{au}:schedules", "hourly"]],
        reported: "schedule hourly is in ticks only",
    },
    Damage {
        commands: &[&["SET", "zrq:{au}:job:{kept}", "t1:t s9:completed "]],
        reported: "does not decode",
    },
    Damage {
        commands: &[&[
            "SET",
            "zrq:{au}:job:{dead}",
            "s4:dead t1:t p2:{} a1:1 m1:1 c1:1 f1:2",
        ]],
        reported: "not in record order",
    },
    Damage {
        commands: &[
            &["DEL", "zrq:{au}:job:{dead}"],
            &["RPUSH", "zrq:{au}:job:{dead}", "x"],
        ],
        reported: "is a list",
    },
    // The finished jobs kept in records hashes with log entries (DONE-SPEC).
    Damage {
        commands: &[&["DEL", "zrq:{au}:completed:log"]],
        reported: "is in the completed records hash with 0 entries in the completed log",
    },
    Damage {
        commands: &[&["DEL", "zrq:{au}:cancelled:log"]],
        reported: "is in the cancelled records hash with 0 entries in the cancelled log",
    },
    Damage {
        commands: &[&["XADD", "zrq:{au}:completed:log", "*", "id", "{completed}"]],
        reported: "with 2 entries in the completed log",
    },
    Damage {
        commands: &[&["XADD", "zrq:{au}:completed:log", "*", "id", "bogus"]],
        reported: "names bogus, which is not in the completed records hash",
    },
    Damage {
        commands: &[&["HDEL", "zrq:{au}:completed:records", "{completed}"]],
        reported: "which is not in the completed records hash",
    },
    Damage {
        commands: &[&["HDEL", "zrq:{au}:cancelled:records", "{cancelled}"]],
        reported: "was enqueued but has no record: lost",
    },
    Damage {
        commands: &[&["XADD", "zrq:{au}:cancelled:log", "*", "id", "{completed}"]],
        reported: "(it is in the completed one)",
    },
    Damage {
        commands: &[&["XADD", "zrq:{au}:completed:log", "*", "job", "x"]],
        reported: "not one id field",
    },
    Damage {
        commands: &[&[
            "HSET",
            "zrq:{au}:completed:records",
            "{completed}",
            "t1:t p2:{} s4:dead c1:1 f1:2",
        ]],
        reported: "field 'state' does not match its place",
    },
    Damage {
        commands: &[&[
            "HSET",
            "zrq:{au}:completed:records",
            "{completed}",
            "t1:t p2:{} s9:completed c1:1 f1:2",
        ]],
        reported: "stores its state",
    },
    Damage {
        commands: &[&[
            "HSET",
            "zrq:{au}:completed:records",
            "{completed}",
            "t1:t p2:{} c1:1 f1:2",
        ]],
        reported: "its record's finished_at is",
    },
    Damage {
        commands: &[&[
            "HSET",
            "zrq:{au}:completed:records",
            "{completed}",
            "t1:t s9:completed ",
        ]],
        reported: "does not decode",
    },
    Damage {
        commands: &[&[
            "SET",
            "zrq:{au}:job:{completed}",
            "t1:t p2:{} s9:completed c1:1 f1:2",
        ]],
        reported: "has two records",
    },
    Damage {
        commands: &[&[
            "ZADD",
            "zrq:{au}:completed",
            "99999999999999",
            "{completed}",
        ]],
        reported: "which is kept in the completed records hash",
    },
    Damage {
        commands: &[&[
            "HSET",
            "zrq:{au}:cancelled:records",
            "{completed}",
            "t1:t p2:{} c1:1 f1:2",
        ]],
        reported: "is in the completed and cancelled records hashes",
    },
    Damage {
        commands: &[
            &["DEL", "zrq:{au}:completed:records"],
            &["SET", "zrq:{au}:completed:records", "x"],
        ],
        reported: "zrq:{au}:completed:records is not a hash",
    },
    Damage {
        commands: &[
            &["DEL", "zrq:{au}:cancelled:log"],
            &["SET", "zrq:{au}:cancelled:log", "x"],
        ],
        reported: "zrq:{au}:cancelled:log is not a stream",
    },
];

fn audit_reports_each_damage(backend: Backend) {
    for damage in DAMAGES {
        let fixture = Fixture::new(backend);
        let mut conn = fixture.server.conn();
        let commands: Vec<Vec<String>> = damage
            .commands
            .iter()
            .map(|args| args.iter().map(|a| fill(&fixture, a)).collect())
            .collect();
        let commands: Vec<Vec<&str>> = commands
            .iter()
            .map(|args| args.iter().map(String::as_str).collect())
            .collect();
        for args in &commands {
            match args.as_slice() {
                ["RECORD-SET", id, field, value] => {
                    support::tamper(&mut conn, Q, id, |record| {
                        record.insert(field.to_string(), value.to_string());
                    });
                }
                _ => run_commands(&mut conn, &[args.as_slice()]),
            }
        }
        let report = audit(&mut conn, backend, Q, Some(&fixture.expected()));
        assert!(
            report
                .violations
                .iter()
                .any(|v| v.contains(damage.reported)),
            "{:?}: wanted a violation saying '{}', got {:#?}",
            damage.commands,
            damage.reported,
            report.violations
        );
    }
}

/// `arg` with `{role}` replaced by the fixture's id in that role and `{role.field}` by that
/// job's field (the queue's own `{au}` is left alone).
fn fill(fixture: &Fixture, arg: &str) -> String {
    let mut out = arg.to_string();
    for role in fixture.ids.keys() {
        if let Some(start) = out.find(&format!("{{{role}.")) {
            let end = start + out[start..].find('}').expect("closing brace");
            let field = out[start + role.len() + 2..end].to_string();
            out.replace_range(start..=end, &fixture.field(role, &field));
        }
        out = out.replace(&format!("{{{role}}}"), fixture.id(role));
    }
    out
}

conformance!(
    audit_is_silent_on_a_consistent_queue,
    audit_reports_each_damage
);

//! Bad input for the lifecycle commands (FAIL, TOUCH, CANCEL, RESULT, DEAD, REQUEUE, DELETE,
//! PAUSE, RESUME, SCHEDULE, UNSCHEDULE, SCHEDULES, INFO, LIST, QUEUES) and ENQUEUE's lifecycle
//! options: arity, bad names and numbers, unknown, missing and repeated options, DELAY with AT,
//! out-of-range PRIORITY and PROGRESS, bad CRON expressions, an unknown LIST state, non-UTF-8
//! error text, keys of the wrong type.
//!
//! Each case must get an error whose first word is a code of the error table, the exact text
//! (from the core constructors, and literally for a representative subset), an unchanged
//! keyspace, and a server that still answers.

use crate::support;

use zrq_core::args::{MAX_COUNT, MAX_DURATION_MS, MAX_NAME_LEN, MAX_RETRIES};
use zrq_core::commands::enqueue::MAX_AT_MS;
use zrq_core::commands::fail::MAX_ERROR_LEN;
use zrq_core::state::State;
use zrq_core::ZrqError;
use zrq_tests::{conformance, redis, Backend, Server, Zrq};

#[derive(Clone)]
struct Case {
    command: &'static str,
    args: Vec<Vec<u8>>,
    want: String,
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ZRQ.{}", self.command.to_uppercase())?;
        for arg in &self.args {
            let shown = zrq_core::error::show_arg(&arg[..arg.len().min(80)]);
            write!(f, " '{shown}'")?;
        }
        write!(f, " (want {:?})", self.want)
    }
}

fn case(command: &'static str, args: &[&[u8]], want: impl Into<String>) -> Case {
    Case {
        command,
        args: args.iter().map(|a| a.to_vec()).collect(),
        want: want.into(),
    }
}

/// Valid arguments of each command against the fixture, to vary one thing at a time.
const VALID: &[(&str, &[&str])] = &[
    ("enqueue", &["q", "t", "{}"]),
    ("fail", &["q", "a1", "boom"]),
    ("touch", &["q", "a1"]),
    ("cancel", &["q", "p1"]),
    ("result", &["q", "c1"]),
    ("dead", &["q"]),
    ("requeue", &["q", "d1"]),
    ("delete", &["q", "p1"]),
    ("pause", &["q"]),
    ("resume", &["q"]),
    ("schedule", &["q", "s2", "EVERY", "600000", "t", "{}"]),
    ("unschedule", &["q", "s1"]),
    ("schedules", &["q"]),
    ("info", &["q"]),
    // A state kept in a sorted set, whose cursor is a rank (pending has its own, see limits.rs).
    ("list", &["q", "scheduled"]),
];

fn valid(command: &str) -> Vec<Vec<u8>> {
    VALID
        .iter()
        .find(|(c, _)| *c == command)
        .map(|(_, args)| args.iter().map(|a| a.as_bytes().to_vec()).collect())
        .unwrap_or_else(|| panic!("no valid arguments for {command}"))
}

fn with(mut args: Vec<Vec<u8>>, extra: &[&[u8]]) -> Vec<Vec<u8>> {
    args.extend(extra.iter().map(|a| a.to_vec()));
    args
}

/// How many leading arguments are required (the rest of VALID are options).
fn required(command: &str) -> usize {
    match command {
        "schedule" => 6,
        "enqueue" | "fail" => 3,
        "dead" | "pause" | "resume" | "schedules" | "info" => 1,
        _ => 2,
    }
}

/// Commands that take no options: one argument more is an arity error.
const FIXED_ARITY: &[&str] = &[
    "cancel",
    "requeue",
    "delete",
    "pause",
    "resume",
    "unschedule",
    "schedules",
    "info",
];

/// Names in positional slots: (command, slot, what).
const NAME_SLOTS: &[(&str, usize, &str)] = &[
    ("fail", 0, "queue"),
    ("fail", 1, "id"),
    ("touch", 0, "queue"),
    ("touch", 1, "id"),
    ("cancel", 0, "queue"),
    ("cancel", 1, "id"),
    ("result", 0, "queue"),
    ("result", 1, "id"),
    ("dead", 0, "queue"),
    ("requeue", 0, "queue"),
    ("requeue", 1, "id"),
    ("delete", 0, "queue"),
    ("delete", 1, "id"),
    ("pause", 0, "queue"),
    ("resume", 0, "queue"),
    ("schedule", 0, "queue"),
    ("schedule", 1, "name"),
    ("schedule", 4, "task"),
    ("unschedule", 0, "queue"),
    ("unschedule", 1, "name"),
    ("schedules", 0, "queue"),
    ("info", 0, "queue"),
    ("list", 0, "queue"),
];

/// Numeric options: (command, option, min, max).
const NUMERIC: &[(&str, &str, i64, i64)] = &[
    ("enqueue", "DELAY", 0, MAX_DURATION_MS),
    ("enqueue", "AT", 0, MAX_AT_MS),
    ("enqueue", "BACKOFF", 0, MAX_DURATION_MS),
    ("enqueue", "PRIORITY", 0, 9),
    ("enqueue", "KEEP", 1, MAX_DURATION_MS),
    ("fail", "RETRYIN", 0, MAX_DURATION_MS),
    ("touch", "TIMEOUT", 1, MAX_DURATION_MS),
    ("touch", "PROGRESS", 0, 100),
    ("result", "BLOCK", 0, MAX_DURATION_MS),
    ("dead", "COUNT", 1, MAX_COUNT),
    ("dead", "CURSOR", 0, i64::MAX),
    ("list", "COUNT", 1, MAX_COUNT),
    ("list", "CURSOR", 0, i64::MAX),
    ("schedule", "RETRIES", 0, MAX_RETRIES),
    ("schedule", "TIMEOUT", 1, MAX_DURATION_MS),
    ("schedule", "BACKOFF", 0, MAX_DURATION_MS),
    ("schedule", "PRIORITY", 0, 9),
    ("schedule", "KEEP", 1, MAX_DURATION_MS),
];

/// Options with a valid value, per command that has options.
fn options(command: &str) -> &'static [(&'static str, &'static str)] {
    match command {
        "enqueue" => &[
            ("DELAY", "600000"),
            ("BACKOFF", "10"),
            ("PRIORITY", "1"),
            ("UNIQUE", "u9"),
            ("KEEP", "1000"),
        ],
        "fail" => &[("RETRYIN", "600000")],
        "touch" => &[("TIMEOUT", "1000"), ("PROGRESS", "5")],
        "result" => &[("BLOCK", "10")],
        "dead" | "list" => &[("COUNT", "5"), ("CURSOR", "0")],
        "schedule" => &[
            ("RETRIES", "1"),
            ("TIMEOUT", "100"),
            ("BACKOFF", "10"),
            ("PRIORITY", "2"),
            ("UNIQUE", "u9"),
            ("KEEP", "1000"),
        ],
        _ => &[],
    }
}

/// Options of other commands (or of ENQUEUE that SCHEDULE does not take): unknown here.
fn foreign(command: &str) -> &'static [&'static [u8]] {
    match command {
        "enqueue" => &[b"RETRYIN", b"PROGRESS", b"CURSOR", b"EVERY"],
        "fail" => &[b"TIMEOUT", b"RESULT", b"PROGRESS", b"DELAY"],
        "touch" => &[b"RETRYIN", b"BLOCK", b"RESULT"],
        "result" => &[b"COUNT", b"TIMEOUT", b"RESULT"],
        "dead" | "list" => &[b"BLOCK", b"ID", b"STATE"],
        "schedule" => &[b"ID", b"DELAY", b"AT", b"EVERY", b"CRON"],
        _ => &[],
    }
}

/// The representative cases whose text is asserted literally: error texts are API.
fn literal_cases() -> Vec<Case> {
    vec![
        case(
            "fail",
            &[b"q", b"a1"],
            "ERR wrong number of arguments for 'zrq.fail' command",
        ),
        case(
            "cancel",
            &[b"q", b"p1", b"now"],
            "ERR wrong number of arguments for 'zrq.cancel' command",
        ),
        case("queues", &[b"extra"], "ERR unknown option 'extra'"),
        case(
            "queues",
            &[b"CURSOR", b"-1"],
            "ERR CURSOR must be an integer from 0 to 9223372036854775807, got '-1'",
        ),
        case(
            "enqueue",
            &[b"q", b"t", b"{}", b"DELAY", b"10", b"AT", b"5"],
            "ERR options DELAY and AT cannot be combined",
        ),
        case(
            "enqueue",
            &[b"q", b"t", b"{}", b"AT", b"5", b"DELAY", b"10"],
            "ERR options DELAY and AT cannot be combined",
        ),
        case(
            "enqueue",
            &[b"q", b"t", b"{}", b"PRIORITY", b"10"],
            "ERR PRIORITY must be an integer from 0 to 9, got '10'",
        ),
        case(
            "enqueue",
            &[b"q", b"t", b"{}", b"KEEP", b"0"],
            "ERR KEEP must be an integer from 1 to 315360000000, got '0'",
        ),
        case(
            "touch",
            &[b"q", b"a1", b"PROGRESS", b"101"],
            "ERR PROGRESS must be an integer from 0 to 100, got '101'",
        ),
        case(
            "fail",
            &[b"q", b"a1", b"e", b"RETRYIN", b"-5"],
            "ERR RETRYIN must be an integer from 0 to 315360000000, got '-5'",
        ),
        case(
            "fail",
            &[b"q", b"a1", b"e", b"RETRYIN"],
            "ERR option RETRYIN needs a value",
        ),
        case(
            "fail",
            &[b"q", b"a1", b"\xff\xfe"],
            "ERR error must be UTF-8 text of at most 65536 bytes",
        ),
        case(
            "result",
            &[b"q", b"c1", b"BLOCK", b"1", b"block", b"2"],
            "ERR option BLOCK given more than once",
        ),
        case(
            "schedule",
            &[b"q", b"s", b"EVERY", b"0", b"t", b"{}"],
            "ERR EVERY must be an integer from 1 to 315360000000, got '0'",
        ),
        case(
            "schedule",
            &[b"q", b"s", b"HOURLY", b"1", b"t", b"{}"],
            "ERR schedule kind must be one of EVERY, CRON, got 'HOURLY'",
        ),
        case(
            "schedule",
            &[b"q", b"s", b"CRON", b"60 * * * *", b"t", b"{}"],
            "ERR CRON expression is invalid: minute field '60' must be within 0-59",
        ),
        case(
            "schedule",
            &[b"q", b"s", b"CRON", b"* * * *", b"t", b"{}"],
            "ERR CRON expression is invalid: expected 5 fields (minute hour day-of-month \
             month day-of-week), got 4",
        ),
        case(
            "schedule",
            &[b"q", b"s", b"CRON", b"0 0 30 2 *", b"t", b"{}"],
            "ERR CRON expression is invalid: it never matches",
        ),
        case(
            "schedule",
            &[b"q", b"s", b"EVERY", b"1000", b"t", b"{}", b"DELAY", b"5"],
            "ERR unknown option 'DELAY'",
        ),
        case(
            "schedule",
            &[b"q", b"s", b"EVERY", b"1000", b"t", b"{"],
            "BADJSON payload is not valid JSON: ",
        ),
        case(
            "dead",
            &[b"q", b"COUNT", b"0"],
            "ERR COUNT must be an integer from 1 to 1000, got '0'",
        ),
        case(
            "requeue",
            &[b"q", b"a b"],
            "ERR id must be 1 to 200 printable ASCII characters without spaces, got 'a b'",
        ),
        case(
            "fail",
            &[b"wr", b"a1", b"e"],
            "WRONGTYPE key 'zrq:{wr}:retrying' holds a list, zrq expects a zset",
        ),
        case(
            "pause",
            &[b"wp"],
            "WRONGTYPE key 'zrq:{wp}:paused' holds a hash, zrq expects a string",
        ),
    ]
}

fn generated_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let commands: Vec<&'static str> = VALID.iter().map(|(c, _)| *c).collect();
    for &command in &commands {
        let arity = ZrqError::arity(&format!("zrq.{command}")).to_string();
        let args = valid(command);
        // Too few: every prefix of the required arguments.
        for n in 0..required(command) {
            cases.push(Case {
                command,
                args: args[..n].to_vec(),
                want: arity.clone(),
            });
        }
        // Too many, for commands without options.
        if FIXED_ARITY.contains(&command) {
            for extra in [&[&b"x"[..]][..], &[b"x", b"y"], &[b""]] {
                cases.push(Case {
                    command,
                    args: with(args.clone(), extra),
                    want: arity.clone(),
                });
            }
        }
        let opts = options(command);
        if !opts.is_empty() {
            for word in [&b"BOGUS"[..], b"", b"\xff", b"x"] {
                cases.push(Case {
                    command,
                    args: with(args.clone(), &[word, b"1"]),
                    want: ZrqError::unknown_option(word).to_string(),
                });
            }
            for word in foreign(command) {
                cases.push(Case {
                    command,
                    args: with(args.clone(), &[word, b"1"]),
                    want: ZrqError::unknown_option(word).to_string(),
                });
            }
            let (name, value) = opts[0];
            cases.push(Case {
                command,
                args: with(args.clone(), &[name.as_bytes(), value.as_bytes(), b"extra"]),
                want: ZrqError::unknown_option(b"extra").to_string(),
            });
        }
        for (name, value) in opts {
            cases.push(Case {
                command,
                args: with(args.clone(), &[name.as_bytes()]),
                want: ZrqError::missing_value(name).to_string(),
            });
            let lower = name.to_lowercase();
            cases.push(Case {
                command,
                args: with(
                    args.clone(),
                    &[
                        name.as_bytes(),
                        value.as_bytes(),
                        lower.as_bytes(),
                        value.as_bytes(),
                    ],
                ),
                want: ZrqError::repeated_option(name).to_string(),
            });
        }
    }
    cases.push(case(
        "queues",
        &[b"COUNT", b"251"],
        ZrqError::integer_out_of_range("COUNT", b"251", 1, 250).to_string(),
    ));

    // Bad names.
    let mut long = vec![b'n'; MAX_NAME_LEN + 1];
    long[0] = b'L';
    let bad_names: Vec<&[u8]> = vec![b"", b"a b", b"a\nb", b"\x00", b"\xff\xfe", &long];
    for (command, slot, what) in NAME_SLOTS {
        let mut bad = bad_names.clone();
        if *what == "queue" {
            bad.extend([&b"a{b"[..], b"{q}"]);
        }
        for raw in bad {
            let mut args = valid(command);
            args[*slot] = raw.to_vec();
            cases.push(Case {
                command,
                args,
                want: ZrqError::invalid_name(what, raw).to_string(),
            });
        }
    }
    for raw in [&b""[..], b"a b", b"\xff"] {
        cases.push(case(
            "enqueue",
            &[b"q", b"t", b"{}", b"UNIQUE", raw],
            ZrqError::invalid_name("UNIQUE", raw).to_string(),
        ));
        cases.push(case(
            "schedule",
            &[b"q", b"s", b"EVERY", b"1000", b"t", b"{}", b"UNIQUE", raw],
            ZrqError::invalid_name("UNIQUE", raw).to_string(),
        ));
    }

    // Numbers, including EVERY in its positional slot.
    let mut numeric: Vec<(&str, &str, i64, i64)> = NUMERIC.to_vec();
    numeric.push(("schedule", "EVERY", 1, MAX_DURATION_MS));
    for (command, option, min, max) in numeric {
        let above = (max as i128 + 1).to_string();
        let below = (min as i128 - 1).to_string();
        let bad: Vec<&[u8]> = vec![
            b"abc",
            b"1.5",
            b"",
            b"+1",
            b" 1",
            b"1e3",
            b"0x10",
            b"\xff",
            b"99999999999999999999",
            above.as_bytes(),
            below.as_bytes(),
        ];
        for raw in bad {
            let args = if option == "EVERY" {
                let mut args = valid("schedule");
                args[3] = raw.to_vec();
                args
            } else {
                with(valid(command), &[option.as_bytes(), raw])
            };
            cases.push(Case {
                command,
                args,
                want: ZrqError::integer_out_of_range(option, raw, min, max).to_string(),
            });
        }
    }
    // DELAY and AT together, whatever the values.
    for (a, b) in [("DELAY", "AT"), ("AT", "DELAY")] {
        cases.push(case(
            "enqueue",
            &[
                b"q",
                b"t",
                b"{}",
                a.as_bytes(),
                b"0",
                b"PRIORITY",
                b"1",
                b.as_bytes(),
                b"0",
            ],
            ZrqError::conflicting_options("DELAY", "AT").to_string(),
        ));
    }

    // CRON expressions.
    let bad_cron: &[(&[u8], &str)] = &[
        (
            b"",
            "expected 5 fields (minute hour day-of-month month day-of-week), got 0",
        ),
        (
            b"* * * * * *",
            "expected 5 fields (minute hour day-of-month month day-of-week), got 6",
        ),
        (b"*/0 * * * *", "minute field '*/0' must be within 0-59"),
        (b"a * * * *", "minute field 'a' must be within 0-59"),
        (b"5-1 * * * *", "minute field '5-1' must be within 0-59"),
        (b"-1 * * * *", "minute field '-1' must be within 0-59"),
        (b"* 24 * * *", "hour field '24' must be within 0-23"),
        (b"* * 0 * *", "day-of-month field '0' must be within 1-31"),
        (b"* * 32 * *", "day-of-month field '32' must be within 1-31"),
        (b"* * * 13 *", "month field '13' must be within 1-12"),
        (b"* * * 0 *", "month field '0' must be within 1-12"),
        (b"* * * * 8", "day-of-week field '8' must be within 0-7"),
        (b"1,,2 * * * *", "minute field '' must be within 0-59"),
        (b"\xff * * * *", "not UTF-8"),
        (b"0 0 31 2 *", "it never matches"),
    ];
    for (expr, detail) in bad_cron {
        cases.push(case(
            "schedule",
            &[b"q", b"s", b"CRON", expr, b"t", b"{}"],
            ZrqError::bad_cron(detail).to_string(),
        ));
    }
    // LIST: unknown states.
    let names: Vec<&str> = State::ALL.iter().map(|s| s.as_str()).collect();
    for raw in [&b"done"[..], b"", b"pend", b"\xff", b"pending "] {
        cases.push(case(
            "list",
            &[b"q", raw],
            ZrqError::not_one_of("state", raw, &names).to_string(),
        ));
    }
    // FAIL: error text that is not UTF-8 or too long.
    let too_long = vec![b'e'; MAX_ERROR_LEN + 1];
    let bad_text = ZrqError::bad_text("error", MAX_ERROR_LEN).to_string();
    for raw in [&b"\xff"[..], b"ok \xc3", &too_long] {
        cases.push(case("fail", &[b"q", b"a1", raw], bad_text.clone()));
    }
    // JSON of SCHEDULE's payload.
    for raw in [&b"{"[..], b"", b"nul", b"\xff"] {
        let want = if raw == b"\xff" {
            ZrqError::bad_json("payload", "not UTF-8").to_string()
        } else {
            "BADJSON payload is not valid JSON: ".to_string()
        };
        cases.push(case(
            "schedule",
            &[b"q", b"s", b"EVERY", b"1000", b"t", raw],
            want,
        ));
    }
    // Left to right: the first bad argument is reported.
    cases.push(case(
        "touch",
        &[b"q", b"a1", b"PROGRESS", b"101", b"TIMEOUT", b"0"],
        ZrqError::integer_out_of_range("PROGRESS", b"101", 0, 100).to_string(),
    ));
    cases.push(case(
        "schedule",
        &[b"q", b"a b", b"CRON", b"bad", b"t", b"{"],
        ZrqError::invalid_name("name", b"a b").to_string(),
    ));

    // Keys of the wrong type (see `fixture`).
    let wrong = |key: &str, found: &str, expected: &str| {
        ZrqError::wrong_type(key, found, expected).to_string()
    };
    // ENQUEUE checks only the keys its path writes: a delayed job goes into `scheduled` (and
    // never into `retrying`, so a wrong `retrying` key does not concern it).
    cases.push(case(
        "enqueue",
        &[b"wsd", b"t", b"{}", b"DELAY", b"10"],
        wrong("zrq:{wsd}:scheduled", "list", "zset"),
    ));
    let retrying = wrong("zrq:{wr}:retrying", "list", "zset");
    for (command, args) in [
        ("fail", &[&b"wr"[..], b"a1", b"e"][..]),
        ("touch", &[b"wr", b"a1"]),
        ("cancel", &[b"wr", b"a1"]),
        ("requeue", &[b"wr", b"ALL"]),
        ("delete", &[b"wr", b"a1"]),
        ("schedule", &[b"wr", b"s", b"EVERY", b"1000", b"t", b"{}"]),
        ("unschedule", &[b"wr", b"s"]),
        ("info", &[b"wr"]),
        ("list", &[b"wr", b"retrying"]),
    ] {
        cases.push(case(command, args, retrying.clone()));
    }
    cases.push(case(
        "dead",
        &[b"wd"],
        wrong("zrq:{wd}:dead", "string", "zset"),
    ));
    for command in ["pause", "resume"] {
        cases.push(case(
            command,
            &[b"wp"],
            wrong("zrq:{wp}:paused", "hash", "string"),
        ));
    }
    let schedules = wrong("zrq:{wsch}:schedules", "string", "hash");
    cases.push(case("schedules", &[b"wsch"], schedules.clone()));
    cases.push(case(
        "schedule",
        &[b"wsch", b"s", b"CRON", b"* * * * *", b"t", b"{}"],
        schedules.clone(),
    ));
    cases.push(case("unschedule", &[b"wsch", b"s"], schedules));
    cases.push(case(
        "schedules",
        &[b"wt"],
        wrong("zrq:{wt}:ticks", "hash", "zset"),
    ));
    cases.push(case(
        "enqueue",
        &[b"wu", b"t", b"{}", b"UNIQUE", b"k"],
        wrong("zrq:{wu}:unique", "list", "hash"),
    ));
    cases.push(case(
        "cancel",
        &[b"wc", b"x"],
        wrong("zrq:{wc}:completed", "set", "zset"),
    ));
    // A job record is a string (packed) or a hash (the earlier format): any other type is
    // WRONGTYPE, and a string that is no packed record is CORRUPT.
    let job = wrong("zrq:{wj}:job:j1", "list", "string");
    let corrupt = "CORRUPT 'zrq:{wx}:job:j1' is not a zrq record: ".to_string();
    for (command, args) in [
        ("result", &[&b"j1"[..]][..]),
        ("result", &[b"j1", b"BLOCK", b"0"]),
        ("fail", &[b"j1", b"e"]),
        ("touch", &[b"j1"]),
        ("cancel", &[b"j1"]),
        ("requeue", &[b"j1"]),
        ("delete", &[b"j1"]),
    ] {
        let with = |queue: &'static [u8]| [&[queue][..], args].concat();
        cases.push(case(command, &with(b"wj"), job.clone()));
        cases.push(case(command, &with(b"wx"), corrupt.clone()));
    }
    cases
}

/// A queue with jobs in every state and a schedule, plus keys of the wrong type under zrq names.
fn fixture(server: &Server, backend: Backend) -> Zrq {
    let mut zrq = server.zrq(backend);
    zrq.enqueue("q", "t", "{}", &["ID", "a1"]);
    zrq.enqueue("q", "t", "{}", &["ID", "c1"]);
    zrq.enqueue("q", "t", "{}", &["ID", "d1", "RETRIES", "0"]);
    zrq.enqueue("q", "t", "{}", &["ID", "r1"]);
    assert_eq!(zrq.fetch("q", "w", 4).len(), 4);
    let _: i64 = zrq.call("ack", &["q", "c1", "RESULT", "1"]).expect("ACK");
    let _: String = zrq.call("fail", &["q", "d1", "e"]).expect("FAIL");
    let _: String = zrq
        .call("fail", &["q", "r1", "e", "RETRYIN", "600000"])
        .expect("FAIL");
    zrq.enqueue("q", "t", "{}", &["ID", "p1"]);
    zrq.enqueue("q", "t", "{}", &["ID", "s1", "DELAY", "600000"]);
    let mut conn = server.conn();
    let setup: &[&[&str]] = &[
        &["RPUSH", "zrq:{wj}:job:j1", "x"],
        &["SET", "zrq:{wx}:job:j1", "x"],
        &["RPUSH", "zrq:{wr}:retrying", "x"],
        &["RPUSH", "zrq:{wsd}:scheduled", "x"],
        &["SET", "zrq:{wd}:dead", "x"],
        &["HSET", "zrq:{wp}:paused", "x", "1"],
        &["SET", "zrq:{wsch}:schedules", "x"],
        &["HSET", "zrq:{wt}:ticks", "x", "1"],
        &["RPUSH", "zrq:{wu}:unique", "x"],
        &["SADD", "zrq:{wc}:completed", "x"],
    ];
    support::run_commands(&mut conn, setup);
    zrq
}

fn check(server: &Server, zrq: &mut Zrq, case: &Case) {
    support::assert_refused(server, zrq, case, case.command, &case.args, |text, _| {
        assert!(
            !text.contains('\n') && !text.contains('\r'),
            "{case:?}: {text:?}"
        );
        if case.want.ends_with(": ") {
            assert!(text.starts_with(&case.want), "{case:?}: {text}");
        } else {
            assert_eq!(text, case.want, "{case:?}");
        }
    });
}

/// The schedule commands, whose cases are checked separately (with a schedule in the fixture).
const SCHEDULING: [&str; 3] = ["schedule", "unschedule", "schedules"];

fn all_cases() -> Vec<Case> {
    literal_cases()
        .into_iter()
        .chain(generated_cases())
        .collect()
}

fn every_bad_lifecycle_input_is_refused_and_changes_nothing(backend: Backend) {
    let server = backend.server();
    let mut zrq = fixture(&server, backend);
    let cases: Vec<Case> = all_cases()
        .into_iter()
        .filter(|c| !SCHEDULING.contains(&c.command))
        .collect();
    assert!(cases.len() > 400, "the table covers {} cases", cases.len());
    for case in &cases {
        check(&server, &mut zrq, case);
    }
    for (id, state) in [
        ("a1", "active"),
        ("c1", "completed"),
        ("d1", "dead"),
        ("r1", "retrying"),
        ("p1", "pending"),
        ("s1", "scheduled"),
    ] {
        assert_eq!(zrq.state("q", id).as_deref(), Some(state), "{id}");
    }
}

fn every_bad_schedule_input_is_refused_and_changes_nothing(backend: Backend) {
    let server = backend.server();
    let mut zrq = fixture(&server, backend);
    let _: i64 = zrq
        .call("schedule", &["q", "s1", "EVERY", "600000", "t", "{}"])
        .expect("SCHEDULE");
    let cases: Vec<Case> = all_cases()
        .into_iter()
        .filter(|c| SCHEDULING.contains(&c.command))
        .collect();
    assert!(cases.len() > 150, "the table covers {} cases", cases.len());
    for case in &cases {
        check(&server, &mut zrq, case);
    }
    let listed: redis::Value = zrq.call("schedules", &["q"]).expect("SCHEDULES");
    let redis::Value::Array(items) = listed else {
        panic!("SCHEDULES: {listed:?}")
    };
    assert_eq!(items.len(), 1, "only s1 is defined");
}

fn wrong_types_do_not_break_the_other_queues(backend: Backend) {
    // The timer meets the wrong-typed keys too (module): it must go on serving good queues.
    let server = backend.server();
    let mut zrq = fixture(&server, backend);
    let id = zrq.enqueue("good", "t", "{}", &["DELAY", "50"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut got = Vec::new();
    while got.is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        got = zrq.fetch("good", "w", 1);
    }
    assert_eq!(got.len(), 1, "the delayed job of a good queue is delivered");
    assert_eq!(got[0]["id"], id);
}

conformance!(
    every_bad_lifecycle_input_is_refused_and_changes_nothing,
    every_bad_schedule_input_is_refused_and_changes_nothing,
    wrong_types_do_not_break_the_other_queues,
);

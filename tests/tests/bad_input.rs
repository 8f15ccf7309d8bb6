//! Bad input: every command, every kind of malformed argument, and keys of the wrong type.
//!
//! Each case must get an error reply whose first word is a code from the core error table and
//! whose text names the problem; the keyspace must be unchanged and the server must still answer.

use crate::support;

use support::error_text;
use zrq_core::args::{MAX_COUNT, MAX_DURATION_MS, MAX_NAME_LEN, MAX_RETRIES};
use zrq_core::{keys, ZrqError};
use zrq_tests::{conformance, redis, Backend, Server, Zrq};

/// What the error reply must be.
#[derive(Debug, Clone)]
enum Want {
    /// Exactly this text.
    Exact(String),
    /// This code, and a message containing this fragment.
    Names(&'static str, String),
}

#[derive(Clone)]
struct Case {
    command: &'static str,
    args: Vec<Vec<u8>>,
    want: Want,
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ZRQ.{}", self.command.to_uppercase())?;
        for arg in &self.args {
            write!(f, " '{}'", zrq_core::error::show_arg(arg))?;
        }
        write!(f, " (want {:?})", self.want)
    }
}

fn case(command: &'static str, args: &[&[u8]], want: Want) -> Case {
    Case {
        command,
        args: args.iter().map(|a| a.to_vec()).collect(),
        want,
    }
}

fn exact(text: &str) -> Want {
    Want::Exact(text.to_string())
}

fn names(code: &'static str, fragment: &str) -> Want {
    Want::Names(code, fragment.to_string())
}

/// Valid arguments of each command (against the fixture below), to vary one position at a time.
const VALID: &[(&str, &[&str])] = &[
    ("enqueue", &["q", "t", "{}"]),
    ("fetch", &["q", "w"]),
    ("ack", &["q", "a1"]),
    ("state", &["q", "p1"]),
    ("job", &["q", "p1"]),
    ("reclaim", &["q", "w"]),
];

/// What each positional argument is called in error messages.
fn positional_names(command: &str) -> &'static [&'static str] {
    match command {
        "enqueue" => &["queue", "task", "payload"],
        "fetch" | "reclaim" => &["queue", "consumer"],
        _ => &["queue", "id"],
    }
}

/// Numeric options: (command, option, min, max).
const NUMERIC: &[(&str, &str, i64, i64)] = &[
    ("enqueue", "RETRIES", 0, MAX_RETRIES),
    ("enqueue", "TIMEOUT", 1, MAX_DURATION_MS),
    ("fetch", "COUNT", 1, MAX_COUNT),
    ("fetch", "BLOCK", 0, MAX_DURATION_MS),
    ("reclaim", "COUNT", 1, MAX_COUNT),
];

/// Options of each command with a valid value.
fn options(command: &str) -> &'static [(&'static str, &'static str)] {
    match command {
        "enqueue" => &[("ID", "x1"), ("RETRIES", "1"), ("TIMEOUT", "100")],
        "fetch" => &[("COUNT", "1"), ("BLOCK", "10")],
        "ack" => &[("RESULT", "{}")],
        "reclaim" => &[("COUNT", "1")],
        _ => &[],
    }
}

fn valid(command: &str) -> Vec<Vec<u8>> {
    VALID
        .iter()
        .find(|(c, _)| *c == command)
        .map(|(_, args)| args.iter().map(|a| a.as_bytes().to_vec()).collect())
        .unwrap_or_default()
}

fn with(mut args: Vec<Vec<u8>>, extra: &[&[u8]]) -> Vec<Vec<u8>> {
    args.extend(extra.iter().map(|a| a.to_vec()));
    args
}

/// The representative cases whose text is asserted literally: the error texts are API.
fn literal_cases() -> Vec<Case> {
    vec![
        case(
            "enqueue",
            &[b"q", b"t"],
            exact("ERR wrong number of arguments for 'zrq.enqueue' command"),
        ),
        case(
            "state",
            &[b"q", b"p1", b"extra"],
            exact("ERR wrong number of arguments for 'zrq.state' command"),
        ),
        case(
            "job",
            &[],
            exact("ERR wrong number of arguments for 'zrq.job' command"),
        ),
        case(
            "enqueue",
            &[b"q", b"t", b"{}", b"BOGUS", b"1"],
            exact("ERR unknown option 'BOGUS'"),
        ),
        case(
            "reclaim",
            &[b"q", b"w", b"BLOCK", b"1"],
            exact("ERR unknown option 'BLOCK'"),
        ),
        case(
            "enqueue",
            &[b"q", b"t", b"{}", b"TIMEOUT"],
            exact("ERR option TIMEOUT needs a value"),
        ),
        case(
            "fetch",
            &[b"q", b"w", b"COUNT", b"1", b"count", b"2"],
            exact("ERR option COUNT given more than once"),
        ),
        case(
            "fetch",
            &[b"q", b"w", b"COUNT", b"1000000"],
            exact("ERR COUNT must be an integer from 1 to 1000, got '1000000'"),
        ),
        case(
            "enqueue",
            &[b"q", b"t", b"{}", b"RETRIES", b"99999999999999999999"],
            exact("ERR RETRIES must be an integer from 0 to 1000, got '99999999999999999999'"),
        ),
        case(
            "fetch",
            &[b"q", b"w", b"BLOCK", b"-1"],
            exact("ERR BLOCK must be an integer from 0 to 315360000000, got '-1'"),
        ),
        case(
            "enqueue",
            &[b"q", b"t", b"{}", b"TIMEOUT", b"1.5"],
            exact("ERR TIMEOUT must be an integer from 1 to 315360000000, got '1.5'"),
        ),
        case(
            "enqueue",
            &[b"a b", b"t", b"{}"],
            exact(
                "ERR queue must be 1 to 200 printable ASCII characters without spaces or braces, \
                 got 'a b'",
            ),
        ),
        case(
            "fetch",
            &[b"q", b"\xff\xfe"],
            exact(
                "ERR consumer must be 1 to 200 printable ASCII characters without spaces, \
                 got '\\xff\\xfe'",
            ),
        ),
        case(
            "ack",
            &[b"q", b""],
            exact("ERR id must be 1 to 200 printable ASCII characters without spaces, got ''"),
        ),
        case(
            "enqueue",
            &[b"q", b"t", b"\xff\xfe"],
            exact("BADJSON payload is not valid JSON: not UTF-8"),
        ),
        case(
            "ack",
            &[b"q", b"a1", b"RESULT", b"{"],
            names("BADJSON", "RESULT is not valid JSON: "),
        ),
        case(
            "enqueue",
            &[b"ws", b"t", b"{}"],
            exact("WRONGTYPE key 'zrq:{ws}:stream' holds a string, zrq expects a stream"),
        ),
        case(
            "fetch",
            &[b"wa", b"w"],
            exact("WRONGTYPE key 'zrq:{wa}:active' holds a list, zrq expects a zset"),
        ),
        case(
            "job",
            &[b"wj", b"j1"],
            exact("WRONGTYPE key 'zrq:{wj}:job:j1' holds a list, zrq expects a string"),
        ),
    ]
}

/// The systematic table: every command × every kind of mistake. Expected texts come from the
/// core error constructors, so the module must use the one error table.
fn generated_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let commands = ["enqueue", "fetch", "ack", "state", "job", "reclaim"];

    for command in commands {
        let arity = ZrqError::arity(&format!("zrq.{command}")).to_string();
        let valid_args = valid(command);
        // Too few arguments: every prefix of the required positional arguments.
        for n in 0..valid_args.len() {
            cases.push(Case {
                command,
                args: valid_args[..n].to_vec(),
                want: Want::Exact(arity.clone()),
            });
        }
        // Too many: STATE and JOB take no options.
        if matches!(command, "state" | "job") {
            for extra in [&[&b"x"[..]][..], &[b"x", b"y"], &[b""]] {
                cases.push(Case {
                    command,
                    args: with(valid_args.clone(), extra),
                    want: Want::Exact(arity.clone()),
                });
            }
        }

        // Bad names in every positional name slot (the payload is JSON, checked below).
        let slots = positional_names(command);
        let mut long = vec![b'n'; MAX_NAME_LEN + 1];
        long[0] = b'L';
        let bad_names: Vec<&[u8]> = vec![
            b"",
            b"a b",
            b" a",
            b"a\tb",
            b"a\nb",
            b"a\r\n",
            b"\x00",
            b"\x7f",
            b"\xff\xfe",
            "caf\u{e9}".as_bytes(),
            &long,
        ];
        for (slot, what) in slots.iter().enumerate() {
            if *what == "payload" {
                continue;
            }
            let mut bad = bad_names.clone();
            if *what == "queue" {
                bad.extend([&b"a{b"[..], b"{q}", b"a}b", b"{}"]);
            }
            for raw in bad {
                let mut args = valid_args.clone();
                args[slot] = raw.to_vec();
                cases.push(Case {
                    command,
                    args,
                    want: Want::Exact(ZrqError::invalid_name(what, raw).to_string()),
                });
            }
        }

        // Unknown options, in place of and after valid ones; options of other commands.
        let opts = options(command);
        if !opts.is_empty() {
            for word in [
                &b"BOGUS"[..],
                b"",
                b"\xff\xfe",
                b"RESULTS",
                b"COUNT ",
                b"x",
                b"BLOCKING",
                b"ID\x00",
            ] {
                cases.push(Case {
                    command,
                    args: with(valid_args.clone(), &[word, b"1"]),
                    want: Want::Exact(ZrqError::unknown_option(word).to_string()),
                });
            }
            let foreign: &[&[u8]] = match command {
                "enqueue" => &[b"COUNT", b"BLOCK", b"RESULT"],
                "fetch" => &[b"ID", b"RETRIES", b"TIMEOUT", b"RESULT"],
                "ack" => &[b"COUNT", b"ID", b"BLOCK"],
                _ => &[b"BLOCK", b"ID", b"RESULT"],
            };
            for word in foreign {
                cases.push(Case {
                    command,
                    args: with(valid_args.clone(), &[word, b"1"]),
                    want: Want::Exact(ZrqError::unknown_option(word).to_string()),
                });
            }
            // A stray trailing word after a complete option is an unknown option.
            let (name, value) = opts[0];
            cases.push(Case {
                command,
                args: with(
                    valid_args.clone(),
                    &[name.as_bytes(), value.as_bytes(), b"extra"],
                ),
                want: Want::Exact(ZrqError::unknown_option(b"extra").to_string()),
            });
        }

        // Options without a value, and repeated (any case mix).
        for (name, value) in opts {
            cases.push(Case {
                command,
                args: with(valid_args.clone(), &[name.as_bytes()]),
                want: Want::Exact(ZrqError::missing_value(name).to_string()),
            });
            let lower = name.to_lowercase();
            cases.push(Case {
                command,
                args: with(
                    valid_args.clone(),
                    &[
                        name.as_bytes(),
                        value.as_bytes(),
                        lower.as_bytes(),
                        value.as_bytes(),
                    ],
                ),
                want: Want::Exact(ZrqError::repeated_option(name).to_string()),
            });
            // A later option missing its value after a good one.
            if let Some((other, other_value)) = opts.iter().find(|(o, _)| o != name) {
                cases.push(Case {
                    command,
                    args: with(
                        valid_args.clone(),
                        &[other.as_bytes(), other_value.as_bytes(), name.as_bytes()],
                    ),
                    want: Want::Exact(ZrqError::missing_value(name).to_string()),
                });
            }
        }
    }

    // Numbers: non-numeric, negative, overflowing, float, empty, signs, hex, spaces, non-UTF-8,
    // zero where it is not allowed, absurdly large.
    for (command, option, min, max) in NUMERIC {
        let mut bad: Vec<&[u8]> = vec![
            b"abc",
            b"-1",
            b"-0x1",
            b"99999999999999999999",
            b"-99999999999999999999",
            b"9223372036854775808",
            b"1.5",
            b"1.0",
            b"1e3",
            b"",
            b"+1",
            b"0x10",
            b" 1",
            b"1 ",
            b"\xff\xfe",
            b"1000000",
            b"315360000001",
            b"NaN",
            b"inf",
        ];
        if *min == 1 {
            bad.push(b"0");
        }
        for raw in bad {
            let value = std::str::from_utf8(raw)
                .ok()
                .and_then(|s| s.parse::<i64>().ok());
            if value.is_some_and(|v| (*min..=*max).contains(&v)) {
                continue; // in range for this option: not a mistake
            }
            cases.push(Case {
                command,
                args: with(valid(command), &[option.as_bytes(), raw]),
                want: Want::Exact(
                    ZrqError::integer_out_of_range(option, raw, *min, *max).to_string(),
                ),
            });
        }
    }

    // JSON: payload and RESULT.
    let bad_json: &[&[u8]] = &[
        b"{",
        b"",
        b" ",
        b"{'a':1}",
        b"[1,]",
        b"{} {}",
        b"nul",
        b"undefined",
        b"{\"a\":}",
        b"\"unterminated",
        b"01",
        b"NaN",
        b"{\"a\":1}x",
    ];
    for raw in bad_json {
        cases.push(case(
            "enqueue",
            &[b"q", b"t", raw],
            names("BADJSON", "payload is not valid JSON: "),
        ));
        cases.push(case(
            "ack",
            &[b"q", b"a1", b"RESULT", raw],
            names("BADJSON", "RESULT is not valid JSON: "),
        ));
    }
    for raw in [&b"\xff\xfe"[..], b"\"\xff\"", b"{\"a\":\"\xc3\"}"] {
        cases.push(case(
            "enqueue",
            &[b"q", b"t", raw],
            Want::Exact(ZrqError::bad_json("payload", "not UTF-8").to_string()),
        ));
        cases.push(case(
            "ack",
            &[b"q", b"a1", b"RESULT", raw],
            Want::Exact(ZrqError::bad_json("RESULT", "not UTF-8").to_string()),
        ));
    }
    // The ID option is a name too.
    for raw in [&b""[..], b"a b", b"\xff\xfe", b"x\n"] {
        cases.push(case(
            "enqueue",
            &[b"q", b"t", b"{}", b"ID", raw],
            Want::Exact(ZrqError::invalid_name("ID", raw).to_string()),
        ));
    }
    // Arguments are checked left to right: the first bad one is reported.
    cases.push(case(
        "enqueue",
        &[b"a b", b"", b"{"],
        Want::Exact(ZrqError::invalid_name("queue", b"a b").to_string()),
    ));
    cases.push(case(
        "enqueue",
        &[b"q", b"t", b"{", b"BOGUS"],
        names("BADJSON", "payload is not valid JSON"),
    ));
    cases.push(case(
        "fetch",
        &[b"q", b"w", b"COUNT", b"0", b"BOGUS", b"1"],
        Want::Exact(ZrqError::integer_out_of_range("COUNT", b"0", 1, MAX_COUNT).to_string()),
    ));

    // Keys of the wrong type (see `fixture`): every command that touches the key.
    let wrong = |key: &str, found: &str, expected: &str| {
        Want::Exact(ZrqError::wrong_type(key, found, expected).to_string())
    };
    let stream_string = "zrq:{ws}:stream";
    for (command, args) in [
        ("enqueue", &[&b"ws"[..], b"t", b"{}"][..]),
        ("enqueue", &[b"ws", b"t", b"{}", b"ID", b"new"]),
        // The priority-0 stream is checked (and would be created) with the job's own.
        ("enqueue", &[b"ws", b"t", b"{}", b"PRIORITY", b"9"]),
        ("fetch", &[b"ws", b"w"]),
        ("fetch", &[b"ws", b"w", b"BLOCK", b"0"]),
        // (Not ACK: a running job's entry left the stream when it was delivered, so its ACK
        // does not touch the stream and does not check it.)
        ("reclaim", &[b"ws", b"w"]),
    ] {
        cases.push(case(
            command,
            args,
            wrong(stream_string, "string", "stream"),
        ));
    }
    // The job's own stream of the wrong type, the priority-0 one missing: ENQUEUE refuses before
    // it creates the priority-0 stream.
    cases.push(case(
        "enqueue",
        &[b"wp", b"t", b"{}", b"PRIORITY", b"9"],
        wrong("zrq:{wp}:stream:9", "string", "stream"),
    ));
    // A job record is a string (packed) or a hash (the earlier format): any other type is
    // WRONGTYPE, and a string that is no packed record is CORRUPT.
    let job_list = "zrq:{wj}:job:j1";
    for (command, args) in [
        ("enqueue", &[&b"wj"[..], b"t", b"{}", b"ID", b"j1"][..]),
        ("ack", &[b"wj", b"j1"]),
        ("ack", &[b"wj", b"j1", b"RESULT", b"1"]),
        ("state", &[b"wj", b"j1"]),
        ("job", &[b"wj", b"j1"]),
    ] {
        cases.push(case(command, args, wrong(job_list, "list", "string")));
    }
    let job_set = "zrq:{wj}:job:j2";
    for (command, args) in [
        ("ack", &[&b"wj"[..], b"j2"][..]),
        ("state", &[b"wj", b"j2"]),
        ("job", &[b"wj", b"j2"]),
    ] {
        cases.push(case(command, args, wrong(job_set, "set", "string")));
    }
    for (command, args) in [
        ("ack", &[&b"wx"[..], b"j1"][..]),
        ("ack", &[b"wx", b"j1", b"RESULT", b"1"]),
        ("state", &[b"wx", b"j1"]),
        ("job", &[b"wx", b"j1"]),
    ] {
        cases.push(case(
            command,
            args,
            names("CORRUPT", "'zrq:{wx}:job:j1' is not a zrq record: "),
        ));
    }
    let active_list = "zrq:{wa}:active";
    for (command, args) in [
        ("fetch", &[&b"wa"[..], b"w", b"COUNT", b"5"][..]),
        ("ack", &[b"wa", b"j1"]),
        ("reclaim", &[b"wa", b"w"]),
    ] {
        cases.push(case(command, args, wrong(active_list, "list", "zset")));
    }
    cases.push(case(
        "reclaim",
        &[b"wd", b"w"],
        wrong("zrq:{wd}:dead", "string", "zset"),
    ));
    let stats_list = "zrq:{wst}:stats";
    for (command, args) in [
        ("enqueue", &[&b"wst"[..], b"t", b"{}"][..]),
        ("ack", &[b"wst", b"j1"]),
        ("reclaim", &[b"wst", b"w"]),
    ] {
        cases.push(case(command, args, wrong(stats_list, "list", "hash")));
    }
    cases
}

/// A queue with jobs in every state, plus keys of the wrong type under zrq names.
fn fixture(server: &Server, backend: Backend) -> Zrq {
    let mut zrq = server.zrq(backend);
    zrq.enqueue("q", "t", r#"{"n":1}"#, &["ID", "a1"]);
    zrq.enqueue("q", "t", r#"{"n":2}"#, &["ID", "c1"]);
    zrq.enqueue(
        "q",
        "t",
        r#"{"n":3}"#,
        &["ID", "d1", "RETRIES", "0", "TIMEOUT", "1"],
    );
    assert_eq!(zrq.fetch("q", "w", 3).len(), 3);
    let acked: i64 = zrq.call("ack", &["q", "c1"]).expect("ACK");
    assert_eq!(acked, 1);
    std::thread::sleep(std::time::Duration::from_millis(5));
    let reclaimed: redis::Value = zrq.call("reclaim", &["q", "w"]).expect("RECLAIM");
    assert!(zrq_tests::jobs(reclaimed).is_empty());
    assert_eq!(zrq.state("q", "d1").as_deref(), Some("dead"));
    zrq.enqueue("q", "t", r#"{"n":4}"#, &["ID", "p1"]);

    // ACK checks only the keys the ending of the job it acknowledges writes (an ACK of a job
    // that is not active touches nothing and replies 0), so the wrong-type keys of these queues
    // sit under a job j1 that is active: it is fetched first, then its key is replaced.
    for queue in ["ws", "wa", "wst"] {
        zrq.enqueue(queue, "t", "{}", &["ID", "j1"]);
        assert_eq!(zrq.fetch(queue, "w", 1).len(), 1, "{queue}");
    }
    let mut conn = server.conn();
    let setup: &[&[&str]] = &[
        &["DEL", "zrq:{ws}:stream"],
        &["SET", "zrq:{ws}:stream", "x"],
        &["SET", "zrq:{wp}:stream:9", "x"],
        &["RPUSH", "zrq:{wj}:job:j1", "x"],
        &["SADD", "zrq:{wj}:job:j2", "x"],
        &["SET", "zrq:{wx}:job:j1", "x"],
        &["DEL", "zrq:{wa}:active"],
        &["LPUSH", "zrq:{wa}:active", "x"],
        &["SET", "zrq:{wd}:dead", "x"],
        &["DEL", "zrq:{wst}:stats"],
        &["RPUSH", "zrq:{wst}:stats", "x"],
    ];
    support::run_commands(&mut conn, setup);
    zrq
}

fn check(server: &Server, zrq: &mut Zrq, case: &Case) {
    support::assert_refused(server, zrq, case, case.command, &case.args, |text, code| {
        assert!(
            text.len() > code.len() + 1,
            "{case:?}: error without a message"
        );
        assert!(
            !text.contains('\n') && !text.contains('\r'),
            "{case:?}: error text spans lines: {text:?}"
        );
        match &case.want {
            Want::Exact(want) => assert_eq!(text, want, "{case:?}"),
            Want::Names(want_code, fragment) => {
                assert_eq!(code, *want_code, "{case:?}: {text}");
                assert!(text.contains(fragment.as_str()), "{case:?}: {text}");
            }
        }
    });
}

fn every_bad_input_is_refused_and_changes_nothing(backend: Backend) {
    let server = backend.server();
    let mut zrq = fixture(&server, backend);
    let cases: Vec<Case> = literal_cases()
        .into_iter()
        .chain(generated_cases())
        .collect();
    assert!(cases.len() > 200, "the table covers {} cases", cases.len());
    for case in &cases {
        check(&server, &mut zrq, case);
    }
    // The fixture is intact: the jobs kept their states.
    for (id, state) in [
        ("a1", "active"),
        ("c1", "completed"),
        ("d1", "dead"),
        ("p1", "pending"),
    ] {
        assert_eq!(zrq.state("q", id).as_deref(), Some(state), "{id}");
    }
    assert_eq!(zrq.fetch("q", "w", 10).len(), 1, "only p1 is waiting");
}

fn every_command_names_itself_in_arity_errors(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    // The Lua library may lag behind the module: it is checked on the commands it has, which
    // must include the core six.
    let lua_functions: String = match backend {
        Backend::Lua => {
            let list: redis::Value = redis::cmd("FUNCTION")
                .arg("LIST")
                .query(&mut zrq.conn)
                .expect("FUNCTION LIST");
            format!("{list:?}")
        }
        Backend::Module => String::new(),
    };
    for spec in zrq_core::spec::COMMANDS {
        let short = spec.name.trim_start_matches("zrq.");
        if spec
            .syntax
            .split(' ')
            .nth(1)
            .is_some_and(|a| a.starts_with('['))
        {
            continue; // every argument optional: there is no wrong number of them
        }
        let core = ["enqueue", "fetch", "ack", "state", "job", "reclaim"].contains(&short);
        let quoted = format!("\"{}\"", spec.function_name());
        if backend == Backend::Lua && !core && !lua_functions.contains(&quoted) {
            continue;
        }
        // Commands that take no arguments get one too many instead.
        let args: &[&[u8]] = if spec.syntax.contains('<') {
            &[]
        } else {
            &[b"extra"]
        };
        let err = zrq.call_raw(short, args).expect_err("wrong arity");
        assert_eq!(
            error_text(&err),
            format!("ERR wrong number of arguments for '{}' command", spec.name)
        );
    }
}

fn bad_input_in_a_transaction_fails_alone(backend: Backend) {
    // A bad command inside MULTI fails at EXEC time on its own; the good ones around it apply.
    let server = backend.server();
    let zrq = server.zrq(backend);
    let good = zrq.command("enqueue", &[b"q", b"t", b"{}", b"ID", b"ok1"]);
    let bad = zrq.command("enqueue", &[b"q", b"t", b"{", b"ID", b"bad1"]);
    let mut pipe = redis::pipe();
    pipe.atomic().add_command(good).add_command(bad);
    let mut conn = server.conn();
    let result: redis::RedisResult<redis::Value> = pipe.query(&mut conn);
    // Whatever the client makes of the mixed reply, the data must say: ok1 in, bad1 out.
    drop(result);
    let mut zrq = server.zrq(backend);
    assert_eq!(zrq.state("q", "ok1").as_deref(), Some("pending"));
    assert_eq!(zrq.state("q", "bad1"), None);
}

/// Each fixed key kind of `zrq_core::keys::KEYS` (on the Lua backend also `LUA_ONLY_KEYS`)
/// holding a value of another type makes FETCH, which checks every fixed key of its queue first,
/// reply WRONGTYPE naming the key and its kind's `redis_type`: both backends must take their
/// types from that one table (the Lua library's KEY_TYPE is generated from it).
fn every_fixed_key_kind_is_type_checked(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let mut conn = server.conn();
    let lua_only = match backend {
        Backend::Lua => keys::LUA_ONLY_KEYS,
        Backend::Module => &[],
    };
    let mut checked = 0;
    for (n, spec) in keys::KEYS.iter().chain(lua_only).enumerate() {
        let queue = format!("kt{n}");
        let key = match spec.suffix {
            "stream:" => keys::QueueKeys::new(&queue).stream_at(keys::MAX_PRIORITY),
            // Records (`job:`, `batch:`): checked where they are read (the literal cases).
            suffix if suffix.ends_with(':') => continue,
            suffix => format!("zrq:{{{queue}}}:{suffix}"),
        };
        let (wrong, found) = if spec.redis_type == "string" {
            ("RPUSH", "list")
        } else {
            ("SET", "string")
        };
        let _: redis::Value = redis::cmd(wrong)
            .arg(&key)
            .arg("x")
            .query(&mut conn)
            .expect(wrong);
        let err = zrq
            .call_raw("fetch", &[queue.as_bytes(), b"w"])
            .expect_err(&key);
        assert_eq!(
            error_text(&err),
            format!(
                "WRONGTYPE key '{key}' holds a {found}, zrq expects a {}",
                spec.redis_type
            ),
        );
        checked += 1;
    }
    assert!(checked >= 14, "{checked} key kinds checked");
}

conformance!(
    every_bad_input_is_refused_and_changes_nothing,
    every_fixed_key_kind_is_type_checked,
    every_command_names_itself_in_arity_errors,
    bad_input_in_a_transaction_fails_alone,
);

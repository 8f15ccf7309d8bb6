//! The module's replies byte for byte, in RESP2 and RESP3: framing, types (integer, bulk, status,
//! nil), map keys and their order. Clients parse these bytes; other tests compare replies through
//! a client library (which forgives an integer sent as text, or keys in another order), so this
//! one reads the socket itself and checks every reply against a fixed transcript.
//!
//! The transcript renders each reply exactly (a bijection of the RESP bytes, see [`read`]) but for
//! what differs from run to run: unix-ms times and stream entry ids (`<t>`), UUIDs (`<uuid>`).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use zrq_tests::{Backend, Server};

/// A raw RESP connection.
struct Raw {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Raw {
    fn connect(server: &Server, resp3: bool) -> Raw {
        let stream = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut raw = Raw {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        };
        if resp3 {
            raw.send(&["HELLO", "3"]);
            raw.reply();
        }
        raw
    }

    fn send(&mut self, args: &[&str]) {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        self.writer.write_all(&out).unwrap();
    }

    /// The next reply, rendered by [`read`].
    fn reply(&mut self) -> String {
        read(&mut self.reader)
    }

    /// Sends a command and renders its reply.
    fn call(&mut self, args: &[&str]) -> String {
        self.send(args);
        self.reply()
    }
}

/// One line up to CRLF (checked), without it.
fn line(reader: &mut impl BufRead) -> String {
    let mut buf = Vec::new();
    reader.read_until(b'\n', &mut buf).unwrap();
    assert!(buf.ends_with(b"\r\n"), "line without CRLF: {buf:?}");
    buf.truncate(buf.len() - 2);
    String::from_utf8(buf).unwrap()
}

/// Reads one RESP value and renders it so that different bytes render differently: `+status`,
/// `-error`, `:int`, `$"bulk"` (`$nil` for RESP2's null bulk), `*n[…]` (`*nil`), `%n{k v …}`,
/// `_` (RESP3 null), `="…"` and `!"…"` (RESP3 verbatim text, blob error), and the other RESP3 types
/// by their type byte and line.
fn read(reader: &mut impl BufRead) -> String {
    let head = line(reader);
    let (kind, rest) = head.split_at(1);
    let count = || rest.parse::<i64>().unwrap();
    match kind {
        "+" | "-" | ":" | "_" | "#" | "," | "(" => head.clone(),
        "$" if count() < 0 => "$nil".to_string(),
        "$" | "=" | "!" => {
            let mut data = vec![0; count() as usize + 2];
            reader.read_exact(&mut data).unwrap();
            assert!(data.ends_with(b"\r\n"), "bulk without CRLF");
            data.truncate(data.len() - 2);
            format!("{kind}{:?}", String::from_utf8(data).unwrap())
        }
        "*" if count() < 0 => "*nil".to_string(),
        "*" | "~" | ">" => {
            let items: Vec<String> = (0..count()).map(|_| read(reader)).collect();
            format!("{kind}{}[{}]", count(), items.join(" "))
        }
        "%" => {
            let items: Vec<String> = (0..2 * count()).map(|_| read(reader)).collect();
            format!("%{}{{{}}}", count(), items.join(" "))
        }
        other => panic!("unexpected RESP type {other:?} in {head:?}"),
    }
}

/// `text` with what differs from run to run blanked: runs of 13 or more digits (unix-ms times,
/// stream entry ids' times) become `<t>`, then `<t>-<seq>` (an entry id) becomes `<t>`, and UUIDs
/// become `<uuid>`.
fn blank(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut at = 0;
    let is_uuid_at = |at: usize| {
        bytes.len() >= at + 36
            && (0..36).all(|i| match i {
                8 | 13 | 18 | 23 => bytes[at + i] == b'-',
                _ => bytes[at + i].is_ascii_hexdigit(),
            })
    };
    let digits = |from: usize| {
        bytes[from..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    while at < bytes.len() {
        if (at == 0 || !bytes[at - 1].is_ascii_alphanumeric()) && is_uuid_at(at) {
            out.push_str("<uuid>");
            at += 36;
            continue;
        }
        let n = digits(at);
        if n >= 13 {
            out.push_str("<t>");
            at += n;
            if bytes.get(at) == Some(&b'-') && digits(at + 1) > 0 {
                at += 1 + digits(at + 1);
            }
        } else if n > 0 {
            out.push_str(&text[at..at + n]);
            at += n;
        } else {
            let c = text[at..].chars().next().unwrap();
            out.push(c);
            at += c.len_utf8();
        }
    }
    out
}

/// A transcript: `> command` and `< reply` lines, replies blanked ([`blank`]).
#[derive(Default)]
struct Transcript(String);

impl Transcript {
    /// Sends `args` on `conn`, records the command and its reply, and returns the reply.
    fn call(&mut self, conn: &mut Raw, args: &[&str]) -> String {
        let reply = conn.call(args);
        self.record(&args.join(" "), &reply);
        reply
    }

    fn record(&mut self, command: &str, reply: &str) {
        self.0
            .push_str(&format!("> {}\n< {}\n", blank(command), blank(reply)));
    }
}

/// Waits until `conn`'s server has one blocked client.
fn wait_blocked(conn: &mut Raw) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !conn
        .call(&["INFO", "clients"])
        .contains("blocked_clients:1\\r")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the client did not block"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs the scenario on queue `q` and returns its transcript.
fn transcript(server: &Server, resp3: bool) -> String {
    let mut conn = Raw::connect(server, resp3);
    let mut t = Transcript::default();
    // An id in a bulk reply `$"…"`.
    let id = |reply: &str| reply[2..reply.len() - 1].to_string();

    t.call(
        &mut conn,
        &[
            "ZRQ.ENQUEUE",
            "q",
            "t",
            r#"{"a":1}"#,
            "ID",
            "job-a",
            "RETRIES",
            "2",
        ],
    );
    let plain = id(&t.call(&mut conn, &["ZRQ.ENQUEUE", "q", "t", r#"{"b":2}"#]));
    t.call(
        &mut conn,
        &[
            "ZRQ.ENQUEUE",
            "q",
            "t",
            "{}",
            "ID",
            "job-c",
            "AFTER",
            "job-a",
            "WITHRESULTS",
            "ONPARENTFAIL",
            "run",
            "KEEP",
            "100000",
            "UNIQUE",
            "u1",
            "BACKOFF",
            "50",
            "TIMEOUT",
            "1",
        ],
    );
    t.call(&mut conn, &["ZRQ.ENQUEUE", "q", "t", "not json"]);
    t.call(&mut conn, &["ZRQ.JOB", "q", "job-a"]);
    t.call(&mut conn, &["ZRQ.JOB", "q", "job-c"]);
    t.call(&mut conn, &["ZRQ.JOB", "q", "nope"]);
    t.call(&mut conn, &["ZRQ.STATE", "q", "job-c"]);
    t.call(&mut conn, &["ZRQ.LIST", "q", "pending"]);
    t.call(&mut conn, &["ZRQ.FETCH", "q", "w", "COUNT", "2"]);
    t.call(&mut conn, &["ZRQ.FETCH", "q", "w"]);
    t.call(&mut conn, &["ZRQ.TOUCH", "q", "job-a", "PROGRESS", "50"]);
    t.call(&mut conn, &["ZRQ.RESULT", "q", "job-a"]);
    t.call(
        &mut conn,
        &["ZRQ.ACK", "q", "job-a", "RESULT", r#"{"ok":true}"#],
    );
    t.call(&mut conn, &["ZRQ.RESULT", "q", "job-a"]);
    t.call(
        &mut conn,
        &["ZRQ.FAIL", "q", &plain, "boom", "RETRYIN", "100000"],
    );
    t.call(&mut conn, &["ZRQ.LIST", "q", "completed"]);
    t.call(&mut conn, &["ZRQ.LIST", "q", "retrying"]);
    // job-c (released by job-a's ACK) runs out its 1 ms lease, and RECLAIM takes it over.
    t.call(&mut conn, &["ZRQ.FETCH", "q", "w", "COUNT", "5"]);
    std::thread::sleep(Duration::from_millis(20));
    t.call(&mut conn, &["ZRQ.RECLAIM", "q", "w2"]);
    t.call(&mut conn, &["ZRQ.ACK", "q", "job-c"]);

    // A blocked FETCH, answered when a job arrives (the reply is written by the retry).
    let mut other = Raw::connect(server, resp3);
    conn.send(&["ZRQ.FETCH", "q", "w", "COUNT", "3", "BLOCK", "0"]);
    wait_blocked(&mut other);
    t.call(
        &mut other,
        &["ZRQ.ENQUEUE", "q", "t", r#"{"d":4}"#, "ID", "job-d"],
    );
    t.record("(the blocked FETCH)", &conn.reply());
    // A blocked RESULT, answered when job-d finishes.
    conn.send(&["ZRQ.RESULT", "q", "job-d", "BLOCK", "0"]);
    wait_blocked(&mut other);
    t.call(&mut other, &["ZRQ.ACK", "q", "job-d", "RESULT", "7"]);
    t.record("(the blocked RESULT)", &conn.reply());
    t.call(&mut conn, &["ZRQ.FETCH", "q", "w", "BLOCK", "10"]);
    t.call(&mut conn, &["ZRQ.RESULT", "q", "job-x", "BLOCK", "10"]);

    t.call(&mut conn, &["ZRQ.DEAD", "q"]);
    t.call(&mut conn, &["ZRQ.CANCEL", "q", &plain]);
    t.call(&mut conn, &["ZRQ.RESULT", "q", &plain]);
    t.call(&mut conn, &["ZRQ.PAUSE", "q"]);
    t.call(&mut conn, &["ZRQ.RESUME", "q"]);
    t.call(
        &mut conn,
        &[
            "ZRQ.SCHEDULE",
            "q",
            "s1",
            "EVERY",
            "3600000",
            "t",
            "{}",
            "KEEP",
            "5",
        ],
    );
    t.call(&mut conn, &["ZRQ.SCHEDULES", "q"]);
    t.call(&mut conn, &["ZRQ.UNSCHEDULE", "q", "s1"]);
    // Nothing is pending here, so `oldest_pending_age_ms` is 0.
    t.call(&mut conn, &["ZRQ.INFO", "q"]);
    t.call(
        &mut conn,
        &[
            "ZRQ.BATCH",
            "q",
            "b1",
            "ON-COMPLETE",
            "cb",
            "{}",
            "JOB",
            "t",
            "{}",
        ],
    );
    t.call(&mut conn, &["ZRQ.BATCHINFO", "q", "b1"]);
    t.call(&mut conn, &["ZRQ.BATCHINFO", "q", "b2"]);
    t.call(&mut conn, &["ZRQ.REQUEUE", "q", "ALL"]);
    t.call(&mut conn, &["ZRQ.DELETE", "q", "job-a"]);
    t.call(&mut conn, &["ZRQ.QUEUES"]);
    t.call(&mut conn, &["ZRQ.FETCH", "q"]);
    t.0
}

#[test]
fn module_replies_are_these_bytes_in_resp2_and_resp3() {
    let mut failures = Vec::new();
    for (resp3, want) in [(false, RESP2), (true, RESP3)] {
        let server = Backend::Module.server();
        server.leave_leases_to_reclaim();
        let got = transcript(&server, resp3);
        let protocol = if resp3 { "RESP3" } else { "RESP2" };
        let first_difference = got
            .lines()
            .zip(want.lines())
            .enumerate()
            .find(|(_, (g, w))| g != w);
        if let Some((n, (g, w))) = first_difference {
            failures.push(format!(
                "{protocol} line {}:\n  got:  {g}\n  want: {w}",
                n + 1
            ));
        }
        if got != want {
            failures.push(format!("{protocol}: the whole transcript:\n{got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The transcript in RESP2, as the module replied before its replies were written directly.
const RESP2: &str = r##"> ZRQ.ENQUEUE q t {"a":1} ID job-a RETRIES 2
< $"job-a"
> ZRQ.ENQUEUE q t {"b":2}
< $"<t>"
> ZRQ.ENQUEUE q t {} ID job-c AFTER job-a WITHRESULTS ONPARENTFAIL run KEEP 100000 UNIQUE u1 BACKOFF 50 TIMEOUT 1
< $"job-c"
> ZRQ.ENQUEUE q t not json
< -BADJSON payload is not valid JSON: expected ident at line 1 column 2
> ZRQ.JOB q job-a
< *24[$"attempt" :0 $"children" $"[\"job-c\"]" $"created_at" :<t> $"entry" $"<t>" $"id" $"job-a" $"max_attempts" :3 $"payload" $"{\"a\":1}" $"priority" :0 $"queue" $"q" $"state" $"pending" $"task" $"t" $"timeout" :30000]
> ZRQ.JOB q job-c
< *34[$"attempt" :0 $"backoff" :50 $"created_at" :<t> $"id" $"job-c" $"keep" :100000 $"max_attempts" :4 $"on_parent_fail" $"run" $"parents" $"{\"job-a\":null}" $"payload" $"{}" $"priority" :0 $"queue" $"q" $"state" $"waiting" $"task" $"t" $"timeout" :1 $"unique" $"u1" $"waiting_on" :1 $"with_results" :1]
> ZRQ.JOB q nope
< $nil
> ZRQ.STATE q job-c
< $"waiting"
> ZRQ.LIST q pending
< *2[$"0" *2[*24[$"attempt" :0 $"children" $"[\"job-c\"]" $"created_at" :<t> $"entry" $"<t>" $"id" $"job-a" $"max_attempts" :3 $"payload" $"{\"a\":1}" $"priority" :0 $"queue" $"q" $"state" $"pending" $"task" $"t" $"timeout" :30000] *22[$"attempt" :0 $"created_at" :<t> $"entry" $"<t>" $"id" $"<t>" $"max_attempts" :4 $"payload" $"{\"b\":2}" $"priority" :0 $"queue" $"q" $"state" $"pending" $"task" $"t" $"timeout" :30000]]]
> ZRQ.FETCH q w COUNT 2
< *2[*28[$"attempt" :1 $"children" $"[\"job-c\"]" $"consumer" $"w" $"created_at" :<t> $"id" $"job-a" $"lease" $"<t>:1" $"max_attempts" :3 $"payload" $"{\"a\":1}" $"priority" :0 $"queue" $"q" $"started_at" :<t> $"state" $"active" $"task" $"t" $"timeout" :30000] *26[$"attempt" :1 $"consumer" $"w" $"created_at" :<t> $"id" $"<t>" $"lease" $"<t>:1" $"max_attempts" :4 $"payload" $"{\"b\":2}" $"priority" :0 $"queue" $"q" $"started_at" :<t> $"state" $"active" $"task" $"t" $"timeout" :30000]]
> ZRQ.FETCH q w
< *0[]
> ZRQ.TOUCH q job-a PROGRESS 50
< :1
> ZRQ.RESULT q job-a
< $nil
> ZRQ.ACK q job-a RESULT {"ok":true}
< :1
> ZRQ.RESULT q job-a
< *6[$"finished_at" :<t> $"result" $"{\"ok\":true}" $"state" $"completed"]
> ZRQ.FAIL q <t> boom RETRYIN 100000
< $"retrying"
> ZRQ.LIST q completed
< *2[$"0" *1[*34[$"attempt" :1 $"children" $"[\"job-c\"]" $"consumer" $"w" $"created_at" :<t> $"finished_at" :<t> $"id" $"job-a" $"lease" $"<t>:1" $"max_attempts" :3 $"payload" $"{\"a\":1}" $"priority" :0 $"progress" :50 $"queue" $"q" $"result" $"{\"ok\":true}" $"started_at" :<t> $"state" $"completed" $"task" $"t" $"timeout" :30000]]]
> ZRQ.LIST q retrying
< *2[$"0" *1[*30[$"attempt" :1 $"consumer" $"w" $"created_at" :<t> $"error" $"boom" $"id" $"<t>" $"lease" $"<t>:1" $"max_attempts" :4 $"payload" $"{\"b\":2}" $"priority" :0 $"queue" $"q" $"run_at" :<t> $"started_at" :<t> $"state" $"retrying" $"task" $"t" $"timeout" :30000]]]
> ZRQ.FETCH q w COUNT 5
< *1[*42[$"attempt" :1 $"backoff" :50 $"consumer" $"w" $"created_at" :<t> $"id" $"job-c" $"keep" :100000 $"lease" $"<t>:1" $"max_attempts" :4 $"on_parent_fail" $"run" $"parents" $"{\"job-a\":{\"ok\":true}}" $"parents_done" $"[\"job-a\"]" $"payload" $"{}" $"priority" :0 $"queue" $"q" $"started_at" :<t> $"state" $"active" $"task" $"t" $"timeout" :1 $"unique" $"u1" $"waiting_on" :0 $"with_results" :1]]
> ZRQ.RECLAIM q w2
< *1[*44[$"attempt" :2 $"backoff" :50 $"consumer" $"w2" $"created_at" :<t> $"error" $"lease expired after 1 ms (attempt 1 of 4, consumer w)" $"id" $"job-c" $"keep" :100000 $"lease" $"<t>:2" $"max_attempts" :4 $"on_parent_fail" $"run" $"parents" $"{\"job-a\":{\"ok\":true}}" $"parents_done" $"[\"job-a\"]" $"payload" $"{}" $"priority" :0 $"queue" $"q" $"started_at" :<t> $"state" $"active" $"task" $"t" $"timeout" :1 $"unique" $"u1" $"waiting_on" :0 $"with_results" :1]]
> ZRQ.ACK q job-c
< :1
> ZRQ.ENQUEUE q t {"d":4} ID job-d
< $"job-d"
> (the blocked FETCH)
< *1[*26[$"attempt" :1 $"consumer" $"w" $"created_at" :<t> $"id" $"job-d" $"lease" $"<t>:1" $"max_attempts" :4 $"payload" $"{\"d\":4}" $"priority" :0 $"queue" $"q" $"started_at" :<t> $"state" $"active" $"task" $"t" $"timeout" :30000]]
> ZRQ.ACK q job-d RESULT 7
< :1
> (the blocked RESULT)
< *6[$"finished_at" :<t> $"result" $"7" $"state" $"completed"]
> ZRQ.FETCH q w BLOCK 10
< *0[]
> ZRQ.RESULT q job-x BLOCK 10
< -NOJOB no job 'job-x' in queue 'q'
> ZRQ.DEAD q
< *2[$"0" *0[]]
> ZRQ.CANCEL q <t>
< :1
> ZRQ.RESULT q <t>
< *6[$"error" $"boom" $"finished_at" :<t> $"state" $"cancelled"]
> ZRQ.PAUSE q
< +OK
> ZRQ.RESUME q
< +OK
> ZRQ.SCHEDULE q s1 EVERY 3600000 t {} KEEP 5
< :<t>
> ZRQ.SCHEDULES q
< *1[*18[$"every" :3600000 $"keep" :5 $"name" $"s1" $"next_run" :<t> $"payload" $"{}" $"priority" :0 $"retries" :3 $"task" $"t" $"timeout" :30000]]
> ZRQ.UNSCHEDULE q s1
< :1
> ZRQ.INFO q
< *32[$"active" :0 $"cancelled" :1 $"completed" :3 $"dead" :0 $"oldest_pending_age_ms" :0 $"paused" :0 $"pending" :0 $"retrying" :0 $"scheduled" :0 $"total_cancelled" :1 $"total_completed" :3 $"total_dead" :0 $"total_dropped" :0 $"total_enqueued" :4 $"total_failed" :2 $"waiting" :0]
> ZRQ.BATCH q b1 ON-COMPLETE cb {} JOB t {}
< *1[$"<t>"]
> ZRQ.BATCHINFO q b1
< *10[$"done" :0 $"failed" :0 $"id" $"b1" $"succeeded" :0 $"total" :1]
> ZRQ.BATCHINFO q b2
< $nil
> ZRQ.REQUEUE q ALL
< *2[$"0" :0]
> ZRQ.DELETE q job-a
< :1
> ZRQ.QUEUES
< *2[$"0" *1[$"q"]]
> ZRQ.FETCH q
< -ERR wrong number of arguments for 'zrq.fetch' command
"##;

/// The transcript in RESP3 (`HELLO 3`).
const RESP3: &str = r##"> ZRQ.ENQUEUE q t {"a":1} ID job-a RETRIES 2
< $"job-a"
> ZRQ.ENQUEUE q t {"b":2}
< $"<t>"
> ZRQ.ENQUEUE q t {} ID job-c AFTER job-a WITHRESULTS ONPARENTFAIL run KEEP 100000 UNIQUE u1 BACKOFF 50 TIMEOUT 1
< $"job-c"
> ZRQ.ENQUEUE q t not json
< -BADJSON payload is not valid JSON: expected ident at line 1 column 2
> ZRQ.JOB q job-a
< %12{$"attempt" :0 $"children" $"[\"job-c\"]" $"created_at" :<t> $"entry" $"<t>" $"id" $"job-a" $"max_attempts" :3 $"payload" $"{\"a\":1}" $"priority" :0 $"queue" $"q" $"state" $"pending" $"task" $"t" $"timeout" :30000}
> ZRQ.JOB q job-c
< %17{$"attempt" :0 $"backoff" :50 $"created_at" :<t> $"id" $"job-c" $"keep" :100000 $"max_attempts" :4 $"on_parent_fail" $"run" $"parents" $"{\"job-a\":null}" $"payload" $"{}" $"priority" :0 $"queue" $"q" $"state" $"waiting" $"task" $"t" $"timeout" :1 $"unique" $"u1" $"waiting_on" :1 $"with_results" :1}
> ZRQ.JOB q nope
< _
> ZRQ.STATE q job-c
< $"waiting"
> ZRQ.LIST q pending
< *2[$"0" *2[%12{$"attempt" :0 $"children" $"[\"job-c\"]" $"created_at" :<t> $"entry" $"<t>" $"id" $"job-a" $"max_attempts" :3 $"payload" $"{\"a\":1}" $"priority" :0 $"queue" $"q" $"state" $"pending" $"task" $"t" $"timeout" :30000} %11{$"attempt" :0 $"created_at" :<t> $"entry" $"<t>" $"id" $"<t>" $"max_attempts" :4 $"payload" $"{\"b\":2}" $"priority" :0 $"queue" $"q" $"state" $"pending" $"task" $"t" $"timeout" :30000}]]
> ZRQ.FETCH q w COUNT 2
< *2[%14{$"attempt" :1 $"children" $"[\"job-c\"]" $"consumer" $"w" $"created_at" :<t> $"id" $"job-a" $"lease" $"<t>:1" $"max_attempts" :3 $"payload" $"{\"a\":1}" $"priority" :0 $"queue" $"q" $"started_at" :<t> $"state" $"active" $"task" $"t" $"timeout" :30000} %13{$"attempt" :1 $"consumer" $"w" $"created_at" :<t> $"id" $"<t>" $"lease" $"<t>:1" $"max_attempts" :4 $"payload" $"{\"b\":2}" $"priority" :0 $"queue" $"q" $"started_at" :<t> $"state" $"active" $"task" $"t" $"timeout" :30000}]
> ZRQ.FETCH q w
< *0[]
> ZRQ.TOUCH q job-a PROGRESS 50
< :1
> ZRQ.RESULT q job-a
< _
> ZRQ.ACK q job-a RESULT {"ok":true}
< :1
> ZRQ.RESULT q job-a
< %3{$"finished_at" :<t> $"result" $"{\"ok\":true}" $"state" $"completed"}
> ZRQ.FAIL q <t> boom RETRYIN 100000
< $"retrying"
> ZRQ.LIST q completed
< *2[$"0" *1[%17{$"attempt" :1 $"children" $"[\"job-c\"]" $"consumer" $"w" $"created_at" :<t> $"finished_at" :<t> $"id" $"job-a" $"lease" $"<t>:1" $"max_attempts" :3 $"payload" $"{\"a\":1}" $"priority" :0 $"progress" :50 $"queue" $"q" $"result" $"{\"ok\":true}" $"started_at" :<t> $"state" $"completed" $"task" $"t" $"timeout" :30000}]]
> ZRQ.LIST q retrying
< *2[$"0" *1[%15{$"attempt" :1 $"consumer" $"w" $"created_at" :<t> $"error" $"boom" $"id" $"<t>" $"lease" $"<t>:1" $"max_attempts" :4 $"payload" $"{\"b\":2}" $"priority" :0 $"queue" $"q" $"run_at" :<t> $"started_at" :<t> $"state" $"retrying" $"task" $"t" $"timeout" :30000}]]
> ZRQ.FETCH q w COUNT 5
< *1[%21{$"attempt" :1 $"backoff" :50 $"consumer" $"w" $"created_at" :<t> $"id" $"job-c" $"keep" :100000 $"lease" $"<t>:1" $"max_attempts" :4 $"on_parent_fail" $"run" $"parents" $"{\"job-a\":{\"ok\":true}}" $"parents_done" $"[\"job-a\"]" $"payload" $"{}" $"priority" :0 $"queue" $"q" $"started_at" :<t> $"state" $"active" $"task" $"t" $"timeout" :1 $"unique" $"u1" $"waiting_on" :0 $"with_results" :1}]
> ZRQ.RECLAIM q w2
< *1[%22{$"attempt" :2 $"backoff" :50 $"consumer" $"w2" $"created_at" :<t> $"error" $"lease expired after 1 ms (attempt 1 of 4, consumer w)" $"id" $"job-c" $"keep" :100000 $"lease" $"<t>:2" $"max_attempts" :4 $"on_parent_fail" $"run" $"parents" $"{\"job-a\":{\"ok\":true}}" $"parents_done" $"[\"job-a\"]" $"payload" $"{}" $"priority" :0 $"queue" $"q" $"started_at" :<t> $"state" $"active" $"task" $"t" $"timeout" :1 $"unique" $"u1" $"waiting_on" :0 $"with_results" :1}]
> ZRQ.ACK q job-c
< :1
> ZRQ.ENQUEUE q t {"d":4} ID job-d
< $"job-d"
> (the blocked FETCH)
< *1[%13{$"attempt" :1 $"consumer" $"w" $"created_at" :<t> $"id" $"job-d" $"lease" $"<t>:1" $"max_attempts" :4 $"payload" $"{\"d\":4}" $"priority" :0 $"queue" $"q" $"started_at" :<t> $"state" $"active" $"task" $"t" $"timeout" :30000}]
> ZRQ.ACK q job-d RESULT 7
< :1
> (the blocked RESULT)
< %3{$"finished_at" :<t> $"result" $"7" $"state" $"completed"}
> ZRQ.FETCH q w BLOCK 10
< *0[]
> ZRQ.RESULT q job-x BLOCK 10
< -NOJOB no job 'job-x' in queue 'q'
> ZRQ.DEAD q
< *2[$"0" *0[]]
> ZRQ.CANCEL q <t>
< :1
> ZRQ.RESULT q <t>
< %3{$"error" $"boom" $"finished_at" :<t> $"state" $"cancelled"}
> ZRQ.PAUSE q
< +OK
> ZRQ.RESUME q
< +OK
> ZRQ.SCHEDULE q s1 EVERY 3600000 t {} KEEP 5
< :<t>
> ZRQ.SCHEDULES q
< *1[%9{$"every" :3600000 $"keep" :5 $"name" $"s1" $"next_run" :<t> $"payload" $"{}" $"priority" :0 $"retries" :3 $"task" $"t" $"timeout" :30000}]
> ZRQ.UNSCHEDULE q s1
< :1
> ZRQ.INFO q
< %16{$"active" :0 $"cancelled" :1 $"completed" :3 $"dead" :0 $"oldest_pending_age_ms" :0 $"paused" :0 $"pending" :0 $"retrying" :0 $"scheduled" :0 $"total_cancelled" :1 $"total_completed" :3 $"total_dead" :0 $"total_dropped" :0 $"total_enqueued" :4 $"total_failed" :2 $"waiting" :0}
> ZRQ.BATCH q b1 ON-COMPLETE cb {} JOB t {}
< *1[$"<t>"]
> ZRQ.BATCHINFO q b1
< %5{$"done" :0 $"failed" :0 $"id" $"b1" $"succeeded" :0 $"total" :1}
> ZRQ.BATCHINFO q b2
< _
> ZRQ.REQUEUE q ALL
< *2[$"0" :0]
> ZRQ.DELETE q job-a
< :1
> ZRQ.QUEUES
< *2[$"0" *1[$"q"]]
> ZRQ.FETCH q
< -ERR wrong number of arguments for 'zrq.fetch' command
"##;

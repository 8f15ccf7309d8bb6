//! Limits (module configs `zrq.*` with safe defaults, the same in the Lua library): a command
//! beyond one is refused with `LIMIT` — the same text from both backends — and writes nothing;
//! a command at the limit works. Also: LIST cursors that resume at a position, cron steps that
//! would overflow, and schedule ticks skipped while the server is at `maxmemory`.

use crate::support;

use std::time::Duration;

use support::{assert_refused, error_text, info_field};
use zrq_core::config::{
    Config, AFTER_MAX, BATCH_MAX, EVERY_MIN_MS, JSON_DEPTH_MAX, PAYLOAD_MAX_BYTES, REQUEUE_MAX,
    RESULT_MAX_BYTES, SCHEDULES_MAX, SETTINGS,
};
use zrq_core::job::{FieldKind, FIELDS};
use zrq_tests::redis::{self, Value};
use zrq_tests::{conformance, Backend};

const DEFAULTS: Config = Config::DEFAULT;

/// A JSON string document of exactly `bytes` bytes.
fn json_of_size(bytes: i64) -> Vec<u8> {
    let inner = usize::try_from(bytes - 2).expect("at least 2 bytes");
    let mut doc = vec![b'"'];
    doc.extend(std::iter::repeat_n(b'a', inner));
    doc.push(b'"');
    doc
}

/// Arrays nested `depth` deep: `[[…]]`.
fn nested(depth: i64) -> Vec<u8> {
    let depth = usize::try_from(depth).expect("depth");
    [vec![b'['; depth], vec![b']'; depth]].concat()
}

fn args(parts: &[&[u8]]) -> Vec<Vec<u8>> {
    parts.iter().map(|p| p.to_vec()).collect()
}

/// `AFTER p` `times` times.
fn after_options(times: i64) -> Vec<Vec<u8>> {
    (0..times)
        .flat_map(|_| [b"AFTER".to_vec(), b"p".to_vec()])
        .collect()
}

/// `JOB t <payload>` for each payload.
fn job_options(payloads: &[Vec<u8>]) -> Vec<Vec<u8>> {
    payloads
        .iter()
        .flat_map(|p| [b"JOB".to_vec(), b"t".to_vec(), p.clone()])
        .collect()
}

/// One refused case: the command, its arguments, the exact error.
struct Case {
    command: &'static str,
    args: Vec<Vec<u8>>,
    want: String,
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown: Vec<String> = self
            .args
            .iter()
            .map(|a| zrq_core::error::show_arg(a))
            .collect();
        write!(f, "{} {:?} ({} args)", self.command, shown, self.args.len())
    }
}

fn refused_cases() -> Vec<Case> {
    let max_payload = DEFAULTS.payload_max_bytes;
    let half = json_of_size(max_payload / 2 + 1);
    let case = |command, args, want: &str| Case {
        command,
        args,
        want: want.to_string(),
    };
    vec![
        case(
            "enqueue",
            args(&[b"q", b"t", &json_of_size(max_payload + 1)]),
            &format!(
                "LIMIT payload is {} bytes: zrq.{} is {max_payload}",
                max_payload + 1,
                PAYLOAD_MAX_BYTES.name
            ),
        ),
        case(
            "enqueue",
            args(&[b"q", b"t", &nested(DEFAULTS.json_depth_max + 1)]),
            &format!(
                "LIMIT payload nests {} levels deep: zrq.{} is {}",
                DEFAULTS.json_depth_max + 1,
                JSON_DEPTH_MAX.name,
                DEFAULTS.json_depth_max
            ),
        ),
        // Validity comes before depth: too deep and unterminated is BADJSON.
        case(
            "enqueue",
            args(&[b"q", b"t", &[b'['; 200]]),
            "BADJSON payload is not valid JSON: EOF while parsing a list at line 1 column 200",
        ),
        case(
            "enqueue",
            [
                args(&[b"q", b"t", b"{}"]),
                after_options(DEFAULTS.after_max + 1),
            ]
            .concat(),
            &format!(
                "LIMIT more than {0} AFTER options: zrq.{1} is {0}",
                DEFAULTS.after_max, AFTER_MAX.name
            ),
        ),
        case(
            "ack",
            args(&[
                b"q",
                b"a1",
                b"RESULT",
                &json_of_size(DEFAULTS.result_max_bytes + 1),
            ]),
            &format!(
                "LIMIT RESULT is {} bytes: zrq.{} is {}",
                DEFAULTS.result_max_bytes + 1,
                RESULT_MAX_BYTES.name,
                DEFAULTS.result_max_bytes
            ),
        ),
        case(
            "ack",
            args(&[b"q", b"a1", b"RESULT", &nested(DEFAULTS.json_depth_max + 1)]),
            &format!(
                "LIMIT RESULT nests {} levels deep: zrq.{} is {}",
                DEFAULTS.json_depth_max + 1,
                JSON_DEPTH_MAX.name,
                DEFAULTS.json_depth_max
            ),
        ),
        case(
            "batch",
            [
                args(&[b"q", b"b"]),
                job_options(&vec![
                    b"{}".to_vec();
                    usize::try_from(DEFAULTS.batch_max + 1).unwrap_or(0)
                ]),
            ]
            .concat(),
            &format!(
                "LIMIT more than {0} JOB members: zrq.{1} is {0}",
                DEFAULTS.batch_max, BATCH_MAX.name
            ),
        ),
        case(
            "batch",
            [
                args(&[b"q", b"b"]),
                job_options(&[half.clone(), half.clone()]),
            ]
            .concat(),
            &format!(
                "LIMIT the batch's payloads together is {} bytes: zrq.{} is {max_payload}",
                2 * half.len(),
                PAYLOAD_MAX_BYTES.name
            ),
        ),
        case(
            "batch",
            [
                args(&[b"q", b"b", b"ON-COMPLETE", b"t", &half]),
                job_options(std::slice::from_ref(&half)),
            ]
            .concat(),
            &format!(
                "LIMIT the batch's payloads together is {} bytes: zrq.{} is {max_payload}",
                2 * half.len(),
                PAYLOAD_MAX_BYTES.name
            ),
        ),
        case(
            "schedule",
            args(&[b"q", b"s", b"EVERY", b"999", b"t", b"{}"]),
            &format!(
                "LIMIT EVERY 999 is shorter than {0}: zrq.{1} is {0}",
                DEFAULTS.every_min_ms, EVERY_MIN_MS.name
            ),
        ),
        case(
            "schedule",
            args(&[
                b"q",
                b"s",
                b"CRON",
                b"* * * * *",
                b"t",
                &json_of_size(max_payload + 1),
            ]),
            &format!(
                "LIMIT payload is {} bytes: zrq.{} is {max_payload}",
                max_payload + 1,
                PAYLOAD_MAX_BYTES.name
            ),
        ),
        case(
            "requeue",
            args(&[
                b"q",
                b"all",
                b"COUNT",
                (DEFAULTS.requeue_max + 1).to_string().as_bytes(),
            ]),
            &format!(
                "LIMIT COUNT asks for more than {0} jobs: zrq.{1} is {0}",
                DEFAULTS.requeue_max, REQUEUE_MAX.name
            ),
        ),
    ]
}

fn limits_refuse_with_limit_and_write_nothing(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    zrq.enqueue("q", "t", "{}", &["ID", "p"]);
    for case in refused_cases() {
        assert_refused(
            &server,
            &mut zrq,
            &case,
            case.command,
            &case.args,
            |text, _| {
                assert_eq!(text, case.want, "{case:?}");
            },
        );
    }
}

fn commands_at_the_limits_work(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let payload = json_of_size(DEFAULTS.payload_max_bytes);
    let deep = nested(DEFAULTS.json_depth_max);
    for doc in [&payload, &deep] {
        zrq.call_raw("enqueue", &[b"q", b"t", doc])
            .expect("a payload at the limit");
    }
    let parent = zrq.enqueue("q", "t", "{}", &["ID", "p"]);
    // AFTER counts options: the same parent named after-max times is one parent.
    let child_args = [
        args(&[b"q", b"t", b"{}"]),
        after_options(DEFAULTS.after_max),
    ]
    .concat();
    let child_args: Vec<&[u8]> = child_args.iter().map(Vec::as_slice).collect();
    let child: String = zrq
        .command("enqueue", &child_args)
        .query(&mut zrq.conn)
        .expect("after-max AFTER options");
    let record = zrq.job("q", &child).expect("child");
    assert_eq!(record["waiting_on"], "1");
    assert_eq!(record["parents"], format!("{{\"{parent}\":null}}"));

    let members = usize::try_from(DEFAULTS.batch_max).expect("batch-max");
    let batch = [
        args(&[b"q", b"b"]),
        job_options(&vec![b"{}".to_vec(); members]),
    ]
    .concat();
    let batch: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
    let ids: Vec<String> = zrq
        .command("batch", &batch)
        .query(&mut zrq.conn)
        .expect("batch-max members");
    assert_eq!(ids.len(), members);

    let every = DEFAULTS.every_min_ms.to_string();
    for n in 0..DEFAULTS.schedules_max {
        let name = format!("s{n}");
        let _: i64 = zrq
            .call("schedule", &["q", &name, "EVERY", &every, "t", "{}"])
            .expect("schedules up to schedules-max");
    }
    // Redefining one is allowed at the limit; a new name is not.
    let _: i64 = zrq
        .call("schedule", &["q", "s0", "EVERY", &every, "t", "[]"])
        .expect("redefine at the limit");
    let case = "one schedule more than schedules-max";
    let new = args(&[b"q", b"new", b"EVERY", every.as_bytes(), b"t", b"{}"]);
    assert_refused(&server, &mut zrq, &case, "schedule", &new, |text, _| {
        assert_eq!(
            text,
            format!(
                "LIMIT queue 'q' has {0} schedules already: zrq.{1} is {0}",
                DEFAULTS.schedules_max, SCHEDULES_MAX.name
            )
        );
    });
}

/// The module registers every config of core's table, with its default; `CONFIG SET` moves the
/// limit (the Lua library has the defaults only, checked by the tests above).
#[test]
fn module_configs_are_the_core_settings_and_move_the_limits() {
    let server = Backend::Module.server();
    let mut conn = server.conn();
    for setting in SETTINGS {
        let got: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg(format!("zrq.{}", setting.name))
            .query(&mut conn)
            .expect("CONFIG GET");
        assert_eq!(
            got,
            [format!("zrq.{}", setting.name), setting.default.to_string()],
            "{}",
            setting.name
        );
    }
    let mut zrq = server.zrq(Backend::Module);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("zrq.payload-max-bytes")
        .arg("10")
        .query(&mut conn)
        .expect("CONFIG SET");
    let err = zrq
        .call::<String>("enqueue", &["q", "t", "\"0123456789\""])
        .expect_err("beyond the lowered limit");
    assert_eq!(
        error_text(&err),
        "LIMIT payload is 12 bytes: zrq.payload-max-bytes is 10"
    );
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("zrq.every-min-ms")
        .arg("1")
        .query(&mut conn)
        .expect("CONFIG SET");
    let _: i64 = zrq
        .call("schedule", &["q", "s", "EVERY", "1", "t", "1"])
        .expect("EVERY 1 once allowed");
}

/// Pages of `LIST pending` resume after the last job listed: together they are the whole list in
/// delivery order, and jobs fetched between two pages do not shift the next one.
fn list_pending_pages_resume_at_a_position(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let mut expected = Vec::new();
    for priority in [9, 5, 0] {
        for n in 0..4 {
            let id = format!("p{priority}-{n}");
            let p = priority.to_string();
            zrq.enqueue("q", "t", "{}", &["ID", &id, "PRIORITY", &p]);
            expected.push(id);
        }
    }
    let page = |zrq: &mut zrq_tests::Zrq, cursor: &str| -> (String, Vec<String>) {
        let reply: (String, Value) = zrq
            .call("list", &["q", "pending", "COUNT", "3", "CURSOR", cursor])
            .expect("LIST");
        let ids = zrq_tests::jobs(reply.1)
            .into_iter()
            .map(|j| j["id"].clone())
            .collect();
        (reply.0, ids)
    };
    let (mut cursor, mut listed) = ("0".to_string(), Vec::new());
    loop {
        let (next, ids) = page(&mut zrq, &cursor);
        listed.extend(ids);
        if next == "0" {
            break;
        }
        assert!(listed.len() < 100, "paging does not end");
        cursor = next;
    }
    assert_eq!(listed, expected);

    // Fetching the first page's jobs does not make the second page skip any.
    let (cursor, first) = page(&mut zrq, "0");
    assert_eq!(first, expected[..3]);
    assert_eq!(cursor, format!("9:{}", entry_of(&mut zrq, "p9-2")));
    zrq.fetch("q", "w", 3);
    let (_, second) = page(&mut zrq, &cursor);
    assert_eq!(second, expected[3..6]);

    for bad in ["5", "10:1-0", "9:1", "x"] {
        let err = zrq
            .call::<Value>("list", &["q", "pending", "CURSOR", bad])
            .expect_err("a bad cursor");
        assert_eq!(
            error_text(&err),
            format!("ERR CURSOR must be 0 or <priority>:<entry-id> as returned by ZRQ.LIST pending, got '{bad}'")
        );
    }
}

fn entry_of(zrq: &mut zrq_tests::Zrq, id: &str) -> String {
    zrq.job("q", id).expect("job")["entry"].clone()
}

/// Cron steps that would pass u32::MAX end the field instead of wrapping (which made
/// `59/4294967295` match every minute); numbers beyond u32 are refused. Both backends agree.
fn cron_steps_do_not_overflow(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    // (expression, the minute and hour (None: any) of every run)
    let fires: &[(&str, u32, Option<u32>)] = &[
        ("59/4294967295 * * * *", 59, None),
        ("0-59/4294967295 3 * * *", 0, Some(3)),
        ("*/4294967295 4 * * *", 0, Some(4)),
        ("7 0-23/4294967295 * * *", 7, Some(0)),
    ];
    for (n, (expr, minute, hour)) in fires.iter().enumerate() {
        let name = format!("c{n}");
        let first: i64 = zrq
            .call("schedule", &["q", &name, "CRON", expr, "t", "{}"])
            .expect(expr);
        let minutes_of_day = (first / 60_000) % 1440;
        assert_eq!(first % 60_000, 0, "{expr}");
        assert_eq!(minutes_of_day % 60, i64::from(*minute), "{expr}: {first}");
        if let Some(hour) = hour {
            assert_eq!(minutes_of_day / 60, i64::from(*hour), "{expr}: {first}");
        }
    }
    for expr in [
        "*/4294967296 * * * *",
        "0-4294967296 * * * *",
        "4294967296 * * * *",
    ] {
        let err = zrq
            .call::<i64>("schedule", &["q", "bad", "CRON", expr, "t", "{}"])
            .expect_err(expr);
        let field = expr.split(' ').next().unwrap_or_default();
        assert_eq!(
            error_text(&err),
            format!("ERR CRON expression is invalid: minute field '{field}' must be within 0-59")
        );
    }
}

/// While the server is at `maxmemory`, a due schedule tick is skipped (counted by the module's
/// `INFO zrq`), not forced past the limit; once memory is back the schedule fires again.
fn ticks_are_skipped_at_maxmemory(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let mut conn = server.conn();
    let every = DEFAULTS.every_min_ms.to_string();
    let _: i64 = zrq
        .call("schedule", &["q", "s", "EVERY", &every, "t", "{}"])
        .expect("SCHEDULE");
    let set_maxmemory = |conn: &mut redis::Connection, bytes: &str| {
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("maxmemory")
            .arg(bytes)
            .query(conn)
            .expect("CONFIG SET maxmemory");
    };
    let enqueued = |conn: &mut redis::Connection| -> String {
        redis::cmd("HGET")
            .arg("zrq:{q}:stats")
            .arg("enqueued")
            .query(conn)
            .expect("stats")
    };
    set_maxmemory(&mut conn, "1");
    // Two periods: at least one tick falls due (the module's timer fires it; with Lua, FETCH).
    std::thread::sleep(Duration::from_millis(
        2 * DEFAULTS.every_min_ms.unsigned_abs() + 200,
    ));
    assert!(
        zrq.fetch("q", "w", 1).is_empty(),
        "a tick fired at maxmemory"
    );
    assert_eq!(enqueued(&mut conn), "0");
    if backend == Backend::Module {
        let skipped =
            info_field(&mut conn, "zrq", "zrq_ticks_skipped_oom_total").unwrap_or_default();
        assert!(
            skipped.parse::<i64>().unwrap_or(0) >= 1,
            "skipped: {skipped}"
        );
    }
    set_maxmemory(&mut conn, "0");
    server.wait_for(|_| !zrq.fetch("q", "w", 1).is_empty());
    assert_eq!(enqueued(&mut conn), "1");
}

/// The text bytes of a job as a reply shows it: what `zrq.reply-max-bytes` counts.
fn text_bytes(job: &zrq_tests::JobMap) -> i64 {
    FIELDS
        .iter()
        .filter(|(_, kind)| *kind == FieldKind::Text)
        .filter_map(|(name, _)| job.get(*name))
        .map(|value| i64::try_from(value.len()).expect("size"))
        .sum()
}

/// Checks that consecutive pages honour the budget: each holds at least one job, at most
/// `zrq.reply-max-bytes` of them unless it holds one, and ends only because the next job (the
/// first of the next page) would pass it or because `COUNT` was reached. `read` is the size of a
/// job's record as the command read it (FETCH replies add the consumer and the lease).
fn assert_pages_fill_the_budget(
    pages: &[Vec<zrq_tests::JobMap>],
    count: usize,
    read: fn(&zrq_tests::JobMap) -> i64,
) {
    let budget = DEFAULTS.reply_max_bytes;
    for (n, page) in pages.iter().enumerate() {
        assert!(!page.is_empty(), "page {n} is empty");
        let bytes: i64 = page.iter().map(read).sum();
        assert!(
            page.len() == 1 || bytes <= budget,
            "page {n}: {bytes} bytes"
        );
        if let Some(next) = pages.get(n + 1).and_then(|p| p.first()) {
            assert!(
                page.len() == count || bytes + read(next) > budget,
                "page {n} ({} jobs, {bytes} bytes) stopped before a job that fit",
                page.len()
            );
        }
    }
}

fn ids(jobs: &[zrq_tests::JobMap]) -> Vec<String> {
    jobs.iter().map(|j| j["id"].clone()).collect()
}

/// Jobs whose records pass `zrq.reply-max-bytes` together: LIST, DEAD, FETCH, RECLAIM and REQUEUE
/// ALL return or handle fewer than `COUNT` of them, stopping before the job that would pass the
/// budget; following calls go on from there, so every job is handled exactly once, in order,
/// and FETCH leaves the jobs it did not deliver pending.
fn pages_stop_at_the_reply_budget(backend: Backend) {
    let server = backend.server();
    server.leave_leases_to_reclaim();
    let mut zrq = server.zrq(backend);
    let payload = json_of_size(DEFAULTS.payload_max_bytes);
    let per_page = usize::try_from(DEFAULTS.reply_max_bytes / DEFAULTS.payload_max_bytes)
        .expect("jobs per page");
    let n = per_page * 2 + 3;
    let mut enqueued = Vec::new();
    for _ in 0..n {
        let args: [&[u8]; 7] = [b"q", b"t", &payload, b"RETRIES", b"1", b"TIMEOUT", b"1"];
        let id = zrq.call_raw("enqueue", &args).expect("ENQUEUE");
        enqueued.push(support::text(&id));
    }
    // A small job after them: pages are cut by bytes, not by a count of jobs.
    enqueued.push(zrq.enqueue("q", "t", "{}", &["RETRIES", "1", "TIMEOUT", "1"]));

    let mut pages = Vec::new();
    let mut cursor = "0".to_string();
    loop {
        let (next, page): (String, Value) = zrq
            .call(
                "list",
                &["q", "pending", "COUNT", "1000", "CURSOR", &cursor],
            )
            .expect("LIST");
        pages.push(zrq_tests::jobs(page));
        if next == "0" {
            break;
        }
        cursor = next;
    }
    assert!(pages.len() > 2, "{} pages", pages.len());
    assert_pages_fill_the_budget(&pages, 1000, text_bytes);
    assert_eq!(
        ids(&pages.concat()),
        enqueued,
        "LIST pending covers every job once"
    );

    // FETCH delivers a page; the rest stay pending, undelivered, in order.
    let first = zrq.fetch("q", "w", 1000);
    assert!(!first.is_empty() && first.len() < n);
    assert_eq!(ids(&first), enqueued[..first.len()]);
    for id in &enqueued[first.len()..] {
        assert_eq!(zrq.state("q", id).as_deref(), Some("pending"), "{id}");
    }
    let (_, rest): (String, Value) = zrq
        .call("list", &["q", "pending", "COUNT", "1000"])
        .expect("LIST");
    assert_eq!(
        ids(&zrq_tests::jobs(rest))[0],
        enqueued[first.len()],
        "LIST pending starts at the first job not delivered"
    );
    let mut fetched = vec![first];
    while fetched.iter().map(Vec::len).sum::<usize>() < n + 1 {
        let page = zrq.fetch("q", "w", 1000);
        assert!(
            !page.is_empty(),
            "a FETCH returned nothing with jobs pending"
        );
        fetched.push(page);
    }
    assert_pages_fill_the_budget(&fetched, 1000, |job| {
        text_bytes(job) - i64::try_from(job["consumer"].len() + job["lease"].len()).expect("len")
    });
    assert_eq!(
        ids(&fetched.concat()),
        enqueued,
        "FETCH delivers every job once"
    );
    assert!(zrq.fetch("q", "w", 1000).is_empty());

    // Their leases (1 ms) expire: RECLAIM takes them over in budget-sized pages.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let mut reclaimed = Vec::new();
    loop {
        let page: Value = zrq
            .call("reclaim", &["q", "w2", "COUNT", "1000"])
            .expect("RECLAIM");
        let page = zrq_tests::jobs(page);
        if page.is_empty() {
            break;
        }
        reclaimed.push(page);
    }
    assert!(reclaimed.len() > 2, "{} RECLAIM pages", reclaimed.len());
    let mut all = ids(&reclaimed.concat());
    all.sort();
    let mut want = enqueued.clone();
    want.sort();
    assert_eq!(all, want, "RECLAIM takes every job over once");

    // Their second attempt fails: they are dead. DEAD pages, then REQUEUE ALL pages.
    let mut pipe = redis::pipe();
    for id in &enqueued {
        pipe.add_command(zrq.command("fail", &[b"q", id.as_bytes(), b"boom"]))
            .ignore();
    }
    let _: () = pipe.query(&mut zrq.conn).expect("FAIL");
    let mut dead = Vec::new();
    let mut cursor = "0".to_string();
    loop {
        let (next, page): (String, Value) = zrq
            .call("dead", &["q", "COUNT", "1000", "CURSOR", &cursor])
            .expect("DEAD");
        dead.push(zrq_tests::jobs(page));
        if next == "0" {
            break;
        }
        cursor = next;
    }
    assert!(dead.len() > 2, "{} DEAD pages", dead.len());
    assert_pages_fill_the_budget(&dead, 1000, text_bytes);
    assert_eq!(dead.concat().len(), n + 1, "DEAD covers every job once");

    let mut requeued = Vec::new();
    let mut cursor = "0".to_string();
    loop {
        let (next, count): (String, i64) = zrq
            .call("requeue", &["q", "ALL", "CURSOR", &cursor])
            .expect("REQUEUE ALL");
        assert!(count >= 1, "a REQUEUE ALL page requeued nothing");
        requeued.push(count);
        if next == "0" {
            break;
        }
        cursor = next;
    }
    assert!(requeued.len() > 2, "REQUEUE ALL pages: {requeued:?}");
    assert_eq!(
        requeued.iter().sum::<i64>(),
        i64::try_from(n + 1).expect("n")
    );
}

/// A WITHRESULTS child's `parents` stays within zrq.parents-max-bytes: a result that would take
/// it beyond is copied as null and the child's error says so, whether the parent completes
/// before the child is enqueued or after. Results are copied as ASCII JSON; unfinished parents
/// come first. Both backends write the same texts.
fn parents_results_stay_within_their_limit(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    for id in ["small", "big", "last"] {
        zrq.enqueue("q", "t", "{}", &["ID", id]);
    }
    assert_eq!(zrq.fetch("q", "w", 10).len(), 3);
    let child = |zrq: &mut zrq_tests::Zrq, id: &str| {
        zrq.enqueue(
            "q",
            "t",
            "{}",
            &[
                "ID",
                id,
                "WITHRESULTS",
                "AFTER",
                "small",
                "AFTER",
                "big",
                "AFTER",
                "last",
            ],
        )
    };
    child(&mut zrq, "before");
    let ack = |zrq: &mut zrq_tests::Zrq, id: &str, result: &[u8]| {
        let reply = zrq
            .call_raw("ack", &[b"q", id.as_bytes(), b"RESULT", result])
            .expect("ACK");
        assert_eq!(reply, Value::Int(1));
    };
    ack(&mut zrq, "small", "{ \"a\" : \"é😀\" }".as_bytes());
    let record = zrq.job("q", "before").expect("child");
    assert_eq!(
        record["parents"],
        "{\"big\":null,\"last\":null,\"small\":{\"a\":\"\\u00e9\\ud83d\\ude00\"}}"
    );
    ack(&mut zrq, "big", &json_of_size(DEFAULTS.parents_max_bytes));
    child(&mut zrq, "after");
    ack(&mut zrq, "last", b"7");
    let want_parents = "{\"small\":{\"a\":\"\\u00e9\\ud83d\\ude00\"},\"big\":null,\"last\":7}";
    let note = format!(
        "result of parent big not copied: the parents' results would pass {} bytes \
         (zrq.parents-max-bytes)",
        DEFAULTS.parents_max_bytes
    );
    let before = zrq.job("q", "before").expect("child");
    assert_eq!(before["parents"], want_parents);
    assert_eq!(before["error"], note);
    assert_eq!(before["state"], "pending");
    let after = zrq.job("q", "after").expect("child");
    assert_eq!(after["error"], note);
    assert_eq!(after["state"], "pending");
    let parsed: serde_json::Value = serde_json::from_str(&after["parents"]).expect("JSON");
    assert_eq!(
        parsed,
        serde_json::json!({ "small": { "a": "é😀" }, "big": null, "last": 7 })
    );
}

conformance!(
    parents_results_stay_within_their_limit,
    pages_stop_at_the_reply_budget,
    limits_refuse_with_limit_and_write_nothing,
    commands_at_the_limits_work,
    list_pending_pages_resume_at_a_position,
    cron_steps_do_not_overflow,
    ticks_are_skipped_at_maxmemory,
);

/// A schedule stored with an `EVERY` below today's `zrq.every-min-ms` (the config was lower
/// when it was defined) runs at the minimum from its next tick on; its stored period is kept.
/// Module only: the Lua library cannot change the minimum.
#[test]
fn a_period_below_the_minimum_runs_at_the_minimum() {
    let server = Backend::Module.server();
    let mut conn = server.conn();
    let mut zrq = server.zrq(Backend::Module);
    let set = |conn: &mut redis::Connection, value: &str| {
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("zrq.every-min-ms")
            .arg(value)
            .query(conn)
            .expect("CONFIG SET");
    };
    set(&mut conn, "100");
    let first: i64 = zrq
        .call("schedule", &["q", "s", "EVERY", "100", "t", "{}"])
        .expect("SCHEDULE");
    set(&mut conn, "5000");
    let enqueued = |conn: &mut redis::Connection| -> i64 {
        redis::cmd("HGET")
            .arg("zrq:{q}:stats")
            .arg("enqueued")
            .query::<Option<i64>>(conn)
            .expect("stats")
            .unwrap_or(0)
    };
    server.wait_for(|conn| enqueued(conn) >= 1);
    // At a 100 ms period about ten more would fire within the second.
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(enqueued(&mut conn), 1, "the period is the minimum now");
    let next: i64 = redis::cmd("ZSCORE")
        .arg("zrq:{q}:ticks")
        .arg("s")
        .query(&mut conn)
        .expect("ZSCORE");
    assert!(
        next > first && (next - first) % 5000 == 0,
        "next run {next} is on the 5000 ms grid from {first}"
    );
    let schedules: Value = zrq.call("schedules", &["q"]).expect("SCHEDULES");
    assert!(
        format!("{schedules:?}").contains("int(100)"),
        "the stored period is kept: {schedules:?}"
    );
}

//! Recurring schedules: SCHEDULE (EVERY and CRON), SCHEDULES, UNSCHEDULE; exactly one job per tick
//! however many workers fetch; ticks missed while the server was down (one catch-up job, then the
//! schedule continues on its grid).
//!
//! Definitions, listings and a tick's job record are backend-independent (conformance); the timing
//! of ticks needs the server-side timer (module only). `* * * * *` ticks once a minute, so timing
//! tests use EVERY.

use crate::support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use lifecycle_support::{info_int, int, now_ms, ok, records, wait_until};
use support::lifecycle as lifecycle_support;
use zrq_tests::redis::{self, Value};
use zrq_tests::{conformance, map, Backend, JobMap, Options, Server, Zrq};

const Q: &str = "sq";
const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// `ZRQ.SCHEDULES <queue>` as maps.
fn schedules(zrq: &mut Zrq, queue: &str) -> Vec<JobMap> {
    match ok(zrq, "schedules", &[queue]) {
        Value::Array(items) => items.into_iter().map(map).collect(),
        other => panic!("SCHEDULES: {other:?}"),
    }
}

fn schedule_named(zrq: &mut Zrq, queue: &str, name: &str) -> JobMap {
    schedules(zrq, queue)
        .into_iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no schedule {name}"))
}

/// SCHEDULE, bracketed by the client clock: (first run, time before, time after).
fn schedule(zrq: &mut Zrq, args: &[&str]) -> (i64, i64, i64) {
    let before = now_ms();
    let first = int(zrq, "schedule", args);
    (first, before, now_ms())
}

/// The first unix ms strictly after `t` that is a multiple of `period` plus `offset`.
fn next_multiple(t: i64, period: i64, offset: i64) -> i64 {
    ((t - offset).div_euclid(period) + 1) * period + offset
}

fn schedule_definitions_are_listed(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let (first, before, after) = schedule(
        &mut zrq,
        &[
            Q,
            "report",
            "EVERY",
            "600000",
            "make_report",
            r#"{"kind":"daily"}"#,
            "RETRIES",
            "2",
            "TIMEOUT",
            "5000",
            "PRIORITY",
            "3",
            "BACKOFF",
            "50",
            "UNIQUE",
            "rep",
            "KEEP",
            "1000",
        ],
    );
    assert!(
        (before + 600_000..=after + 600_000).contains(&first),
        "EVERY: first run one period from now"
    );
    let (cron_first, before_c, after_c) = schedule(
        &mut zrq,
        &[Q, "cleanup", "CRON", "*/5 * * * *", "clean", "{}"],
    );
    let want = next_multiple(before_c, 5 * MINUTE, 0);
    assert!(
        cron_first == want || cron_first == next_multiple(after_c, 5 * MINUTE, 0),
        "next multiple of 5 minutes: {cron_first} vs {want}"
    );
    let listed = schedules(&mut zrq, Q);
    let names: Vec<&str> = listed.iter().map(|s| s["name"].as_str()).collect();
    assert_eq!(names, ["cleanup", "report"], "sorted by name");
    let report = &listed[1];
    let expect = [
        ("name", "report"),
        ("every", "600000"),
        ("task", "make_report"),
        ("payload", r#"{"kind":"daily"}"#),
        ("retries", "2"),
        ("timeout", "5000"),
        ("priority", "3"),
        ("backoff", "50"),
        ("unique", "rep"),
        ("keep", "1000"),
    ];
    for (k, v) in expect {
        assert_eq!(
            report.get(k).map(String::as_str),
            Some(v),
            "{k}: {report:?}"
        );
    }
    assert_eq!(report["next_run"], first.to_string());
    assert!(!report.contains_key("last_run"), "never ran: {report:?}");
    assert!(!report.contains_key("cron"));
    let cleanup = &listed[0];
    assert_eq!(cleanup["cron"], "*/5 * * * *");
    assert_eq!(cleanup["next_run"], cron_first.to_string());
    assert_eq!(cleanup["retries"], "3", "job defaults");
    assert_eq!(cleanup["timeout"], "30000");
    assert_eq!(cleanup["priority"], "0");
    assert!(!cleanup.contains_key("every"));
    // Nothing is enqueued by defining a schedule; the queue is known.
    assert_eq!(info_int(&mut zrq, Q, "pending"), 0);
    assert_eq!(info_int(&mut zrq, Q, "total_enqueued"), 0);
    assert_eq!(zrq.queues(), [Q]);

    // Redefining replaces the definition and replans.
    let (again, _, _) = schedule(&mut zrq, &[Q, "report", "EVERY", "1000000", "other", "[]"]);
    let report = schedule_named(&mut zrq, Q, "report");
    assert_eq!(report["every"], "1000000");
    assert_eq!(report["task"], "other");
    assert_eq!(report["next_run"], again.to_string());
    assert!(!report.contains_key("unique"), "{report:?}");
    assert_eq!(schedules(&mut zrq, Q).len(), 2);

    // UNSCHEDULE.
    assert_eq!(int(&mut zrq, "unschedule", &[Q, "report"]), 1);
    assert_eq!(int(&mut zrq, "unschedule", &[Q, "report"]), 0);
    assert_eq!(int(&mut zrq, "unschedule", &[Q, "never"]), 0);
    let names: Vec<String> = schedules(&mut zrq, Q)
        .into_iter()
        .map(|s| s["name"].clone())
        .collect();
    assert_eq!(names, ["cleanup"]);
    let mut conn = server.conn();
    let ticks: Vec<String> = redis::cmd("ZRANGE")
        .arg(format!("zrq:{{{Q}}}:ticks"))
        .arg(0)
        .arg(-1)
        .query(&mut conn)
        .unwrap();
    assert_eq!(ticks, ["cleanup"], "its tick is gone too");
    assert_eq!(int(&mut zrq, "unschedule", &[Q, "cleanup"]), 1);
    assert!(schedules(&mut zrq, Q).is_empty());
    assert!(schedules(&mut zrq, "nothing-here").is_empty());
}

fn cron_next_run_is_correct(backend: Backend) {
    // Each expression with an independent oracle (UTC): the first match strictly after now.
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let sunday_after = |t: i64| {
        // 1970-01-01 was a Thursday (weekday 4).
        let mut day = t.div_euclid(DAY) + 1;
        while (day + 4) % 7 != 0 {
            day += 1;
        }
        day * DAY
    };
    let first_of_next_year = |t: i64| {
        // Days from 1970 to 1 January of each year, until past t.
        let mut year = 1970;
        let mut start = 0;
        loop {
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
            let next = start + if leap { 366 } else { 365 } * DAY;
            if start > t {
                return start;
            }
            start = next;
            year += 1;
        }
    };
    type Oracle = Box<dyn Fn(i64) -> i64>;
    let cases: Vec<(&str, Oracle)> = vec![
        ("* * * * *", Box::new(|t| next_multiple(t, MINUTE, 0))),
        ("*/5 * * * *", Box::new(|t| next_multiple(t, 5 * MINUTE, 0))),
        ("0 * * * *", Box::new(|t| next_multiple(t, HOUR, 0))),
        (
            "30 2 * * *",
            Box::new(|t| next_multiple(t, DAY, 2 * HOUR + 30 * MINUTE)),
        ),
        ("0 0 * * 0", Box::new(sunday_after)),
        ("0 0 * * 7", Box::new(sunday_after)),
        ("0 0 1 1 *", Box::new(first_of_next_year)),
    ];
    for (i, (expr, oracle)) in cases.iter().enumerate() {
        let name = format!("c{i}");
        let (first, before, after) = schedule(&mut zrq, &[Q, &name, "CRON", expr, "t", "{}"]);
        assert!(
            first == oracle(before) || first == oracle(after),
            "CRON '{expr}': got {first}, want {}",
            oracle(before)
        );
        assert_eq!(
            schedule_named(&mut zrq, Q, &name)["next_run"],
            first.to_string()
        );
    }
}

/// The first minute strictly after `t` whose (month, day, weekday) satisfy `day` and whose
/// (hour, minute) satisfy `time`: a naive calendar walk from 1970, independent of the cron code.
fn next_match(t: i64, day: impl Fn(u32, u32, u32) -> bool, time: impl Fn(u32, u32) -> bool) -> i64 {
    let (mut year, mut month, mut dom, mut weekday) = (1970_i64, 1_u32, 1_u32, 4_u32);
    let month_len = |y: i64, m: u32| match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    let today = t.div_euclid(DAY);
    for index in 0..today + 5 * 366 {
        if index >= today && day(month, dom, weekday) {
            for minute_of_day in 0..1440_i64 {
                let at = index * DAY + minute_of_day * MINUTE;
                let (h, mi) = ((minute_of_day / 60) as u32, (minute_of_day % 60) as u32);
                if at > t && time(h, mi) {
                    return at;
                }
            }
        }
        weekday = (weekday + 1) % 7;
        dom += 1;
        if dom > month_len(year, month) {
            dom = 1;
            month += 1;
            if month > 12 {
                month = 1;
                year += 1;
            }
        }
    }
    panic!("no match within five years")
}

fn cron_with_calendar_fields_matches_a_calendar_walk(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    type Oracle = Box<dyn Fn(i64) -> i64>;
    let cases: Vec<(&str, Oracle)> = vec![
        // Both day fields restricted: the 13th or a Friday.
        (
            "0 0 13 * 5",
            Box::new(|t| next_match(t, |_, d, wd| d == 13 || wd == 5, |h, m| h == 0 && m == 0)),
        ),
        (
            "0 12 1 * *",
            Box::new(|t| next_match(t, |_, d, _| d == 1, |h, m| h == 12 && m == 0)),
        ),
        (
            "15 10 * * 1-5",
            Box::new(|t| {
                next_match(
                    t,
                    |_, _, wd| (1..=5).contains(&wd),
                    |h, m| h == 10 && m == 15,
                )
            }),
        ),
        (
            "*/20 9-17 * * *",
            Box::new(|t| {
                next_match(
                    t,
                    |_, _, _| true,
                    |h, m| (9..=17).contains(&h) && m % 20 == 0,
                )
            }),
        ),
        (
            "0 0 29 2 *",
            Box::new(|t| next_match(t, |mo, d, _| mo == 2 && d == 29, |h, m| h == 0 && m == 0)),
        ),
        (
            "5,35 */6 * 1,7 0",
            Box::new(|t| {
                next_match(
                    t,
                    |mo, _, wd| (mo == 1 || mo == 7) && wd == 0,
                    |h, m| h % 6 == 0 && (m == 5 || m == 35),
                )
            }),
        ),
    ];
    for (i, (expr, oracle)) in cases.iter().enumerate() {
        let name = format!("cal{i}");
        let (first, before, after) = schedule(&mut zrq, &[Q, &name, "CRON", expr, "t", "{}"]);
        assert!(
            first == oracle(before) || first == oracle(after),
            "CRON '{expr}': got {first}, want {}",
            oracle(before)
        );
    }
}

/// A tick's job names its schedule in its record (`schedule`), which `ZRQ.JOB` returns; a job
/// enqueued otherwise has no such field. The module's timer fires the tick; the library fires it
/// from the next FETCH after it is due.
fn a_ticks_job_names_its_schedule(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let plain = zrq.enqueue(Q, "plain", "{}", &[]);
    assert_eq!(zrq.fetch(Q, "w", 1)[0]["id"], plain);
    // 1000 ms: the shortest period the library allows (zrq.every-min-ms at its default).
    schedule(
        &mut zrq,
        &[Q, "hourly-report", "EVERY", "1000", "report", "{}"],
    );
    let mut fetched = Vec::new();
    wait_until(Duration::from_secs(10), "the first tick's job", || {
        fetched = zrq.fetch(Q, "w", 1);
        !fetched.is_empty()
    });
    let id = fetched[0]["id"].clone();
    assert_eq!(fetched[0]["task"], "report");
    assert_eq!(
        fetched[0].get("schedule").map(String::as_str),
        Some("hourly-report"),
        "FETCH returns the record: {:?}",
        fetched[0]
    );
    let job = zrq.job(Q, &id).expect("the tick's job");
    assert_eq!(
        job.get("schedule").map(String::as_str),
        Some("hourly-report")
    );
    let plain = zrq.job(Q, &plain).expect("the plain job");
    assert_eq!(plain.get("schedule"), None, "{plain:?}");
    assert_eq!(int(&mut zrq, "unschedule", &[Q, "hourly-report"]), 1);
}

conformance!(
    schedule_definitions_are_listed,
    cron_next_run_is_correct,
    cron_with_calendar_fields_matches_a_calendar_walk,
    a_ticks_job_names_its_schedule,
);

// Ticks: module only (the server-side timer enqueues).

fn module() -> Server {
    Backend::Module.server_with(Options::default().fast_schedules())
}

/// Jobs of the queue's records created by schedule task `task`, by creation time.
fn scheduled_jobs(server: &Server, queue: &str, task: &str) -> Vec<(i64, String)> {
    let mut conn = server.conn();
    let mut out: Vec<(i64, String)> = records(&mut conn, queue)
        .into_iter()
        .filter(|(_, r)| r.get("task").map(String::as_str) == Some(task))
        .map(|(id, r)| {
            // Read as a job: a generated id's record leaves its created_at to the id.
            let key = support::job_key(queue, &id);
            let job = zrq_core::job::Job::from_fields(&key, queue, &id, r.into_iter().collect())
                .expect("a job record");
            (job.created_at, id)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_enqueues_exactly_one_job_per_tick_with_several_workers() {
    let server = module();
    let mut zrq = server.zrq(Backend::Module);
    let period = 200;
    let (first, _, _) = schedule(
        &mut zrq,
        &[Q, "tick", "EVERY", &period.to_string(), "tick", "{}"],
    );
    // Four workers fetch concurrently (blocking), acknowledge, and record what they got.
    let stop = Arc::new(AtomicBool::new(false));
    let got = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let mut conn = server.conn();
            let (stop, got) = (stop.clone(), got.clone());
            thread::spawn(move || {
                let name = format!("w{w}");
                while !stop.load(Ordering::Relaxed) {
                    let reply: Value = redis::cmd("ZRQ.FETCH")
                        .arg(Q)
                        .arg(&name)
                        .arg("BLOCK")
                        .arg(50)
                        .query(&mut conn)
                        .expect("FETCH");
                    for job in zrq_tests::jobs(reply) {
                        let _: i64 = redis::cmd("ZRQ.ACK")
                            .arg(Q)
                            .arg(&job["id"])
                            .query(&mut conn)
                            .expect("ACK");
                        got.lock().unwrap().push((job["id"].clone(), name.clone()));
                    }
                }
            })
        })
        .collect();
    wait_until(Duration::from_secs(10), "six ticks", || {
        got.lock().unwrap().len() >= 6
    });
    assert_eq!(int(&mut zrq, "unschedule", &[Q, "tick"]), 1);
    let stopped_at = now_ms();
    thread::sleep(Duration::from_millis(3 * period as u64));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("worker");
    }
    let delivered = got.lock().unwrap().clone();
    let ids: BTreeSet<&String> = delivered.iter().map(|(id, _)| id).collect();
    assert_eq!(
        ids.len(),
        delivered.len(),
        "each job delivered once: {delivered:?}"
    );
    let jobs = scheduled_jobs(&server, Q, "tick");
    assert_eq!(
        jobs.len(),
        delivered.len(),
        "every job enqueued was delivered"
    );
    // Each job belongs to its own tick of the grid first + k * period: no tick enqueued twice.
    let mut ticks = BTreeSet::new();
    for (created, id) in &jobs {
        assert!(*created >= first, "job {id} before the first tick");
        let k = (created - first) / period;
        assert!(ticks.insert(k), "tick {k} enqueued twice: {jobs:?}");
        assert!(*created <= stopped_at, "job {id} after UNSCHEDULE");
    }
    let elapsed_ticks = (stopped_at - first) / period + 1;
    assert!(
        (jobs.len() as i64) <= elapsed_ticks,
        "{} jobs for {elapsed_ticks} ticks",
        jobs.len()
    );
    assert!(jobs.len() >= 6);
    assert_eq!(info_int(&mut zrq, Q, "total_enqueued"), jobs.len() as i64);
}

#[test]
fn ticks_carry_the_schedule_job_options_and_update_last_run() {
    let server = module();
    let mut zrq = server.zrq(Backend::Module);
    let (first, _, _) = schedule(
        &mut zrq,
        &[
            Q,
            "opt",
            "EVERY",
            "100",
            "opt_task",
            r#"{"x":[1]}"#,
            "RETRIES",
            "0",
            "TIMEOUT",
            "777",
            "PRIORITY",
            "5",
            "KEEP",
            "5000",
            "BACKOFF",
            "9",
        ],
    );
    let mut job = None;
    wait_until(Duration::from_secs(5), "the first tick", || {
        job = zrq.fetch(Q, "w", 1).into_iter().next();
        job.is_some()
    });
    let job = job.unwrap();
    assert_eq!(job["task"], "opt_task");
    assert_eq!(job["payload"], r#"{"x":[1]}"#);
    assert_eq!(job["max_attempts"], "1");
    assert_eq!(job["timeout"], "777");
    assert_eq!(job["priority"], "5");
    assert_eq!(job["keep"], "5000");
    assert_eq!(job["backoff"], "9");
    let created: i64 = job["created_at"].parse().unwrap();
    assert!(created >= first, "not before its tick");
    let def = schedule_named(&mut zrq, Q, "opt");
    let last: i64 = def["last_run"].parse().expect("last_run after a tick");
    let next: i64 = def["next_run"].parse().unwrap();
    assert!(last >= first, "{def:?}");
    assert!(
        next > last && (next - first) % 100 == 0,
        "next run on the grid: {def:?}"
    );
    assert_eq!(int(&mut zrq, "unschedule", &[Q, "opt"]), 1);
}

#[test]
fn unschedule_stops_the_ticks_and_keeps_the_jobs_already_enqueued() {
    let server = module();
    let mut zrq = server.zrq(Backend::Module);
    schedule(&mut zrq, &[Q, "s", "EVERY", "50", "t", "{}"]);
    wait_until(Duration::from_secs(5), "two ticks", || {
        info_int(&mut zrq, Q, "pending") >= 2
    });
    assert_eq!(int(&mut zrq, "unschedule", &[Q, "s"]), 1);
    let n = info_int(&mut zrq, Q, "total_enqueued");
    thread::sleep(Duration::from_millis(300));
    assert_eq!(
        info_int(&mut zrq, Q, "total_enqueued"),
        n,
        "no tick after UNSCHEDULE"
    );
    assert_eq!(
        info_int(&mut zrq, Q, "pending"),
        n,
        "jobs already enqueued stay"
    );
}

#[test]
fn a_unique_schedule_does_not_pile_up_while_its_job_waits() {
    let server = module();
    let mut zrq = server.zrq(Backend::Module);
    schedule(
        &mut zrq,
        &[Q, "u", "EVERY", "50", "t", "{}", "UNIQUE", "only-one"],
    );
    wait_until(Duration::from_secs(5), "a tick", || {
        info_int(&mut zrq, Q, "pending") == 1
    });
    thread::sleep(Duration::from_millis(400));
    assert_eq!(
        info_int(&mut zrq, Q, "pending"),
        1,
        "later ticks return the waiting job"
    );
    assert_eq!(info_int(&mut zrq, Q, "total_enqueued"), 1);
    // Once it finishes, the next tick enqueues a new one.
    let job = zrq.fetch(Q, "w", 1);
    assert_eq!(int(&mut zrq, "ack", &[Q, &job[0]["id"]]), 1);
    wait_until(Duration::from_secs(5), "a new job", || {
        info_int(&mut zrq, Q, "pending") == 1
    });
    assert_eq!(info_int(&mut zrq, Q, "total_enqueued"), 2);
    assert_eq!(int(&mut zrq, "unschedule", &[Q, "u"]), 1);
}

/// Stops `server` with SHUTDOWN, keeps it down for `down`, then starts a server from its AOF.
///
/// (`Server::restart` starts again at once; here the downtime is the point.) The new server
/// runs on its own port and directory, with the old server's append-only files.
fn shutdown_and_start_from_aof_after(server: Server, down: Duration) -> (Server, i64, i64) {
    let _: redis::RedisResult<()> = redis::cmd("SHUTDOWN").query(&mut server.conn());
    // SHUTDOWN returns no reply: wait until the process is gone.
    wait_until(Duration::from_secs(10), "shutdown", || {
        redis::Client::open(server.url())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(100)))
            .is_err()
    });
    let down_at = now_ms();
    thread::sleep(down);
    let options = Options {
        module: true,
        appendonly: true,
        ..Options::default()
    }
    .fast_schedules();
    let mut fresh = Server::start(options);
    // Replace the fresh server's (empty) AOF with the old one and restart it.
    let _: redis::RedisResult<()> = redis::cmd("CONFIG")
        .arg("SET")
        .arg("appendonly")
        .arg("no")
        .query(&mut fresh.conn());
    let (from, to) = (
        server.dir().join("appendonlydir"),
        fresh.dir().join("appendonlydir"),
    );
    for entry in std::fs::read_dir(&to).expect("fresh appendonlydir") {
        std::fs::remove_file(entry.expect("entry").path()).expect("remove");
    }
    for entry in std::fs::read_dir(&from).expect("old appendonlydir") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, to.join(path.file_name().expect("name"))).expect("copy");
    }
    let up_at = now_ms();
    fresh.crash_and_restart();
    drop(server);
    (fresh, down_at, up_at)
}

#[test]
fn ticks_missed_while_down_give_one_catch_up_job_then_the_schedule_goes_on() {
    let server = Backend::Module.server_with(
        Options {
            appendonly: true,
            ..Options::default()
        }
        .fast_schedules(),
    );
    let mut zrq = server.zrq(Backend::Module);
    let period = 200;
    let (first, _, _) = schedule(&mut zrq, &[Q, "s", "EVERY", &period.to_string(), "t", "{}"]);
    wait_until(Duration::from_secs(5), "two ticks", || {
        info_int(&mut zrq, Q, "total_enqueued") >= 2
    });
    drop(zrq);
    let (server, down_at, up_at) =
        shutdown_and_start_from_aof_after(server, Duration::from_secs(1));
    let mut zrq = server.zrq(Backend::Module);
    // The first timer pass after the restart enqueues the catch-up job: seen atomically, the
    // jobs created since the restart are as many as the timer passes (a schedule that skipped
    // the missed ticks would have one job fewer than passes).
    let mut conn = server.conn();
    let kept = scheduled_jobs(&server, Q, "t")
        .iter()
        .filter(|(c, _)| *c <= down_at)
        .count();
    let mut seen = (0, 0);
    wait_until(
        Duration::from_secs(5),
        "the first job after the restart",
        || {
            // Jobs: records, and plain pending jobs (inline stream entries, no record).
            let (keys, inline, section): (Vec<String>, usize, String) = redis::pipe()
                .atomic()
                .cmd("KEYS")
                .arg(format!("zrq:{{{Q}}}:job:*"))
                .cmd("XLEN")
                .arg(format!("zrq:{{{Q}}}:stream"))
                .cmd("INFO")
                .arg("zrq")
                .query(&mut conn)
                .expect("MULTI KEYS XLEN INFO");
            let passes: usize = section
                .lines()
                .find_map(|l| l.strip_prefix("zrq_timer_passes_total:"))
                .and_then(|v| v.trim().parse().ok())
                .expect("zrq_timer_passes_total");
            seen = (keys.len() + inline - kept, passes);
            seen.0 > 0
        },
    );
    assert_eq!(
        seen.0, seen.1,
        "(jobs since the restart, timer passes): the first pass after the restart enqueued one job"
    );
    // The schedule survived.
    let def = schedule_named(&mut zrq, Q, "s");
    assert_eq!(def["every"], period.to_string());
    // Wait for the schedule to tick on its grid again after the catch-up.
    wait_until(Duration::from_secs(5), "ticks after the restart", || {
        scheduled_jobs(&server, Q, "t")
            .iter()
            .filter(|(c, _)| *c >= up_at)
            .count()
            >= 3
    });
    let jobs = scheduled_jobs(&server, Q, "t");
    let before: Vec<_> = jobs.iter().filter(|(c, _)| *c <= down_at).collect();
    let after: Vec<_> = jobs.iter().filter(|(c, _)| *c >= up_at).collect();
    assert_eq!(
        before.len() + after.len(),
        jobs.len(),
        "nothing while down: {jobs:?}"
    );
    assert!(before.len() >= 2);
    let missed = (up_at - down_at) / period;
    assert!(missed >= 4, "the server missed {missed} ticks");
    // One catch-up job: the first after the restart; the next one waits for the next grid tick.
    let catch_up = after[0].0;
    let next_tick = next_multiple(catch_up, period, first.rem_euclid(period));
    let caught: Vec<_> = after.iter().filter(|(c, _)| *c < next_tick).collect();
    assert_eq!(
        caught.len(),
        1,
        "one job for {missed} missed ticks (catch-up at {catch_up}, next tick {next_tick}): {after:?}"
    );
    for (k, (created, id)) in after.iter().enumerate().skip(1) {
        assert!(*created >= next_tick, "job {id} before the next grid tick");
        let tick = (created - first) / period;
        let prev_tick = (after[k - 1].0 - first) / period;
        assert!(
            tick > prev_tick,
            "one job per tick after the restart: {after:?}"
        );
    }
    let def = schedule_named(&mut zrq, Q, "s");
    let next: i64 = def["next_run"].parse().unwrap();
    assert_eq!(
        (next - first) % period,
        0,
        "the schedule stays on its grid: {def:?}"
    );
    assert_eq!(int(&mut zrq, "unschedule", &[Q, "s"]), 1);
}

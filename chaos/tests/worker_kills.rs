//! Worker processes SIGKILLed and SIGSTOPped/SIGCONTed at random through a run of 10,000 jobs
//! with planned failures (retries) and delays. Every job must end completed, exactly once; an
//! attempt may run without finishing the job only if its worker was killed or paused while
//! holding it; no delivery runs twice; `ZRQ.INFO` agrees with the jobs; the audit passes.
// Test code fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::*;
use zrq_chaos::{ChaosArgs, Run};
use zrq_tests::audit::assert_consistent;
use zrq_tests::redis::Connection;
use zrq_tests::{Backend, Rng};

const Q: &str = "kills";
const JOBS: usize = 10_000;
/// The lease: short, so a killed worker's jobs come back quickly.
const LEASE_MS: u64 = 1500;
const WORKERS: usize = 4;
/// The whole run, chaos included, must end well within this.
const RUN_LIMIT: Duration = Duration::from_secs(150);

/// The jobs: most succeed at once, some fail once or twice on purpose (retried after a short
/// backoff), one in five is delayed by up to 3 s.
fn plan(rng: &mut Rng) -> Vec<Planned> {
    (0..JOBS)
        .map(|i| {
            let fail_first = match rng.below(10) {
                0..=5 => 0,
                6..=8 => 1,
                _ => 2,
            };
            let mut options: Vec<String> = ["RETRIES", "20", "BACKOFF", "50", "TIMEOUT"]
                .map(String::from)
                .into();
            options.push(LEASE_MS.to_string());
            if rng.below(5) == 0 {
                options.extend(["DELAY".to_string(), rng.below(3000).to_string()]);
            }
            Planned {
                id: format!("k{i}"),
                args: ChaosArgs {
                    fail_first,
                    // Long enough that a worker paused mid-job still holds it when its lease
                    // expires and another takes over: the stale report must then be fenced off.
                    work_ms: rng.below(40),
                },
                options,
            }
        })
        .collect()
}

/// Deliveries (job, attempt) that a worker held while it was killed or paused.
type Interrupted = BTreeSet<(String, i64)>;

/// Adds what `consumer` holds now to `interrupted`.
fn note_held(conn: &mut Connection, consumer: &str, interrupted: &mut Interrupted) {
    interrupted.extend(held_by(conn, Q, consumer));
}

/// SIGKILLs worker `index` and starts a replacement. What the dead worker held is read twice:
/// right away, and again a moment later in case Redis answered the dead worker's blocked FETCH
/// before it noticed the connection close (a delivery keeps its lease for `LEASE_MS`, so the
/// second look cannot miss it).
fn kill_one(conn: &mut Connection, workers: &mut Workers, index: usize, seen: &mut Interrupted) {
    let consumer = workers.kill(index);
    note_held(conn, &consumer, seen);
    std::thread::sleep(Duration::from_millis(200));
    note_held(conn, &consumer, seen);
    workers.spawn();
}

/// SIGSTOPs worker `index` for `pause`, then SIGCONTs it. Meanwhile what it holds is read every
/// 50 ms — a blocked FETCH can still deliver to a stopped process, and such a delivery keeps
/// its lease for `LEASE_MS` before anyone can take it, so none is missed.
fn pause_one(
    conn: &mut Connection,
    workers: &Workers,
    index: usize,
    pause: Duration,
    seen: &mut Interrupted,
) {
    let consumer = workers.running[index].1.clone();
    workers.signal(index, libc::SIGSTOP);
    let until = Instant::now() + pause;
    loop {
        note_held(conn, &consumer, seen);
        if Instant::now() >= until {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    workers.signal(index, libc::SIGCONT);
}

/// Everything wrong with how the jobs ran: `outcomes` from the records, `runs` from the logs.
fn unexplained(
    jobs: &[Planned],
    outcomes: &BTreeMap<String, Outcome>,
    runs: &[Run],
    interrupted: &Interrupted,
) -> Vec<String> {
    let mut attempts_run: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for run in runs {
        attempts_run.entry(&run.id).or_default().push(run.attempt);
    }
    let mut problems = Vec::new();
    for job in jobs {
        let id = job.id.as_str();
        let Some(outcome) = outcomes.get(id) else {
            problems.push(format!("{id}: no record"));
            continue;
        };
        if outcome.state != "completed" {
            problems.push(format!("{id}: ended {outcome:?}"));
            continue;
        }
        let planned = job.args.fail_first;
        let last = outcome.attempt;
        if last <= planned {
            problems.push(format!(
                "{id}: completed on attempt {last}, which was planned to fail"
            ));
        }
        // The chaos task returns its attempt: the record must hold the last attempt's result,
        // never a stale worker's (fenced leases, issue #11 section 1).
        if outcome.result.as_deref() != Some(last.to_string().as_str()) {
            problems.push(format!(
                "{id}: completed with the result {:?}, its last attempt is {last}",
                outcome.result
            ));
        }
        let ran = attempts_run.get(id).cloned().unwrap_or_default();
        let distinct: BTreeSet<i64> = ran.iter().copied().collect();
        if distinct.len() != ran.len() {
            problems.push(format!("{id}: one delivery ran twice: attempts {ran:?}"));
        }
        if let Some(beyond) = ran.iter().find(|a| **a > last) {
            problems.push(format!(
                "{id}: attempt {beyond} ran, the record stops at {last}"
            ));
        }
        if !ran.iter().any(|a| *a > planned) {
            problems.push(format!("{id}: completed, but no successful attempt ran"));
        }
        // An attempt past the planned failures completes the job unless it was cut short.
        for attempt in (planned + 1)..last {
            if !interrupted.contains(&(id.to_string(), attempt)) {
                problems.push(format!(
                    "{id}: attempt {attempt} should have completed it (its worker was neither \
                     killed nor paused while holding it), yet it went on to attempt {last}; ran {ran:?}"
                ));
            }
        }
    }
    problems
}

#[test]
fn workers_killed_and_paused_at_random_every_job_completes_once() {
    let server = Backend::Module.server();
    let mut conn = server.conn();
    let mut rng = Rng::new(11);
    let jobs = plan(&mut rng);
    enqueue_all(&mut conn, Q, &jobs);
    let started = Instant::now();
    let mut workers = Workers::start(Target::Url(server.url()), &[Q], WORKERS, 16, 16);
    let mut interrupted = Interrupted::new();
    let (mut kills, mut pauses) = (0, 0);
    while finished(&mut conn, Q) < JOBS as i64 {
        assert!(
            started.elapsed() < RUN_LIMIT,
            "only {} of {JOBS} jobs finished after {RUN_LIMIT:?}",
            finished(&mut conn, Q)
        );
        std::thread::sleep(Duration::from_millis(200 + rng.below(500)));
        let index = rng.below(workers.running.len() as u64) as usize;
        if kills <= pauses {
            kill_one(&mut conn, &mut workers, index, &mut interrupted);
            kills += 1;
        } else {
            let pause = Duration::from_millis(300 + rng.below(2700));
            pause_one(&mut conn, &workers, index, pause, &mut interrupted);
            pauses += 1;
        }
    }
    let elapsed = started.elapsed();
    workers.stop_all();
    eprintln!(
        "{JOBS} jobs in {elapsed:?} with {kills} kills and {pauses} pauses; \
         {} deliveries interrupted",
        interrupted.len()
    );
    assert!(
        kills >= 3 && pauses >= 3 && !interrupted.is_empty(),
        "the chaos must bite: {kills} kills, {pauses} pauses, {} deliveries interrupted",
        interrupted.len()
    );

    let expected = ids(&jobs);
    let report = assert_consistent(&mut conn, Backend::Module, Q, Some(&expected));
    let outcomes = outcomes(&mut conn, Q, &expected);
    let problems = unexplained(&jobs, &outcomes, &workers.runs(), &interrupted);
    assert!(
        problems.is_empty(),
        "{} jobs ran in ways the kills do not explain:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
    // Every attempt but each job's last ended in a failure: planned, or a lease that expired.
    let failures: i64 = outcomes.values().map(|o| o.attempt - 1).sum();
    let counters = [
        ("total_enqueued", JOBS as i64),
        ("total_completed", JOBS as i64),
        ("completed", JOBS as i64),
        ("total_dead", 0),
        ("total_cancelled", 0),
        ("total_failed", failures),
    ];
    for (name, want) in counters {
        assert_eq!(report.info(name), want, "ZRQ.INFO {name}");
    }
}

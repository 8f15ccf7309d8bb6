//! A long soak, run by hand (not in CI): millions of jobs with planned failures (retries) and
//! delays through two worker processes, Redis and worker memory sampled every 30 s; they must
//! stay flat. Figures of a recorded run are in docs/RELIABILITY.md.
//!
//! ```sh
//! cargo build --release -p zrq-module
//! ZRQ_MODULE=$PWD/target/release/libzrq.so ZRQ_SOAK_SECS=1200 \
//!     cargo test --release -p zrq-chaos --test soak -- --ignored --nocapture
//! ```
// Test code fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use zrq_chaos::ChaosArgs;
use zrq_tests::audit::assert_consistent;
use zrq_tests::{Backend, Options, Rng};

const Q: &str = "soak";
/// The producer tops the queue up to this many unfinished jobs.
const BACKLOG: i64 = 20_000;
const BATCH: usize = 2_000;
const SAMPLE_EVERY: Duration = Duration::from_secs(30);

/// Resident memory of process `pid` in KiB (`VmRSS`).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Jobs not finished yet (finished ones leave their indexes with their retention, so the totals
/// would not tell).
fn unfinished(conn: &mut zrq_tests::redis::Connection) -> i64 {
    ["waiting", "scheduled", "pending", "active", "retrying"]
        .iter()
        .map(|s| info(conn, Q, s))
        .sum()
}

/// A batch of jobs: one in five fails once, one in ten is delayed up to 2 s.
fn batch(rng: &mut Rng, first: u64) -> Vec<Planned> {
    (first..first + BATCH as u64)
        .map(|n| {
            let mut options: Vec<String> =
                ["RETRIES", "3", "BACKOFF", "20"].map(String::from).into();
            if rng.below(10) == 0 {
                options.extend(["DELAY".to_string(), rng.below(2000).to_string()]);
            }
            Planned {
                id: format!("s{n}"),
                args: ChaosArgs {
                    fail_first: i64::from(rng.below(5) == 0),
                    work_ms: 0,
                },
                options,
            }
        })
        .collect()
}

#[test]
#[ignore = "a soak of many minutes, run by hand (see docs/RELIABILITY.md)"]
fn soak_memory_stays_flat() {
    let secs: u64 = std::env::var("ZRQ_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    // Short retention, so finished jobs leave and memory can stay flat.
    let server = Backend::Module.server_with(Options {
        config: vec![("zrq.keep-ms".into(), "5000".into())],
        ..Options::default()
    });
    let mut conn = server.conn();
    let mut workers = Workers::start(Target::Url(server.url()), &[Q], 2, 64, 16);
    let mut rng = Rng::new(5);
    let started = Instant::now();
    let mut next_sample = started;
    let mut enqueued = 0u64;
    let mut samples = Vec::new();
    eprintln!("elapsed_s enqueued completed failed redis_used_kib redis_rss_kib worker_rss_kib");
    while started.elapsed() < Duration::from_secs(secs) {
        if unfinished(&mut conn) < BACKLOG {
            enqueue_all(&mut conn, Q, &batch(&mut rng, enqueued));
            enqueued += BATCH as u64;
        } else {
            std::thread::sleep(Duration::from_millis(50));
        }
        if Instant::now() >= next_sample {
            next_sample += SAMPLE_EVERY;
            let used: u64 = zrq_tests::redis::cmd("MEMORY")
                .arg("STATS")
                .query::<std::collections::BTreeMap<String, zrq_tests::redis::Value>>(&mut conn)
                .ok()
                .and_then(|m| match m.get("total.allocated") {
                    Some(zrq_tests::redis::Value::Int(n)) => Some(*n as u64 / 1024),
                    _ => None,
                })
                .unwrap_or(0);
            let sample = (
                started.elapsed().as_secs(),
                info(&mut conn, Q, "total_enqueued"),
                info(&mut conn, Q, "total_completed"),
                info(&mut conn, Q, "total_failed"),
                used,
                rss_kib(server.pid().unwrap()),
                workers
                    .running
                    .iter()
                    .map(|(c, _)| rss_kib(c.id()).to_string())
                    .collect::<Vec<_>>()
                    .join("/"),
            );
            eprintln!("{sample:?}");
            samples.push(sample);
        }
    }
    wait_until("the backlog drains", Duration::from_secs(120), || {
        unfinished(&mut conn) == 0
    });
    workers.stop_all();
    let report = assert_consistent(&mut conn, Backend::Module, Q, None);
    assert_eq!(
        report.info("total_completed"),
        report.info("total_enqueued")
    );
    assert_eq!(report.info("total_dead"), 0);
    eprintln!(
        "soak: {} jobs in {:?}, {} failed attempts retried",
        report.info("total_completed"),
        started.elapsed(),
        report.info("total_failed")
    );
    // Flat: the last sample's allocation is within twice the largest of the first three.
    assert!(samples.len() > 3, "too short a soak to judge memory");
    let early = samples[..3].iter().map(|s| s.4).max().unwrap_or(0);
    let last = samples.last().map_or(0, |s| s.4);
    assert!(last <= 2 * early.max(1), "Redis memory grew: {samples:?}");
}

//! Persistence of the lifecycle (module, append-only file): scheduled and retrying jobs, recurring
//! schedules, dead and finished jobs, the pause flag and UNIQUE keys survive a restart (SHUTDOWN)
//! and a crash (SIGKILL), and the timer goes on firing afterwards.

use crate::support;

use std::thread;
use std::time::Duration;

use lifecycle_support::{info_int, int, now_ms, ok, show, stable_snapshot, wait_until};
use support::expire_times;
use support::lifecycle as lifecycle_support;
use zrq_tests::redis;
use zrq_tests::{Backend, Options, Server};

const Q: &str = "pq";

fn aof_server() -> Server {
    Backend::Module.server_with(Options {
        appendonly: true,
        ..Options::default()
    })
}

/// Sets up one of everything, restarts with `restart`, and checks that nothing was lost and the
/// timer still fires.
fn survives(restart: impl FnOnce(&mut Server)) {
    let mut server = aof_server();
    let mut zrq = server.zrq(Backend::Module);
    let t0 = now_ms();
    let delayed = zrq.enqueue(Q, "t", r#"{"d":1}"#, &["DELAY", "2500"]);
    let at = zrq.enqueue(Q, "t", r#"{"d":2}"#, &["AT", &(t0 + 3000).to_string()]);
    let retry = zrq.enqueue(Q, "t", r#"{"r":1}"#, &["RETRIES", "1", "PRIORITY", "9"]);
    assert_eq!(zrq.fetch(Q, "w", 1)[0]["id"], retry);
    assert_eq!(
        show(&ok(&mut zrq, "fail", &[Q, &retry, "e", "RETRYIN", "2500"])),
        "retrying"
    );
    let first_tick = int(
        &mut zrq,
        "schedule",
        &[Q, "s", "EVERY", "2500", "tick", "{}"],
    );
    int(
        &mut zrq,
        "schedule",
        &[Q, "nightly", "CRON", "0 3 * * *", "n", "{}"],
    );
    let dead = zrq.enqueue(Q, "t", "{}", &["RETRIES", "0", "PRIORITY", "9"]);
    zrq.fetch(Q, "w", 1);
    ok(&mut zrq, "fail", &[Q, &dead, "gone"]);
    let done = zrq.enqueue(Q, "t", "{}", &["KEEP", "600000", "PRIORITY", "9"]);
    zrq.fetch(Q, "w", 1);
    ok(&mut zrq, "ack", &[Q, &done, "RESULT", "[7]"]);
    let held = zrq.enqueue(Q, "t", "{}", &["UNIQUE", "k"]);
    zrq.enqueue("paused", "t", "{}", &[]);
    ok(&mut zrq, "pause", &["paused"]);
    drop(zrq);

    let before = stable_snapshot(&server);
    let expires = expire_times(&server);
    restart(&mut server);
    assert!(
        now_ms() < t0 + 2000,
        "restarted before anything was due ({} ms)",
        now_ms() - t0
    );
    assert_eq!(stable_snapshot(&server), before, "the keyspace survived");
    assert_eq!(
        expire_times(&server),
        expires,
        "retention deadlines survived"
    );

    let mut zrq = server.zrq(Backend::Module);
    assert_eq!(zrq.state(Q, &delayed).as_deref(), Some("scheduled"));
    assert_eq!(zrq.state(Q, &retry).as_deref(), Some("retrying"));
    assert_eq!(zrq.state(Q, &dead).as_deref(), Some("dead"));
    let result = zrq_tests::map(ok(&mut zrq, "result", &[Q, &done]));
    assert_eq!(result["result"], "[7]");
    assert_eq!(
        zrq.enqueue(Q, "t", "{}", &["UNIQUE", "k"]),
        held,
        "UNIQUE key held"
    );
    assert!(zrq.fetch("paused", "w", 1).is_empty(), "still paused");
    assert_eq!(info_int(&mut zrq, "paused", "paused"), 1);

    // The timer fires after the restart: promotions at their due times, ticks on their grid.
    wait_until(
        Duration::from_secs(10),
        "promotions after the restart",
        || {
            [&delayed, &at, &retry]
                .iter()
                .all(|id| zrq.state(Q, id).as_deref() == Some("pending"))
        },
    );
    assert!(now_ms() >= t0 + 3000, "not before AT");
    wait_until(
        Duration::from_secs(10),
        "two ticks after the restart",
        || info_int(&mut zrq, Q, "total_enqueued") >= 6 + 2,
    );
    let got = zrq.fetch(Q, "w", 10);
    let mut ids: Vec<&str> = got.iter().map(|j| j["id"].as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), got.len(), "each delivered once");
    let ticks: Vec<i64> = got
        .iter()
        .filter(|j| j["task"] == "tick")
        .map(|j| j["created_at"].parse().unwrap())
        .collect();
    assert!(ticks.len() >= 2, "{got:?}");
    for created in &ticks {
        assert!(*created >= first_tick, "tick before its time");
    }
    assert_ne!(
        (ticks[0] - first_tick) / 2500,
        (ticks[1] - first_tick) / 2500,
        "two ticks"
    );
    let retried = got.iter().find(|j| j["id"] == retry).expect("the retry");
    assert_eq!(retried["attempt"], "2");
    assert_eq!(int(&mut zrq, "unschedule", &[Q, "s"]), 1);
}

#[test]
fn lifecycle_state_survives_a_restart_and_the_timer_goes_on() {
    survives(Server::restart);
}

#[test]
fn lifecycle_state_survives_a_crash_and_the_timer_goes_on() {
    survives(Server::crash_and_restart);
}

#[test]
fn jobs_due_while_the_server_was_down_are_promoted_at_start() {
    let server = aof_server();
    let mut zrq = server.zrq(Backend::Module);
    let delayed = zrq.enqueue(Q, "t", "{}", &["DELAY", "200"]);
    let retry = zrq.enqueue(Q, "t", "{}", &["RETRIES", "1", "PRIORITY", "9"]);
    zrq.fetch(Q, "w", 1);
    ok(&mut zrq, "fail", &[Q, &retry, "e", "RETRYIN", "200"]);
    // Keep the process stopped past the due times, then kill it and start from the AOF.
    let pid = process_id(&server);
    drop(zrq);
    signal(&pid, "STOP");
    thread::sleep(Duration::from_millis(800));
    let mut server = server;
    server.crash_and_restart();
    let up = now_ms();
    let mut zrq = server.zrq(Backend::Module);
    wait_until(Duration::from_secs(5), "promotion at start", || {
        zrq.state(Q, &delayed).as_deref() == Some("pending")
            && zrq.state(Q, &retry).as_deref() == Some("pending")
    });
    let late = now_ms() - up;
    assert!(
        late < 2500,
        "promoted {late} ms after the start (sweep every second)"
    );
    let got = zrq.fetch(Q, "w", 10);
    assert_eq!(got.len(), 2, "each once: {got:?}");
    assert_eq!(info_int(&mut zrq, Q, "scheduled"), 0);
    assert_eq!(info_int(&mut zrq, Q, "retrying"), 0);
}

/// The server's process id (INFO server).
fn process_id(server: &Server) -> String {
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query(&mut server.conn())
        .expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .map(|v| v.trim().to_string())
        .expect("process_id")
}

fn signal(pid: &str, sig: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid)
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{sig} {pid}");
}

#[test]
fn retention_still_trims_the_indexes_after_a_restart() {
    // Finished jobs whose retention ends after a restart must still leave the completed and
    // cancelled indexes (not only their records, which expire by TTL). KEEP is longer than the
    // restart plus the first timer pass (at most 1 s), so that pass cannot trim them itself.
    let mut server = aof_server();
    let mut zrq = server.zrq(Backend::Module);
    let done = zrq.enqueue(Q, "t", "{}", &["KEEP", "3000"]);
    zrq.fetch(Q, "w", 1);
    assert_eq!(int(&mut zrq, "ack", &[Q, &done]), 1);
    let gone = zrq.enqueue(Q, "t", "{}", &["KEEP", "3000"]);
    assert_eq!(int(&mut zrq, "cancel", &[Q, &gone]), 1);
    drop(zrq);
    server.restart();
    let mut zrq = server.zrq(Backend::Module);
    assert_eq!(info_int(&mut zrq, Q, "completed"), 1);
    wait_until(Duration::from_secs(5), "the records expire", || {
        zrq.state(Q, &done).is_none() && zrq.state(Q, &gone).is_none()
    });
    let mut conn = server.conn();
    let mut sizes = (0, 0);
    let waited = std::time::Instant::now();
    while waited.elapsed() < Duration::from_secs(5) {
        sizes = redis::pipe()
            .cmd("ZCARD")
            .arg(format!("zrq:{{{Q}}}:completed"))
            .cmd("ZCARD")
            .arg(format!("zrq:{{{Q}}}:cancelled"))
            .query(&mut conn)
            .expect("ZCARD");
        if sizes == (0, 0) {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        sizes,
        (0, 0),
        "(completed, cancelled) index entries left 5 s after their retention ended; \
         ZRQ.INFO still counts them: completed={} cancelled={}",
        info_int(&mut zrq, Q, "completed"),
        info_int(&mut zrq, Q, "cancelled")
    );
}

#[test]
fn debug_reload_and_flushall_leave_the_timer_working() {
    let server = Backend::Module.server_with(Options::default().fast_schedules());
    let mut zrq = server.zrq(Backend::Module);
    let delayed = zrq.enqueue(Q, "t", "{}", &["DELAY", "400"]);
    int(
        &mut zrq,
        "schedule",
        &[Q, "s", "EVERY", "300", "tick", "{}"],
    );
    let before = stable_snapshot(&server);
    let _: () = redis::cmd("DEBUG")
        .arg("RELOAD")
        .query(&mut server.conn())
        .expect("DEBUG RELOAD");
    let after = stable_snapshot(&server);
    let same = before.iter().filter(|e| after.contains(e)).count();
    assert!(
        same + 2 >= before.len(),
        "the reload kept the data (a tick may have fired)"
    );
    wait_until(
        Duration::from_secs(5),
        "promotion after DEBUG RELOAD",
        || zrq.state(Q, &delayed).as_deref() == Some("pending"),
    );
    wait_until(Duration::from_secs(5), "ticks after DEBUG RELOAD", || {
        info_int(&mut zrq, Q, "total_enqueued") >= 3
    });
    // Everything gone at once: the timer's plan points at nothing, and must shrug it off.
    let _: () = redis::cmd("FLUSHALL")
        .query(&mut server.conn())
        .expect("FLUSHALL");
    thread::sleep(Duration::from_millis(1500));
    let id = zrq.enqueue(Q, "t", "{}", &["DELAY", "100"]);
    wait_until(Duration::from_secs(5), "promotion after FLUSHALL", || {
        zrq.state(Q, &id).as_deref() == Some("pending")
    });
    assert_eq!(
        info_int(&mut zrq, Q, "total_enqueued"),
        1,
        "no tick of the flushed schedule"
    );
    assert!(!server.log().contains("panic"), "{}", server.log());
}

//! Persistence: with `appendonly yes`, jobs in every state survive a clean restart, a crash
//! (SIGKILL, `appendfsync always`), `DEBUG RELOAD` and `DEBUG LOADAOF`, and the queue keeps
//! working afterwards.

use crate::support;

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use support::{job_ids, record, stream_state};
use zrq_tests::redis::{self, Value};
use zrq_tests::{conformance, jobs, Backend, Options, Server};

const Q: &str = "pq";

fn server(backend: Backend) -> Server {
    // The workload's short leases are taken over by RECLAIM on both backends, before and after
    // a restart: the module's timer leaves them alone.
    let config = match backend {
        Backend::Module => vec![("zrq.expire-leases".into(), "no".into())],
        Backend::Lua => Vec::new(),
    };
    backend.server_with(Options {
        appendonly: true,
        config,
        ..Options::default()
    })
}

/// Jobs in every state; returns job → expected state (`queue/id` for the second queue).
fn workload(server: &Server, backend: Backend) -> BTreeMap<String, &'static str> {
    let mut zrq = server.zrq(backend);
    let running = zrq.enqueue(Q, "t", "{}", &["ID", "running"]);
    let done = zrq.enqueue(Q, "t", "{}", &["ID", "done"]);
    let retried = zrq.enqueue(
        Q,
        "t",
        "{}",
        &["ID", "retried", "RETRIES", "2", "TIMEOUT", "30"],
    );
    let dead = zrq.enqueue(
        Q,
        "t",
        "{}",
        &["ID", "dead", "RETRIES", "0", "TIMEOUT", "30"],
    );
    let generated = zrq.enqueue(Q, "t", "[1,2,3]", &[]);
    assert_eq!(zrq.fetch(Q, "w1", 10).len(), 5);
    let acked: i64 = zrq
        .call("ack", &[Q, &done, "RESULT", "{\"answer\":42}"])
        .expect("ACK");
    assert_eq!(acked, 1);
    thread::sleep(Duration::from_millis(60));
    let reclaimed = jobs(zrq.call("reclaim", &[Q, "w2"]).expect("RECLAIM"));
    let ids: Vec<&str> = reclaimed.iter().map(|j| j["id"].as_str()).collect();
    assert_eq!(
        ids,
        [retried.as_str()],
        "only the short lease with retries left"
    );

    let mut want = BTreeMap::new();
    for id in [running, retried, generated] {
        want.insert(id, "active");
    }
    want.insert(done, "completed");
    want.insert(dead, "dead");
    for i in 0..3 {
        want.insert(
            zrq.enqueue(Q, "t", &format!("{{\"p\":{i}}}"), &[]),
            "pending",
        );
    }
    want.insert(zrq.enqueue(Q, "t", "{}", &["ID", "p-given"]), "pending");
    if backend == Backend::Module {
        blocked_fetch_served_later(server, &mut want);
    }
    want
}

/// A FETCH that blocks on an empty queue and is served by a later ENQUEUE.
fn blocked_fetch_served_later(server: &Server, want: &mut BTreeMap<String, &'static str>) {
    const B: &str = "pq-blocked";
    let mut conn = server.conn();
    let (tx, rx) = mpsc::channel();
    let waiter = thread::spawn(move || {
        let reply: Value = redis::cmd("ZRQ.FETCH")
            .arg(B)
            .arg("sleeper")
            .arg("BLOCK")
            .arg(0)
            .query(&mut conn)
            .expect("blocked FETCH");
        let _ = tx.send(jobs(reply));
    });
    server.wait_for(|conn| {
        let list: String = redis::cmd("CLIENT")
            .arg("LIST")
            .query(conn)
            .unwrap_or_default();
        list.contains(" flags=b ") && list.contains("cmd=zrq.fetch")
    });
    let mut zrq = server.zrq(Backend::Module);
    let id = zrq.enqueue(B, "t", "{}", &["ID", "woken"]);
    let served = rx.recv_timeout(Duration::from_secs(10)).expect("served");
    waiter.join().expect("waiter");
    assert_eq!(served.len(), 1);
    assert_eq!(served[0]["id"], id);
    want.insert(format!("{B}/{id}"), "active");
}

/// Everything that must survive: every key's value (streams compared structurally: a replayed
/// AOF re-stamps consumers' seen times), the digest, and every job's record and state.
#[derive(Debug)]
struct Saved {
    digest: String,
    plain_keys: Vec<(String, Vec<u8>)>,
    streams: Vec<Vec<String>>,
    records: Vec<BTreeMap<String, String>>,
    states: BTreeMap<String, Option<String>>,
}

fn save(server: &Server, backend: Backend, want: &BTreeMap<String, &'static str>) -> Saved {
    let mut conn = server.conn();
    let mut zrq = server.zrq(backend);
    let queues = [Q, "pq-blocked"];
    let states = want
        .keys()
        .map(|key| {
            let (queue, id) = key.split_once('/').unwrap_or((Q, key));
            (key.clone(), zrq.state(queue, id))
        })
        .collect();
    Saved {
        digest: server.digest(),
        plain_keys: server
            .snapshot()
            .into_iter()
            .filter(|(key, _)| !key.ends_with(":stream"))
            .collect(),
        streams: queues.iter().map(|q| stream_state(&mut conn, q)).collect(),
        records: queues
            .iter()
            .flat_map(|q| {
                job_ids(&mut conn, q)
                    .into_iter()
                    .map(|id| record(&mut conn, q, &id))
                    .collect::<Vec<_>>()
            })
            .collect(),
        states,
    }
}

/// Asserts nothing changed, naming what did.
fn assert_same(before: &Saved, after: &Saved) {
    let changed_keys: Vec<&String> = before
        .plain_keys
        .iter()
        .filter(|entry| !after.plain_keys.contains(entry))
        .chain(
            after
                .plain_keys
                .iter()
                .filter(|entry| !before.plain_keys.contains(entry)),
        )
        .map(|(key, _)| key)
        .collect();
    assert!(changed_keys.is_empty(), "keys changed: {changed_keys:?}");
    for (b, a) in before.streams.iter().zip(&after.streams) {
        let lost: Vec<&String> = b.iter().filter(|l| !a.contains(l)).collect();
        let new: Vec<&String> = a.iter().filter(|l| !b.contains(l)).collect();
        assert!(
            lost.is_empty() && new.is_empty(),
            "stream changed: before {lost:#?}\nafter {new:#?}"
        );
    }
    assert_eq!(before.records, after.records, "job records changed");
    assert_eq!(before.states, after.states, "job states changed");
    assert_eq!(before.digest, after.digest, "DEBUG DIGEST changed");
}

fn check_states(saved: &Saved, want: &BTreeMap<String, &'static str>) {
    for (id, state) in want {
        assert_eq!(
            saved.states[id].as_deref(),
            Some(*state),
            "job {id} before the restart"
        );
    }
}

/// The queue still works after a reload: pending jobs are fetched, active ones complete, leases
/// kept their deadlines.
fn still_works(server: &Server, backend: Backend, want: &BTreeMap<String, &'static str>) {
    let mut zrq = server.zrq(backend);
    let pending = want.values().filter(|s| **s == "pending").count();
    let fetched = zrq.fetch(Q, "after", 100);
    assert_eq!(fetched.len(), pending, "pending jobs after the reload");
    for job in &fetched {
        assert_eq!(job["attempt"], "1");
    }
    for (id, state) in want {
        if *state == "active" && !id.contains('/') {
            let acked: i64 = zrq.call("ack", &[Q, id]).expect("ACK");
            assert_eq!(acked, 1, "{id}");
        }
    }
    let acked: i64 = zrq.call("ack", &[Q, "dead"]).expect("ACK");
    assert_eq!(acked, 0, "a dead job stays dead");
    let id = zrq.enqueue(Q, "t", "{}", &[]);
    assert_eq!(zrq.state(Q, &id).as_deref(), Some("pending"));
}

fn survives(backend: Backend, reload: impl FnOnce(&mut Server)) {
    let mut server = server(backend);
    let want = workload(&server, backend);
    let before = save(&server, backend, &want);
    check_states(&before, &want);
    reload(&mut server);
    let after = save(&server, backend, &want);
    assert_same(&before, &after);
    still_works(&server, backend, &want);
}

fn jobs_survive_a_clean_restart(backend: Backend) {
    survives(backend, Server::restart);
}

fn jobs_survive_a_crash(backend: Backend) {
    survives(backend, Server::crash_and_restart);
}

fn jobs_survive_debug_reload(backend: Backend) {
    survives(backend, |server| {
        // RDB round trip: even the streams' bytes are identical.
        let before = server.snapshot();
        let _: Value = redis::cmd("DEBUG")
            .arg("RELOAD")
            .query(&mut server.conn())
            .expect("DEBUG RELOAD");
        assert_eq!(server.snapshot(), before);
    });
}

fn jobs_survive_an_aof_replay(backend: Backend) {
    survives(backend, |server| {
        let _: Value = redis::cmd("DEBUG")
            .arg("LOADAOF")
            .query(&mut server.conn())
            .expect("DEBUG LOADAOF");
    });
}

/// Changes since the last save, as `INFO persistence` counts them: what RDB save points
/// (`save <seconds> <changes>`) fire on.
fn changes_since_save(server: &Server) -> i64 {
    let info: String = redis::cmd("INFO")
        .arg("persistence")
        .query(&mut server.conn())
        .expect("INFO persistence");
    info.lines()
        .find_map(|line| line.strip_prefix("rdb_changes_since_last_save:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("rdb_changes_since_last_save")
}

/// Each step of a job's life counts as a change toward RDB save points, as the commands it stands
/// for would: a queue whose writes counted nothing would never be saved by `save <seconds>
/// <changes>` (Debian's default configuration persists only that way). Redis counts the changes
/// its own commands make; the module's direct writes (key API, replicated by hand) must count
/// too, and this holds both backends to it.
fn every_step_counts_toward_rdb_save_points(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let _: Value = redis::cmd("SAVE").query(&mut server.conn()).expect("SAVE");
    let mut last = changes_since_save(&server);
    let mut counted = |step: &str| {
        let now = changes_since_save(&server);
        assert!(
            now > last,
            "{step} counted no change ({last} before, {now} after)"
        );
        last = now;
    };
    let plain = zrq.enqueue(Q, "t", "{}", &[]);
    counted("ENQUEUE");
    let later = zrq.enqueue(Q, "t", "{}", &["DELAY", "600000"]);
    counted("ENQUEUE DELAY");
    let failing = zrq.enqueue(Q, "t", "{}", &["RETRIES", "0"]);
    counted("ENQUEUE RETRIES");
    assert_eq!(zrq.fetch(Q, "w", 10).len(), 2);
    counted("FETCH");
    let touched: i64 = zrq
        .call("touch", &[Q, &plain, "PROGRESS", "5"])
        .expect("TOUCH");
    assert_eq!(touched, 1);
    counted("TOUCH");
    let acked: i64 = zrq.call("ack", &[Q, &plain, "RESULT", "1"]).expect("ACK");
    assert_eq!(acked, 1);
    counted("ACK");
    let failed: String = zrq.call("fail", &[Q, &failing, "boom"]).expect("FAIL");
    assert_eq!(failed, "dead");
    counted("FAIL");
    let cancelled: i64 = zrq.call("cancel", &[Q, &later]).expect("CANCEL");
    assert_eq!(cancelled, 1);
    counted("CANCEL");
}

conformance!(
    every_step_counts_toward_rdb_save_points,
    jobs_survive_a_clean_restart,
    jobs_survive_a_crash,
    jobs_survive_debug_reload,
    jobs_survive_an_aof_replay,
    job_records_reach_the_aof_as_one_set_per_step,
);

/// The commands of the AOF's incremental file, in order.
fn aof_commands(server: &Server) -> Vec<Vec<String>> {
    let dir = server.dir().join("appendonlydir");
    let mut commands = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("appendonlydir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".incr.aof"))
        .collect();
    files.sort();
    for file in files {
        let bytes = std::fs::read(&file).expect("read AOF");
        let mut rest = &bytes[..];
        let line = |rest: &mut &[u8]| -> String {
            let end = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("CRLF in AOF");
            let text = String::from_utf8_lossy(&rest[..end]).into_owned();
            *rest = &rest[end + 2..];
            text
        };
        while !rest.is_empty() {
            let header = line(&mut rest);
            let n: usize = header
                .strip_prefix('*')
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("AOF: expected an array, got {header:?}"));
            let mut command = Vec::with_capacity(n);
            for _ in 0..n {
                let len: usize = line(&mut rest)
                    .strip_prefix('$')
                    .and_then(|n| n.parse().ok())
                    .expect("AOF: bulk length");
                command.push(String::from_utf8_lossy(&rest[..len]).into_owned());
                rest = &rest[len + 2..];
            }
            commands.push(command);
        }
    }
    commands
}

/// Writes that reached the AOF outside MULTI/EXEC. Every zrq command that writes makes several
/// writes, so each must be one transaction: a crash that truncates the AOF (or a replica that gets
/// part of the stream) may then lose a command, but never apply half of one.
fn writes_outside_transactions(commands: &[Vec<String>]) -> Vec<String> {
    let mut inside = false;
    let mut outside = Vec::new();
    for command in commands {
        match command[0].to_uppercase().as_str() {
            "MULTI" => inside = true,
            "EXEC" => inside = false,
            "SELECT" => {}
            _ if !inside => outside.push(command.join(" ")),
            _ => {}
        }
    }
    outside
}

/// The MULTI block (its index) each command is in, or None outside any.
fn transaction_of(
    commands: &[Vec<String>],
    pick: impl Fn(&[String]) -> bool,
) -> Vec<Option<usize>> {
    let mut block = None;
    let mut blocks = 0;
    let mut found = Vec::new();
    for command in commands {
        match command[0].to_uppercase().as_str() {
            "MULTI" => {
                blocks += 1;
                block = Some(blocks);
            }
            "EXEC" => block = None,
            _ if pick(command) => found.push(block),
            _ => {}
        }
    }
    found
}

/// Asserts the writes that hand a job to `consumer` are all in one MULTI/EXEC block: the SET of
/// the job's packed record, active and naming the consumer, and the one write `companion` (a command name and its first
/// argument after the key, or `""`) the same step made: FETCH's XTRIM of what it delivered,
/// RECLAIM's HINCRBY of the failed count.
fn assert_delivery_is_one_transaction(
    commands: &[Vec<String>],
    consumer: &str,
    companion: (&str, &str),
) {
    let has = |c: &[String], word: &str| c.iter().any(|a| a == word);
    let (name, first) = companion;
    let blocks: Vec<Option<usize>> = [
        transaction_of(commands, |c| {
            c[0].eq_ignore_ascii_case(name) && (first.is_empty() || has(c, first))
        }),
        transaction_of(commands, |c| {
            c[0].eq_ignore_ascii_case("SET") && c.len() > 2 && c[1].contains(":job:") && {
                let record = support::decode_record(&c[1], c[2].as_bytes());
                record.get("state").map(String::as_str) == Some("active")
                    && record.get("consumer").map(String::as_str) == Some(consumer)
            }
        }),
    ]
    .concat();
    assert_eq!(
        blocks.len(),
        2,
        "one {name} and one SET of a record naming {consumer}: {commands:?}"
    );
    assert!(
        blocks[0].is_some() && blocks.iter().all(|b| *b == blocks[0]),
        "the delivery to {consumer} is split across transactions {blocks:?}: {commands:?}"
    );
}

#[test]
fn each_command_reaches_the_aof_as_one_transaction() {
    let server = server(Backend::Module);
    let mut zrq = server.zrq(Backend::Module);
    let id = zrq.enqueue(Q, "t", "{}", &["RETRIES", "1", "TIMEOUT", "30"]);
    zrq.enqueue(Q, "t", "{}", &["ID", "second"]);
    assert_eq!(zrq.fetch(Q, "w", 1).len(), 1);
    thread::sleep(Duration::from_millis(60));
    assert_eq!(
        jobs(zrq.call("reclaim", &[Q, "w2"]).expect("RECLAIM")).len(),
        1
    );
    let acked: i64 = zrq.call("ack", &[Q, &id, "RESULT", "1"]).expect("ACK");
    assert_eq!(acked, 1);
    let commands = aof_commands(&server);
    assert!(
        commands.iter().any(|c| c[0].eq_ignore_ascii_case("XTRIM")),
        "the AOF holds the FETCH: {commands:?}"
    );
    assert_eq!(writes_outside_transactions(&commands), Vec::<String>::new());
    assert_delivery_is_one_transaction(&commands, "w", ("XTRIM", ""));
    assert_delivery_is_one_transaction(&commands, "w2", ("HINCRBY", "failed"));
}

/// Job records reach the AOF as whole packed strings: a step writes a job's record with one
/// `SET` (never HSET, HDEL or an expiry command on a job key), `KEEPTTL` unless it finishes the
/// job with a retention, when the same SET carries it (`PX`, which the AOF holds as `PXAT`).
/// (PROTOCOL.md allows a second write of a job reached twice by one cascade of `AFTER`
/// children; this workload has no such cascade.)
fn job_records_reach_the_aof_as_one_set_per_step(backend: Backend) {
    let server = server(backend);
    let mut zrq = server.zrq(backend);
    let keep = ["KEEP", "60000"];
    let recorded = zrq.enqueue(Q, "t", "{}", &["ID", "j", "RETRIES", "1", keep[0], keep[1]]);
    let plain = zrq.enqueue(Q, "t", "{\"n\":2}", &keep);
    let child = zrq.enqueue(Q, "t", "{}", &["AFTER", &plain, "ID", "child"]);
    let doomed = zrq.enqueue(Q, "t", "{}", &["ID", "doomed", "RETRIES", "0"]);
    assert_eq!(zrq.fetch(Q, "w", 3).len(), 3);
    let touched: i64 = zrq
        .call("touch", &[Q, &recorded, "PROGRESS", "10"])
        .expect("TOUCH");
    assert_eq!(touched, 1);
    let state: String = zrq
        .call("fail", &[Q, &recorded, "boom", "RETRYIN", "600000"])
        .expect("FAIL");
    assert_eq!(state, "retrying");
    let cancelled: i64 = zrq.call("cancel", &[Q, &recorded]).expect("CANCEL");
    assert_eq!(cancelled, 1);
    let acked: i64 = zrq.call("ack", &[Q, &plain, "RESULT", "1"]).expect("ACK");
    assert_eq!(acked, 1, "and its child is released");
    let state: String = zrq.call("fail", &[Q, &doomed, "x"]).expect("FAIL");
    assert_eq!(state, "dead");
    assert_eq!(zrq.state(Q, &child).as_deref(), Some("pending"));

    let commands = aof_commands(&server);
    let mut sets = 0;
    let mut block: Vec<String> = Vec::new();
    for command in &commands {
        let name = command[0].to_uppercase();
        let key = command.get(1).map(String::as_str).unwrap_or("");
        if name == "MULTI" || name == "EXEC" {
            block.clear();
            continue;
        }
        if !key.contains(":job:") {
            continue;
        }
        assert_eq!(name, "SET", "a job record written by {command:?}");
        assert!(
            !block.iter().any(|k| k == key),
            "two SETs of {key} in one step: {commands:?}"
        );
        block.push(key.to_string());
        sets += 1;
        let record = support::decode_record(key, command[2].as_bytes());
        let finished_with_retention = matches!(
            record.get("state").map(String::as_str),
            Some("completed" | "cancelled")
        );
        let rest: Vec<&str> = command[3..].iter().map(String::as_str).collect();
        match rest.as_slice() {
            ["KEEPTTL"] => assert!(!finished_with_retention, "{command:?}: no retention"),
            ["PXAT", at] => {
                assert!(
                    finished_with_retention,
                    "{command:?}: a TTL on an unfinished job"
                );
                assert!(at.parse::<i64>().is_ok_and(|at| at > 0), "{command:?}");
            }
            _ => panic!("{command:?}: SET of a record with {rest:?}"),
        }
    }
    // FETCH ×3, TOUCH, FAIL, CANCEL, ACK, the release of the child, FAIL; and the records of
    // the jobs enqueued with ID or AFTER (the plain one has none until FETCH).
    assert!(sets >= 11, "{sets} SETs of job records: {commands:?}");
}

/// When a blocked FETCH is served by a later ENQUEUE, its retry runs in the blocked client's reply
/// callback, which on Redis 7.0 is not a command: writes made there directly would reach the AOF
/// one by one. The module runs the retry as a called command, so the step stays one MULTI/EXEC.
#[test]
fn a_served_blocked_fetch_reaches_the_aof_as_one_transaction() {
    let server = server(Backend::Module);
    let mut want = BTreeMap::new();
    blocked_fetch_served_later(&server, &mut want);
    let commands = aof_commands(&server);
    assert_delivery_is_one_transaction(&commands, "sleeper", ("XTRIM", ""));
    assert_eq!(writes_outside_transactions(&commands), Vec::<String>::new());
}

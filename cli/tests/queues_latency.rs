//! Listing queues never stalls the server (issue #11 section 4): on a server with 10^6 keys,
//! `Client::queues`, `zrq queues` and `zrq top` run while another client PINGs, and the PINGs
//! hardly notice. Before, one `ZRQ.QUEUES` scanned the whole keyspace in one command (317 ms at
//! 210k keys; about 1.6 s at 10^6 keys here), and every PING behind it waited that long.
//!
//! The keyspace: three queues with real jobs (enqueued with pipelined zrq commands) among 10^6
//! filler keys written by `DEBUG POPULATE` (real jobs that many would take minutes to enqueue in
//! a debug build). Which keys they are does not matter to SCAN: what a step costs is the keys it
//! examines. Bounds are generous (the machine is shared and loaded); the figures are printed.
// Test code fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use support::cli;
use tokio::io::{AsyncBufReadExt, BufReader};
use zrq::Client;
use zrq_tests::redis;
use zrq_tests::{Backend, Server};

const FILLER: usize = 1_000_000;
const QUEUES: [&str; 3] = ["alpha", "beta", "gamma"];
const JOBS_PER_QUEUE: usize = 500;

/// PINGs from another connection, every millisecond, until stopped: the round trip times.
struct Pinger {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<Duration>>,
}

impl Pinger {
    fn start(server: &Server) -> Pinger {
        let mut conn = server.conn();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut times = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                let sent = Instant::now();
                let _: String = redis::cmd("PING").query(&mut conn).expect("PING");
                times.push(sent.elapsed());
                std::thread::sleep(Duration::from_millis(1));
            }
            times
        });
        Pinger { stop, thread }
    }

    fn stop(self) -> Latency {
        self.stop.store(true, Ordering::Relaxed);
        Latency::of(self.thread.join().expect("pinger"))
    }
}

/// PING round trips: how many, percentiles and max (all printed; p90 and p99 asserted on).
#[derive(Debug)]
#[allow(dead_code)] // Read by Debug, for the figures the test prints.
struct Latency {
    pings: usize,
    p50: Duration,
    p90: Duration,
    p99: Duration,
    max: Duration,
}

impl Latency {
    fn of(mut times: Vec<Duration>) -> Latency {
        times.sort();
        assert!(times.len() >= 20, "too few PINGs: {}", times.len());
        let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
        Latency {
            pings: times.len(),
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            max: times[times.len() - 1],
        }
    }
}

fn info_field(server: &Server, section: &str, field: &str) -> Option<String> {
    let info: String = redis::cmd("INFO")
        .arg(section)
        .query(&mut server.conn())
        .expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")).map(str::to_string))
}

/// `calls` and `usec_per_call` of a command in INFO commandstats.
fn command_stats(server: &Server, command: &str) -> (u64, f64) {
    let line = info_field(server, "commandstats", &format!("cmdstat_{command}"))
        .unwrap_or_else(|| panic!("no stats for {command}"));
    let value = |name: &str| -> f64 {
        line.split(',')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {line}"))
    };
    (value("calls") as u64, value("usec_per_call"))
}

/// The server: the queues with real jobs, then 10^6 filler keys.
fn populate(backend: Backend) -> Server {
    let server = backend.server();
    let mut conn = server.conn();
    for queue in QUEUES {
        let mut pipe = redis::pipe();
        for n in 0..JOBS_PER_QUEUE {
            let payload = format!("{{\"n\":{n}}}");
            pipe.add_command(
                backend.command("enqueue", &[queue.as_bytes(), b"t", payload.as_bytes()]),
            )
            .ignore();
        }
        let _: () = pipe.query(&mut conn).expect("ENQUEUE");
    }
    let started = Instant::now();
    let _: () = redis::cmd("DEBUG")
        .arg("POPULATE")
        .arg(FILLER)
        .arg("filler")
        .arg(16)
        .query(&mut conn)
        .expect("DEBUG POPULATE");
    let keys: usize = redis::cmd("DBSIZE").query(&mut conn).expect("DBSIZE");
    assert!(keys > FILLER, "{keys} keys");
    eprintln!(
        "{backend:?}: {keys} keys, populated in {:?}",
        started.elapsed()
    );
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg(5000)
        .arg("slowlog-max-len")
        .arg(100_000)
        .query(&mut conn)
        .expect("CONFIG SET");
    let _: () = redis::cmd("SLOWLOG")
        .arg("RESET")
        .query(&mut conn)
        .expect("SLOWLOG");
    server
}

/// `zrq --json top` until a frame lists every queue; how long that took.
async fn top_until_listed(url: &str) -> Duration {
    let started = Instant::now();
    let mut child = tokio::process::Command::new(cli())
        .args(["--url", url, "--json", "top", "--interval", "500ms"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("zrq top");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let listed = tokio::time::timeout(Duration::from_secs(45), async {
        while let Some(line) = lines.next_line().await.expect("a frame") {
            let frame: serde_json::Value = serde_json::from_str(&line).expect("JSON frame");
            let names: Vec<&str> = frame
                .as_array()
                .expect("an array")
                .iter()
                .filter_map(|q| q["queue"].as_str())
                .collect();
            if names == QUEUES {
                let pending: Vec<i64> = frame
                    .as_array()
                    .expect("an array")
                    .iter()
                    .map(|q| q["fields"]["pending"].as_i64().expect("pending"))
                    .collect();
                assert_eq!(pending, [JOBS_PER_QUEUE as i64; 3]);
                return;
            }
        }
        panic!("zrq top ended");
    })
    .await;
    child.kill().await.expect("kill zrq top");
    listed.expect("zrq top lists every queue within 45 s");
    started.elapsed()
}

/// Lists the queues of `server` (its `backend`) while PINGing it and `control`, another server on
/// the same machine that nothing lists: both pingers see the same machine load in the same
/// window, so the difference between them is what the listing adds inside Redis.
async fn listing_does_not_stall_the_server(server: &Server, backend: Backend, control: &Server) {
    let url = server.url();
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut server.conn())
        .expect("CONFIG RESETSTAT");
    let _: () = redis::cmd("SLOWLOG")
        .arg("RESET")
        .query(&mut server.conn())
        .expect("SLOWLOG");
    let (pinger, control_pinger) = (Pinger::start(server), Pinger::start(control));
    // Client::queues, `zrq queues` and (module) `zrq top`, all at once.
    let started = Instant::now();
    let client = Client::connect(&url).await.expect("connect");
    let library = async {
        let t = Instant::now();
        let names = client.queues().await.expect("Client::queues");
        assert_eq!(names, QUEUES);
        t.elapsed()
    };
    let command = async {
        let t = Instant::now();
        let out = tokio::process::Command::new(cli())
            .args(["--url", &url, "--json", "queues"])
            .output()
            .await
            .expect("zrq queues");
        assert!(out.status.success(), "{out:?}");
        let infos: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        let names: Vec<&str> = infos
            .as_array()
            .expect("an array")
            .iter()
            .filter_map(|q| q["queue"].as_str())
            .collect();
        assert_eq!(names, QUEUES);
        t.elapsed()
    };
    let top = async {
        if backend == Backend::Module {
            Some(top_until_listed(&url).await)
        } else {
            None
        }
    };
    let (library, command, top) = tokio::join!(library, command, top);
    let (during, control) = (pinger.stop(), control_pinger.stop());
    let elapsed = started.elapsed();

    let (steps, usec_per_step) = match backend {
        Backend::Module => command_stats(server, "zrq.queues"),
        // Every FCALL since the reset is a QUEUES step, but the three INFOs of `zrq queues`.
        Backend::Lua => command_stats(server, "fcall"),
    };
    let slow: Vec<redis::Value> = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(100_000)
        .query(&mut server.conn())
        .expect("SLOWLOG");
    let mut slowest: Vec<(i64, String)> = slow
        .iter()
        .filter_map(|entry| match entry {
            redis::Value::Array(fields) => {
                let micros = match fields.get(2) {
                    Some(redis::Value::Int(n)) => *n,
                    _ => 0,
                };
                let command = match fields.get(3) {
                    Some(redis::Value::Array(args)) => args
                        .iter()
                        .take(2)
                        .filter_map(|a| match a {
                            redis::Value::BulkString(b) => {
                                Some(String::from_utf8_lossy(b).to_string())
                            }
                            _ => None,
                        })
                        .collect::<Vec<_>>()
                        .join(" "),
                    _ => String::new(),
                };
                Some((micros, command))
            }
            _ => None,
        })
        .collect();
    // The steps themselves (the module's inner SCAN is logged too).
    let slow_steps = slowest
        .iter()
        .filter(|(_, command)| command.starts_with("ZRQ.QUEUES") || command.starts_with("FCALL"))
        .count();
    slowest.sort();
    slowest.reverse();
    slowest.truncate(8);
    eprintln!("{backend:?}: slowest commands (us): {slowest:?}");
    eprintln!(
        "{backend:?}: {steps} QUEUES steps, {usec_per_step:.0} us per step on average, {} steps \
         over 5 ms; Client::queues {library:?}, zrq queues {command:?}, zrq top listed all after \
         {top:?}; all done in {elapsed:?}\n  PING of the listed server: {during:?}\n  PING of \
         another server meanwhile: {control:?}",
        slow_steps
    );
    // A listing is many steps, each bounded: about 0.3-0.5 ms here, where one unbounded QUEUES
    // took 1.6 s. 5 ms is what the issue allows any client to be delayed; half of it, for a
    // machine that gets busier.
    assert!(
        steps >= (FILLER / 250 / 2) as u64,
        "{steps} steps: a listing is many bounded steps"
    );
    assert!(usec_per_step < 2500.0, "{usec_per_step} us per step");
    // Over 5 ms only when the machine preempted Redis mid-step: 0.2-0.4 % of the steps at load 8
    // (an unbounded step would be every one of them).
    assert!(
        (slow_steps as u64) * 20 <= steps,
        "{slow_steps} of {steps} steps took over 5 ms"
    );
    // What other clients see, beside the same machine's other server in the same window: 9 PINGs
    // in 10 are delayed by less than 5 ms. The slowest 1% also wait for the machine's scheduler
    // (a busy redis-server is preempted mid-step on a loaded 2-core machine: 7 ms against 1 ms
    // measured at load 8), so they get a wider bound, which one unbounded QUEUES (1.6 s) or top
    // stalling the server every second would still break.
    assert!(
        during.p90 < control.p90 + Duration::from_millis(5),
        "PING p90 {:?} while listing, {:?} of the other server",
        during.p90,
        control.p90
    );
    assert!(
        during.p99 < control.p99 + Duration::from_millis(50),
        "PING p99 {:?} while listing, {:?} of the other server",
        during.p99,
        control.p99
    );
}

/// Both backends in turn, each the other's control.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_queues_does_not_stall_the_server() {
    let module = populate(Backend::Module);
    let lua = populate(Backend::Lua);
    listing_does_not_stall_the_server(&module, Backend::Module, &lua).await;
    listing_does_not_stall_the_server(&lua, Backend::Lua, &module).await;
}

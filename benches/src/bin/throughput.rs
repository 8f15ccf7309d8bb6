//! The throughput harness: one command measures zrq against raw Redis and between backends.
//!
//! ```text
//! cargo build --release -p zrq-module
//! cargo run --release -p zrq-benches --bin throughput -- [--json out.json] [--quick] [--aof]
//! ```
//!
//! It builds nothing itself: it expects `target/release/libzrq.so` (or `$ZRQ_MODULE`), starts its
//! own `redis-server` on a loopback port (persistence off unless `--aof`), loads the module and the
//! Lua library into it, and measures on that one server:
//! 1. enqueue throughput with 1, 16 and 128 commands in flight on one connection, for
//!    `ZRQ.ENQUEUE`, `FCALL zrq_enqueue` and raw `XADD`;
//! 2. end-to-end drain of N no-op jobs by the Rust worker (crate `zrq`) and by a raw
//!    fetch + pipelined ack loop, per backend, against plain streams drained the same way
//!    (`XREADGROUP` + `XACK` + a periodic `XTRIM MINID`, no zrq);
//! 3. latency from enqueue to handler start with an idle worker blocked in FETCH;
//! 4. Redis memory per queued job and per finished job kept;
//! 5. drain throughput with 1, 2 and 4 worker processes, and command throughput at queue depths
//!    10^3 to 10^6.
//!
//! `--quick` shrinks every N (a smoke run for CI). `--only a,b` runs some sections (`enqueue`,
//! `drain`, `latency`, `memory`, `workers`, `depth`). `--config name=value` passes server
//! configuration (e.g. `stream-node-max-entries=16`).

use std::error::Error;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use zrq_benches::resp::{encode, Conn, Value};
use zrq_benches::server::Server;
use zrq_benches::{Measure, Report};

type Res<T> = Result<T, Box<dyn Error>>;

/// A 20-byte JSON payload.
const PAYLOAD: &str = r#"{"p":"0123456789abcd"}"#;
const TASK: &str = "noop";
/// Commands in flight on one connection.
const IN_FLIGHT: [usize; 3] = [1, 16, 128];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Backend {
    Module,
    Lua,
    Xadd,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Module => "module",
            Backend::Lua => "lua",
            Backend::Xadd => "xadd",
        }
    }

    /// The command `name` for `queue` with `args`, as raw arguments.
    fn command<'a>(self, name: &str, queue: &'a str, args: &[&'a str]) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = match self {
            Backend::Module => vec![format!("ZRQ.{}", name.to_uppercase()).into_bytes()],
            Backend::Lua => vec![
                b"FCALL".to_vec(),
                format!("zrq_{name}").into_bytes(),
                b"1".to_vec(),
            ],
            Backend::Xadd => vec![b"XADD".to_vec()],
        };
        out.push(queue.as_bytes().to_vec());
        out.extend(args.iter().map(|a| a.as_bytes().to_vec()));
        out
    }

    fn enqueue(self, queue: &str, payload: &str) -> Vec<Vec<u8>> {
        match self {
            Backend::Xadd => self.command("", queue, &["*", "job", payload]),
            _ => self.command("enqueue", queue, &[TASK, payload]),
        }
    }

    fn client(self) -> zrq::Backend {
        match self {
            Backend::Lua => zrq::Backend::Lua,
            _ => zrq::Backend::Module,
        }
    }
}

fn encoded(cmd: &[Vec<u8>], times: usize) -> Vec<u8> {
    let args: Vec<&[u8]> = cmd.iter().map(Vec::as_slice).collect();
    let mut out = Vec::new();
    for _ in 0..times {
        encode(&mut out, &args);
    }
    out
}

struct Settings {
    quick: bool,
    aof: bool,
    json: Option<String>,
    only: Option<Vec<String>>,
    /// Extra server configuration (`--config name=value`).
    config: Vec<(String, String)>,
    /// Worker tuning for drains.
    concurrency: usize,
    batch: usize,
}

impl Settings {
    fn runs(&self, section: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|only| only.iter().any(|s| s == section))
    }
    fn n(&self, full: u64, quick: u64) -> u64 {
        if self.quick {
            quick
        } else {
            full
        }
    }
}

struct Run {
    server: Server,
    report: Report,
    settings: Settings,
}

impl Run {
    fn record(&mut self, m: Measure) {
        eprintln!(
            "  {:<14} {:<7} {:>8} {:>12.1} {}",
            m.bench, m.backend, m.param, m.value, m.unit
        );
        self.report.measures.push(m);
    }

    fn flush(&self) -> Res<()> {
        self.server.conn()?.cmd(&["FLUSHALL"])?;
        Ok(())
    }

    /// Sends `n` copies of `cmd` with `in_flight` outstanding; returns seconds.
    fn blast(&self, cmd: &[Vec<u8>], n: u64, in_flight: usize) -> Res<f64> {
        let mut conn = self.server.conn()?;
        let batch = encoded(cmd, in_flight);
        let rounds = n / in_flight as u64;
        let start = Instant::now();
        for _ in 0..rounds {
            conn.batch(&batch, in_flight)?;
        }
        Ok(start.elapsed().as_secs_f64())
    }

    fn enqueue_bench(&mut self) -> Res<()> {
        eprintln!("enqueue throughput (one connection, 20-byte payload)");
        for in_flight in IN_FLIGHT {
            let n = if in_flight == 1 {
                self.settings.n(20_000, 2_000)
            } else {
                self.settings.n(200_000, 20_000)
            };
            let n = n - n % in_flight as u64;
            for backend in [Backend::Xadd, Backend::Module, Backend::Lua] {
                self.flush()?;
                let secs = self.blast(&backend.enqueue("q", PAYLOAD), n, in_flight)?;
                self.record(Measure {
                    bench: "enqueue".into(),
                    backend: backend.name().into(),
                    param: in_flight as u64,
                    n,
                    seconds: secs,
                    value: n as f64 / secs,
                    unit: "ops/s".into(),
                    note: format!("{in_flight} in flight"),
                });
            }
        }
        Ok(())
    }

    /// Enqueues `n` jobs on `queue` fast (pipelined, 128 in flight).
    fn fill(&self, backend: Backend, queue: &str, n: u64, payload: &str) -> Res<()> {
        let mut conn = self.server.conn()?;
        let batch = encoded(&backend.enqueue(queue, payload), 128);
        let mut left = n;
        while left >= 128 {
            conn.batch(&batch, 128)?;
            left -= 128;
        }
        if left > 0 {
            let n = usize::try_from(left)?;
            conn.batch(&encoded(&backend.enqueue(queue, payload), n), n)?;
        }
        Ok(())
    }

    fn completed(&self, conn: &mut Conn, queue: &str) -> Res<u64> {
        let key = zrq_core::keys::QueueKeys::new(queue).stats();
        Ok(conn
            .cmd(&["HGET", &key, "completed"])?
            .int()
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0))
    }

    /// Fetches and acknowledges up to `limit` jobs of `queue` with a raw loop: each round trip
    /// carries the ACKs of the last batch and the next FETCH. Returns how many were acked.
    fn raw_drain(
        &self,
        backend: Backend,
        queue: &str,
        limit: u64,
        count: usize,
        result: Option<&str>,
    ) -> Res<u64> {
        let mut conn = self.server.conn()?;
        let fetch = |count: u64| {
            let count = count.to_string();
            encoded(
                &backend.command("fetch", queue, &["bench", "COUNT", &count]),
                1,
            )
        };
        let mut acked = 0u64;
        let mut ids: Vec<String> = Vec::new();
        loop {
            let mut out = Vec::new();
            for id in &ids {
                let mut args = vec![id.as_str()];
                if let Some(r) = result {
                    args.extend(["RESULT", r]);
                }
                let cmd = backend.command("ack", queue, &args);
                let raw: Vec<&[u8]> = cmd.iter().map(Vec::as_slice).collect();
                encode(&mut out, &raw);
            }
            let wanted = limit
                .saturating_sub(acked + ids.len() as u64)
                .min(count as u64);
            let fetching = wanted > 0;
            if fetching {
                out.extend_from_slice(&fetch(wanted));
            }
            conn.send(&out)?;
            conn.skip(ids.len())?;
            acked += ids.len() as u64;
            ids.clear();
            if !fetching {
                return Ok(acked);
            }
            let Value::Array(jobs) = conn.read()? else {
                return Err("FETCH did not reply with an array".into());
            };
            if jobs.is_empty() {
                return Ok(acked);
            }
            for job in jobs {
                if let Some(id) = job_id(&job) {
                    ids.push(id);
                }
            }
        }
    }

    /// The floor zrq's drain is measured against: plain Redis streams, no zrq. Each round trip
    /// carries one `XACK` of the last batch and the next `XREADGROUP … COUNT <count>`; every
    /// `TRIM_EVERY` entries an `XTRIM MINID` drops what was acknowledged (whole nodes, no per-entry
    /// `XDEL`). Drains the stream `queue`, filled with `XADD`; returns how many were acked.
    fn raw_stream_drain(&self, queue: &str, count: usize) -> Res<u64> {
        /// Entries acknowledged between two trims.
        const TRIM_EVERY: u64 = 1_024;
        let mut conn = self.server.conn()?;
        conn.cmd(&["XGROUP", "CREATE", queue, "g", "0"])?;
        let count = count.to_string();
        let read = [
            "XREADGROUP",
            "GROUP",
            "g",
            "bench",
            "COUNT",
            &count,
            "STREAMS",
            queue,
            ">",
        ];
        let (mut acked, mut since_trim) = (0u64, 0u64);
        let mut ids: Vec<Vec<u8>> = Vec::new();
        loop {
            let mut out = Vec::new();
            let mut replies = 0;
            if let Some(last) = ids.last() {
                let mut xack: Vec<&[u8]> = vec![b"XACK", queue.as_bytes(), b"g"];
                xack.extend(ids.iter().map(Vec::as_slice));
                encode(&mut out, &xack);
                replies += 1;
                acked += ids.len() as u64;
                since_trim += ids.len() as u64;
                if since_trim >= TRIM_EVERY {
                    // Everything up to `last` is acknowledged: entries from `last` on are kept.
                    encode(&mut out, &[b"XTRIM", queue.as_bytes(), b"MINID", last]);
                    replies += 1;
                    since_trim = 0;
                }
            }
            let args: Vec<&[u8]> = read.iter().map(|a| a.as_bytes()).collect();
            encode(&mut out, &args);
            conn.send(&out)?;
            conn.skip(replies)?;
            ids.clear();
            // [[stream, [[id, fields]…]]], or nil when nothing is left.
            let Value::Array(streams) = conn.read()? else {
                return Ok(acked);
            };
            let entries = match streams.into_iter().next() {
                Some(Value::Array(mut stream)) if stream.len() == 2 => stream.swap_remove(1),
                _ => return Err("XREADGROUP replied in an unexpected shape".into()),
            };
            let Value::Array(entries) = entries else {
                return Err("XREADGROUP replied without entries".into());
            };
            for entry in entries {
                if let Value::Array(entry) = entry {
                    if let Some(Value::Str(id)) = entry.into_iter().next() {
                        ids.push(id);
                    }
                }
            }
            if ids.is_empty() {
                return Ok(acked);
            }
        }
    }

    fn drain_bench(&mut self) -> Res<()> {
        let n = self.settings.n(100_000, 10_000);
        eprintln!("end-to-end drain of {n} no-op jobs");
        self.flush()?;
        self.fill(Backend::Xadd, "d", n, "{}")?;
        let start = Instant::now();
        let acked = self.raw_stream_drain("d", 128)?;
        let secs = start.elapsed().as_secs_f64();
        if acked != n {
            return Err(format!("the raw stream drain acknowledged {acked} of {n}").into());
        }
        self.record(Measure {
            bench: "drain_raw".into(),
            backend: Backend::Xadd.name().into(),
            param: 1,
            n: acked,
            seconds: secs,
            value: acked as f64 / secs,
            unit: "jobs/s".into(),
            note: "plain streams, no zrq: XREADGROUP COUNT 128 + XACK in one round trip, XTRIM MINID every 1,024".into(),
        });
        for backend in [Backend::Module, Backend::Lua] {
            self.flush()?;
            self.fill(backend, "d", n, "{}")?;
            let start = Instant::now();
            let acked = self.raw_drain(backend, "d", n, 128, None)?;
            let secs = start.elapsed().as_secs_f64();
            self.record(Measure {
                bench: "drain_raw".into(),
                backend: backend.name().into(),
                param: 1,
                n: acked,
                seconds: secs,
                value: acked as f64 / secs,
                unit: "jobs/s".into(),
                note: "raw loop: FETCH COUNT 128 + pipelined ACKs in one round trip".into(),
            });
            self.flush()?;
            self.fill(backend, "d", n, "{}")?;
            let secs = self.worker_drain(backend, "d", n)?;
            let note = format!(
                "Rust worker (crate zrq), concurrency {}, batch {}",
                self.settings.concurrency, self.settings.batch
            );
            self.record(Measure {
                bench: "drain".into(),
                backend: backend.name().into(),
                param: 1,
                n,
                seconds: secs,
                value: n as f64 / secs,
                unit: "jobs/s".into(),
                note,
            });
        }
        Ok(())
    }

    /// Drains `n` queued jobs with an in-process `zrq::Worker`; seconds until the queue's
    /// `completed` counter reached `n`.
    fn worker_drain(&self, backend: Backend, queue: &str, n: u64) -> Res<f64> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let url = self.server.url();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (concurrency, batch) = (self.settings.concurrency, self.settings.batch);
        let queue_name = queue.to_string();
        let handle = runtime.spawn(async move {
            let client = zrq::Client::connect(&url)
                .await?
                .with_backend(backend.client());
            zrq::Worker::new(client, &[queue_name.as_str()])
                .concurrency(concurrency)
                .batch(batch)
                .block(Duration::from_millis(200))
                .grace(Duration::from_secs(10))
                .handle_raw(TASK, |_: serde_json::Value, _| async { Ok(()) })
                .run_until(async {
                    let _ = rx.await;
                })
                .await
        });
        let start = Instant::now();
        let mut conn = self.server.conn()?;
        let deadline = start + Duration::from_secs(600);
        loop {
            if self.completed(&mut conn, queue)? >= n {
                break;
            }
            if Instant::now() > deadline {
                return Err("drain did not finish in 600 s".into());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let secs = start.elapsed().as_secs_f64();
        let _ = tx.send(());
        runtime.block_on(handle)??;
        Ok(secs)
    }

    fn latency_bench(&mut self) -> Res<()> {
        let n = self.settings.n(10_000, 1_000);
        let rate = 2_000.0;
        eprintln!("latency enqueue -> handler start, {n} jobs at {rate}/s, idle blocked worker");
        for backend in [Backend::Module, Backend::Lua] {
            self.flush()?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()?;
            let samples: Arc<Mutex<Vec<u64>>> = Arc::new(Mutex::new(Vec::new()));
            let url = self.server.url();
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let seen = samples.clone();
            let handle = runtime.spawn(async move {
                let client = zrq::Client::connect(&url)
                    .await?
                    .with_backend(backend.client());
                zrq::Worker::new(client, &["lat"])
                    .concurrency(64)
                    .batch(16)
                    .block(Duration::from_secs(1))
                    .handle_raw(TASK, move |args: serde_json::Value, _| {
                        let now = now_ns();
                        let sent = args.get("t").and_then(serde_json::Value::as_u64);
                        if let (Some(sent), Ok(mut seen)) = (sent, seen.lock()) {
                            seen.push(now.saturating_sub(sent));
                        }
                        async { Ok(()) }
                    })
                    .run_until(async {
                        let _ = rx.await;
                    })
                    .await
            });
            // Let the worker connect and block in FETCH.
            std::thread::sleep(Duration::from_millis(500));
            let mut conn = self.server.conn()?;
            let start = Instant::now();
            for i in 0..n {
                let due = start + Duration::from_secs_f64(i as f64 / rate);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let payload = format!("{{\"t\":{}}}", now_ns());
                let cmd = backend.enqueue("lat", &payload);
                let raw: Vec<&[u8]> = cmd.iter().map(Vec::as_slice).collect();
                conn.call(&raw)?;
            }
            let deadline = Instant::now() + Duration::from_secs(30);
            while samples.lock().map(|s| s.len() as u64).unwrap_or(n) < n
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = tx.send(());
            runtime.block_on(handle)??;
            let mut all = samples.lock().map(|s| s.clone()).unwrap_or_default();
            all.sort_unstable();
            if all.is_empty() {
                return Err("no latency samples".into());
            }
            let pct = |p: f64| all[((all.len() - 1) as f64 * p).round() as usize] as f64 / 1e3;
            for (name, value) in [("p50", pct(0.50)), ("p99", pct(0.99)), ("max", pct(1.0))] {
                self.record(Measure {
                    bench: format!("latency_{name}"),
                    backend: backend.name().into(),
                    param: 0,
                    n: all.len() as u64,
                    seconds: 0.0,
                    value,
                    unit: "us".into(),
                    note: format!("{rate}/s, unpipelined producer, worker blocked in FETCH"),
                });
            }
        }
        Ok(())
    }

    fn used_memory(&self) -> Res<f64> {
        Ok(self.server.info_field("memory", "used_memory")?)
    }

    fn memory_bench(&mut self) -> Res<()> {
        let n = self.settings.n(100_000, 10_000);
        eprintln!("memory per job, {n} jobs with a 20-byte payload");
        for backend in [Backend::Xadd, Backend::Module, Backend::Lua] {
            self.flush()?;
            let before = self.used_memory()?;
            self.fill(backend, "m", n, PAYLOAD)?;
            let queued = self.used_memory()?;
            self.record(Measure {
                bench: "memory_queued".into(),
                backend: backend.name().into(),
                param: 0,
                n,
                seconds: 0.0,
                value: (queued - before) / n as f64,
                unit: "bytes/job".into(),
                note: "INFO used_memory after - before, 20-byte payload".into(),
            });
            if backend == Backend::Xadd {
                continue;
            }
            let acked = self.raw_drain(backend, "m", n, 128, Some(PAYLOAD))?;
            let kept = self.used_memory()?;
            self.record(Measure {
                bench: "memory_finished".into(),
                backend: backend.name().into(),
                param: 0,
                n: acked,
                seconds: 0.0,
                value: (kept - before) / acked.max(1) as f64,
                unit: "bytes/job".into(),
                note: "completed jobs kept for their retention, with a 20-byte RESULT".into(),
            });
        }
        Ok(())
    }

    fn workers_bench(&mut self) -> Res<()> {
        let n = self.settings.n(100_000, 10_000);
        eprintln!("drain of {n} jobs by 1, 2, 4 worker processes (module)");
        let exe = std::env::current_exe()?;
        for processes in [1u64, 2, 4] {
            self.flush()?;
            let mut conn = self.server.conn()?;
            conn.cmd(&["ZRQ.PAUSE", "w"])?;
            self.fill(Backend::Module, "w", n, "{}")?;
            let mut children: Vec<Child> = Vec::new();
            for _ in 0..processes {
                children.push(
                    Command::new(&exe)
                        .args([
                            "--worker-child",
                            &self.server.port().to_string(),
                            "w",
                            &self.settings.concurrency.to_string(),
                            &self.settings.batch.to_string(),
                        ])
                        .stdin(Stdio::null())
                        .spawn()?,
                );
            }
            std::thread::sleep(Duration::from_millis(800));
            let start = Instant::now();
            conn.cmd(&["ZRQ.RESUME", "w"])?;
            let deadline = start + Duration::from_secs(600);
            let outcome = loop {
                if self.completed(&mut conn, "w")? >= n {
                    break Ok(start.elapsed().as_secs_f64());
                }
                if Instant::now() > deadline {
                    break Err("workers did not finish in 600 s");
                }
                std::thread::sleep(Duration::from_millis(2));
            };
            for child in &mut children {
                let _ = child.kill();
                let _ = child.wait();
            }
            let secs = outcome?;
            self.record(Measure {
                bench: "scale_workers".into(),
                backend: "module".into(),
                param: processes,
                n,
                seconds: secs,
                value: n as f64 / secs,
                unit: "jobs/s".into(),
                note: format!(
                    "{processes} worker processes, each concurrency {} batch {}",
                    self.settings.concurrency, self.settings.batch
                ),
            });
        }
        Ok(())
    }

    fn depth_bench(&mut self) -> Res<()> {
        let depths: &[u64] = if self.settings.quick {
            &[1_000, 10_000]
        } else {
            &[1_000, 10_000, 100_000, 1_000_000]
        };
        let m = self.settings.n(50_048, 2_048);
        eprintln!("cost per job at queue depths {depths:?} (module, {m} jobs measured at each)");
        for &depth in depths {
            // The floor: raw XADD onto a stream this long, in a keyspace this big.
            self.flush()?;
            self.fill(Backend::Xadd, "xdeep", depth, PAYLOAD)?;
            let secs = self.blast(&Backend::Xadd.enqueue("xdeep", PAYLOAD), m, 128)?;
            self.record(Measure {
                bench: "depth_enqueue".into(),
                backend: "xadd".into(),
                param: depth,
                n: m,
                seconds: secs,
                value: m as f64 / secs,
                unit: "ops/s".into(),
                note: "pipelined XADD (128 in flight) onto a stream this long".into(),
            });
            self.flush()?;
            self.fill(Backend::Module, "deep", depth, PAYLOAD)?;
            let secs = self.blast(&Backend::Module.enqueue("deep", PAYLOAD), m, 128)?;
            self.record(Measure {
                bench: "depth_enqueue".into(),
                backend: "module".into(),
                param: depth,
                n: m,
                seconds: secs,
                value: m as f64 / secs,
                unit: "ops/s".into(),
                note: "pipelined ENQUEUE (128 in flight) onto a queue this deep".into(),
            });
            let start = Instant::now();
            let acked = self.raw_drain(Backend::Module, "deep", m, 128, None)?;
            let secs = start.elapsed().as_secs_f64();
            self.record(Measure {
                bench: "depth_fetch_ack".into(),
                backend: "module".into(),
                param: depth,
                n: acked,
                seconds: secs,
                value: acked as f64 / secs,
                unit: "jobs/s".into(),
                note: "raw FETCH COUNT 128 + ACK loop from a queue this deep".into(),
            });
        }
        Ok(())
    }

    fn ratios(&mut self) {
        let r = &self.report;
        let v = |bench: &str, backend: &str, p: u64| r.find(bench, backend, p).map(|m| m.value);
        let mut out = Vec::new();
        for p in IN_FLIGHT {
            let p = p as u64;
            if let (Some(m), Some(x)) = (v("enqueue", "module", p), v("enqueue", "xadd", p)) {
                out.push((format!("enqueue module/xadd @{p}"), m / x));
            }
            if let (Some(m), Some(l)) = (v("enqueue", "module", p), v("enqueue", "lua", p)) {
                out.push((format!("enqueue module/lua @{p}"), m / l));
            }
        }
        for bench in ["drain", "drain_raw"] {
            if let (Some(m), Some(l)) = (v(bench, "module", 1), v(bench, "lua", 1)) {
                out.push((format!("{bench} module/lua"), m / l));
            }
            // Against plain streams drained by a raw loop (issue 15's goal: the worker ≥ 0.5×).
            if let (Some(m), Some(x)) = (v(bench, "module", 1), v("drain_raw", "xadd", 1)) {
                out.push((format!("{bench} module/raw streams"), m / x));
            }
        }
        for (bench, backend) in [
            ("depth_enqueue", "module"),
            ("depth_fetch_ack", "module"),
            ("depth_enqueue", "xadd"),
        ] {
            let depths: Vec<&Measure> = r
                .measures
                .iter()
                .filter(|m| m.bench == bench && m.backend == backend)
                .collect();
            if let (Some(first), Some(last)) = (depths.first(), depths.last()) {
                if first.param != last.param {
                    out.push((
                        format!("{bench} {backend} depth {}/{}", last.param, first.param),
                        last.value / first.value,
                    ));
                }
            }
        }
        self.report.ratios = out;
    }

    fn print(&self) {
        println!();
        println!(
            "{:<16} {:<7} {:>9} {:>9} {:>14}  note",
            "bench", "backend", "param", "n", "value"
        );
        for m in &self.report.measures {
            println!(
                "{:<16} {:<7} {:>9} {:>9} {:>14}  {}",
                m.bench,
                m.backend,
                m.param,
                m.n,
                format!("{:.0} {}", m.value, m.unit),
                m.note
            );
        }
        println!();
        for (name, value) in &self.report.ratios {
            println!("{name:<40} {value:>6.2}x");
        }
    }
}

fn job_id(job: &Value) -> Option<String> {
    let Value::Array(items) = job else {
        return None;
    };
    items
        .chunks(2)
        .find(|pair| pair[0] == Value::Str(b"id".to_vec()))
        .and_then(|pair| pair.get(1)?.text())
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn sh(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn machine(server: &Server) -> Vec<(String, String)> {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split(':').nth(1))
        .unwrap_or("?")
        .trim()
        .to_string();
    let version = server
        .conn()
        .and_then(|mut c| c.cmd(&["INFO", "server"]))
        .ok()
        .and_then(|v| v.text())
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("redis_version:").map(str::to_string))
        })
        .unwrap_or_default();
    vec![
        ("date".into(), sh("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"])),
        ("uname".into(), sh("uname", &["-srm"])),
        ("cpu".into(), cpu),
        ("cores".into(), sh("nproc", &[])),
        ("redis".into(), version),
        ("load_at_start".into(), loadavg()),
    ]
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `--worker-child <port> <queue> <concurrency> <batch>`: a worker process for the scaling run,
/// killed by the parent.
fn worker_child(args: &[String]) -> Res<()> {
    let [port, queue, concurrency, batch] = args else {
        return Err("--worker-child <port> <queue> <concurrency> <batch>".into());
    };
    let url = format!("redis://127.0.0.1:{port}");
    let (concurrency, batch) = (concurrency.parse()?, batch.parse()?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = zrq::Client::connect(&url).await?;
        zrq::Worker::new(client, &[queue.as_str()])
            .concurrency(concurrency)
            .batch(batch)
            .handle_raw(TASK, |_: serde_json::Value, _| async { Ok(()) })
            .run_until(std::future::pending())
            .await
    })?;
    Ok(())
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--worker-child") {
        return worker_child(&args[1..]);
    }
    if args.first().map(String::as_str) == Some("--print-lua") {
        // The library text, for profiling the Lua backend outside the harness.
        print!("{}", zrq_lua::library());
        return Ok(());
    }
    let mut settings = Settings {
        quick: false,
        aof: false,
        json: None,
        only: None,
        config: Vec::new(),
        concurrency: 256,
        batch: 128,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => settings.quick = true,
            "--aof" => settings.aof = true,
            "--json" => settings.json = it.next().cloned(),
            "--only" => settings.only = it.next().map(|s| s.split(',').map(String::from).collect()),
            "--config" => {
                let pair = it.next().ok_or("--config name=value")?;
                let (name, value) = pair.split_once('=').ok_or("--config name=value")?;
                settings.config.push((name.to_string(), value.to_string()));
            }
            "--concurrency" => settings.concurrency = it.next().ok_or("value")?.parse()?,
            "--batch" => settings.batch = it.next().ok_or("value")?.parse()?,
            other => {
                return Err(format!(
                    "unknown argument {other}; usage: throughput [--json FILE] [--quick] [--aof] \
                     [--only enqueue,drain,latency,memory,workers,depth] [--config name=value]… \
                     [--concurrency N] [--batch N]"
                )
                .into())
            }
        }
    }
    let server = Server::start(settings.aof, &settings.config)?;
    let mut run = Run {
        report: Report {
            machine: machine(&server),
            ..Report::default()
        },
        server,
        settings,
    };
    if run.settings.aof {
        run.report
            .machine
            .push(("persistence".into(), "AOF everysec".into()));
    }
    for (name, value) in &run.settings.config {
        run.report
            .machine
            .push((format!("config {name}"), value.clone()));
    }
    run.report.machine.push((
        "module".into(),
        zrq_benches::server::module_path().display().to_string(),
    ));
    eprintln!(
        "redis-server pid {} port {}",
        run.server.pid(),
        run.server.port()
    );
    if run.settings.runs("enqueue") {
        run.enqueue_bench()?;
    }
    if run.settings.runs("drain") {
        run.drain_bench()?;
    }
    if run.settings.runs("latency") {
        run.latency_bench()?;
    }
    if run.settings.runs("memory") {
        run.memory_bench()?;
    }
    if run.settings.runs("workers") {
        run.workers_bench()?;
    }
    if run.settings.runs("depth") {
        run.depth_bench()?;
    }
    run.report.machine.push(("load_at_end".into(), loadavg()));
    run.ratios();
    run.print();
    if let Some(path) = &run.settings.json {
        std::fs::write(path, serde_json::to_string_pretty(&run.report)?)?;
        eprintln!("wrote {path}");
    }
    Ok(())
}

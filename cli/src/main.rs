//! `zrq`: the operator's command-line tool for zrq queues.
//!
//! Human-readable tables by default, `--json` for scripts. Exit codes: 0 success, 1 error
//! (one line on stderr), 2 bad usage, 3 a wait timed out, 4 a waited-for job died or was cancelled.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod web;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use zrq::{
    Backend, BackendChoice, CancelOutcome, Client, ConnectOptions, DirectoryOptions,
    EnqueueOptions, Error, JobHandle, JobRecord, Outcome, QueueDirectory, QueueInfo, QueueScan,
};

#[derive(Parser)]
#[command(name = "zrq", version, about = "Operate zrq job queues inside Redis")]
struct Cli {
    /// Redis server URL; several, comma-separated, for a Redis Cluster.
    #[arg(
        long,
        global = true,
        env = "ZRQ_URL",
        default_value = "redis://127.0.0.1:6390"
    )]
    url: String,
    /// Which zrq implementation to use: the module (ZRQ.*) if the server has it, else the
    /// Functions library, loaded or upgraded when needed (auto); or either one, forced.
    #[arg(long, global = true, env = "ZRQ_BACKEND", value_enum, default_value_t = BackendArg::Auto)]
    backend: BackendArg,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum BackendArg {
    /// The module if the server has it, else the Functions library (loaded when missing or old).
    Auto,
    /// `ZRQ.<CMD> …` (the Redis module).
    Module,
    /// `FCALL zrq_<cmd> 1 …` (the Redis Functions library).
    Lua,
}

#[derive(Subcommand)]
enum Command {
    /// Enqueue a job; prints its id.
    Enqueue {
        /// The queue.
        queue: String,
        /// The task name.
        task: String,
        /// The arguments, a JSON document.
        #[arg(default_value = "{}")]
        payload: String,
        /// Job id (idempotent: an existing id is returned and nothing is added).
        #[arg(long)]
        id: Option<String>,
        /// Deliver after this long (e.g. 500ms, 10s, 5m).
        #[arg(long, value_parser = duration)]
        delay: Option<Duration>,
        /// Deliver at this unix time in milliseconds.
        #[arg(long)]
        at: Option<u64>,
        /// Extra attempts after the first.
        #[arg(long)]
        retries: Option<u32>,
        /// Base of the exponential backoff between attempts.
        #[arg(long, value_parser = duration)]
        backoff: Option<Duration>,
        /// Lease / time limit of one attempt.
        #[arg(long, value_parser = duration)]
        timeout: Option<Duration>,
        /// 0-9, higher first.
        #[arg(long)]
        priority: Option<u8>,
        /// Uniqueness key: while a job with it is unfinished, return that job instead.
        #[arg(long)]
        unique: Option<String>,
        /// Keep the finished job this long.
        #[arg(long, value_parser = duration)]
        keep: Option<Duration>,
        /// Run only after this job (same queue) completed; repeat for several parents.
        #[arg(long)]
        after: Vec<String>,
        /// Hand the parents' results to the job.
        #[arg(long)]
        with_results: bool,
        /// When a parent ends dead or cancelled: cancel (default) or run anyway.
        #[arg(long, value_parser = ["cancel", "run"])]
        on_parent_fail: Option<String>,
        /// Wait this long for the result and print it.
        #[arg(long, value_parser = duration)]
        wait: Option<Duration>,
    },
    /// Show a batch's progress; with --wait, a progress bar until every member finished.
    Batch {
        /// The queue.
        queue: String,
        /// The batch id.
        id: String,
        /// Wait until every member has finished (exit 3 if --timeout runs out first).
        #[arg(long)]
        wait: bool,
        /// How long --wait waits.
        #[arg(long, value_parser = duration, default_value = "10m", requires = "wait")]
        timeout: Duration,
    },
    /// The Redis Functions library, for servers without the module.
    Lua {
        #[command(subcommand)]
        command: LuaCommand,
    },
    /// Show a job.
    Job {
        /// The job id.
        id: String,
        /// Its queue (found by asking every queue when left out).
        #[arg(short, long)]
        queue: Option<String>,
    },
    /// Wait for jobs to finish and print their results.
    Wait {
        /// Job ids.
        #[arg(required = true)]
        ids: Vec<String>,
        /// Their queue (found by asking every queue when left out).
        #[arg(short, long)]
        queue: Option<String>,
        /// How long to wait in all.
        #[arg(long, value_parser = duration, default_value = "30s")]
        timeout: Duration,
    },
    /// Cancel a job.
    Cancel {
        /// The job id.
        id: String,
        /// Its queue (found by asking every queue when left out).
        #[arg(short, long)]
        queue: Option<String>,
    },
    /// List the queues with their counts.
    Queues,
    /// Show a queue's counts and totals.
    Info {
        /// The queue.
        queue: String,
    },
    /// List dead jobs with their last error.
    Dead {
        /// The queue.
        queue: String,
        /// Jobs per page.
        #[arg(long, default_value_t = 20)]
        count: usize,
        /// Page cursor ("0" for the first page).
        #[arg(long, default_value = "0")]
        cursor: String,
    },
    /// List the jobs of a queue in one state.
    List {
        /// The queue.
        queue: String,
        /// pending, scheduled, active, retrying, completed, dead or cancelled.
        state: String,
        /// Jobs per page.
        #[arg(long, default_value_t = 20)]
        count: usize,
        /// Page cursor ("0" for the first page).
        #[arg(long, default_value = "0")]
        cursor: String,
    },
    /// Put dead jobs back to pending with a fresh attempt budget.
    Requeue {
        /// The queue.
        queue: String,
        /// Job ids.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        ids: Vec<String>,
        /// Every dead job of the queue.
        #[arg(long)]
        all: bool,
    },
    /// Delete a job.
    Delete {
        /// The queue.
        queue: String,
        /// The job id.
        id: String,
    },
    /// Stop deliveries from a queue (enqueueing goes on).
    Pause {
        /// The queue.
        queue: String,
    },
    /// Resume deliveries from a queue.
    Resume {
        /// The queue.
        queue: String,
    },
    /// List a queue's recurring jobs.
    Schedules {
        /// The queue.
        queue: String,
    },
    /// Live view of every queue: counts by state, rates per second, oldest pending age.
    Top {
        /// Refresh interval.
        #[arg(long, value_parser = duration, default_value = "1s")]
        interval: Duration,
        /// Stop after this many refreshes (0: until Ctrl-C).
        #[arg(long, default_value_t = 0)]
        iterations: u64,
    },
    /// Serve the web dashboard (and /metrics): read-only unless --actions and a password.
    Dashboard {
        #[command(flatten)]
        web: WebArgs,
        /// Allow actions from the pages (cancel, requeue, delete, pause/resume, enqueue); needs
        /// --password.
        #[arg(long)]
        actions: bool,
    },
    /// Serve only /metrics (Prometheus text format), without the dashboard.
    Metrics {
        #[command(flatten)]
        web: WebArgs,
    },
}

/// Where and for whom `zrq dashboard` and `zrq metrics` serve.
#[derive(clap::Args)]
struct WebArgs {
    /// The address to listen on (loopback by default; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// Password to sign in with (also accepted as `Authorization: Bearer <password>`); without
    /// one, anyone who reaches the listener may look.
    #[arg(long, env = "ZRQ_DASHBOARD_PASSWORD", hide_env_values = true)]
    password: Option<String>,
}

impl Command {
    /// Whether the command only reads: then it never writes to the server, not even the
    /// Functions library (a server without it gets a clear error instead).
    fn is_read_only(&self) -> bool {
        match self {
            Command::Job { .. }
            | Command::Wait { .. }
            | Command::Queues
            | Command::Info { .. }
            | Command::Dead { .. }
            | Command::List { .. }
            | Command::Schedules { .. }
            | Command::Batch { .. }
            | Command::Top { .. }
            | Command::Dashboard { .. }
            | Command::Metrics { .. } => true,
            Command::Enqueue { .. }
            | Command::Lua { .. }
            | Command::Cancel { .. }
            | Command::Requeue { .. }
            | Command::Delete { .. }
            | Command::Pause { .. }
            | Command::Resume { .. } => false,
        }
    }
}

#[derive(Subcommand)]
enum LuaCommand {
    /// Print the library's text (for `redis-cli -x FUNCTION LOAD REPLACE < zrq.lua`).
    Print,
    /// Load the library into the server at --url with FUNCTION LOAD REPLACE; prints its version.
    Load,
}

/// A failure with its exit code.
struct Failure {
    code: u8,
    message: String,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        let code = match e {
            Error::WaitTimeout(_) => 3,
            Error::JobFailed { .. } => 4,
            _ => 1,
        };
        Failure {
            code,
            message: e.to_string(),
        }
    }
}

impl From<serde_json::Error> for Failure {
    fn from(e: serde_json::Error) -> Failure {
        Failure::from(Error::Json(e))
    }
}

fn fail(message: impl Into<String>) -> Failure {
    Failure {
        code: 1,
        message: message.into(),
    }
}

type CliResult = Result<(), Failure>;

/// Reads `500ms`, `10s`, `5m`, `2h`, or a plain number of milliseconds.
fn duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (like 500ms, 10s, 5m)"))?;
    let ms = match unit {
        "" | "ms" => Some(n),
        "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => None,
    };
    ms.map(Duration::from_millis)
        .ok_or_else(|| format!("'{text}' is not a duration (like 500ms, 10s, 5m)"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Log lines (the client's, at the level RUST_LOG asks for) go to stderr, and only when asked:
    // without RUST_LOG, stderr carries nothing but the one line of a failure. The servers log at
    // `info` unless told otherwise.
    let server = matches!(
        cli.command,
        Command::Dashboard { .. } | Command::Metrics { .. }
    );
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .ok()
        .or_else(|| server.then(|| tracing_subscriber::EnvFilter::new("info")));
    if let Some(filter) = filter {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("zrq: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("zrq: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

async fn connect(url: &str, options: &ConnectOptions) -> Result<Client, Failure> {
    let connected = if url.contains(',') {
        let nodes: Vec<&str> = url.split(',').map(str::trim).collect();
        Client::connect_cluster_with(&nodes, options).await
    } else {
        Client::connect_with(url, options).await
    };
    connected.map_err(|e| match e {
        Error::Backend(_) => Failure::from(e),
        e => fail(format!("cannot connect to {url}: {e}")),
    })
}

async fn run(cli: Cli) -> CliResult {
    let out = Out { json: cli.json };
    if let Command::Lua { command } = &cli.command {
        return lua(&cli.url, &out, command).await;
    }
    let read_only = cli.command.is_read_only();
    let options = ConnectOptions::new()
        .backend(match cli.backend {
            BackendArg::Auto => BackendChoice::Auto,
            BackendArg::Module => BackendChoice::Module,
            BackendArg::Lua => BackendChoice::Lua,
        })
        .manage_library(!read_only);
    let client = connect(&cli.url, &options).await?;
    if read_only && client.backend() == Backend::Lua && client.library_version().await?.is_none() {
        let missing = match cli.backend {
            BackendArg::Auto => "neither the zrq module nor the zrq Functions library",
            _ => "no zrq Functions library",
        };
        return Err(fail(format!(
            "{} has {missing}, and read-only commands never load it: load the module, or run \
             `zrq lua load`",
            cli.url
        )));
    }
    match cli.command {
        Command::Enqueue {
            queue,
            task,
            payload,
            id,
            delay,
            at,
            retries,
            backoff,
            timeout,
            priority,
            unique,
            keep,
            after,
            with_results,
            on_parent_fail,
            wait,
        } => {
            let args: serde_json::Value = serde_json::from_str(&payload)
                .map_err(|e| fail(format!("payload is not valid JSON: {e}")))?;
            let mut options = EnqueueOptions::new();
            if let Some(id) = id {
                options = options.id(id);
            }
            if let Some(d) = delay {
                options = options.delay(d);
            }
            if let Some(at) = at {
                options = options.at_unix_ms(at);
            }
            if let Some(r) = retries {
                options = options.retries(r);
            }
            if let Some(b) = backoff {
                options = options.backoff(b);
            }
            if let Some(t) = timeout {
                options = options.timeout(t);
            }
            if let Some(p) = priority {
                options = options.priority(p);
            }
            if let Some(u) = unique {
                options = options.unique(u);
            }
            if let Some(k) = keep {
                options = options.keep(k);
            }
            for parent in after {
                options = options.after(parent);
            }
            if with_results {
                options = options.with_results();
            }
            match on_parent_fail.as_deref() {
                Some("run") => options = options.on_parent_fail(zrq::ParentFailure::Run),
                Some(_) => options = options.on_parent_fail(zrq::ParentFailure::Cancel),
                None => {}
            }
            let job = client
                .queue(&queue)
                .enqueue_with(&task, &args, &options)
                .await?;
            match wait {
                None if out.json => out.value(&serde_json::json!({ "id": job.id() })),
                None => println!("{}", job.id()),
                Some(limit) => {
                    let outcome = job.wait_outcome(limit).await?;
                    print_outcomes(&out, &[job], &[outcome])?;
                }
            }
            Ok(())
        }
        Command::Lua { command } => lua(&cli.url, &out, &command).await,
        Command::Batch {
            queue,
            id,
            wait,
            timeout,
        } => {
            let queue = client.queue(&queue);
            let Some(mut info) = queue.batch_info(&id).await? else {
                return Err(fail(format!("no batch '{id}' in queue '{}'", queue.name())));
            };
            if wait {
                let bar = progress(info.total.max(0) as u64, &format!("batch {id}"));
                bar.set_position(info.done.max(0) as u64);
                let waited = queue
                    .wait_batch(&id, timeout, |now| bar.set_position(now.done.max(0) as u64))
                    .await;
                bar.finish_and_clear();
                info = waited?;
                if info.done < info.total {
                    return Err(Failure {
                        code: 3,
                        message: format!(
                            "timed out waiting for batch {id}: {}/{} done",
                            info.done, info.total
                        ),
                    });
                }
            }
            if out.json {
                out.value(&info);
            } else {
                let mut rows = vec![
                    vec!["id".to_string(), info.id.clone()],
                    vec!["total".into(), info.total.to_string()],
                    vec!["done".into(), info.done.to_string()],
                    vec!["succeeded".into(), info.succeeded.to_string()],
                    vec!["failed".into(), info.failed.to_string()],
                ];
                if let Some(callback) = &info.callback_id {
                    rows.push(vec!["callback_id".into(), callback.clone()]);
                }
                table(&["FIELD", "VALUE"], rows);
            }
            Ok(())
        }
        Command::Job { id, queue } => {
            let job = locate(&client, &id, queue.as_deref()).await?;
            let record = job.record().await?;
            if out.json {
                out.value(&record);
            } else {
                print_record(&record);
            }
            Ok(())
        }
        Command::Wait {
            ids,
            queue,
            timeout,
        } => {
            let mut jobs = Vec::new();
            for id in &ids {
                jobs.push(locate(&client, id, queue.as_deref()).await?);
            }
            let bar = progress(jobs.len() as u64, "waiting");
            let outcomes = zrq::wait_all(&jobs, timeout, |_, _| bar.inc(1)).await?;
            bar.finish_and_clear();
            print_outcomes(&out, &jobs, &outcomes)
        }
        Command::Cancel { id, queue } => {
            let job = locate(&client, &id, queue.as_deref()).await?;
            let outcome = job.cancel().await?;
            let text = match outcome {
                CancelOutcome::Cancelled => "cancelled",
                CancelOutcome::Requested => "cancellation requested (the job is running)",
                CancelOutcome::NotCancellable => "not cancellable (finished or unknown)",
            };
            if out.json {
                out.value(&serde_json::json!({ "id": id, "outcome": outcome }));
            } else {
                println!("{id}: {text}");
            }
            if outcome == CancelOutcome::NotCancellable {
                return Err(fail(format!("job {id} is not cancellable")));
            }
            Ok(())
        }
        Command::Queues => {
            let names = client.queues().await?;
            let mut infos = Vec::new();
            for name in &names {
                infos.push(client.queue(name).info().await?);
            }
            if out.json {
                out.value(&infos);
            } else if infos.is_empty() {
                println!("no queues");
            } else {
                print_counts(&infos, None);
            }
            Ok(())
        }
        Command::Info { queue } => {
            let info = client.queue(&queue).info().await?;
            if out.json {
                out.value(&info);
            } else {
                // States first (in life order), then totals, then the rest.
                let rank = |k: &str| {
                    STATES
                        .iter()
                        .position(|s| *s == k)
                        .unwrap_or(if k.starts_with("total") { 10 } else { 20 })
                };
                let mut fields: Vec<(&String, &i64)> = info.fields.iter().collect();
                fields.sort_by_key(|(k, _)| rank(k));
                let rows = fields
                    .into_iter()
                    .map(|(k, v)| {
                        let v = if k == "oldest_pending_age_ms" && *v > 0 {
                            format!("{v} ({})", age(*v))
                        } else {
                            v.to_string()
                        };
                        vec![k.clone(), v]
                    })
                    .collect();
                table(&["FIELD", "VALUE"], rows);
            }
            Ok(())
        }
        Command::Dead {
            queue,
            count,
            cursor,
        } => {
            let page = client.queue(&queue).dead(count, &cursor).await?;
            print_page(&out, &page, true);
            Ok(())
        }
        Command::List {
            queue,
            state,
            count,
            cursor,
        } => {
            let page = client.queue(&queue).list(&state, count, &cursor).await?;
            print_page(&out, &page, state == "dead" || state == "retrying");
            Ok(())
        }
        Command::Requeue { queue, ids, all } => {
            let q = client.queue(&queue);
            let n = if all {
                requeue_all(&q).await?
            } else {
                let bar = progress(ids.len() as u64, "requeueing");
                let mut n = 0;
                for chunk in ids.chunks(500) {
                    n += q.requeue_many(chunk).await?;
                    bar.inc(chunk.len() as u64);
                }
                bar.finish_and_clear();
                n
            };
            if out.json {
                out.value(&serde_json::json!({ "requeued": n }));
            } else {
                println!("requeued {n} job(s)");
            }
            if !all && n == 0 {
                return Err(fail("no dead job with that id"));
            }
            Ok(())
        }
        Command::Delete { queue, id } => {
            if !client.queue(&queue).delete(&id).await? {
                return Err(fail(format!("no job '{id}' in queue '{queue}'")));
            }
            out.done(&format!("deleted {id}"));
            Ok(())
        }
        Command::Pause { queue } => {
            client.queue(&queue).pause().await?;
            out.done(&format!("paused {queue}"));
            Ok(())
        }
        Command::Resume { queue } => {
            client.queue(&queue).resume().await?;
            out.done(&format!("resumed {queue}"));
            Ok(())
        }
        Command::Schedules { queue } => {
            let schedules = client.queue(&queue).schedules().await?;
            if out.json {
                out.value(&schedules);
            } else if schedules.is_empty() {
                println!("no schedules");
            } else {
                let rows = schedules
                    .iter()
                    .map(|s| {
                        let when = s
                            .get("every")
                            .map(|e| format!("every {e}ms"))
                            .or_else(|| s.get("cron").map(|c| format!("cron {c}")))
                            .unwrap_or_default();
                        let next = s
                            .get("next_run")
                            .and_then(|n| n.parse().ok())
                            .map(relative)
                            .unwrap_or_default();
                        vec![
                            s.get("name").unwrap_or("").to_string(),
                            when,
                            s.get("task").unwrap_or("").to_string(),
                            s.get("payload").unwrap_or("").to_string(),
                            next,
                        ]
                    })
                    .collect();
                table(&["NAME", "WHEN", "TASK", "PAYLOAD", "NEXT RUN"], rows);
            }
            Ok(())
        }
        Command::Top {
            interval,
            iterations,
        } => top(&client, &out, interval, iterations).await,
        Command::Dashboard { web, actions } => {
            serve(client, &cli.url, web, actions, web::Mode::Dashboard).await
        }
        Command::Metrics { web } => {
            serve(client, &cli.url, web, false, web::Mode::MetricsOnly).await
        }
    }
}

/// `zrq dashboard` and `zrq metrics`: serves until Ctrl-C.
async fn serve(
    client: Client,
    url: &str,
    args: WebArgs,
    actions: bool,
    mode: web::Mode,
) -> CliResult {
    let protected = args.password.is_some();
    let auth = web::Auth::new(args.password, actions).map_err(fail)?;
    if !protected && !args.listen.ip().is_loopback() {
        tracing::warn!(
            listen = %args.listen,
            "serving without a password on an address other hosts can reach"
        );
    }
    // Events are followed on the first node given (in a cluster, PUBLISH reaches every node).
    let events_url = url.split(',').next().unwrap_or(url).trim();
    web::serve(client, auth, mode, args.listen, events_url)
        .await
        .map_err(fail)
}

/// `zrq lua print` and `zrq lua load`.
async fn lua(url: &str, out: &Out, command: &LuaCommand) -> CliResult {
    match command {
        LuaCommand::Print => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(zrq::lua::library().as_bytes())
                .and_then(|()| stdout.flush())
                .map_err(|e| fail(format!("cannot write: {e}")))
        }
        LuaCommand::Load => {
            let options = ConnectOptions::new()
                .backend(BackendChoice::Lua)
                .manage_library(false);
            let client = connect(url, &options).await?;
            let version = client.load_library().await?;
            if out.json {
                out.value(
                    &serde_json::json!({ "library": zrq::lua::LIBRARY_NAME, "version": version }),
                );
            } else {
                println!("{version}");
            }
            Ok(())
        }
    }
}

struct Out {
    json: bool,
}

impl Out {
    fn value(&self, value: &impl Serialize) {
        match serde_json::to_string_pretty(value) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("zrq: {e}"),
        }
    }

    fn done(&self, text: &str) {
        if self.json {
            self.value(&serde_json::json!({ "ok": true }));
        } else {
            println!("{text}");
        }
    }
}

fn progress(len: u64, what: &str) -> ProgressBar {
    if len < 2 || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} ({eta})") {
        bar.set_style(style);
    }
    bar.set_message(what.to_string());
    bar
}

/// Finds the queue of job `id`: the one given, or the queue that knows it.
async fn locate(client: &Client, id: &str, queue: Option<&str>) -> Result<JobHandle, Failure> {
    if let Some(queue) = queue {
        return Ok(client.queue(queue).job(id));
    }
    // Page by page (each a bounded ZRQ.QUEUES step), asking each queue found: it stops at the
    // job's queue instead of listing every queue of a large server first.
    let mut scan = QueueScan::new(client.clone());
    let mut asked = std::collections::BTreeSet::new();
    loop {
        let page = scan.next_page().await.map_err(|e| {
            if e.is_unknown_command() {
                fail("this server cannot list its queues: give the queue with --queue")
            } else {
                Failure::from(e)
            }
        })?;
        let Some(page) = page else {
            return Err(fail(format!("no job '{id}' in any queue")));
        };
        for name in page {
            if !asked.insert(name.clone()) {
                continue;
            }
            let job = client.queue(&name).job(id);
            if job.state().await?.is_some() {
                return Ok(job);
            }
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `12.3s ago` / `in 4.0s` for a unix-ms time.
fn relative(unix_ms: i64) -> String {
    let delta = now_ms() - unix_ms;
    if delta >= 0 {
        format!("{} ago", age(delta))
    } else {
        format!("in {}", age(-delta))
    }
}

fn age(ms: i64) -> String {
    match ms {
        ms if ms < 1000 => format!("{ms}ms"),
        ms if ms < 60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        ms if ms < 3_600_000 => format!("{}m{}s", ms / 60_000, ms % 60_000 / 1000),
        ms => format!("{}h{}m", ms / 3_600_000, ms % 3_600_000 / 60_000),
    }
}

fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let text: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        text.join("  ").trim_end().to_string()
    };
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(
        stdout,
        "{}",
        line(headers.iter().map(|h| h.to_string()).collect())
    );
    for row in rows {
        let _ = writeln!(stdout, "{}", line(row));
    }
}

fn print_record(job: &JobRecord) {
    let mut rows = vec![
        vec!["id".into(), job.id.clone()],
        vec!["queue".into(), job.queue.clone()],
        vec!["task".into(), job.task.clone()],
        vec!["state".into(), job.state.to_string()],
        vec!["payload".into(), job.payload.clone()],
        vec![
            "attempt".into(),
            format!("{} of {}", job.attempt, job.max_attempts),
        ],
        vec!["timeout".into(), format!("{}ms", job.timeout)],
    ];
    let times = [
        ("created_at", job.created_at),
        ("started_at", job.started_at),
        ("finished_at", job.finished_at),
    ];
    for (name, at) in times {
        if let Some(at) = at {
            rows.push(vec![name.into(), format!("{at} ({})", relative(at))]);
        }
    }
    for (name, value) in [
        ("consumer", &job.consumer),
        ("result", &job.result),
        ("error", &job.error),
    ] {
        if let Some(v) = value {
            rows.push(vec![name.into(), v.clone()]);
        }
    }
    for (k, v) in &job.extra {
        rows.push(vec![k.clone(), v.clone()]);
    }
    table(&["FIELD", "VALUE"], rows);
}

fn print_page(out: &Out, page: &zrq::Page, with_error: bool) {
    if out.json {
        out.value(page);
        return;
    }
    let rows = page
        .jobs
        .iter()
        .map(|j| {
            let mut row = vec![
                j.id.clone(),
                j.task.clone(),
                j.state.to_string(),
                format!("{}/{}", j.attempt, j.max_attempts),
            ];
            if with_error {
                row.push(j.error.clone().unwrap_or_default());
            } else {
                row.push(j.consumer.clone().unwrap_or_default());
            }
            row
        })
        .collect();
    let last = if with_error { "ERROR" } else { "CONSUMER" };
    table(&["ID", "TASK", "STATE", "ATTEMPT", last], rows);
    if !page.is_last() {
        println!("more: --cursor {}", page.cursor);
    }
}

#[derive(Serialize)]
struct WaitResult<'a> {
    id: &'a str,
    #[serde(flatten)]
    outcome: Option<&'a Outcome>,
    finished: bool,
}

/// Prints outcomes; fails with 4 if any job did not complete, 3 if any is still running.
fn print_outcomes(out: &Out, jobs: &[JobHandle], outcomes: &[Option<Outcome>]) -> CliResult {
    if out.json {
        let items: Vec<WaitResult> = jobs
            .iter()
            .zip(outcomes)
            .map(|(j, o)| WaitResult {
                id: j.id(),
                outcome: o.as_ref(),
                finished: o.is_some(),
            })
            .collect();
        out.value(&items);
    } else {
        let rows = jobs
            .iter()
            .zip(outcomes)
            .map(|(j, o)| match o {
                Some(o) => vec![
                    j.id().to_string(),
                    o.state.to_string(),
                    o.result
                        .clone()
                        .or_else(|| o.error.clone())
                        .unwrap_or_default(),
                ],
                None => vec![j.id().to_string(), "unfinished".into(), String::new()],
            })
            .collect();
        table(&["ID", "STATE", "RESULT / ERROR"], rows);
    }
    let unfinished = outcomes.iter().filter(|o| o.is_none()).count();
    let failed = outcomes
        .iter()
        .flatten()
        .filter(|o| o.state != zrq::JobState::Completed)
        .count();
    if failed > 0 {
        return Err(Failure {
            code: 4,
            message: format!("{failed} job(s) did not complete"),
        });
    }
    if unfinished > 0 {
        return Err(Failure {
            code: 3,
            message: format!("timed out: {unfinished} job(s) still unfinished"),
        });
    }
    Ok(())
}

/// Requeues every dead job page by page (`ZRQ.REQUEUE … ALL`, each page bounded by the server's
/// `zrq.requeue-max`), with a progress bar. Stops at the end of the dead set, or once as many
/// jobs were requeued as were dead at the start (jobs that die again meanwhile are not chased).
async fn requeue_all(queue: &zrq::Queue) -> Result<i64, Failure> {
    let total = queue.info().await.map(|i| i.get("dead")).unwrap_or(0);
    let bar = progress(total.max(0) as u64, "requeueing");
    let (mut cursor, mut n) = ("0".to_string(), 0);
    loop {
        let (next, done) = queue.requeue_all_page(None, &cursor).await?;
        bar.inc(done.max(0) as u64);
        n += done;
        if next == "0" || n >= total {
            break;
        }
        cursor = next;
    }
    bar.finish_and_clear();
    Ok(n)
}

/// The job states in the order of a job's life, as `ZRQ.INFO` counts them (also the metrics'
/// `state` label values).
const STATES: [&str; 8] = [
    "waiting",
    "pending",
    "scheduled",
    "active",
    "retrying",
    "completed",
    "dead",
    "cancelled",
];

fn print_counts(infos: &[QueueInfo], rates: Option<&BTreeMap<String, (f64, f64, f64)>>) {
    let mut headers = vec!["QUEUE"];
    headers.extend(STATES.iter().map(|s| match *s {
        "waiting" => "WAITING",
        "pending" => "PENDING",
        "scheduled" => "SCHEDULED",
        "active" => "ACTIVE",
        "retrying" => "RETRYING",
        "completed" => "COMPLETED",
        "dead" => "DEAD",
        _ => "CANCELLED",
    }));
    if rates.is_some() {
        headers.extend(["IN/S", "DONE/S", "FAIL/S"]);
    }
    headers.extend(["OLDEST", "PAUSED"]);
    let rows = infos
        .iter()
        .map(|info| {
            let mut row = vec![info.queue.clone()];
            row.extend(STATES.iter().map(|s| info.get(s).to_string()));
            if let Some(rates) = rates {
                let (i, d, f) = rates.get(&info.queue).copied().unwrap_or_default();
                row.extend([i, d, f].map(|r| format!("{r:.1}")));
            }
            let oldest = info.get("oldest_pending_age_ms");
            row.push(if oldest > 0 { age(oldest) } else { "-".into() });
            row.push(if info.paused() { "yes" } else { "no" }.into());
            row
        })
        .collect();
    table(&headers, rows);
}

async fn top(client: &Client, out: &Out, interval: Duration, iterations: u64) -> CliResult {
    let mut previous: BTreeMap<String, (Instant, [i64; 3])> = BTreeMap::new();
    let tty = std::io::stdout().is_terminal();
    let mut round = 0;
    // The queue list is kept by a background listing, one bounded ZRQ.QUEUES step at a time: on a
    // server with millions of keys a full listing takes thousands of steps, which a refresh must
    // not wait for (nor repeat every second). A small server is listed afresh at every refresh.
    // Steps 1 ms apart: the first listing of a 10^6-key server takes some 6 s, each step 0.4 ms.
    let options = DirectoryOptions {
        pause: Duration::from_millis(1),
        ..DirectoryOptions::default()
    };
    let directory = QueueDirectory::start(client.clone(), options);
    directory.ready(interval.max(Duration::from_secs(2))).await;
    loop {
        let names = directory.fresh().await?;
        let listing = directory.listing();
        let mut infos = Vec::new();
        for name in &names {
            infos.push(client.queue(name).info().await?);
        }
        let now = Instant::now();
        let mut rates = BTreeMap::new();
        for info in &infos {
            let totals = [
                info.total("enqueued"),
                info.total("completed"),
                info.total("failed"),
            ];
            if let Some((then, before)) = previous.get(&info.queue) {
                let secs = now.duration_since(*then).as_secs_f64().max(1e-3);
                let rate = |i: usize| (totals[i] - before[i]).max(0) as f64 / secs;
                rates.insert(info.queue.clone(), (rate(0), rate(1), rate(2)));
            }
            previous.insert(info.queue.clone(), (now, totals));
        }
        if out.json {
            let frame: Vec<serde_json::Value> = infos
                .iter()
                .map(|i| {
                    let (r_in, r_done, r_fail) = rates.get(&i.queue).copied().unwrap_or_default();
                    serde_json::json!({
                        "queue": i.queue, "fields": i.fields,
                        "rates": {"enqueued": r_in, "completed": r_done, "failed": r_fail},
                    })
                })
                .collect();
            match serde_json::to_string(&frame) {
                Ok(line) => println!("{line}"),
                Err(e) => return Err(fail(e.to_string())),
            }
        } else {
            if tty {
                print!("\x1b[H\x1b[2J");
            }
            println!(
                "zrq top — {} queue(s){} — every {}ms — Ctrl-C to quit",
                infos.len(),
                if listing.passes == 0 {
                    " (still listing the server's queues)"
                } else {
                    ""
                },
                interval.as_millis()
            );
            if infos.is_empty() {
                println!("no queues");
            } else {
                print_counts(&infos, Some(&rates));
            }
            let _ = std::io::stdout().flush();
        }
        round += 1;
        if iterations > 0 && round >= iterations {
            return Ok(());
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

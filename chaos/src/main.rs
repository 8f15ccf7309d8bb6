//! The chaos worker: a real worker process running the `chaos` task, for tests that SIGKILL,
//! SIGSTOP and fail over around it.
//!
//! Configured by the environment: `ZRQ_URL` (one server) or `ZRQ_CLUSTER` (comma-separated
//! nodes), `ZRQ_QUEUES` (comma-separated), `ZRQ_CONSUMER` (its consumer name), `ZRQ_RUN_LOG`
//! (the file each execution is appended to), `ZRQ_CONCURRENCY`, `ZRQ_BATCH`, `ZRQ_RECLAIM_MS`,
//! `ZRQ_BLOCK_MS`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zrq::{Client, HandlerResult, JobContext, Worker};
use zrq_chaos::{Chaos, ChaosArgs, Run};

/// The environment variable `name`, or an error naming it.
fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} must be set"))
}

/// A number from the environment, or `default`.
fn env_number(name: &str, default: u64) -> Result<u64, String> {
    match std::env::var(name) {
        Ok(text) => text
            .parse()
            .map_err(|_| format!("{name} must be a number, got '{text}'")),
        Err(_) => Ok(default),
    }
}

/// Runs one attempt: logs it, works, then fails if the job plans to fail this attempt.
async fn run(args: ChaosArgs, ctx: JobContext, log: Arc<Mutex<File>>) -> HandlerResult<i64> {
    let run = Run {
        queue: ctx.job().queue.clone(),
        id: ctx.id().to_string(),
        attempt: ctx.attempt(),
    };
    {
        let mut file = log.lock().map_err(|_| "run log lock poisoned")?;
        file.write_all(run.line().as_bytes())?;
    }
    tokio::time::sleep(Duration::from_millis(args.work_ms)).await;
    if ctx.attempt() <= args.fail_first {
        return Err(format!("planned failure of attempt {}", ctx.attempt()).into());
    }
    Ok(ctx.attempt())
}

async fn main_result() -> Result<(), String> {
    // The shutdown signal is caught before anything else, and the test told so by a line on
    // stdout, so a SIGTERM sent right after the start is a graceful shutdown, not a kill.
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("SIGTERM handler: {e}"))?;
    println!("ready");
    let client = match std::env::var("ZRQ_CLUSTER") {
        Ok(nodes) => {
            let nodes: Vec<&str> = nodes.split(',').collect();
            Client::connect_cluster(&nodes).await
        }
        Err(_) => Client::connect(&env("ZRQ_URL")?).await,
    }
    .map_err(|e| format!("connect: {e}"))?;
    let queues = env("ZRQ_QUEUES")?;
    let queues: Vec<&str> = queues.split(',').collect();
    let log_path = env("ZRQ_RUN_LOG")?;
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| format!("{log_path}: {e}"))?;
    let log = Arc::new(Mutex::new(log));
    let stats = Worker::new(client, &queues)
        .consumer(env("ZRQ_CONSUMER")?)
        .concurrency(env_number("ZRQ_CONCURRENCY", 16)? as usize)
        .batch(env_number("ZRQ_BATCH", 16)? as usize)
        .reclaim_interval(Duration::from_millis(env_number("ZRQ_RECLAIM_MS", 200)?))
        .block(Duration::from_millis(env_number("ZRQ_BLOCK_MS", 200)?))
        .grace(Duration::from_secs(5))
        .handle::<Chaos, _, _>(move |args, ctx| run(args, ctx, log.clone()))
        .run_until(async move {
            terminate.recv().await;
        })
        .await
        .map_err(|e| format!("worker: {e}"))?;
    eprintln!(
        "chaos worker stopped: {} completed, {} failed, {} abandoned",
        stats.completed, stats.failed, stats.abandoned
    );
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .init();
    match main_result().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chaos-worker: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

//! A zrq worker: runs `add` jobs from the `demo` queue until Ctrl-C or SIGTERM.
//!
//! ```sh
//! cargo run --example worker            # ZRQ_URL, ZRQ_QUEUE, ZRQ_CONCURRENCY, ZRQ_GRACE_MS tune it
//! ```

mod shared;

use std::time::Duration;

use shared::{Add, AddArgs};
use zrq::{Client, JobContext, Worker};

/// The handler: typed arguments in, typed result out. Returning `Err` fails the attempt (the
/// server retries it later); a panic does too. A cancellation (`zrq cancel`) reaches it through
/// `ctx.cancelled()` within about a second.
async fn add(args: AddArgs, ctx: JobContext) -> zrq::HandlerResult<i64> {
    tokio::select! {
        () = tokio::time::sleep(Duration::from_millis(args.work_ms)) => {}
        () = ctx.cancelled() => return Err("cancelled".into()),
    }
    if args.a < 0 {
        return Err(format!("refusing negative a = {}", args.a).into());
    }
    Ok(args.a + args.b)
}

#[tokio::main]
async fn main() -> zrq::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "info,zrq=info".into()))
        .init();
    let client = Client::connect(&shared::url()).await?;
    let queue = shared::queue_name();
    let stats = Worker::new(client, &[&queue])
        .concurrency(shared::env_number("ZRQ_CONCURRENCY", 32) as usize)
        .grace(Duration::from_millis(shared::env_number(
            "ZRQ_GRACE_MS",
            10_000,
        )))
        .reclaim_interval(Duration::from_millis(shared::env_number(
            "ZRQ_RECLAIM_MS",
            5_000,
        )))
        .handle::<Add, _, _>(add)
        .run()
        .await?;
    println!(
        "worker stopped: {} completed, {} failed, {} given back unfinished",
        stats.completed, stats.failed, stats.abandoned
    );
    Ok(())
}

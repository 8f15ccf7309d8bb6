//! A zrq producer: enqueues `add` jobs on the `demo` queue and prints each result as it arrives.
//!
//! ```sh
//! cargo run --example producer          # with a worker running: cargo run --example worker
//! ```

mod shared;

use std::time::Duration;

use shared::{Add, AddArgs};
use zrq::{Client, NewJob};

#[tokio::main]
async fn main() -> zrq::Result<()> {
    let client = Client::connect(&shared::url()).await?;
    let queue = client.queue(&shared::queue_name());
    let count = shared::env_number("ZRQ_JOBS", 10) as i64;

    // One job, waited for: the wait happens inside Redis (ZRQ.RESULT … BLOCK).
    let job = queue
        .enqueue_task::<Add>(&AddArgs {
            a: 1,
            b: 2,
            work_ms: 100,
        })
        .await?;
    let sum: i64 = job.wait(Duration::from_secs(30)).await?;
    println!("job {} completed: 1 + 2 = {sum}", job.id());

    // Many jobs in one round trip.
    let jobs = (0..count)
        .map(|i| {
            NewJob::of::<Add>(&AddArgs {
                a: i,
                b: i * i,
                work_ms: 200,
            })
        })
        .collect::<zrq::Result<Vec<_>>>()?;
    let handles = queue
        .enqueue_many(jobs)
        .await?
        .into_iter()
        .collect::<zrq::Result<Vec<_>>>()?;
    println!("enqueued {} jobs", handles.len());
    for (i, job) in (0..count).zip(&handles) {
        let sum: i64 = job.wait(Duration::from_secs(30)).await?;
        println!("job {} completed: {i} + {} = {sum}", job.id(), i * i);
    }
    Ok(())
}

//! Workflows resolved inside Redis: a chain whose steps hand their results on, and a group of
//! jobs with a callback that runs once when all of them are done. Runs its own worker.
//!
//! ```sh
//! cargo run --example workflow     # against ZRQ_URL (default redis://127.0.0.1:6390)
//! ```

#[allow(dead_code)] // the shared tasks belong to the other examples
mod shared;

use std::time::Duration;

use zrq::{BatchOutcome, Client, NewJob, Task, Worker};

/// Splits a text into words.
struct Split;
impl Task for Split {
    const NAME: &'static str = "split";
    type Args = String;
    type Output = Vec<String>;
}

/// Counts the words the previous step produced, plus `extra`.
struct Count;
impl Task for Count {
    const NAME: &'static str = "count";
    type Args = usize;
    type Output = usize;
}

/// Squares a number (a group member).
struct Square;
impl Task for Square {
    const NAME: &'static str = "square";
    type Args = u64;
    type Output = u64;
}

/// The group's callback: told how many members succeeded and failed.
struct Done;
impl Task for Done {
    const NAME: &'static str = "done";
    type Args = BatchOutcome<String>;
    type Output = String;
}

#[tokio::main]
async fn main() -> zrq::Result<()> {
    let client = Client::connect(&shared::url()).await?;
    println!("backend: {:?}", client.backend());
    let queue = client.queue(&format!("{}-workflow", shared::queue_name()));

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = Worker::new(client.clone(), &[queue.name()])
        .handle::<Split, _, _>(|text, _| async move {
            Ok(text.split_whitespace().map(str::to_string).collect())
        })
        .handle::<Count, _, _>(|extra, ctx| async move {
            // The step before this one handed its result on.
            let words: Vec<String> = ctx.parent_result()?;
            Ok(words.len() + extra)
        })
        .handle::<Square, _, _>(|n, _| async move { Ok(n * n) })
        .handle::<Done, _, _>(|done, _| async move {
            Ok(format!(
                "{}: {} succeeded, {} failed",
                done.payload, done.succeeded, done.failed
            ))
        });
    let worker = tokio::spawn(worker.run_until(async move {
        let _ = stopped.await;
    }));

    // A chain: Count runs after Split and receives its result.
    let steps = queue
        .chain(&zrq::chain([
            NewJob::of::<Split>(&"jobs resolved inside redis".to_string())?,
            NewJob::of::<Count>(&100)?,
        ]))
        .await?;
    let counted: usize = steps[1].wait(Duration::from_secs(30)).await?;
    println!("chain: 4 words + 100 = {counted}");

    // A group of ten with a callback, enqueued exactly once when all ten finished.
    let members = (1..=10)
        .map(|n| NewJob::of::<Square>(&n))
        .collect::<zrq::Result<Vec<_>>>()?;
    let group = zrq::group(members).then::<Done, _>(&"squares".to_string())?;
    queue.batch(&group).await?;
    let info = queue
        .wait_batch(group.id(), Duration::from_secs(30), |p| {
            println!("group: {}/{} done", p.done, p.total)
        })
        .await?;
    if let Some(callback) = info.callback_id {
        let said: String = queue.job(&callback).wait(Duration::from_secs(30)).await?;
        println!("callback: {said}");
    }

    let _ = stop.send(());
    if let Ok(stats) = worker.await {
        println!("worker: {:?}", stats?);
    }
    Ok(())
}

//! What the chaos worker and the chaos tests share: the task they run and the run log.
//!
//! The `chaos` task fails on purpose on its first `fail_first` attempts and succeeds after, so a
//! test knows how many attempts each job needs when nothing goes wrong. Every execution is
//! appended to a run log (one file per worker process, written before the job's outcome is
//! reported), so a test can tell afterwards which attempts really ran, and compare that with
//! the moments it killed or paused workers.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The task of the chaos tests.
pub struct Chaos;

/// Arguments of [`Chaos`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChaosArgs {
    /// Attempts 1..=fail_first fail on purpose; later ones succeed.
    pub fail_first: i64,
    /// How long each attempt works before reporting, in ms.
    pub work_ms: u64,
}

impl zrq::Task for Chaos {
    const NAME: &'static str = "chaos";
    type Args = ChaosArgs;
    /// The attempt that succeeded.
    type Output = i64;
}

/// One execution: attempt `attempt` of job `id` of `queue` started running.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Run {
    /// The job's queue.
    pub queue: String,
    /// The job id.
    pub id: String,
    /// The attempt number the worker was given.
    pub attempt: i64,
}

impl Run {
    /// The run-log line of this execution (newline included). Names hold no spaces.
    pub fn line(&self) -> String {
        format!("{} {} {}\n", self.queue, self.id, self.attempt)
    }

    /// Reads a line written by [`Run::line`].
    pub fn parse(line: &str) -> Option<Run> {
        let mut parts = line.split(' ');
        let run = Run {
            queue: parts.next()?.to_string(),
            id: parts.next()?.to_string(),
            attempt: parts.next()?.trim().parse().ok()?,
        };
        parts.next().is_none().then_some(run)
    }
}

/// Every execution logged in the `*.log` files of `dir`. A line cut short by a SIGKILL in the
/// middle of its write is left out (the attempt it would name had not started its work).
pub fn read_runs(dir: &Path) -> std::io::Result<Vec<Run>> {
    let mut runs = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "log") {
            let text = std::fs::read_to_string(&path)?;
            runs.extend(
                text.split_inclusive('\n')
                    .filter(|l| l.ends_with('\n'))
                    .filter_map(Run::parse),
            );
        }
    }
    runs.sort();
    Ok(runs)
}

//! `ZRQ.RESULT <queue> <id> [BLOCK <ms>]` → `{state, result?, error?, finished_at}` once the job
//! has finished (completed, dead or cancelled); nil while it has not; `NOJOB` if there is no such
//! job. With `BLOCK` the module waits inside Redis until the job finishes (woken by the ACK, the
//! final FAIL or the CANCEL that finishes it), or the time is up (nil).

use super::load_job;
use crate::args::{self, Options, MAX_DURATION_MS};
use crate::keys::QueueKeys;
use crate::store::Store;
use crate::{Reply, Result, ZrqError};

/// Options of `ZRQ.RESULT` (the Lua library's table is generated from it).
pub const OPTIONS: [&str; 1] = ["BLOCK"];

/// Parsed arguments of `ZRQ.RESULT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultOf {
    /// The job's queue.
    pub queue: String,
    /// The job id.
    pub id: String,
    /// How long to wait in ms (0 = forever); `None` = do not wait.
    pub block: Option<i64>,
}

impl ResultOf {
    /// Parses the arguments after the command name.
    pub fn parse(args: &[&[u8]]) -> Result<Self> {
        let [queue, id, rest @ ..] = args else {
            return Err(ZrqError::arity("zrq.result"));
        };
        let mut cmd = ResultOf {
            queue: args::name("queue", queue)?.to_string(),
            id: args::name("id", id)?.to_string(),
            block: None,
        };
        let mut options = Options::new(rest);
        while let Some((_, value)) = options.next(&OPTIONS)? {
            cmd.block = Some(args::integer("BLOCK", value, 0, MAX_DURATION_MS)?);
        }
        Ok(cmd)
    }

    /// The keys a waiting client blocks on: the job's record, signalled when the job finishes,
    /// and the queue's `stats`, signalled when a job is deleted (a deleted record cannot wake
    /// anyone: Redis serves blocked clients only on keys that exist).
    pub fn wait_keys(&self) -> [String; 2] {
        let keys = QueueKeys::new(&self.queue);
        [keys.job(&self.id), keys.stats()]
    }

    /// The outcome if the job has finished, `Nil` if not.
    pub fn apply(&self, store: &mut dyn Store) -> Result<Reply> {
        let keys = QueueKeys::new(&self.queue);
        let Some(job) = load_job(store, &keys, &self.id)? else {
            return Err(ZrqError::no_job(&self.queue, &self.id));
        };
        if !job.state.is_final() {
            return Ok(Reply::Nil);
        }
        let mut outcome = vec![("state", Reply::Bulk(job.state.as_str().to_string()))];
        if let Some(result) = job.result {
            outcome.push(("result", Reply::Bulk(result)));
        }
        if let Some(error) = job.error {
            outcome.push(("error", Reply::Bulk(error)));
        }
        if let Some(finished) = job.finished_at {
            outcome.push(("finished_at", Reply::Int(finished)));
        }
        Ok(Reply::Map(outcome))
    }
}

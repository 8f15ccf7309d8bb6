//! `ZRQ.DEAD <queue> [COUNT <n>] [CURSOR <c>]` → `[next-cursor, [job…]]`: dead jobs, oldest death
//! first, each with its last error. Cursor `0` starts; a returned cursor `0` means the end. A page
//! holds fewer than `COUNT` jobs when their records reach `zrq.reply-max-bytes`.

use super::{check_types, load_jobs, next_rank, page, paging, rank_cursor};
use crate::args::{self, Options};
use crate::keys::QueueKeys;
use crate::store::KeyType;
use crate::store::Store;
use crate::{Reply, Result, ZrqError};

/// Parsed arguments of `ZRQ.DEAD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dead<'a> {
    /// The queue.
    pub queue: &'a str,
    /// Page size.
    pub count: i64,
    /// Rank in the dead set to continue from (reached in O(log n), however deep).
    pub cursor: i64,
}

impl<'a> Dead<'a> {
    /// Parses the arguments after the command name.
    pub fn parse(args: &'a [&'a [u8]]) -> Result<Self> {
        let [queue, rest @ ..] = args else {
            return Err(ZrqError::arity("zrq.dead"));
        };
        let queue = args::name("queue", queue)?;
        let (count, cursor) = paging(&mut Options::new(rest), 0, rank_cursor)?;
        Ok(Dead {
            queue,
            count,
            cursor,
        })
    }

    /// One page of dead jobs.
    pub fn apply(&self, store: &mut dyn Store) -> Result<Reply> {
        let keys = QueueKeys::new(self.queue);
        check_types(store, &[(&keys.dead(), KeyType::ZSet)])?;
        let ids = store.zrange(&keys.dead(), self.cursor, self.count)?;
        let total = store.zcard(&keys.dead())?;
        let (jobs, covered) = load_jobs(store, &keys, &ids)?;
        let covered = i64::try_from(covered).unwrap_or(i64::MAX);
        Ok(page(next_rank(self.cursor, covered, total), jobs))
    }
}

//! `ZRQ.LIST <queue> <state> [COUNT <n>] [CURSOR <c>]` → `[next-cursor, [job…]]`: the jobs in a
//! state, in the order they will be (or were) handled; active jobs carry their consumer and start
//! time. Cursor `0` starts; a returned cursor `0` means the end.

use super::{check_queue_types, load_jobs, page, paging};
use crate::args::{self, Options};
use crate::keys::{QueueKeys, ENTRY_FIELD, GROUP, MAX_PRIORITY};
use crate::state::State;
use crate::store::{KeyType, Store};
use crate::{Reply, Result, ZrqError};

/// Parsed arguments of `ZRQ.LIST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List<'a> {
    /// The queue.
    pub queue: &'a str,
    /// The state listed.
    pub state: State,
    /// Page size.
    pub count: i64,
    /// Position to continue from.
    pub cursor: i64,
}

impl<'a> List<'a> {
    /// Parses the arguments after the command name.
    pub fn parse(args: &'a [&'a [u8]]) -> Result<Self> {
        let [queue, state, rest @ ..] = args else {
            return Err(ZrqError::arity("zrq.list"));
        };
        let queue = args::name("queue", queue)?;
        let names: Vec<&str> = State::ALL.iter().map(|s| s.as_str()).collect();
        let state = std::str::from_utf8(state)
            .ok()
            .and_then(|s| State::parse(&s.to_ascii_lowercase()))
            .ok_or_else(|| ZrqError::not_one_of("state", state, &names))?;
        let (count, cursor) = paging(&mut Options::new(rest))?;
        Ok(List {
            queue,
            state,
            count,
            cursor,
        })
    }

    /// One page of jobs in the state.
    pub fn apply(&self, store: &mut dyn Store) -> Result<Reply> {
        let keys = QueueKeys::new(self.queue);
        check_queue_types(store, &keys)?;
        let (ids, total) = match self.state {
            State::Pending => self.pending_ids(store, &keys)?,
            state => {
                let index = match state {
                    State::Waiting => keys.waiting(),
                    State::Scheduled => keys.scheduled(),
                    State::Active => keys.active(),
                    State::Retrying => keys.retrying(),
                    State::Completed => keys.completed(),
                    State::Cancelled => keys.cancelled(),
                    _ => keys.dead(),
                };
                (
                    store.zrange(&index, self.cursor, self.count)?,
                    store.zcard(&index)?,
                )
            }
        };
        let next = self.cursor.saturating_add(self.count);
        let next = if next < total { next } else { 0 };
        Ok(page(next, load_jobs(store, &keys, &ids)?))
    }

    /// Pending job ids in delivery order (priority 9 first), and how many there are.
    fn pending_ids(&self, store: &mut dyn Store, keys: &QueueKeys) -> Result<(Vec<String>, i64)> {
        let (mut ids, mut total, mut skip) = (Vec::new(), 0, self.cursor);
        for priority in (0..=MAX_PRIORITY).rev() {
            let stream = keys.stream_at(priority);
            if store.key_type(&stream)? == KeyType::Missing {
                continue;
            }
            let len = store.undelivered_len(&stream, GROUP)?;
            total += len;
            let wanted = self.count - i64::try_from(ids.len()).unwrap_or(i64::MAX);
            if skip >= len {
                skip -= len;
                continue;
            }
            if wanted > 0 {
                let entries = store.undelivered(&stream, GROUP, skip, wanted)?;
                ids.extend(entries.into_iter().filter_map(|(_, fields)| {
                    fields
                        .into_iter()
                        .find(|(f, _)| f == ENTRY_FIELD)
                        .map(|(_, v)| v)
                }));
            }
            skip = 0;
        }
        Ok((ids, total))
    }
}

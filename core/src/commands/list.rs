//! `ZRQ.LIST <queue> <state> [COUNT <n>] [CURSOR <c>]` → `[next-cursor, [job…]]`: the jobs in a
//! state, in the order they will be (or were) handled; active jobs carry their consumer and start
//! time. Cursor `0` starts; a returned cursor `0` means the end.
//!
//! A page costs what it returns, however deep the cursor: for the states kept in a sorted set the
//! cursor is a rank (reached in O(log n)); for `pending`, kept in the priority streams, it is the
//! position of the last job listed, `<priority>:<entry-id>`, and the next page reads on from there.
//! A page holds fewer than `COUNT` jobs when their records reach `zrq.reply-max-bytes`.

use super::{
    check_queue_types, job_at, load_jobs, load_kept, load_page, next_rank, page, paging,
    rank_cursor, LOG_FIELD,
};
use crate::args::{self, Options};
use crate::keys::{QueueKeys, GROUP, MAX_PRIORITY};
use crate::state::State;
use crate::store::{entry_id, KeyType, Store, StreamEntry};
use crate::{Reply, Result, ZrqError};

/// Where a page of `LIST` starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor<'a> {
    /// A rank in the state's sorted set (0 = the first page).
    Rank(i64),
    /// For `pending`: after this entry of the stream of this priority (`None` = the first page).
    After(Option<(i64, &'a str)>),
    /// For `completed` and `cancelled`, once their sorted set is listed: after this entry of the
    /// state's log ([`QueueKeys::log`]), which lists the jobs kept in its records hash.
    Log(&'a str),
}

/// The prefix of a cursor into a state's log: `log:<entry-id>`.
const LOG_CURSOR: &str = "log:";

/// Reads a `completed` or `cancelled` cursor: a rank in the state's sorted set (`0` to start),
/// or `log:<ms>-<seq>` as a previous page returned it.
fn kept_cursor(raw: &[u8]) -> Result<Cursor<'_>> {
    let Some(entry) = raw.strip_prefix(LOG_CURSOR.as_bytes()) else {
        return rank_cursor(raw).map(Cursor::Rank);
    };
    let bad = || {
        ZrqError::invalid_cursor(
            raw,
            "0, a rank or log:<entry-id> as returned by ZRQ.LIST completed or cancelled",
        )
    };
    let entry = std::str::from_utf8(entry).map_err(|_| bad())?;
    if !is_cursor_entry(entry) {
        return Err(bad());
    }
    Ok(Cursor::Log(entry))
}

/// Whether `entry` is a stream id as a cursor holds it: `<ms>-<seq>`, at most 19 digits each
/// (always below 2^64, for Redis and for Lua).
fn is_cursor_entry(entry: &str) -> bool {
    let Some((ms, seq)) = entry.split_once('-') else {
        return false;
    };
    let digits = |part: &str| (1..=19).contains(&part.len());
    digits(ms) && digits(seq) && entry_id(entry).is_some()
}

/// Reads a `pending` cursor: `0`, or `<priority>:<ms>-<seq>` as a previous page returned it.
fn pending_cursor(raw: &[u8]) -> Result<Cursor<'_>> {
    let bad = || {
        ZrqError::invalid_cursor(
            raw,
            "0 or <priority>:<entry-id> as returned by ZRQ.LIST pending",
        )
    };
    if raw == b"0" {
        return Ok(Cursor::After(None));
    }
    let text = std::str::from_utf8(raw).map_err(|_| bad())?;
    let (priority, entry) = text.split_once(':').ok_or_else(bad)?;
    let priority = match priority.as_bytes() {
        [digit] if digit.is_ascii_digit() => i64::from(digit - b'0'),
        _ => return Err(bad()),
    };
    if priority > MAX_PRIORITY || !is_cursor_entry(entry) {
        return Err(bad());
    }
    Ok(Cursor::After(Some((priority, entry))))
}

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
    pub cursor: Cursor<'a>,
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
        let mut options = Options::new(rest);
        let (count, cursor) = if state == State::Pending {
            paging(&mut options, Cursor::After(None), pending_cursor)?
        } else if state.is_kept() {
            paging(&mut options, Cursor::Rank(0), kept_cursor)?
        } else {
            paging(&mut options, Cursor::Rank(0), |raw| {
                rank_cursor(raw).map(Cursor::Rank)
            })?
        };
        Ok(List {
            queue,
            state,
            count,
            cursor,
        })
    }

    /// One page of jobs in the state: `COUNT` of them, or fewer when their records reach
    /// `zrq.reply-max-bytes` (the cursor then resumes after the last one returned).
    pub fn apply(&self, store: &mut dyn Store) -> Result<Reply> {
        let keys = QueueKeys::new(self.queue);
        check_queue_types(store, &keys)?;
        match (&self.cursor, self.state) {
            (Cursor::After(after), _) => {
                let mut found = self.pending_page(store, &keys, *after)?;
                let shown = found.len().min(usize::try_from(self.count).unwrap_or(0));
                // Each job from the entry just read (job_at), not read again by its id.
                let listed = found[..shown]
                    .iter_mut()
                    .map(|(priority, (entry, fields))| {
                        (*priority, &*entry, std::mem::take(fields))
                    });
                let (jobs, covered) =
                    load_page(store, listed, |store, (priority, entry, fields)| {
                        job_at(store, &keys, priority, entry, fields)
                    })?;
                // More to list: what the page did not cover, or the entry read beyond it.
                let next = match covered.checked_sub(1).map(|last| &found[last]) {
                    Some((priority, (entry, _))) if covered < found.len() => {
                        format!("{priority}:{entry}")
                    }
                    _ => "0".to_string(),
                };
                Ok(page(next, jobs))
            }
            (Cursor::Log(after), state) => self.log_page(store, &keys, state, Some(after)),
            (Cursor::Rank(rank), state) => {
                let index = match state {
                    State::Waiting => keys.waiting(),
                    State::Scheduled => keys.scheduled(),
                    State::Active => keys.active(),
                    State::Retrying => keys.retrying(),
                    State::Completed => keys.completed(),
                    State::Cancelled => keys.cancelled(),
                    _ => keys.dead(),
                };
                let ids = store.zrange(&index, *rank, self.count)?;
                let kept = keys.log(state);
                if ids.is_empty() && kept.is_some() {
                    // Past the sorted set: the jobs kept in the records hash, from the log's head.
                    return self.log_page(store, &keys, state, None);
                }
                let total = store.zcard(&index)?;
                let (jobs, covered) = load_jobs(store, &keys, &ids)?;
                let covered = i64::try_from(covered).unwrap_or(i64::MAX);
                let mut next = next_rank(*rank, covered, total);
                // The sorted set is done: the log comes next, if it holds anything.
                if let Some(log) = kept.filter(|_| next == "0") {
                    if !store.xrange_after(&log, None, 1)?.is_empty() {
                        next = format!("{LOG_CURSOR}0-0");
                    }
                }
                Ok(page(next, jobs))
            }
        }
    }

    /// A page of the jobs of `state` kept in its records hash, in the order of its log, after
    /// entry `after` (`None`: from the head). An entry whose record is gone (a job deleted by
    /// hand) is passed over; the cursor moves on all the same.
    fn log_page(
        &self,
        store: &mut dyn Store,
        keys: &QueueKeys,
        state: State,
        after: Option<&str>,
    ) -> Result<Reply> {
        let Some(log) = keys.log(state) else {
            return Ok(page("0".to_string(), Vec::new()));
        };
        if store.key_type(&log)? == KeyType::Missing {
            return Ok(page("0".to_string(), Vec::new()));
        }
        let found = store.xrange_after(&log, after, self.count.saturating_add(1))?;
        let shown = found.len().min(usize::try_from(self.count).unwrap_or(0));
        let listed = found[..shown].iter().map(|(_, fields)| {
            fields
                .iter()
                .find(|(f, _)| f == LOG_FIELD)
                .map(|(_, id)| id.as_str())
        });
        let (jobs, covered) = load_page(store, listed, |store, id| match id {
            Some(id) => load_kept(store, keys, id, state),
            None => Ok(None),
        })?;
        let next = match covered.checked_sub(1).map(|last| &found[last]) {
            Some((entry, _)) if covered < found.len() => format!("{LOG_CURSOR}{entry}"),
            _ => "0".to_string(),
        };
        Ok(page(next, jobs))
    }

    /// Pending jobs' entries in delivery order (priority 9 first, oldest first), starting after
    /// `after`: `(priority, (entry, fields))` of up to `count` + 1 of them (one beyond the page, to
    /// know whether there is a next one).
    fn pending_page(
        &self,
        store: &mut dyn Store,
        keys: &QueueKeys,
        after: Option<(i64, &str)>,
    ) -> Result<Vec<(i64, StreamEntry)>> {
        let wanted = usize::try_from(self.count).unwrap_or(0) + 1;
        let mut found = Vec::new();
        for priority in (0..=MAX_PRIORITY).rev() {
            let resume = match after {
                Some((listed, _)) if listed < priority => continue,
                Some((listed, entry)) if listed == priority => Some(entry),
                _ => None,
            };
            let stream = keys.stream_at(priority);
            if found.len() >= wanted || store.key_type(&stream)? == KeyType::Missing {
                continue;
            }
            let left = i64::try_from(wanted - found.len()).unwrap_or(i64::MAX);
            for (entry, fields) in store.undelivered(&stream, GROUP, resume, left)? {
                found.push((priority, (entry, fields)));
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_cursors() {
        let cases: &[(&[u8], Option<Cursor>)] = &[
            (b"0", Some(Cursor::After(None))),
            (b"9:1-0", Some(Cursor::After(Some((9, "1-0"))))),
            (
                b"0:1732900000000-12",
                Some(Cursor::After(Some((0, "1732900000000-12")))),
            ),
            (b"10:1-0", None),
            (b"a:1-0", None),
            (b"5", None),
            (b"5:1", None),
            (b"5:1-", None),
            (b"5:-1-0", None),
            (b"5:+1-0", None),
            (b"5:12345678901234567890-0", None),
            (b"00", None),
        ];
        for (raw, want) in cases {
            assert_eq!(pending_cursor(raw).ok(), *want, "{raw:?}");
        }
    }
}

//! `ZRQ.REQUEUE <queue> <id>` → 1 if the dead job is `pending` again, else 0.
//! `ZRQ.REQUEUE <queue> ALL [COUNT <n>] [CURSOR <c>]` → `[next-cursor, requeued]`: up to `COUNT`
//! dead jobs (default and most `zrq.requeue-max`), oldest death first, put back to `pending`; fewer
//! when their records reach `zrq.reply-max-bytes`.
//!
//! A requeued job gets a fresh attempt budget (its last error is kept for reference). `ALL` works
//! in bounded pages so that no call holds the server long, whatever the size of the dead set: a
//! client calls again with the returned cursor until it is `0`. Requeued jobs leave the dead set,
//! so a page starts after only what the pages before it left in place (records that cannot be
//! read): its rank. The cursor is that rank plus one, so that `0` can mean the end (`0` given
//! starts at rank 0 too).

use super::{check_queue_types, load_job, make_pending, rank_cursor, Budget};
use crate::args::{self, Options};
use crate::config::{Config, REQUEUE_MAX};
use crate::job::Job;
use crate::keys::QueueKeys;
use crate::reply::code;
use crate::state::{Event, State};
use crate::store::Store;
use crate::{Reply, Result, ZrqError};

/// Options of `ZRQ.REQUEUE` (the Lua library's table is generated from it).
pub const OPTIONS: [&str; 2] = ["COUNT", "CURSOR"];

/// What a REQUEUE names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target<'a> {
    /// One dead job.
    One(&'a str),
    /// A page of the dead set: at most `count` jobs from rank `cursor`.
    All {
        /// Most dead jobs examined.
        count: i64,
        /// Rank in the dead set where the page starts.
        rank: i64,
    },
}

/// Parsed arguments of `ZRQ.REQUEUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requeue<'a> {
    /// The queue.
    pub queue: &'a str,
    /// One job, or a page of all dead jobs.
    pub target: Target<'a>,
}

impl<'a> Requeue<'a> {
    /// Parses the arguments after the command name, within the limits of `config`.
    pub fn parse(args: &'a [&'a [u8]], config: &Config) -> Result<Self> {
        let [queue, id, rest @ ..] = args else {
            return Err(ZrqError::arity("zrq.requeue"));
        };
        let queue = args::name("queue", queue)?;
        let id = args::name("id", id)?;
        if !id.eq_ignore_ascii_case("ALL") {
            // Options page through ALL; one job takes none.
            if !rest.is_empty() {
                return Err(ZrqError::arity("zrq.requeue"));
            }
            return Ok(Requeue {
                queue,
                target: Target::One(id),
            });
        }
        let (mut count, mut cursor) = (config.requeue_max, 0);
        let mut options = Options::new(rest);
        while let Some((option, value)) = options.next(&OPTIONS)? {
            if option == "COUNT" {
                count = args::integer("COUNT", value, 1, i64::MAX)?;
                if count > config.requeue_max {
                    let subject = format!("COUNT asks for more than {} jobs", config.requeue_max);
                    return Err(ZrqError::limit(&subject, &REQUEUE_MAX, config.requeue_max));
                }
            } else {
                cursor = rank_cursor(value)?;
            }
        }
        Ok(Requeue {
            queue,
            target: Target::All {
                count,
                rank: cursor.saturating_sub(1).max(0),
            },
        })
    }

    /// Requeues the dead job, or a page of them.
    pub fn apply(&self, store: &mut dyn Store) -> Result<Reply> {
        let keys = QueueKeys::new(self.queue);
        check_queue_types(store, &keys)?;
        match self.target {
            Target::One(id) => {
                // The one job named by the command is refused if unreadable, before any write.
                let requeued = match load_job(store, &keys, id)? {
                    Some(job) => requeue(store, &keys, job)?,
                    None => false,
                };
                Ok(Reply::Int(if requeued {
                    code::DONE
                } else {
                    code::NOTHING
                }))
            }
            Target::All { count, rank } => {
                // The page is the dead set's ranks [rank, rank + count) as they are now.
                let listed = store
                    .zcard(&keys.dead())?
                    .saturating_sub(rank)
                    .clamp(0, count);
                let ids = if listed > 0 {
                    store.zrange(&keys.dead(), rank, listed)?
                } else {
                    Vec::new()
                };
                let mut budget = Budget::new(store);
                let (mut examined, mut requeued) = (0, 0);
                for id in &ids {
                    // An unreadable dead job is left alone (and in place), so the others are
                    // still requeued and an error never comes after a write.
                    let job = load_job(store, &keys, id).ok().flatten();
                    // The records read count against zrq.reply-max-bytes: the page ends
                    // before the one that would pass it.
                    if !budget.admit(job.as_ref().map_or(0, Job::text_bytes)) {
                        break;
                    }
                    examined += 1;
                    if let Some(job) = job {
                        if requeue(store, &keys, job)? {
                            requeued += 1;
                        }
                    }
                }
                // What the page left in place still comes before the next page.
                let next = rank.saturating_add(examined - requeued);
                let next = if store.zcard(&keys.dead())? > next {
                    next.saturating_add(1)
                } else {
                    0
                };
                Ok(Reply::Array(vec![
                    Reply::Bulk(next.to_string()),
                    Reply::Int(requeued),
                ]))
            }
        }
    }
}

/// Puts `job` back to `pending` with a fresh attempt budget if it is dead; whether it was.
fn requeue(store: &mut dyn Store, keys: &QueueKeys, mut job: Job) -> Result<bool> {
    if job.state != State::Dead {
        return Ok(false);
    }
    let id = job.id.clone();
    store.zrem(&keys.dead(), &id)?;
    // A fresh attempt budget: `attempt` back to its default, 0 (left out of the record), and no
    // end yet; written with the rest of the record by make_pending.
    job.attempt = 0;
    job.finished_at = None;
    job.cancel_requested = None;
    if let Some(unique) = &job.unique {
        if store.hget(&keys.unique(), unique)?.is_none() {
            store.hset(&keys.unique(), &[(unique, &id)])?;
        }
    }
    make_pending(store, keys, &mut job, Event::Requeue)?;
    Ok(true)
}

//! `ZRQ.SCHEDULES <queue>` → the queue's recurring schedules, by name, each a map with its
//! definition, `last_run` and `next_run`.

use super::check_types;
use super::schedule::Definition;
use crate::args;
use crate::keys::QueueKeys;
use crate::store::{KeyType, Store};
use crate::{Reply, Result, ZrqError};

/// Parsed arguments of `ZRQ.SCHEDULES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedules<'a> {
    /// The queue.
    pub queue: &'a str,
}

impl<'a> Schedules<'a> {
    /// Parses the arguments after the command name.
    pub fn parse(args: &'a [&'a [u8]]) -> Result<Self> {
        let [queue] = args else {
            return Err(ZrqError::arity("zrq.schedules"));
        };
        Ok(Schedules {
            queue: args::name("queue", queue)?,
        })
    }

    /// Lists the schedules.
    pub fn apply(&self, store: &mut dyn Store) -> Result<Reply> {
        let keys = QueueKeys::new(self.queue);
        check_types(
            store,
            &[
                (&keys.schedules(), KeyType::Hash),
                (&keys.ticks(), KeyType::ZSet),
            ],
        )?;
        let mut definitions = store.hgetall(&keys.schedules())?;
        definitions.sort();
        let mut replies = Vec::with_capacity(definitions.len());
        for (name, text) in definitions {
            let definition = Definition::from_json(&keys.schedules(), &text)?;
            let next = store.zscore(&keys.ticks(), &name)?;
            replies.push(definition.to_reply(next));
        }
        Ok(Reply::Array(replies))
    }
}

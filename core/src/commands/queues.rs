//! `ZRQ.QUEUES [CURSOR <c>] [COUNT <n>]` → `[next-cursor, [queue…]]`: one step of a scan for the
//! queues on this server (those with a `stats` key), listing only those the caller may read.
//!
//! Each call examines about `COUNT` keys (SCAN's COUNT), so its work is bounded whatever the size
//! of the keyspace; a page may hold few names, or none, before the end. A cursor of 0 ends the
//! scan. As with SCAN, a queue may show up twice when the keyspace is resized meanwhile. The ACL
//! subject of a queue is its name, the key every zrq command declares: a user sees the queues
//! whose name it may read. In a cluster it answers for the node it runs on.
//!
//! `COUNT`'s bounds come from measuring SCAN MATCH on a server with 10^6 keys (Redis 7.0, the
//! 2-core test machine under load): about 1.6 µs per key examined, so the maximum, 250, is a
//! step of about 0.4 ms, and the default, 100, one of about 0.2 ms (docs/PROTOCOL.md).

use super::{page, rank_cursor};
use crate::args::{self, Options};
use crate::keys::{queue_of_marker, QUEUE_MARKER_PATTERN};
use crate::store::Store;
use crate::{Reply, Result};

/// `COUNT` when none is given: a step of about 0.2 ms on a server with 10^6 keys.
pub const DEFAULT_COUNT: i64 = 100;
/// The largest `COUNT`: a step of about 0.4 ms on a server with 10^6 keys, so that a client
/// paging through a large keyspace never holds the server for long.
pub const MAX_COUNT: i64 = 250;

/// Options of `ZRQ.QUEUES` (the Lua library's table is generated from it).
pub const OPTIONS: [&str; 2] = ["COUNT", "CURSOR"];

/// Parsed arguments of `ZRQ.QUEUES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queues {
    /// Where the scan resumes (0 to start).
    pub cursor: i64,
    /// About how many keys this step examines.
    pub count: i64,
}

impl Queues {
    /// Parses the arguments after the command name.
    pub fn parse(args: &[&[u8]]) -> Result<Self> {
        let mut options = Options::new(args);
        let mut queues = Queues {
            cursor: 0,
            count: DEFAULT_COUNT,
        };
        while let Some((option, value)) = options.next(&OPTIONS)? {
            match option {
                "COUNT" => queues.count = args::integer("COUNT", value, 1, MAX_COUNT)?,
                _ => queues.cursor = rank_cursor(value)?,
            }
        }
        Ok(queues)
    }

    /// Lists the readable queues of one step of the scan, sorted.
    pub fn apply(&self, store: &mut dyn Store) -> Result<Reply> {
        let (next, keys) = store.scan_page(self.cursor, QUEUE_MARKER_PATTERN, self.count)?;
        // A key that only looks like a marker (`zrq:{a}:b}:stats`) names no valid queue.
        let queues = keys
            .iter()
            .filter_map(|key| queue_of_marker(key))
            .filter(|queue| args::name("queue", queue.as_bytes()).is_ok())
            .map(str::to_string)
            .collect();
        let mut names = store.readable(queues);
        names.sort();
        names.dedup();
        let names = names.into_iter().map(Reply::Bulk).collect();
        Ok(page(next.to_string(), names))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        type Case<'a> = (&'a [&'a str], std::result::Result<(i64, i64), &'a str>);
        let cases: &[Case] = &[
            (&[], Ok((0, 100))),
            (&["CURSOR", "42", "count", "250"], Ok((42, 250))),
            (&["COUNT", "1", "CURSOR", "0"], Ok((0, 1))),
            (&["CURSOR", "9223372036854775807"], Ok((i64::MAX, 100))),
            (
                &["COUNT", "0"],
                Err("ERR COUNT must be an integer from 1 to 250, got '0'"),
            ),
            (
                &["COUNT", "251"],
                Err("ERR COUNT must be an integer from 1 to 250, got '251'"),
            ),
            (
                &["CURSOR", "-1"],
                Err("ERR CURSOR must be an integer from 0 to 9223372036854775807, got '-1'"),
            ),
            (
                &["CURSOR", "9223372036854775808"],
                Err("ERR CURSOR must be an integer from 0 to 9223372036854775807, got '9223372036854775808'"),
            ),
            (&["CURSOR", "x1"], Err("ERR CURSOR must be an integer from 0 to 9223372036854775807, got 'x1'")),
            (&["x"], Err("ERR unknown option 'x'")),
            (&["COUNT"], Err("ERR option COUNT needs a value")),
            (&["COUNT", "5", "COUNT", "6"], Err("ERR option COUNT given more than once")),
        ];
        for (args, want) in cases {
            let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
            let got = Queues::parse(&bytes)
                .map(|q| (q.cursor, q.count))
                .map_err(|e| e.to_string());
            assert_eq!(got, want.map_err(str::to_string), "{args:?}");
        }
    }
}

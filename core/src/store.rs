//! The storage seam: the Redis operations the command logic needs, and nothing else.
//!
//! The module implements [`Store`] over the Redis module API (every write replicated as its
//! effect, with explicit ids and timestamps). Keeping the list short and typed keeps the commands
//! readable and shows at a glance which Redis structures zrq touches.

use crate::config::Config;
use crate::state::State;
use crate::Result;

/// The type of a Redis key, as far as zrq cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// The key does not exist.
    Missing,
    /// A string.
    String,
    /// A list.
    List,
    /// A hash.
    Hash,
    /// A set.
    Set,
    /// A sorted set.
    ZSet,
    /// A stream.
    Stream,
    /// A module type.
    Other,
}

impl KeyType {
    /// The type's name as `TYPE` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Missing => "none",
            KeyType::String => "string",
            KeyType::List => "list",
            KeyType::Hash => "hash",
            KeyType::Set => "set",
            KeyType::ZSet => "zset",
            KeyType::Stream => "stream",
            KeyType::Other => "module value",
        }
    }
}

/// A job record as it is stored at its key ([`Store::record`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredRecord {
    /// A packed record ([`crate::packed`]): its bytes, read into a job without a string made for
    /// each field ([`crate::job::Job::from_packed`]).
    Packed(Vec<u8>),
    /// A record of the earlier format (a hash): its fields as they are. Old queues keep working,
    /// and each such record becomes a packed one on its first write.
    Hash(Vec<(String, String)>),
}

impl StoredRecord {
    /// The job it holds: job `id` of `queue`, stored at `key` (named in errors). `CORRUPT` as
    /// [`crate::job::Job::from_packed`] and [`crate::job::Job::from_fields`] say.
    pub fn job(self, key: &str, queue: &str, id: &str) -> Result<crate::job::Job> {
        match self {
            StoredRecord::Packed(raw) => crate::job::Job::from_packed(key, queue, id, &raw),
            StoredRecord::Hash(fields) => crate::job::Job::from_fields(key, queue, id, fields),
        }
    }

    /// The value of field `name` as stored (`None`: not stored); a packed record is decoded
    /// whole first (`CORRUPT` when it does not follow the format).
    pub fn field(self, key: &str, name: &str) -> Result<Option<String>> {
        Ok(match self {
            StoredRecord::Packed(raw) => crate::packed::decode_tagged(key, &raw)?
                .into_iter()
                .find(|(field, _)| *field == name)
                .map(|(_, value)| value),
            StoredRecord::Hash(fields) => fields
                .into_iter()
                .find(|(field, _)| field == name)
                .map(|(_, value)| value),
        })
    }
}

/// A stream entry: its id and fields.
pub type StreamEntry = (String, Vec<(String, String)>);

/// A stream entry id `<ms>-<seq>` as numbers, to compare ids in their stream's order: each part
/// digits only and a u64 (leading zeros allowed, as Redis reads them).
pub fn entry_id(text: &str) -> Option<(u64, u64)> {
    entry_parts(text).map(|(ms, seq, _)| (ms, seq))
}

/// [`entry_id`], and whether both numbers are written canonically (`0`, or no leading zero), as
/// a generated job id names its entry. Read byte by byte: through `split_once` and `parse`
/// this measured ~430 instructions a call, and a job's life reads ids about ten times.
pub(crate) fn entry_parts(text: &str) -> Option<(u64, u64, bool)> {
    fn number(part: &[u8]) -> Option<u64> {
        if part.is_empty() {
            return None;
        }
        part.iter().try_fold(0u64, |n, d| {
            if d.is_ascii_digit() {
                n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
            } else {
                None
            }
        })
    }
    let bytes = text.as_bytes();
    let dash = bytes.iter().position(|b| *b == b'-')?;
    let (ms, seq) = (&bytes[..dash], &bytes[dash + 1..]);
    let canonical = |part: &[u8]| part.len() == 1 || part.first() != Some(&b'0');
    Some((number(ms)?, number(seq)?, canonical(ms) && canonical(seq)))
}

/// The smallest entry id greater than `text` (`<ms>-<seq + 1>`), or `None` if `text` is not an
/// entry id: the `MINID` that trims an entry and everything before it.
pub fn entry_after(text: &str) -> Option<String> {
    let (ms, seq) = entry_id(text)?;
    Some(match seq.checked_add(1) {
        Some(seq) => format!("{ms}-{seq}"),
        None => format!("{}-0", ms.checked_add(1)?),
    })
}

/// The stream entry id just before `text` (`None` for an id that is not one): what a consumer
/// group's last-delivered id is set to so that `text` is delivered next.
pub fn entry_before(text: &str) -> Option<String> {
    let (ms, seq) = entry_id(text)?;
    Some(match (ms, seq) {
        (_, 1..) => format!("{ms}-{}", seq - 1),
        (1.., 0) => format!("{}-{}", ms - 1, u64::MAX),
        (0, 0) => "0-0".to_string(),
    })
}

/// Redis operations used by the command logic, plus the environment a command runs in (clock,
/// randomness, settings). Keys are full key names; every value is text.
pub trait Store {
    /// The server's clock, unix milliseconds.
    fn now_ms(&self) -> i64;
    /// A random number (retry jitter).
    fn random(&mut self) -> u64;
    /// The server-wide settings.
    fn config(&self) -> Config;
    /// Whether the server is at its `maxmemory` (never without one). Commands flagged `deny-oom`
    /// are refused by Redis then; the timer, whose writes Redis does not refuse, asks before it
    /// creates data.
    fn memory_full(&mut self) -> bool;
    /// Counts a schedule tick the timer skipped because the memory was full.
    fn count_skipped_tick(&mut self);
    /// The type of `key`.
    fn key_type(&mut self, key: &str) -> Result<KeyType>;
    /// Deletes a key.
    fn del(&mut self, key: &str) -> Result<()>;
    /// Sets a string key.
    fn set(&mut self, key: &str, value: &str) -> Result<()>;
    /// Makes `key` expire after `ms`.
    fn pexpire(&mut self, key: &str, ms: i64) -> Result<()>;
    /// Wakes clients blocked on `key` (blocked FETCH and RESULT).
    fn signal(&mut self, key: &str);
    /// Whether a client is blocked waiting for the job whose record key is `key` (`RESULT …
    /// BLOCK`): such a job keeps its key when it ends (see `commands::kept_in_records`), because
    /// Redis wakes blocked clients only on keys that exist. Backends that cannot block answer
    /// `false`.
    fn awaited(&mut self, key: &str) -> bool;
    /// Tells the server's timer that `queue` has work due at `due` (unix ms): a delayed job, a
    /// retry or a schedule tick. Backends without timers ignore it.
    fn wake_at(&mut self, queue: &str, due: i64);
    /// Announces that job `id` entered `state`: publishes `<state> <id>` on `channel` (the
    /// queue's events channel) and counts the transition.
    fn announce(&mut self, channel: &str, id: &str, state: State) -> Result<()>;
    /// One step of a keyspace scan (SCAN `cursor` MATCH `pattern` COUNT `count`): the next cursor
    /// (0 at the end) and the names found, from about `count` keys examined.
    fn scan_page(&mut self, cursor: i64, pattern: &str, count: i64) -> Result<(i64, Vec<String>)>;
    /// The keys among `keys` that the user running the command may read (its ACL key
    /// permissions; Redis does not check a module's own key access).
    fn readable(&mut self, keys: Vec<String>) -> Vec<String>;
    /// Every field of a hash (empty when the key does not exist).
    fn hgetall(&mut self, key: &str) -> Result<Vec<(String, String)>>;
    /// A job record as stored ([`StoredRecord`]), `None` when the key does not exist: a string
    /// is a packed record ([`crate::packed`]), a hash a record of the earlier format. Any other
    /// type is `WRONGTYPE`.
    fn record(&mut self, key: &str) -> Result<Option<StoredRecord>>;
    /// Writes a whole job record (`packed`, see [`crate::packed`]) at `key`, replacing what the
    /// key holds, a record of the earlier format (hash) included: `SET key packed PX ms` with
    /// `expire_ms` (a finished job's retention), else `SET key packed KEEPTTL` (the key's TTL, if
    /// any, stays, as a write of some fields of a hash kept it). The caller checked the key's
    /// type before its first write ([`Store::record`]): SET replaces a key of any type.
    fn set_record(&mut self, key: &str, packed: &str, expire_ms: Option<i64>) -> Result<()>;
    /// Number of fields of a hash (0 when the key does not exist).
    fn hlen(&mut self, key: &str) -> Result<i64>;
    /// One field of a hash.
    fn hget(&mut self, key: &str, field: &str) -> Result<Option<String>>;
    /// Sets fields of a hash.
    fn hset(&mut self, key: &str, fields: &[(&str, &str)]) -> Result<()>;
    /// Deletes fields of a hash.
    fn hdel(&mut self, key: &str, fields: &[&str]) -> Result<()>;
    /// Adds `by` to a counter, an integer field of a hash (`HINCRBY`). A field that holds no
    /// integer (a counter edited by hand, which INFO reads as 0), or whose sum would overflow,
    /// is set to `by` instead (`HSET`): counting comes after a command's other writes, so it must
    /// not fail half-way through them.
    fn hincrby(&mut self, key: &str, field: &str, by: i64) -> Result<()>;
    /// Creates `stream` (empty) with consumer group `group` reading from its start.
    fn create_stream_with_group(&mut self, stream: &str, group: &str) -> Result<()>;
    /// Appends an entry with an id chosen by Redis, returned.
    fn xadd(&mut self, stream: &str, fields: &[(&str, &str)]) -> Result<String>;
    /// The fields of entry `entry` of `stream` (XRANGE stream entry entry COUNT 1), `None` when
    /// the stream has no such entry. `entry` is a valid stream id.
    fn xentry(&mut self, stream: &str, entry: &str) -> Result<Option<Vec<(String, String)>>>;
    /// Deletes an entry.
    fn xdel(&mut self, stream: &str, entry: &str) -> Result<()>;
    /// Delivers up to `count` new entries to `consumer` of `group` without adding them to the
    /// group's pending-entries list (XREADGROUP … NOACK … `>`): a delivered job is tracked by its
    /// record and its lease, and its entry is trimmed by the caller ([`Store::xtrim_below`]).
    fn xreadgroup(
        &mut self,
        stream: &str,
        group: &str,
        consumer: &str,
        count: i64,
    ) -> Result<Vec<StreamEntry>>;
    /// Deletes every entry of `stream` older than `min_id` (exact `XTRIM … MINID`): what FETCH
    /// has just delivered, which are the first entries of the stream.
    fn xtrim_below(&mut self, stream: &str, min_id: &str) -> Result<()>;
    /// Sets the group's last-delivered id to just before entry `first` (XGROUP SETID), so that
    /// the next read delivers `first` and the entries after it again, in order: how FETCH hands
    /// back the entries it read (without acknowledgement) beyond its budget.
    fn undeliver(&mut self, stream: &str, group: &str, first: &str) -> Result<()>;
    /// Number of entries of `stream` (XLEN; 0 when the key does not exist).
    fn xlen(&mut self, stream: &str) -> Result<i64>;
    /// Up to `count` entries of `stream`, oldest first, after entry `after` (exclusive) or from
    /// the first (XRANGE stream (after + COUNT count).
    fn xrange_after(
        &mut self,
        stream: &str,
        after: Option<&str>,
        count: i64,
    ) -> Result<Vec<StreamEntry>>;
    /// The size of `group`'s pending-entries list and its newest entry id (the XPENDING summary).
    fn pending_summary(&mut self, stream: &str, group: &str) -> Result<(i64, Option<String>)>;
    /// Up to `count` entries not yet delivered to `group`, oldest first, starting after entry
    /// `after` when given (a position a previous page ended at).
    fn undelivered(
        &mut self,
        stream: &str,
        group: &str,
        after: Option<&str>,
        count: i64,
    ) -> Result<Vec<StreamEntry>> {
        // FETCH trims what it delivers, so the stream holds undelivered entries only, except
        // for entries an older zrq delivered (left in the group's pending list, and in the stream
        // until a FETCH trims them), all older than every undelivered one: what follows the
        // newest pending entry is exactly the undelivered part. A page resumes after the later
        // of that and `after`.
        let (_, newest) = self.pending_summary(stream, group)?;
        let start = [newest.as_deref(), after]
            .into_iter()
            .flatten()
            .max_by_key(|id| entry_id(id));
        self.xrange_after(stream, start, count)
    }
    /// Number of entries in `stream` not yet delivered to `group`: its length, less the entries
    /// of jobs delivered before FETCH trimmed what it delivered (they stay in the stream and in
    /// the group's pending-entries list until acknowledged or trimmed, see [`Store::xack_del`]).
    fn undelivered_len(&mut self, stream: &str, group: &str) -> Result<i64> {
        let length = self.xlen(stream)?;
        let (pending, newest) = self.pending_summary(stream, group)?;
        let Some(newest) = newest.filter(|_| pending > 0) else {
            return Ok(length);
        };
        // Pending entries come only from an older zrq (FETCH acknowledges nothing now). They
        // are all in the stream until a FETCH trims what it delivers, which removes every one of
        // them (they precede what it delivered), and none afterwards: the stream's first entry
        // tells which.
        let first = self.xrange_after(stream, None, 1)?;
        let untrimmed = first
            .first()
            .is_some_and(|(first, _)| entry_id(first) <= entry_id(&newest));
        Ok(if untrimmed { length - pending } else { length })
    }
    /// Deletes the consumers of `group` that have no pending entry and have been idle for more
    /// than `idle_ms` (worker names that will not come back).
    fn prune_consumers(&mut self, stream: &str, group: &str, idle_ms: i64) -> Result<()>;
    /// Acknowledges an entry and deletes it from the stream: the entry of a job delivered before
    /// FETCH delivered without acknowledgement (a queue written by an older zrq), which stays in
    /// the group's pending-entries list until then.
    fn xack_del(&mut self, stream: &str, group: &str, entry: &str) -> Result<()>;
    /// Adds or updates a sorted-set member.
    fn zadd(&mut self, key: &str, score: i64, member: &str) -> Result<()>;
    /// Adds or updates several members of one sorted set in one write: what [`Store::zadd`] does
    /// for each, as a single `ZADD key score member …` (one keyspace event, one command on the
    /// replication stream). `members` is not empty.
    fn zadd_many(&mut self, key: &str, members: &[(i64, &str)]) -> Result<()>;
    /// Removes a sorted-set member.
    fn zrem(&mut self, key: &str, member: &str) -> Result<()>;
    /// Number of members.
    fn zcard(&mut self, key: &str) -> Result<i64>;
    /// Up to `count` members with score at most `max`, lowest first.
    fn zrange_upto(&mut self, key: &str, max: i64, count: i64) -> Result<Vec<String>>;
    /// Members by rank, `start` to `start + count - 1`, lowest score first.
    fn zrange(&mut self, key: &str, start: i64, count: i64) -> Result<Vec<String>>;
    /// The score of `member`, if present.
    fn zscore(&mut self, key: &str, member: &str) -> Result<Option<i64>>;
    /// The lowest score, if any.
    fn zfirst_score(&mut self, key: &str) -> Result<Option<i64>>;
    /// Removes every member with score at most `max` (ZREMRANGEBYSCORE key -inf max).
    fn zremrange_score(&mut self, key: &str, max: i64) -> Result<()>;
    /// Removes the members with score at most `max`, lowest first, about `count` of them: past
    /// `count`, those up to the score of the `count`-th (members tied with it go too), so that one
    /// call's work is bounded however many are due.
    fn zremrange_upto(&mut self, key: &str, max: i64, count: i64) -> Result<()> {
        // Usually nothing is due: answered by the read alone.
        let members = self.zrange_upto(key, max, count)?;
        let Some(last) = members.last() else {
            return Ok(());
        };
        // A full page: remove up to the last member's score, not everything due.
        let upto = if i64::try_from(members.len()).unwrap_or(i64::MAX) >= count {
            self.zscore(key, last)?.unwrap_or(max).min(max)
        } else {
            max
        };
        self.zremrange_score(key, upto)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_ids_are_read_digit_by_digit_with_their_form() {
        const MAX: u64 = u64::MAX;
        type Parts = Option<(u64, u64, bool)>;
        let cases: [(&str, Parts); 25] = [
            ("0-0", Some((0, 0, true))),
            ("1-0", Some((1, 0, true))),
            ("1764489600000-3", Some((1_764_489_600_000, 3, true))),
            ("01-0", Some((1, 0, false))),
            ("1-01", Some((1, 1, false))),
            ("00-0", Some((0, 0, false))),
            (
                "18446744073709551615-18446744073709551615",
                Some((MAX, MAX, true)),
            ),
            ("18446744073709551616-0", None),
            ("1-18446744073709551616", None),
            (
                "9999999999999999999-0",
                Some((9_999_999_999_999_999_999, 0, true)),
            ),
            (
                "10000000000000000000-0",
                Some((10_000_000_000_000_000_000, 0, true)),
            ),
            ("99999999999999999999-0", None),
            ("0-000000000000000000001", Some((0, 1, false))),
            ("+1-0", None),
            ("1-+0", None),
            ("-1", None),
            ("1-", None),
            ("-", None),
            ("", None),
            ("1", None),
            ("1-2-3", None),
            (" 1-0", None),
            ("1-0 ", None),
            ("\u{661}-0", None),
            ("p3:1-0", None),
        ];
        for (text, parts) in cases {
            assert_eq!(entry_parts(text), parts, "{text:?}");
            assert_eq!(
                entry_id(text),
                parts.map(|(ms, seq, _)| (ms, seq)),
                "{text:?}"
            );
        }
    }

    #[test]
    fn entry_after_is_the_next_id() {
        assert_eq!(entry_after("5-0").as_deref(), Some("5-1"));
        assert_eq!(
            entry_after("1700000000000-41").as_deref(),
            Some("1700000000000-42")
        );
        assert_eq!(
            entry_after(&format!("7-{}", u64::MAX)).as_deref(),
            Some("8-0")
        );
        assert_eq!(entry_after(&format!("{}-{}", u64::MAX, u64::MAX)), None);
        assert_eq!(entry_after("x-1"), None);
        assert_eq!(entry_after("12"), None);
    }

    #[test]
    fn entry_before_steps_back_one_id() {
        let cases = [
            ("5-3", Some("5-2")),
            ("5-0", Some("4-18446744073709551615")),
            ("0-1", Some("0-0")),
            ("0-0", Some("0-0")),
            ("x-1", None),
        ];
        for (id, want) in cases {
            assert_eq!(entry_before(id).as_deref(), want, "{id}");
        }
    }
}

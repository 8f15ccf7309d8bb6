//! The storage seam: the Redis operations the command logic needs, and nothing else.
//!
//! The module implements [`Store`] over the Redis module API (every write replicated as its
//! effect, with explicit ids and timestamps). Keeping the list short and typed keeps the commands
//! readable and shows at a glance which Redis structures zrq touches.

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

/// A stream entry read from a consumer group: its id and fields.
pub type StreamEntry = (String, Vec<(String, String)>);

/// Redis operations used by the command logic. Keys are full key names; every value is text.
pub trait Store {
    /// The server's clock, unix milliseconds.
    fn now_ms(&self) -> i64;
    /// The type of `key`.
    fn key_type(&mut self, key: &str) -> Result<KeyType>;
    /// Every field of a hash (empty when the key does not exist).
    fn hgetall(&mut self, key: &str) -> Result<Vec<(String, String)>>;
    /// One field of a hash.
    fn hget(&mut self, key: &str, field: &str) -> Result<Option<String>>;
    /// Sets fields of a hash.
    fn hset(&mut self, key: &str, fields: &[(&str, &str)]) -> Result<()>;
    /// Adds `by` to an integer field of a hash.
    fn hincrby(&mut self, key: &str, field: &str, by: i64) -> Result<()>;
    /// Creates `stream` (empty) with consumer group `group` reading from its start.
    fn create_stream_with_group(&mut self, stream: &str, group: &str) -> Result<()>;
    /// Appends an entry with an id chosen by Redis, returned.
    fn xadd(&mut self, stream: &str, fields: &[(&str, &str)]) -> Result<String>;
    /// Reads up to `count` new entries for `consumer` of `group` (XREADGROUP … `>`).
    fn xreadgroup(
        &mut self,
        stream: &str,
        group: &str,
        consumer: &str,
        count: i64,
    ) -> Result<Vec<StreamEntry>>;
    /// Moves a pending entry to `consumer` (XCLAIM with min-idle 0).
    fn xclaim(&mut self, stream: &str, group: &str, consumer: &str, entry: &str) -> Result<()>;
    /// Acknowledges an entry and deletes it from the stream.
    fn xack_del(&mut self, stream: &str, group: &str, entry: &str) -> Result<()>;
    /// Adds or updates a sorted-set member.
    fn zadd(&mut self, key: &str, score: i64, member: &str) -> Result<()>;
    /// Removes a sorted-set member.
    fn zrem(&mut self, key: &str, member: &str) -> Result<()>;
    /// Up to `count` members with score at most `max`, lowest first.
    fn zrange_upto(&mut self, key: &str, max: i64, count: i64) -> Result<Vec<String>>;
}

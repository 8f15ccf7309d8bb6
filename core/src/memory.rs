//! An in-memory [`Store`] for unit tests: the Redis structures zrq uses (strings, hashes, sorted
//! sets, streams with one kind of consumer group), key expiry against a settable clock, and a
//! record of what a command did outside the keyspace (events published, keys signalled, timer
//! wake-ups), so the command logic can be tested in milliseconds without a server.
//!
//! It follows Redis where the commands depend on it: an empty hash or sorted set is a missing
//! key (removing the last field or member deletes the key; a stream stays, empty), a key past its
//! TTL reads as missing, operations on a key of another type fail as the module's calls do (an
//! `INTERNAL` error naming the Redis error), stream ids are `<ms>-<seq>` from the clock, a
//! consumer group has a last-delivered id, a pending-entries list and consumers with their
//! last-seen time. What [`Store`] composes from several operations (`undelivered`,
//! `undelivered_len`, `zremrange_upto`) it composes over this store's operations too.
//!
//! Simplifications (none that the command logic can observe, as far as its doc comments say):
//! sorted-set scores are kept as `i64` (Redis keeps doubles, exact up to 2^53); `SCAN` walks the
//! key names in sorted order with the cursor as a position (Redis' cursor is a hash-table
//! position and may return a key twice); `readable` allows every key (no ACL); hashes keep their
//! fields in insertion order (as a small Redis hash does).

use std::collections::BTreeMap;

use crate::config::Config;
use crate::state::State;
use crate::store::{entry_before, entry_id, KeyType, Store, StoredRecord, StreamEntry};
use crate::{Result, ZrqError};

/// A stream entry id as numbers.
type Id = (u64, u64);

/// A consumer group of a stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Group {
    /// The id of the last entry delivered (`0-0` when none).
    pub last_delivered: Id,
    /// The pending-entries list: entry id → consumer.
    pub pending: BTreeMap<Id, String>,
    /// Consumers by name, with the time they were last seen (unix ms).
    pub consumers: BTreeMap<String, i64>,
}

/// A stream: its entries, its last generated id and its consumer groups.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stream {
    /// Entries by id.
    pub entries: BTreeMap<Id, Vec<(String, String)>>,
    /// The largest id ever added (ids only grow, even after deletions).
    pub last_id: Id,
    /// Consumer groups by name.
    pub groups: BTreeMap<String, Group>,
}

/// A value held by a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A string.
    String(String),
    /// A hash, fields in insertion order.
    Hash(Vec<(String, String)>),
    /// A sorted set: member → score.
    ZSet(BTreeMap<String, i64>),
    /// A stream.
    Stream(Stream),
    /// A list (zrq writes none; for WRONGTYPE tests).
    List(Vec<String>),
}

impl Value {
    fn kind(&self) -> KeyType {
        match self {
            Value::String(_) => KeyType::String,
            Value::Hash(_) => KeyType::Hash,
            Value::ZSet(_) => KeyType::ZSet,
            Value::Stream(_) => KeyType::Stream,
            Value::List(_) => KeyType::List,
        }
    }
}

/// A key's value and its expiry time (unix ms), if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// What the key holds.
    pub value: Value,
    /// When the key expires.
    pub expires_at: Option<i64>,
}

/// The keyspace, by key name.
pub type Keyspace = BTreeMap<String, Entry>;

/// An in-memory [`Store`]: see the module's documentation.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    keys: Keyspace,
    /// The clock, unix ms ([`Store::now_ms`]).
    pub now: i64,
    /// What [`Store::random`] returns, every time.
    pub random: u64,
    /// What [`Store::config`] returns.
    pub config: Config,
    /// What [`Store::memory_full`] returns.
    pub full: bool,
    /// Ticks counted by [`Store::count_skipped_tick`].
    pub skipped_ticks: u64,
    /// Messages published by [`Store::announce`], in order: (channel, `<state> <id>`).
    pub published: Vec<(String, String)>,
    /// Keys signalled ([`Store::signal`]), in order.
    pub signalled: Vec<String>,
    /// Job record keys a blocked client waits on ([`Store::awaited`]), set by a test.
    pub awaited: Vec<String>,
    /// Timer wake-ups asked for ([`Store::wake_at`]), in order: (queue, due).
    pub wakes: Vec<(String, i64)>,
    /// The keys of the job records written ([`Store::set_record`]), in order: how many times a
    /// command wrote each job.
    pub record_writes: Vec<String>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new(1_700_000_000_000)
    }
}

/// The error a module call gets from Redis for an operation on a key of another type.
fn wrong_type(command: &str) -> ZrqError {
    ZrqError::internal(&format!(
        "{command} failed: WRONGTYPE Operation against a key holding the wrong kind of value"
    ))
}

/// The error of a consumer-group command on a missing stream or group.
fn no_group(command: &str, stream: &str, group: &str) -> ZrqError {
    ZrqError::internal(&format!(
        "{command} failed: NOGROUP No such key '{stream}' or consumer group '{group}'"
    ))
}

fn parse_id(command: &str, text: &str) -> Result<Id> {
    entry_id(text).ok_or_else(|| {
        ZrqError::internal(&format!(
            "{command} failed: ERR Invalid stream ID specified as stream command argument"
        ))
    })
}

fn show_id((ms, seq): Id) -> String {
    format!("{ms}-{seq}")
}

/// A sorted set's members, lowest score first (ties by member, as Redis orders them).
fn ordered(zset: &BTreeMap<String, i64>) -> Vec<(i64, String)> {
    let mut members: Vec<(i64, String)> = zset.iter().map(|(m, s)| (*s, m.clone())).collect();
    members.sort();
    members
}

/// Redis' glob match (`*`, `?`, `[…]` with `^` and ranges, `\` escapes), as SCAN MATCH uses it.
pub fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|skip| glob(rest, &text[skip..])),
        Some((b'?', rest)) => !text.is_empty() && glob(rest, &text[1..]),
        Some((b'[', rest)) => {
            let Some((&c, tail)) = text.split_first() else {
                return false;
            };
            let (negate, mut class) = match rest.split_first() {
                Some((b'^', class)) => (true, class),
                _ => (false, rest),
            };
            let mut matched = false;
            loop {
                match class {
                    [] => return false,
                    [b']', after @ ..] => {
                        class = after;
                        break;
                    }
                    [b'\\', x, after @ ..] => {
                        matched |= *x == c;
                        class = after;
                    }
                    [lo, b'-', hi, after @ ..] if *hi != b']' => {
                        let (lo, hi) = if lo <= hi { (*lo, *hi) } else { (*hi, *lo) };
                        matched |= (lo..=hi).contains(&c);
                        class = after;
                    }
                    [x, after @ ..] => {
                        matched |= *x == c;
                        class = after;
                    }
                }
            }
            matched != negate && glob(class, tail)
        }
        Some((b'\\', [x, rest @ ..])) => text.first() == Some(x) && glob(rest, &text[1..]),
        Some((p, rest)) => text.first() == Some(p) && glob(rest, &text[1..]),
    }
}

impl MemoryStore {
    /// An empty store whose clock reads `now`, with the default settings.
    pub fn new(now: i64) -> Self {
        MemoryStore {
            keys: Keyspace::new(),
            now,
            random: 0,
            config: Config::DEFAULT,
            full: false,
            skipped_ticks: 0,
            published: Vec::new(),
            signalled: Vec::new(),
            awaited: Vec::new(),
            wakes: Vec::new(),
            record_writes: Vec::new(),
        }
    }

    /// Moves the clock forward by `ms`.
    pub fn advance(&mut self, ms: i64) {
        self.now += ms;
    }

    /// Removes the keys past their TTL (Redis' expiry, done on every look).
    fn expire_keys(&mut self) {
        let now = self.now;
        self.keys
            .retain(|_, entry| entry.expires_at.is_none_or(|at| at > now));
    }

    /// The keyspace as it is now (expired keys gone): to compare before and after a command.
    pub fn snapshot(&mut self) -> Keyspace {
        self.expire_keys();
        self.keys.clone()
    }

    /// Sets `key` to `value` directly (no TTL), e.g. a key of the wrong type for a test.
    pub fn put(&mut self, key: &str, value: Value) {
        self.keys.insert(
            key.to_string(),
            Entry {
                value,
                expires_at: None,
            },
        );
    }

    /// The live value of `key`.
    pub fn get(&mut self, key: &str) -> Option<&Value> {
        self.expire_keys();
        self.keys.get(key).map(|e| &e.value)
    }

    /// The expiry time of `key` (unix ms), if it exists and has one.
    pub fn expires_at(&mut self, key: &str) -> Option<i64> {
        self.expire_keys();
        self.keys.get(key).and_then(|e| e.expires_at)
    }

    /// The live key names.
    pub fn key_names(&mut self) -> Vec<String> {
        self.expire_keys();
        self.keys.keys().cloned().collect()
    }

    /// A sorted set's members with their scores, lowest first (empty when missing).
    pub fn zset(&mut self, key: &str) -> Vec<(i64, String)> {
        match self.get(key) {
            Some(Value::ZSet(z)) => ordered(z),
            _ => Vec::new(),
        }
    }

    /// A hash's fields (empty when missing or not a hash).
    pub fn hash(&mut self, key: &str) -> Vec<(String, String)> {
        match self.get(key) {
            Some(Value::Hash(h)) => h.clone(),
            _ => Vec::new(),
        }
    }

    /// A job record's fields as stored (empty when missing): a packed string decoded (empty if
    /// it does not decode), or a hash of the earlier format.
    pub fn job_record(&mut self, key: &str) -> Vec<(String, String)> {
        match self.record(key) {
            Ok(Some(StoredRecord::Packed(raw))) => {
                crate::packed::decode(key, &raw).unwrap_or_default()
            }
            Ok(Some(StoredRecord::Hash(fields))) => fields,
            _ => Vec::new(),
        }
    }

    /// A stream's entries, oldest first (empty when missing or not a stream).
    pub fn stream_entries(&mut self, key: &str) -> Vec<StreamEntry> {
        match self.get(key) {
            Some(Value::Stream(s)) => s
                .entries
                .iter()
                .map(|(id, fields)| (show_id(*id), fields.clone()))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The messages published, as `<state> <id>`, in order, whatever the channel.
    pub fn events(&self) -> Vec<String> {
        self.published.iter().map(|(_, m)| m.clone()).collect()
    }

    /// The live value of `key` for a write, `WRONGTYPE` unless it is missing or `kind`; a missing
    /// key is created with `empty`.
    fn slot(
        &mut self,
        command: &str,
        key: &str,
        kind: KeyType,
        empty: impl FnOnce() -> Value,
    ) -> Result<&mut Value> {
        self.expire_keys();
        let entry = self.keys.entry(key.to_string()).or_insert_with(|| Entry {
            value: empty(),
            expires_at: None,
        });
        if entry.value.kind() != kind {
            return Err(wrong_type(command));
        }
        Ok(&mut entry.value)
    }

    /// The live value of `key` for a read: `None` when missing, `WRONGTYPE` unless `kind`.
    fn read(&mut self, command: &str, key: &str, kind: KeyType) -> Result<Option<&mut Value>> {
        self.expire_keys();
        match self.keys.get_mut(key) {
            None => Ok(None),
            Some(entry) if entry.value.kind() == kind => Ok(Some(&mut entry.value)),
            Some(_) => Err(wrong_type(command)),
        }
    }

    fn hash_mut(&mut self, command: &str, key: &str) -> Result<Option<&mut Vec<(String, String)>>> {
        Ok(match self.read(command, key, KeyType::Hash)? {
            Some(Value::Hash(h)) => Some(h),
            _ => None,
        })
    }

    fn zset_mut(&mut self, command: &str, key: &str) -> Result<Option<&mut BTreeMap<String, i64>>> {
        Ok(match self.read(command, key, KeyType::ZSet)? {
            Some(Value::ZSet(z)) => Some(z),
            _ => None,
        })
    }

    fn stream_mut(&mut self, command: &str, key: &str) -> Result<Option<&mut Stream>> {
        Ok(match self.read(command, key, KeyType::Stream)? {
            Some(Value::Stream(s)) => Some(s),
            _ => None,
        })
    }

    /// The group `group` of `stream`, `NOGROUP` when either is missing.
    fn group_mut(&mut self, command: &str, stream: &str, group: &str) -> Result<&mut Group> {
        self.stream_mut(command, stream)?
            .and_then(|s| s.groups.get_mut(group))
            .ok_or_else(|| no_group(command, stream, group))
    }

    /// Deletes `key` if it holds an empty hash or sorted set (Redis never keeps those).
    fn drop_if_empty(&mut self, key: &str) {
        let empty = match self.keys.get(key).map(|e| &e.value) {
            Some(Value::Hash(h)) => h.is_empty(),
            Some(Value::ZSet(z)) => z.is_empty(),
            _ => false,
        };
        if empty {
            self.keys.remove(key);
        }
    }

    fn zsorted(&mut self, key: &str) -> Result<Vec<(i64, String)>> {
        Ok(self
            .zset_mut("ZRANGE", key)?
            .map(|z| ordered(z))
            .unwrap_or_default())
    }
}

impl Store for MemoryStore {
    fn now_ms(&self) -> i64 {
        self.now
    }

    fn random(&mut self) -> u64 {
        self.random
    }

    fn config(&self) -> Config {
        self.config
    }

    fn memory_full(&mut self) -> bool {
        self.full
    }

    fn count_skipped_tick(&mut self) {
        self.skipped_ticks += 1;
    }

    fn key_type(&mut self, key: &str) -> Result<KeyType> {
        self.expire_keys();
        Ok(self
            .keys
            .get(key)
            .map_or(KeyType::Missing, |e| e.value.kind()))
    }

    fn del(&mut self, key: &str) -> Result<()> {
        self.keys.remove(key);
        Ok(())
    }

    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        // SET replaces any value and its TTL.
        self.put(key, Value::String(value.to_string()));
        Ok(())
    }

    fn pexpire(&mut self, key: &str, ms: i64) -> Result<()> {
        self.expire_keys();
        let now = self.now;
        if let Some(entry) = self.keys.get_mut(key) {
            if ms <= 0 {
                // A TTL in the past deletes the key at once.
                self.keys.remove(key);
            } else {
                entry.expires_at = Some(now.saturating_add(ms));
            }
        }
        Ok(())
    }

    fn signal(&mut self, key: &str) {
        self.signalled.push(key.to_string());
    }

    fn awaited(&mut self, key: &str) -> bool {
        self.awaited.iter().any(|awaited| awaited == key)
    }

    fn wake_at(&mut self, queue: &str, due: i64) {
        self.wakes.push((queue.to_string(), due));
    }

    fn announce(&mut self, channel: &str, id: &str, state: State) -> Result<()> {
        self.published
            .push((channel.to_string(), format!("{} {id}", state.as_str())));
        Ok(())
    }

    fn scan_page(&mut self, cursor: i64, pattern: &str, count: i64) -> Result<(i64, Vec<String>)> {
        let names = self.key_names();
        let start = usize::try_from(cursor).unwrap_or(0).min(names.len());
        let end = start
            .saturating_add(usize::try_from(count.max(1)).unwrap_or(1))
            .min(names.len());
        let found = names[start..end]
            .iter()
            .filter(|name| glob(pattern.as_bytes(), name.as_bytes()))
            .cloned()
            .collect();
        let next = if end >= names.len() {
            0
        } else {
            i64::try_from(end).unwrap_or(0)
        };
        Ok((next, found))
    }

    fn readable(&mut self, keys: Vec<String>) -> Vec<String> {
        keys
    }

    fn hgetall(&mut self, key: &str) -> Result<Vec<(String, String)>> {
        Ok(self.hash_mut("HGETALL", key)?.cloned().unwrap_or_default())
    }

    fn hlen(&mut self, key: &str) -> Result<i64> {
        let len = self.hash_mut("HLEN", key)?.map_or(0, |h| h.len());
        Ok(i64::try_from(len).unwrap_or(i64::MAX))
    }

    fn record(&mut self, key: &str) -> Result<Option<StoredRecord>> {
        self.expire_keys();
        match self.keys.get(key).map(|e| &e.value) {
            None => Ok(None),
            Some(Value::String(packed)) => {
                Ok(Some(StoredRecord::Packed(packed.as_bytes().to_vec())))
            }
            Some(Value::Hash(fields)) => Ok(Some(StoredRecord::Hash(fields.clone()))),
            Some(other) => Err(ZrqError::wrong_type(
                key,
                other.kind().as_str(),
                KeyType::String.as_str(),
            )),
        }
    }

    fn set_record(&mut self, key: &str, packed: &str, expire_ms: Option<i64>) -> Result<()> {
        self.expire_keys();
        // SET replaces a value of any type; KEEPTTL keeps the key's expiry, PX sets one.
        let expires_at = match expire_ms {
            Some(ms) => Some(self.now.saturating_add(ms)),
            None => self.keys.get(key).and_then(|e| e.expires_at),
        };
        self.keys.insert(
            key.to_string(),
            Entry {
                value: Value::String(packed.to_string()),
                expires_at,
            },
        );
        self.record_writes.push(key.to_string());
        Ok(())
    }

    fn hget(&mut self, key: &str, field: &str) -> Result<Option<String>> {
        Ok(self
            .hash_mut("HGET", key)?
            .and_then(|h| h.iter().find(|(f, _)| f == field).map(|(_, v)| v.clone())))
    }

    fn hset(&mut self, key: &str, fields: &[(&str, &str)]) -> Result<()> {
        let Value::Hash(hash) =
            self.slot("HSET", key, KeyType::Hash, || Value::Hash(Vec::new()))?
        else {
            return Err(wrong_type("HSET"));
        };
        for (field, value) in fields {
            match hash.iter_mut().find(|(f, _)| f == field) {
                Some((_, old)) => *old = value.to_string(),
                None => hash.push((field.to_string(), value.to_string())),
            }
        }
        self.drop_if_empty(key);
        Ok(())
    }

    fn hdel(&mut self, key: &str, fields: &[&str]) -> Result<()> {
        if let Some(hash) = self.hash_mut("HDEL", key)? {
            hash.retain(|(f, _)| !fields.contains(&f.as_str()));
        }
        self.drop_if_empty(key);
        Ok(())
    }

    fn hincrby(&mut self, key: &str, field: &str, by: i64) -> Result<()> {
        let old = self
            .hash_mut("HINCRBY", key)?
            .and_then(|h| h.iter().find(|(f, _)| f == field).map(|(_, v)| v.clone()));
        // See `Store::hincrby`: a counter that is no integer, or would overflow, starts again.
        let new = match old {
            None => Some(by),
            Some(text) => text.parse::<i64>().ok().and_then(|old| old.checked_add(by)),
        };
        self.hset(key, &[(field, &new.unwrap_or(by).to_string())])
    }

    fn create_stream_with_group(&mut self, stream: &str, group: &str) -> Result<()> {
        let Value::Stream(s) = self.slot("XGROUP", stream, KeyType::Stream, || {
            Value::Stream(Stream::default())
        })?
        else {
            return Err(wrong_type("XGROUP"));
        };
        if s.groups.contains_key(group) {
            return Err(ZrqError::internal(
                "XGROUP failed: BUSYGROUP Consumer Group name already exists",
            ));
        }
        s.groups.insert(group.to_string(), Group::default());
        Ok(())
    }

    fn xadd(&mut self, stream: &str, fields: &[(&str, &str)]) -> Result<String> {
        let now = u64::try_from(self.now).unwrap_or(0);
        let Value::Stream(s) = self.slot("XADD", stream, KeyType::Stream, || {
            Value::Stream(Stream::default())
        })?
        else {
            return Err(wrong_type("XADD"));
        };
        // `*`: the clock's ms, or the last id's with the next sequence if the clock is not past it.
        let (last_ms, last_seq) = s.last_id;
        let id = if now > last_ms {
            (now, 0)
        } else {
            let seq = last_seq.checked_add(1).ok_or_else(|| {
                ZrqError::internal("XADD failed: ERR The stream has exhausted the last possible ID")
            })?;
            (last_ms, seq)
        };
        s.last_id = id;
        let fields = fields
            .iter()
            .map(|(f, v)| (f.to_string(), v.to_string()))
            .collect();
        s.entries.insert(id, fields);
        Ok(show_id(id))
    }

    fn xentry(&mut self, stream: &str, entry: &str) -> Result<Option<Vec<(String, String)>>> {
        let id = parse_id("XRANGE", entry)?;
        Ok(self
            .stream_mut("XRANGE", stream)?
            .and_then(|s| s.entries.get(&id).cloned()))
    }

    fn xdel(&mut self, stream: &str, entry: &str) -> Result<()> {
        let id = parse_id("XDEL", entry)?;
        if let Some(s) = self.stream_mut("XDEL", stream)? {
            s.entries.remove(&id);
        }
        Ok(())
    }

    fn xreadgroup(
        &mut self,
        stream: &str,
        group: &str,
        consumer: &str,
        count: i64,
    ) -> Result<Vec<StreamEntry>> {
        let now = self.now;
        let s = self
            .stream_mut("XREADGROUP", stream)?
            .ok_or_else(|| no_group("XREADGROUP", stream, group))?;
        let entries = &s.entries;
        let g = s
            .groups
            .get_mut(group)
            .ok_or_else(|| no_group("XREADGROUP", stream, group))?;
        // Reading creates the consumer and marks it seen.
        g.consumers.insert(consumer.to_string(), now);
        let count = if count <= 0 {
            usize::MAX
        } else {
            usize::try_from(count).unwrap_or(usize::MAX)
        };
        let delivered: Vec<StreamEntry> = entries
            .range((
                std::ops::Bound::Excluded(g.last_delivered),
                std::ops::Bound::Unbounded,
            ))
            .take(count)
            .map(|(id, fields)| (show_id(*id), fields.clone()))
            .collect();
        // NOACK: the group moves past them, the pending-entries list stays as it is.
        if let Some(last) = delivered.last().and_then(|(id, _)| entry_id(id)) {
            g.last_delivered = last;
        }
        Ok(delivered)
    }

    fn xtrim_below(&mut self, stream: &str, min_id: &str) -> Result<()> {
        let min = parse_id("XTRIM", min_id)?;
        if let Some(s) = self.stream_mut("XTRIM", stream)? {
            s.entries.retain(|id, _| *id >= min);
        }
        Ok(())
    }

    fn undeliver(&mut self, stream: &str, group: &str, first: &str) -> Result<()> {
        let before = entry_before(first)
            .ok_or_else(|| ZrqError::internal("a stream entry id is not one"))?;
        let before = parse_id("XGROUP", &before)?;
        self.group_mut("XGROUP", stream, group)?.last_delivered = before;
        Ok(())
    }

    fn xlen(&mut self, stream: &str) -> Result<i64> {
        Ok(self
            .stream_mut("XLEN", stream)?
            .map_or(0, |s| i64::try_from(s.entries.len()).unwrap_or(i64::MAX)))
    }

    fn xrange_after(
        &mut self,
        stream: &str,
        after: Option<&str>,
        count: i64,
    ) -> Result<Vec<StreamEntry>> {
        let after = after.map(|a| parse_id("XRANGE", a)).transpose()?;
        let count = usize::try_from(count).unwrap_or(0);
        let Some(s) = self.stream_mut("XRANGE", stream)? else {
            return Ok(Vec::new());
        };
        let lower = match after {
            Some(id) => std::ops::Bound::Excluded(id),
            None => std::ops::Bound::Unbounded,
        };
        Ok(s.entries
            .range((lower, std::ops::Bound::Unbounded))
            .take(count)
            .map(|(id, fields)| (show_id(*id), fields.clone()))
            .collect())
    }

    fn pending_summary(&mut self, stream: &str, group: &str) -> Result<(i64, Option<String>)> {
        let g = self.group_mut("XPENDING", stream, group)?;
        Ok((
            i64::try_from(g.pending.len()).unwrap_or(i64::MAX),
            g.pending.keys().next_back().map(|id| show_id(*id)),
        ))
    }

    fn prune_consumers(&mut self, stream: &str, group: &str, idle_ms: i64) -> Result<()> {
        let now = self.now;
        let g = self.group_mut("XINFO", stream, group)?;
        let busy: Vec<String> = g.pending.values().cloned().collect();
        g.consumers
            .retain(|name, seen| busy.contains(name) || now - *seen <= idle_ms);
        Ok(())
    }

    fn xack_del(&mut self, stream: &str, group: &str, entry: &str) -> Result<()> {
        let id = parse_id("XACK", entry)?;
        if let Some(s) = self.stream_mut("XACK", stream)? {
            if let Some(g) = s.groups.get_mut(group) {
                g.pending.remove(&id);
            }
            s.entries.remove(&id);
        }
        Ok(())
    }

    fn zadd(&mut self, key: &str, score: i64, member: &str) -> Result<()> {
        self.zadd_many(key, &[(score, member)])
    }

    fn zadd_many(&mut self, key: &str, members: &[(i64, &str)]) -> Result<()> {
        let Value::ZSet(zset) =
            self.slot("ZADD", key, KeyType::ZSet, || Value::ZSet(BTreeMap::new()))?
        else {
            return Err(wrong_type("ZADD"));
        };
        for (score, member) in members {
            zset.insert(member.to_string(), *score);
        }
        self.drop_if_empty(key);
        Ok(())
    }

    fn zrem(&mut self, key: &str, member: &str) -> Result<()> {
        if let Some(zset) = self.zset_mut("ZREM", key)? {
            zset.remove(member);
        }
        self.drop_if_empty(key);
        Ok(())
    }

    fn zcard(&mut self, key: &str) -> Result<i64> {
        let len = self.zset_mut("ZCARD", key)?.map_or(0, |z| z.len());
        Ok(i64::try_from(len).unwrap_or(i64::MAX))
    }

    fn zrange_upto(&mut self, key: &str, max: i64, count: i64) -> Result<Vec<String>> {
        // LIMIT 0 <count>: a negative count means all.
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        Ok(self
            .zsorted(key)?
            .into_iter()
            .filter(|(score, _)| *score <= max)
            .take(count)
            .map(|(_, m)| m)
            .collect())
    }

    fn zrange(&mut self, key: &str, start: i64, count: i64) -> Result<Vec<String>> {
        if count <= 0 {
            return Ok(Vec::new());
        }
        let members = self.zsorted(key)?;
        let len = i64::try_from(members.len()).unwrap_or(i64::MAX);
        // ZRANGE key start stop: negative indexes count from the end.
        let from_end = |i: i64| if i < 0 { (len + i).max(0) } else { i };
        let (first, last) = (from_end(start), from_end(start.saturating_add(count - 1)));
        let last = last.min(len - 1);
        if first > last {
            return Ok(Vec::new());
        }
        let (first, last) = (
            usize::try_from(first).unwrap_or(0),
            usize::try_from(last).unwrap_or(0),
        );
        Ok(members[first..=last]
            .iter()
            .map(|(_, m)| m.clone())
            .collect())
    }

    fn zscore(&mut self, key: &str, member: &str) -> Result<Option<i64>> {
        Ok(self
            .zset_mut("ZSCORE", key)?
            .and_then(|z| z.get(member).copied()))
    }

    fn zfirst_score(&mut self, key: &str) -> Result<Option<i64>> {
        Ok(self.zsorted(key)?.first().map(|(score, _)| *score))
    }

    fn zremrange_score(&mut self, key: &str, upto: i64) -> Result<()> {
        if let Some(zset) = self.zset_mut("ZREMRANGEBYSCORE", key)? {
            zset.retain(|_, score| *score > upto);
        }
        self.drop_if_empty(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_as_scan_does() {
        let cases = [
            ("zrq:{*}:stats", "zrq:{q}:stats", true),
            ("zrq:{*}:stats", "zrq:{a:b}:stats", true),
            ("zrq:{*}:stats", "zrq:{q}:stat", false),
            ("zrq:{*}:stats", "zrq:q:stats", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("[ab]x", "bx", true),
            ("[^ab]x", "bx", false),
            ("[a-c]", "b", true),
            ("\\*", "*", true),
            ("\\*", "a", false),
        ];
        for (pattern, text, want) in cases {
            assert_eq!(
                glob(pattern.as_bytes(), text.as_bytes()),
                want,
                "{pattern} {text}"
            );
        }
    }

    #[test]
    fn empty_hashes_and_sorted_sets_are_missing_keys() -> Result<()> {
        let mut s = MemoryStore::default();
        s.hset("h", &[("a", "1"), ("b", "2")])?;
        s.hdel("h", &["a"])?;
        assert_eq!(s.key_type("h")?, KeyType::Hash);
        s.hdel("h", &["b"])?;
        assert_eq!(s.key_type("h")?, KeyType::Missing);
        s.zadd("z", 5, "m")?;
        s.zrem("z", "m")?;
        assert_eq!(s.key_type("z")?, KeyType::Missing);
        s.create_stream_with_group("s", "g")?;
        let id = s.xadd("s", &[("f", "v")])?;
        s.xdel("s", &id)?;
        assert_eq!(s.key_type("s")?, KeyType::Stream, "a stream stays, empty");
        Ok(())
    }

    #[test]
    fn wrong_types_are_refused() -> Result<()> {
        let mut s = MemoryStore::default();
        s.set("k", "v")?;
        let refused = [
            s.hset("k", &[("a", "1")]).is_err(),
            s.hget("k", "a").is_err(),
            s.zadd("k", 1, "m").is_err(),
            s.xadd("k", &[("f", "v")]).is_err(),
            s.create_stream_with_group("k", "g").is_err(),
            s.zrange_upto("k", 1, 1).is_err(),
        ];
        assert_eq!(refused, [true; 6]);
        assert_eq!(s.get("k"), Some(&Value::String("v".into())));
        Ok(())
    }

    #[test]
    fn keys_expire_against_the_clock() -> Result<()> {
        let mut s = MemoryStore::new(1000);
        s.hset("h", &[("a", "1")])?;
        s.pexpire("h", 50)?;
        assert_eq!(s.expires_at("h"), Some(1050));
        s.advance(49);
        assert_eq!(s.hget("h", "a")?.as_deref(), Some("1"));
        s.advance(1);
        assert_eq!(s.key_type("h")?, KeyType::Missing);
        Ok(())
    }

    #[test]
    fn stream_ids_follow_the_clock_and_groups_deliver_once() -> Result<()> {
        let mut s = MemoryStore::new(7);
        s.create_stream_with_group("s", "g")?;
        let ids = [
            s.xadd("s", &[("n", "1")])?,
            s.xadd("s", &[("n", "2")])?,
            s.xadd("s", &[("n", "3")])?,
        ];
        assert_eq!(ids, ["7-0", "7-1", "7-2"]);
        s.advance(1);
        assert_eq!(s.xadd("s", &[("n", "4")])?, "8-0");
        let read: Vec<String> = s
            .xreadgroup("s", "g", "w", 2)?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(read, ["7-0", "7-1"]);
        assert_eq!(
            s.undelivered_len("s", "g")?,
            4,
            "NOACK leaves nothing pending"
        );
        s.xtrim_below("s", "7-2")?;
        assert_eq!(s.undelivered("s", "g", None, 10)?.len(), 2);
        s.undeliver("s", "g", "7-2")?;
        let again: Vec<String> = s
            .xreadgroup("s", "g", "w", 5)?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(again, ["7-2", "8-0"]);
        assert!(s.xreadgroup("missing", "g", "w", 1).is_err(), "NOGROUP");
        s.advance(100);
        s.prune_consumers("s", "g", 50)?;
        let Some(Value::Stream(stream)) = s.get("s") else {
            panic!("no stream");
        };
        assert!(stream.groups["g"].consumers.is_empty());
        Ok(())
    }

    #[test]
    fn zremrange_upto_takes_ties_of_the_last_member() -> Result<()> {
        let mut s = MemoryStore::default();
        s.zadd_many("z", &[(1, "a"), (2, "b"), (2, "c"), (3, "d"), (9, "e")])?;
        s.zremrange_upto("z", 5, 2)?;
        assert_eq!(s.zset("z"), [(3, "d".to_string()), (9, "e".to_string())]);
        s.zremrange_upto("z", 5, 10)?;
        assert_eq!(s.zset("z"), [(9, "e".to_string())]);
        assert_eq!(s.zrange("z", 0, 5)?, ["e"]);
        Ok(())
    }

    #[test]
    fn scan_pages_through_every_key() -> Result<()> {
        let mut s = MemoryStore::default();
        for q in ["a", "b", "c"] {
            s.hset(&format!("zrq:{{{q}}}:stats"), &[("x", "1")])?;
            s.set(&format!("zrq:{{{q}}}:paused"), "1")?;
        }
        let (mut cursor, mut found) = (0, Vec::new());
        loop {
            let (next, keys) = s.scan_page(cursor, "zrq:{*}:stats", 2)?;
            found.extend(keys);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        assert_eq!(found, ["zrq:{a}:stats", "zrq:{b}:stats", "zrq:{c}:stats"]);
        Ok(())
    }
}

#[cfg(test)]
mod scenarios;

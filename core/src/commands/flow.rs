//! Workflows resolved inside Redis, in the same atomic step that finishes a job: children waiting
//! for their parents (`ENQUEUE … AFTER`) and batches with a completion callback (`ZRQ.BATCH`).
//!
//! When a job finishes, each of its waiting children either counts one parent less (released to
//! `pending` when none is left), or — if the parent ended dead or cancelled and the child's policy
//! is `cancel` — is cancelled itself, which in turn settles *its* children. The cascade runs over
//! an explicit work list, not recursion, so a long chain cannot exhaust the server's stack.

use serde_json::Value;

use super::enqueue::Enqueue;
use super::{check_types, finish_one, load_job, make_pending, save, Ending};
use crate::args;
use crate::config::PARENTS_MAX_BYTES;
use crate::job::{integer_field, name_field, Job};
use crate::keys::QueueKeys;
use crate::state::{Event, State};
use crate::store::{KeyType, Store};
use crate::{Result, ZrqError};

/// `ONPARENTFAIL` policies.
pub const POLICIES: [&str; 2] = ["cancel", "run"];

/// A finished job whose dependents are still to be settled.
struct Finished {
    id: String,
    state: State,
    result: Option<String>,
    children: Vec<String>,
    batch: Option<String>,
}

/// Reads a JSON array of ids (a job's `children`), keeping only valid ids: a child is a record of
/// the same queue, addressed by its id, and an id the commands would refuse names none.
pub(crate) fn id_list(text: Option<&str>) -> Vec<String> {
    let Some(text) = text else {
        return Vec::new();
    };
    // The compact lists zrq writes (no escapes) are split directly: a parent's `children` is
    // read for every child enqueued after it, so this must stay cheap however long it is.
    if let Some(ids) = plain_id_list(text) {
        return ids;
    }
    let mut ids = serde_json::from_str::<Vec<String>>(text).unwrap_or_default();
    ids.retain(|id| args::name("id", id.as_bytes()).is_ok());
    ids
}

/// `["a","b"]` without backslashes, as serde_json reads it; `None` for anything else.
fn plain_id_list(text: &str) -> Option<Vec<String>> {
    if text.contains('\\') {
        return None;
    }
    if text == "[]" {
        return Some(Vec::new());
    }
    let inner = text.strip_prefix("[\"")?.strip_suffix("\"]")?;
    let mut ids = Vec::new();
    for id in inner.split("\",\"") {
        if id.contains('"') || args::name("id", id.as_bytes()).is_err() {
            return None;
        }
        ids.push(id.to_string());
    }
    Some(ids)
}

/// A list of ids as compact JSON (as serde_json writes it), built without a serializer pass
/// over plain ids: a parent's `children` is written for every child enqueued after it.
pub(crate) fn id_list_json(ids: &[String]) -> String {
    let mut text = String::with_capacity(ids.iter().map(|id| id.len() + 3).sum::<usize>() + 2);
    text.push('[');
    for (n, id) in ids.iter().enumerate() {
        if n > 0 {
            text.push(',');
        }
        if id.contains(['"', '\\']) {
            text.push_str(&Value::from(id.as_str()).to_string());
        } else {
            text.push('"');
            text.push_str(id);
            text.push('"');
        }
    }
    text.push(']');
    text
}

/// Settles everything that depended on `job`, which has just finished with `result`.
pub(crate) fn settle(
    store: &mut dyn Store,
    keys: &QueueKeys,
    job: &Job,
    result: Option<&str>,
) -> Result<()> {
    let mut work = vec![Finished {
        id: job.id.clone(),
        state: job.state,
        result: result.map(str::to_string).or_else(|| job.result.clone()),
        children: id_list(job.children.as_deref()),
        batch: job.batch.clone(),
    }];
    while let Some(done) = work.pop() {
        if let Some(batch) = &done.batch {
            count_in_batch(store, keys, batch, done.state == State::Completed)?;
        }
        // The result is read once, not once per child: a parent may have children-max of them.
        let mut copied = Copied::of(done.result.as_deref());
        for child_id in &done.children {
            // Read whole: a child that is counted is written whole (a parent has at most
            // children-max children, each at most a payload-max record with its links).
            let Some(mut child) = load_job(store, keys, child_id).ok().flatten() else {
                continue;
            };
            if child.state != State::Waiting || !awaits(&child, &done.id) {
                continue;
            }
            let failed = done.state != State::Completed;
            let release_anyway = child.on_parent_fail.as_deref() == Some("run");
            if failed && !release_anyway {
                let reason = format!("parent {} ended {}", done.id, done.state);
                finish_one(
                    store,
                    keys,
                    &mut child,
                    Event::Cancel,
                    Ending::error(&reason),
                )?;
                work.push(Finished {
                    id: child.id.clone(),
                    state: child.state,
                    result: None,
                    children: id_list(child.children.as_deref()),
                    batch: child.batch.clone(),
                });
                continue;
            }
            let note = failed
                .then(|| format!("released although parent {} ended {}", done.id, done.state));
            parent_done(store, &mut child, &done.id, &mut copied, note.as_deref())?;
            write_waiting(store, keys, &mut child)?;
        }
    }
    Ok(())
}

/// Whether the waiting `child` still waits for `parent`: `parent` is one of its parents (a
/// `children` entry can outlive its child, whose id may be taken again by a job with other
/// parents) and has not been counted yet (a parent requeued after it died, or after it was
/// cancelled, finishes a second time). So each parent counts once, and only for its own children.
pub(crate) fn awaits(child: &Job, parent: &str) -> bool {
    if id_list(child.parents_done.as_deref())
        .iter()
        .any(|p| p == parent)
    {
        return false;
    }
    let Some(parents) = child.parents.as_deref() else {
        return true;
    };
    // An unfinished parent is among the leading null entries of a `parents` text zrq wrote:
    // found without reading the results that follow them (see [`pending_parents`]). Only a text
    // written before that shape (sorted by id) is read whole.
    if let Some((pending, rest)) = pending_parents(parents) {
        if pending.contains(&parent) {
            return true;
        }
        if rest + 1 == parents.len() {
            return false;
        }
    }
    serde_json::from_str::<serde_json::Map<String, Value>>(parents)
        .ok()
        // A record whose parents cannot be read keeps waiting on whatever names it.
        .is_none_or(|map| map.contains_key(parent))
}

/// The shape zrq keeps a `parents` text in: first the parents not finished yet, `"<id>":null`
/// each, then the finished ones with their results in the order they finished. Returns the ids
/// of the leading null entries (the unfinished parents, for ids without `"` or `\`) and the
/// offset where the rest starts (the final `}` when there is none); `None` for a text that does
/// not start that way. It reads only those entries: a parent's completion updates each of its
/// children's `parents` without reading the results already there (children-max of them, each
/// up to zrq.parents-max-bytes).
pub(crate) fn pending_parents(text: &str) -> Option<(Vec<&str>, usize)> {
    if !text.starts_with('{') || !text.ends_with('}') || text.len() < 2 {
        return None;
    }
    let mut ids = Vec::new();
    let mut at = 1;
    if text.len() == 2 {
        return Some((ids, at));
    }
    loop {
        let inner = text.get(at..)?.strip_prefix('"')?;
        let close = inner.find('"')?;
        let id = &inner[..close];
        if id.contains('\\') {
            return None;
        }
        let tail = &inner[close + 1..];
        let Some(after) = tail.strip_prefix(":null") else {
            return Some((ids, at));
        };
        if after == "}" {
            ids.push(id);
            return Some((ids, text.len() - 1));
        }
        if !after.starts_with(',') {
            return Some((ids, at));
        }
        ids.push(id);
        at += 1 + close + 1 + ":null,".len();
    }
}

/// A parent's result as it is copied into its `WITHRESULTS` children: compact JSON in ASCII
/// ([`ascii_json`]), or `null` when there is none (or it is not JSON). Computed once per finished
/// parent, not per child.
pub(crate) fn result_json(result: Option<&str>) -> String {
    let value = result
        .and_then(|r| serde_json::from_str::<Value>(r).ok())
        .unwrap_or(Value::Null);
    ascii_json(&value.to_string())
}

/// `text` (JSON) with every character beyond ASCII written as an escape (`\u00e9`, a surrogate
/// pair beyond U+FFFF): the same document. JSON holds such characters only inside strings, where
/// the escape means the same character. A `parents` field of results in ASCII is cheap to read
/// for each of children-max children on the Lua backend, whose UTF-8 check of other text is not.
pub(crate) fn ascii_json(text: &str) -> String {
    if text.is_ascii() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + text.len() / 2);
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0_u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// `parents` with `parent` moved from the unfinished to the finished entries, with `value` (a
/// compact JSON text): the unfinished entries, the finished ones as they are, then the new one.
/// A text not in zrq's shape ([`pending_parents`]), or without `parent` among the unfinished, is
/// read whole and written back sorted by id, as serde_json writes a map.
fn with_result(parents: Option<&str>, parent: &str, value: &str) -> Result<String> {
    if let Some((pending, rest)) = parents.and_then(pending_parents) {
        if pending.contains(&parent) {
            let text = parents.unwrap_or("{}");
            let finished = &text[rest..text.len() - 1];
            let mut out = String::with_capacity(text.len() + value.len() + parent.len() + 4);
            out.push('{');
            for id in pending.iter().filter(|id| **id != parent) {
                out.push('"');
                out.push_str(id);
                out.push_str("\":null,");
            }
            out.push_str(finished);
            if !finished.is_empty() {
                out.push(',');
            }
            out.push('"');
            out.push_str(parent);
            out.push_str("\":");
            out.push_str(value);
            out.push('}');
            return Ok(out);
        }
    }
    let mut map: serde_json::Map<String, Value> = parents
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or_default();
    let value = serde_json::from_str(value).unwrap_or(Value::Null);
    map.insert(parent.to_string(), value);
    serde_json::to_string(&map).map_err(|e| ZrqError::internal(&e.to_string()))
}

/// Whether a result of `bytes` bytes (as its parent stored it) may be copied into `parents`:
/// the field with it in place of the parent's `null` stays within `zrq.parents-max-bytes`.
pub(crate) fn result_fits(parents: Option<&str>, bytes: usize, max: i64) -> bool {
    let held = parents.map_or(0, str::len);
    i64::try_from((held + bytes).saturating_sub(4)).unwrap_or(i64::MAX) <= max
}

/// A finished parent's result on its way into its `WITHRESULTS` children.
pub(crate) struct Copied<'a> {
    /// The result as the parent stored it; a caller may leave out one that does not fit.
    pub result: Option<&'a str>,
    /// Its size in bytes as stored.
    pub size: usize,
    /// Its [`result_json`], computed once for all the children of the parent.
    pub json: Option<String>,
}

impl<'a> Copied<'a> {
    /// A result read whole (its size is its length).
    pub(crate) fn of(result: Option<&'a str>) -> Copied<'a> {
        Copied {
            result,
            size: result.map_or(0, str::len),
            json: None,
        }
    }
}

/// Records in the waiting `child` that one of its parents is done, with its result (`copied`),
/// without writing it: the caller writes it once it has counted every parent it counts in this
/// step ([`write_waiting`], which releases it when none is left). The caller checked that the
/// child [`awaits`] this parent.
///
/// A `WITHRESULTS` child's `parents` field holds the results; it stays within
/// `zrq.parents-max-bytes`, because each parent's completion rewrites it in every waiting child:
/// a result that would take it beyond ([`result_fits`]) is copied as null, and the child's
/// `error` says so.
pub(crate) fn parent_done(
    store: &mut dyn Store,
    child: &mut Job,
    parent: &str,
    copied: &mut Copied<'_>,
    note: Option<&str>,
) -> Result<()> {
    let left = child.waiting_on.unwrap_or(1).saturating_sub(1).max(0);
    child.waiting_on = Some(left);
    let mut done = id_list(child.parents_done.as_deref());
    done.push(parent.to_string());
    // Kept on `child` too: several parents may be counted in one step (at enqueue).
    child.parents_done = Some(Value::from(done).to_string());
    let mut note = note.map(str::to_string);
    if child.with_results() {
        let max = store.config().parents_max_bytes;
        let held = child.parents.as_deref();
        // A result that does not fit as stored is not read at all; one that does fits once
        // written as ASCII JSON too, or is not copied either.
        let fits = if result_fits(held, copied.size, max) {
            let result = copied.result;
            let json = copied.json.get_or_insert_with(|| result_json(result));
            result_fits(held, json.len(), max).then_some(json.as_str())
        } else {
            None
        };
        let value = fits.unwrap_or_else(|| {
            note = Some(not_copied(parent, max));
            "null"
        });
        child.parents = Some(with_result(child.parents.as_deref(), parent, value)?);
    }
    if note.is_some() {
        child.error = note;
    }
    Ok(())
}

/// Writes a waiting `child` after [`parent_done`] counted its parents: released to its stream
/// when it waits for none any more, else its record as it now is.
pub(crate) fn write_waiting(
    store: &mut dyn Store,
    keys: &QueueKeys,
    child: &mut Job,
) -> Result<()> {
    if child.waiting_on == Some(0) {
        store.zrem(&keys.waiting(), &child.id)?;
        make_pending(store, keys, child, Event::Release)
    } else {
        save(store, keys, child, None)
    }
}

/// The note on a child whose parent's result did not fit in its `parents`.
pub(crate) fn not_copied(parent: &str, max: i64) -> String {
    format!(
        "result of parent {parent} not copied: the parents' results would pass {max} bytes \
         (zrq.{})",
        PARENTS_MAX_BYTES.name
    )
}

/// A batch record (`zrq:{queue}:batch:<id>`), read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BatchRecord {
    /// Members in all.
    pub total: i64,
    /// Members finished so far.
    pub done: i64,
    /// Members that completed.
    pub succeeded: i64,
    /// Members that ended dead or cancelled.
    pub failed: i64,
    /// The callback's task and payload (`ON-COMPLETE`).
    pub callback: Option<(String, String)>,
    /// The callback job's id, once enqueued.
    pub callback_id: Option<String>,
}

/// Loads batch `id` of the queue, or `None` if there is none. `WRONGTYPE` for a key of another
/// type; `CORRUPT` for a record zrq did not write: its `queue` must be the queue it is stored in
/// (the callback goes to the command's queue, never to a queue named by the record), its counts
/// integers, its callback a valid task name and a JSON payload.
pub(crate) fn load_batch(
    store: &mut dyn Store,
    keys: &QueueKeys,
    id: &str,
) -> Result<Option<BatchRecord>> {
    let key = keys.batch(id);
    check_types(store, &[(&key, KeyType::Hash)])?;
    let record = store.hgetall(&key)?;
    if record.is_empty() {
        return Ok(None);
    }
    let get = |name: &str| {
        record
            .iter()
            .find(|(f, _)| f == name)
            .map(|(_, v)| v.clone())
    };
    if get("queue").as_deref() != Some(keys.queue()) {
        return Err(ZrqError::corrupt(
            &key,
            "field 'queue' does not name its queue",
        ));
    }
    let number =
        |name: &str| -> Result<i64> { get(name).map_or(Ok(0), |v| integer_field(&key, name, &v)) };
    let task = name_field(&key, "callback_task", get("callback_task"))?;
    let payload = get("callback_payload");
    if payload
        .as_deref()
        // Stored: only its validity matters, not the depth limit of the day it is read.
        .is_some_and(|p| args::json("callback_payload", p.as_bytes(), i64::MAX).is_err())
    {
        return Err(ZrqError::corrupt(
            &key,
            "field 'callback_payload' is not JSON",
        ));
    }
    Ok(Some(BatchRecord {
        total: number("total")?,
        done: number("done")?,
        succeeded: number("succeeded")?,
        failed: number("failed")?,
        callback: task.zip(payload),
        callback_id: get("callback_id"),
    }))
}

/// Counts a finished member of `batch`; when it was the last, enqueues the batch's callback
/// (exactly once: this runs inside the atomic step that finished the member) into the queue of
/// the command. A batch record that cannot be read is left alone: not counted, not obeyed.
fn count_in_batch(
    store: &mut dyn Store,
    keys: &QueueKeys,
    batch: &str,
    succeeded: bool,
) -> Result<()> {
    let Ok(Some(record)) = load_batch(store, keys, batch) else {
        return Ok(());
    };
    let key = keys.batch(batch);
    let done = record.done + 1;
    let (ok, failed) = if succeeded {
        (record.succeeded + 1, record.failed)
    } else {
        (record.succeeded, record.failed + 1)
    };
    let (done_text, ok_text, failed_text) = (done.to_string(), ok.to_string(), failed.to_string());
    store.hset(
        &key,
        &[
            ("done", &done_text),
            ("succeeded", &ok_text),
            ("failed", &failed_text),
        ],
    )?;
    // `done` can pass `total` when a dead member is requeued and finishes again: the callback
    // has run by then and must not run twice.
    if done < record.total || record.callback_id.is_some() {
        return Ok(());
    }
    if let Some((task, payload)) = &record.callback {
        let body = callback_payload(batch, ok, failed, payload);
        let id = Enqueue::new(keys.queue(), task, &body).apply(store, crate::job::new_id)?;
        if let crate::Reply::Bulk(id) = id {
            store.hset(&key, &[("callback_id", &id)])?;
        }
    }
    store.pexpire(&key, store.config().keep_ms)
}

/// The payload of a batch's callback job: the batch, its counts, and the callback's own payload.
pub fn callback_payload(batch: &str, succeeded: i64, failed: i64, payload: &str) -> String {
    format!(
        "{{\"batch\":{},\"succeeded\":{succeeded},\"failed\":{failed},\"payload\":{payload}}}",
        Value::String(batch.to_string())
    )
}

/// Reads `ONPARENTFAIL`'s value.
pub(crate) fn policy(raw: &[u8]) -> Result<&'static str> {
    POLICIES
        .iter()
        .find(|p| p.as_bytes().eq_ignore_ascii_case(raw))
        .copied()
        .ok_or_else(|| ZrqError::not_one_of("ONPARENTFAIL", raw, &POLICIES))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_parents_reads_the_leading_null_entries() {
        type Pending<'a> = Option<(Vec<&'a str>, usize)>;
        let cases: &[(&str, Pending)] = &[
            ("{}", Some((vec![], 1))),
            ("{\"a\":null}", Some((vec!["a"], 9))),
            ("{\"a\":null,\"b\":null}", Some((vec!["a", "b"], 18))),
            ("{\"a\":null,\"b\":[1]}", Some((vec!["a"], 10))),
            ("{\"b\":[1],\"a\":null}", Some((vec![], 1))),
            ("{\"a\\\"\":null}", None),
            ("{ \"a\":null}", None),
            ("[]", None),
            ("{", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(pending_parents(text), *want, "{text}");
        }
    }

    #[test]
    fn awaits_finds_unfinished_parents_without_reading_results() {
        let child = |parents: &str, done: &str| Job {
            parents: Some(parents.to_string()),
            parents_done: Some(done.to_string()),
            ..crate::job::tests::sample()
        };
        let cases = [
            ("{\"a\":null,\"b\":null}", "[]", "a", true),
            ("{\"a\":null,\"b\":null}", "[\"a\"]", "a", false),
            ("{\"a\":null,\"b\":null}", "[]", "c", false),
            ("{\"b\":null,\"a\":[1]}", "[\"a\"]", "b", true),
            // Written sorted (before the shape): read whole.
            ("{\"a\":[1],\"b\":null}", "[\"a\"]", "b", true),
            ("{\"a\":[1],\"b\":null}", "[\"a\"]", "c", false),
            ("not json", "[]", "c", true),
        ];
        for (parents, done, parent, want) in cases {
            assert_eq!(
                awaits(&child(parents, done), parent),
                want,
                "{parents} {parent}"
            );
        }
    }

    #[test]
    fn results_are_copied_as_ascii_json() {
        let cases = [
            (Some("{ \"a\" : [1, \"é\"] }"), "{\"a\":[1,\"\\u00e9\"]}"),
            (Some("\"中😀\""), "\"\\u4e2d\\ud83d\\ude00\""),
            (Some("not json"), "null"),
            (None, "null"),
        ];
        for (result, want) in cases {
            assert_eq!(result_json(result), want, "{result:?}");
        }
        assert!(result_fits(Some("{\"a\":null}"), 5, 11));
        assert!(!result_fits(Some("{\"a\":null}"), 6, 11));
    }

    #[test]
    fn with_result_moves_a_parent_to_the_finished_entries() {
        let cases: &[(Option<&str>, &str, &str, &str)] = &[
            (
                Some("{\"a\":null,\"b\":null}"),
                "a",
                "[1]",
                "{\"b\":null,\"a\":[1]}",
            ),
            (
                Some("{\"b\":null,\"a\":[1]}"),
                "b",
                "2",
                "{\"a\":[1],\"b\":2}",
            ),
            (Some("{\"a\":null}"), "a", "null", "{\"a\":null}"),
            // Not zrq's shape, or the parent is not unfinished: read whole, written sorted.
            (Some("{\"b\":1,\"a\":null}"), "a", "2", "{\"a\":2,\"b\":1}"),
            (None, "a", "2", "{\"a\":2}"),
            (Some("not json"), "a", "{}", "{\"a\":{}}"),
        ];
        for (parents, parent, value, want) in cases {
            assert_eq!(
                with_result(*parents, parent, value).as_deref(),
                Ok(*want),
                "{parents:?}"
            );
        }
    }
}

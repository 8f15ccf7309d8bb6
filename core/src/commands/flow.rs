//! Workflows resolved inside Redis, in the same atomic step that finishes a job: children waiting
//! for their parents (`ENQUEUE … AFTER`) and batches with a completion callback (`ZRQ.BATCH`).
//!
//! When a job finishes, each of its waiting children either counts one parent less (released to
//! `pending` when none is left), or — if the parent ended dead or cancelled and the child's policy
//! is `cancel` — is cancelled itself, which in turn settles *its* children. The cascade runs over
//! an explicit work list, not recursion, so a long chain cannot exhaust the server's stack.

use serde_json::Value;

use super::enqueue::Enqueue;
use super::{check_types, finish_one, load_job, make_pending};
use crate::args;
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
        for child_id in &done.children {
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
                    &[("error", &reason)],
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
            parent_done(
                store,
                keys,
                &mut child,
                &done.id,
                done.result.as_deref(),
                note.as_deref(),
            )?;
        }
    }
    Ok(())
}

/// Whether the waiting `child` still waits for `parent`: `parent` is one of its parents (a
/// `children` entry can outlive its child, whose id may be taken again by a job with other
/// parents) and has not been counted yet (a parent requeued after it died, or after it was
/// cancelled, finishes a second time). So each parent counts once, and only for its own children.
pub(crate) fn awaits(child: &Job, parent: &str) -> bool {
    let listed = child
        .parents
        .as_deref()
        .and_then(|p| serde_json::from_str::<serde_json::Map<String, Value>>(p).ok())
        // A record whose parents cannot be read keeps waiting on whatever names it.
        .is_none_or(|map| map.contains_key(parent));
    listed
        && !id_list(child.parents_done.as_deref())
            .iter()
            .any(|p| p == parent)
}

/// Records that one parent of the waiting `child` is done (with its result), and releases the
/// child when it was the last. The caller checked that the child [`awaits`] this parent.
pub(crate) fn parent_done(
    store: &mut dyn Store,
    keys: &QueueKeys,
    child: &mut Job,
    parent: &str,
    result: Option<&str>,
    note: Option<&str>,
) -> Result<()> {
    let left = child.waiting_on.unwrap_or(1).saturating_sub(1).max(0);
    child.waiting_on = Some(left);
    let mut done = id_list(child.parents_done.as_deref());
    done.push(parent.to_string());
    // Kept on `child` too: several parents may be counted in one step (at enqueue).
    child.parents_done = Some(Value::from(done).to_string());
    if child.with_results() {
        let mut map: serde_json::Map<String, Value> = child
            .parents
            .as_deref()
            .and_then(|p| serde_json::from_str(p).ok())
            .unwrap_or_default();
        let value = result
            .and_then(|r| serde_json::from_str(r).ok())
            .unwrap_or(Value::Null);
        map.insert(parent.to_string(), value);
        child.parents = Some(Value::Object(map).to_string());
    }
    let left_text = left.to_string();
    let mut fields = vec![("waiting_on", left_text.as_str())];
    if let Some(done) = child.parents_done.as_deref() {
        fields.push(("parents_done", done));
    }
    if let (true, Some(parents)) = (child.with_results(), child.parents.as_deref()) {
        fields.push(("parents", parents));
    }
    if let Some(note) = note {
        fields.push(("error", note));
    }
    store.hset(&keys.job(&child.id), &fields)?;
    if left == 0 {
        store.zrem(&keys.waiting(), &child.id)?;
        make_pending(store, keys, child, Event::Release)?;
    }
    Ok(())
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

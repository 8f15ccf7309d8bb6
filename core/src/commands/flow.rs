//! Workflows resolved inside Redis, in the same atomic step that finishes a job: children waiting
//! for their parents (`ENQUEUE … AFTER`) and batches with a completion callback (`ZRQ.BATCH`).
//!
//! When a job finishes, each of its waiting children either counts one parent less (released to
//! `pending` when none is left), or — if the parent ended dead or cancelled and the child's policy
//! is `cancel` — is cancelled itself, which in turn settles *its* children. The cascade runs over
//! an explicit work list, not recursion, so a long chain cannot exhaust the server's stack.

use serde_json::Value;

use super::enqueue::Enqueue;
use super::{finish_one, load_job, make_pending};
use crate::job::Job;
use crate::keys::QueueKeys;
use crate::state::{Event, State};
use crate::store::Store;
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

/// Reads a JSON array of ids (a job's `children`).
pub(crate) fn id_list(text: Option<&str>) -> Vec<String> {
    text.and_then(|t| serde_json::from_str::<Vec<String>>(t).ok())
        .unwrap_or_default()
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
            if child.state != State::Waiting {
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

/// Records that one parent of the waiting `child` is done (with its result), and releases the
/// child when it was the last.
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
        // Kept on `child` too: several parents may be counted in one step (at enqueue).
        child.parents = Some(Value::Object(map).to_string());
    }
    let left_text = left.to_string();
    let mut fields = vec![("waiting_on", left_text.as_str())];
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

/// Counts a finished member of `batch`; when it was the last, enqueues the batch's callback
/// (exactly once: this runs inside the atomic step that finished the member).
fn count_in_batch(
    store: &mut dyn Store,
    keys: &QueueKeys,
    batch: &str,
    succeeded: bool,
) -> Result<()> {
    let key = keys.batch(batch);
    let record = store.hgetall(&key)?;
    if record.is_empty() {
        return Ok(());
    }
    let get = |name: &str| {
        record
            .iter()
            .find(|(f, _)| f == name)
            .map(|(_, v)| v.clone())
    };
    let number = |name: &str| get(name).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
    let done = number("done") + 1;
    let (ok, failed) = if succeeded {
        (number("succeeded") + 1, number("failed"))
    } else {
        (number("succeeded"), number("failed") + 1)
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
    if done < number("total") || get("callback_id").is_some() {
        return Ok(());
    }
    if let (Some(task), Some(payload)) = (get("callback_task"), get("callback_payload")) {
        let queue = get("queue").unwrap_or_default();
        let body = callback_payload(batch, ok, failed, &payload);
        let id = Enqueue::new(&queue, &task, &body).apply(store, crate::job::new_id)?;
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

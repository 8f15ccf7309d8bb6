//! The live feed: follows every queue's event channel (`PSUBSCRIBE zrq:{*}:events`, one
//! connection for the whole dashboard), counts the events of each queue per tick, keeps a few
//! minutes of these counts for the chart, and sends each tick to the open pages as a server-sent
//! event. Nothing here reads keys: a queue's chart costs what its events cost Redis anyway.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use serde::Serialize;
use tokio::sync::broadcast;
use zrq_core::keys;

use super::{ApiError, Shared};

/// The channel pattern of every queue's events, `zrq:{*}:events` (the braces are literal in
/// Redis' glob): the events channel of zrq_core's key schema, with `*` for the queue.
fn events_pattern() -> String {
    keys::QueueKeys::new("*").events()
}
/// How often counts are sent to the pages.
const TICK: Duration = Duration::from_millis(500);
/// Ticks kept for a page that opens (five minutes).
const HISTORY: usize = 600;

/// What happened to one queue's jobs during one tick.
#[derive(Debug, Clone, Default, Serialize)]
struct Counts {
    /// Jobs that became pending (enqueued, due, retried, requeued, released by a parent).
    pending: u64,
    /// Attempts that started.
    active: u64,
    /// Jobs that completed.
    completed: u64,
    /// Attempts that failed (the job went on to `retrying` or `dead`).
    failed: u64,
    /// Every event of the queue.
    events: u64,
}

impl Counts {
    fn add(&mut self, state: &str) {
        self.events += 1;
        match state {
            "pending" => self.pending += 1,
            "active" => self.active += 1,
            "completed" => self.completed += 1,
            "retrying" | "dead" => self.failed += 1,
            _ => {}
        }
    }
}

/// One tick: when it ended (unix ms), its length, and each queue's counts (queues without events
/// are left out).
#[derive(Debug, Clone, Serialize)]
struct Tick {
    t: i64,
    interval_ms: u64,
    queues: BTreeMap<String, Counts>,
}

/// The running feed.
pub struct Live {
    ticks: broadcast::Sender<Arc<str>>,
    history: Arc<Mutex<VecDeque<Arc<str>>>>,
}

impl Live {
    /// Starts following the events of the server at `url` (in a cluster, any node).
    pub fn start(url: &str) -> Result<Live, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let counts: Arc<Mutex<BTreeMap<String, Counts>>> = Arc::default();
        let (ticks, _) = broadcast::channel(64);
        let live = Live {
            ticks: ticks.clone(),
            history: Arc::default(),
        };
        tokio::spawn(follow(client, Arc::clone(&counts)));
        tokio::spawn(tick(counts, ticks, Arc::clone(&live.history)));
        Ok(live)
    }
}

/// Counts every event message, resubscribing after a lost connection.
async fn follow(client: redis::Client, counts: Arc<Mutex<BTreeMap<String, Counts>>>) {
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.psubscribe(events_pattern()).await {
                Ok(()) => {
                    let mut messages = pubsub.on_message();
                    while let Some(message) = messages.next().await {
                        let channel = message.get_channel_name();
                        let payload: String = message.get_payload().unwrap_or_default();
                        if let Some(queue) = queue_of(channel) {
                            let state = payload.split(' ').next().unwrap_or("");
                            counts
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .entry(queue.to_string())
                                .or_default()
                                .add(state);
                        }
                    }
                    tracing::warn!("lost the event subscription; subscribing again");
                }
                Err(e) => tracing::warn!(error = %e, "cannot subscribe to the queues' events"),
            },
            Err(e) => tracing::warn!(error = %e, "cannot connect for the queues' events"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The queue of an event channel `zrq:{Q}:events` (Q a valid queue name).
fn queue_of(channel: &str) -> Option<&str> {
    let (queue, suffix) = keys::split_key(channel)?;
    (suffix == keys::EVENTS).then_some(queue)
}

/// Every [`TICK`]: takes the counts, keeps them in the history and sends them to the pages.
async fn tick(
    counts: Arc<Mutex<BTreeMap<String, Counts>>>,
    ticks: broadcast::Sender<Arc<str>>,
    history: Arc<Mutex<VecDeque<Arc<str>>>>,
) {
    let mut interval = tokio::time::interval(TICK);
    loop {
        interval.tick().await;
        let queues = std::mem::take(&mut *counts.lock().unwrap_or_else(PoisonError::into_inner));
        let tick = Tick {
            t: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0),
            interval_ms: TICK.as_millis() as u64,
            queues,
        };
        let Ok(text) = serde_json::to_string(&tick) else {
            continue;
        };
        let text: Arc<str> = text.into();
        {
            let mut kept = history.lock().unwrap_or_else(PoisonError::into_inner);
            if kept.len() == HISTORY {
                kept.pop_front();
            }
            kept.push_back(Arc::clone(&text));
        }
        // No page open is not an error.
        let _ = ticks.send(text);
    }
}

/// `GET /api/live`: server-sent events: first `history` (a JSON array of the ticks kept), then a
/// `tick` event per tick.
pub async fn feed(
    State(app): State<Shared>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    app.auth.check_read(&headers)?;
    let Some(live) = &app.live else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "no live feed"));
    };
    let receiver = live.ticks.subscribe();
    let history = {
        let kept = live.history.lock().unwrap_or_else(PoisonError::into_inner);
        let ticks: Vec<&str> = kept.iter().map(|t| &**t).collect();
        format!("[{}]", ticks.join(","))
    };
    let first =
        futures::stream::once(async move { Ok(Event::default().event("history").data(history)) });
    let ticks = futures::stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(text) => {
                    return Some((Ok(Event::default().event("tick").data(&*text)), receiver))
                }
                // A slow page skips ticks rather than holding the others up.
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(first.chain(ticks)).keep_alive(KeepAlive::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_name_their_queue() {
        let cases = [
            ("zrq:{mail}:events", Some("mail")),
            ("zrq:{a:b}:events", Some("a:b")),
            ("zrq:{mail}:other", None),
            ("zrq:{mail}:events:x", None),
            ("other", None),
        ];
        for (channel, queue) in cases {
            assert_eq!(queue_of(channel), queue, "{channel}");
        }
        assert_eq!(events_pattern(), "zrq:{*}:events");
    }

    #[test]
    fn events_are_counted_by_what_they_mean() {
        let mut counts = Counts::default();
        for state in [
            "pending",
            "active",
            "completed",
            "retrying",
            "dead",
            "cancelled",
        ] {
            counts.add(state);
        }
        assert_eq!(
            (
                counts.pending,
                counts.active,
                counts.completed,
                counts.failed,
                counts.events
            ),
            (1, 1, 1, 2, 6)
        );
    }
}

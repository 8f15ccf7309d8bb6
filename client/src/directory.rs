//! Listing the server's queues without stalling it: [`QueueScan`] walks `ZRQ.QUEUES` one bounded
//! step at a time (per primary in a cluster), and [`QueueDirectory`] keeps a list of the queues
//! fresh in the background for dashboards and `zrq top`, which must not turn every refresh into
//! thousands of round trips on a server with millions of keys.
//!
//! Each `ZRQ.QUEUES` step examines at most [`STEP_COUNT`] keys (about 0.4 ms of server time on a
//! server with 10^6 keys), so another client waits at most that long behind one step. A full
//! listing of such a server takes about 4,000 steps: [`Client::queues`] sends them back to back
//! (an operator's one-off question), the directory paces them ([`DirectoryOptions::pause`]).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::client::{Client, Conn};
use crate::error::{Error, Result};
use crate::record::{self, text};

/// `COUNT` of every step: the most `ZRQ.QUEUES` allows, so a listing takes as few round trips as
/// a bounded step can.
pub const STEP_COUNT: &str = "250";

/// A walk over the queues the connection's user may read, one `ZRQ.QUEUES` step per
/// [`QueueScan::next_page`]. A queue may show up twice (as with SCAN): deduplicate.
pub struct QueueScan {
    client: Client,
    /// The nodes still to walk (`None`: the one server), the current first; filled at the first
    /// step in a cluster.
    nodes: Option<Vec<Option<(String, u16)>>>,
    cursor: String,
}

impl QueueScan {
    /// A walk from the start.
    pub fn new(client: Client) -> Self {
        QueueScan {
            client,
            nodes: None,
            cursor: "0".to_string(),
        }
    }

    /// The names of the next step (possibly none), or `None` once every node is walked.
    pub async fn next_page(&mut self) -> Result<Option<Vec<String>>> {
        if self.nodes.is_none() {
            let mut nodes = match &self.client.conn {
                Conn::Single(_) => vec![None],
                Conn::Cluster(_) => primaries(&self.client)
                    .await?
                    .into_iter()
                    .map(Some)
                    .collect(),
            };
            nodes.reverse();
            self.nodes = Some(nodes);
        }
        let Some(node) = self.nodes.as_ref().and_then(|n| n.last().cloned()) else {
            return Ok(None);
        };
        let args = ["CURSOR", self.cursor.as_str(), "COUNT", STEP_COUNT];
        let reply = match (&self.client.conn, node) {
            (Conn::Cluster(conn), Some((host, port))) => {
                let route =
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port });
                let cmd = self.client.backend.command("queues", None, &args);
                conn.clone()
                    .route_command(cmd, route)
                    .await
                    .map_err(Error::from_redis)?
            }
            _ => self.client.call("queues", None, &args).await?,
        };
        let (cursor, names) = page(reply)?;
        if cursor == "0" {
            if let Some(nodes) = self.nodes.as_mut() {
                nodes.pop();
            }
        }
        self.cursor = cursor;
        Ok(Some(names))
    }
}

/// A `[next-cursor, [name…]]` page.
fn page(reply: Value) -> Result<(String, Vec<String>)> {
    let mut parts = record::array(reply)?.into_iter();
    let cursor = parts
        .next()
        .as_ref()
        .and_then(text)
        .ok_or_else(|| Error::Protocol("QUEUES replied without a cursor".into()))?;
    let names = match parts.next() {
        Some(names) => record::array(names)?.iter().filter_map(text).collect(),
        None => Vec::new(),
    };
    Ok((cursor, names))
}

/// The addresses of the cluster's primaries (`CLUSTER NODES`, failed nodes left out).
async fn primaries(client: &Client) -> Result<Vec<(String, u16)>> {
    let Conn::Cluster(conn) = &client.conn else {
        return Ok(Vec::new());
    };
    let nodes: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(&mut conn.clone())
        .await
        .map_err(Error::from_redis)?;
    Ok(nodes
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let flags = fields.get(2)?;
            if !flags.split(',').any(|f| f == "master") || flags.contains("fail") {
                return None;
            }
            let address = fields.get(1)?.split(['@', ',']).next()?;
            let (host, port) = address.rsplit_once(':')?;
            Some((host.to_string(), port.parse().ok()?))
        })
        .collect())
}

/// How a [`QueueDirectory`] refreshes its list.
#[derive(Debug, Clone, Copy)]
pub struct DirectoryOptions {
    /// A new full listing starts this long after the previous one started (a listing of more than
    /// [`DirectoryOptions::inline_steps`] steps is followed by a rest as long as itself): on a
    /// small server, a new queue shows within this time (at once with
    /// [`QueueDirectory::fresh`]).
    pub period: Duration,
    /// The pause after each step of a listing: a listing uses at most about step / (step +
    /// pause) of the server's time while it runs (0.4 ms steps, 2 ms pauses: under 20 %, and a
    /// 10^6-key server listed in about 10 s).
    pub pause: Duration,
    /// A listing that took at most this many steps last time is small enough to be redone
    /// whenever the list is asked for ([`QueueDirectory::fresh`]), so that small servers see a
    /// new queue at once.
    pub inline_steps: usize,
}

impl Default for DirectoryOptions {
    fn default() -> Self {
        DirectoryOptions {
            period: Duration::from_secs(2),
            pause: Duration::from_millis(2),
            inline_steps: 4,
        }
    }
}

/// What a [`QueueDirectory`] knows.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// The queues, sorted, each once: those of the last full listing and those seen since.
    pub names: Arc<Vec<String>>,
    /// Full listings completed.
    pub passes: u64,
    /// Steps the last full listing took (0 before the first).
    pub steps: usize,
    /// The error of the last step, if it failed (cleared by the next full listing).
    pub error: Option<String>,
}

/// A list of the server's queues (those the user may read) kept fresh by a background task: one
/// `ZRQ.QUEUES` step at a time, paced, a new listing every [`DirectoryOptions::period`]. Queues
/// found during a listing show at once; queues gone leave when a listing ends without them. The
/// task stops when the directory is dropped.
pub struct QueueDirectory {
    client: Client,
    options: DirectoryOptions,
    listing: watch::Receiver<Listing>,
    sender: Arc<watch::Sender<Listing>>,
    task: JoinHandle<()>,
}

impl Drop for QueueDirectory {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl QueueDirectory {
    /// Starts listing in the background (needs a Tokio runtime).
    pub fn start(client: Client, options: DirectoryOptions) -> Self {
        let (sender, listing) = watch::channel(Listing::default());
        let sender = Arc::new(sender);
        let task = tokio::spawn(refresh(client.clone(), options, sender.clone()));
        QueueDirectory {
            client,
            options,
            listing,
            sender,
            task,
        }
    }

    /// What is known now (no round trip).
    pub fn listing(&self) -> Listing {
        self.listing.borrow().clone()
    }

    /// Waits until the first full listing is done, or a step failed, or `timeout` passed; then
    /// what is known.
    pub async fn ready(&self, timeout: Duration) -> Listing {
        let mut listing = self.listing.clone();
        let done = |l: &Listing| l.passes > 0 || l.error.is_some();
        let _ = tokio::time::timeout(timeout, listing.wait_for(done)).await;
        self.listing()
    }

    /// The queues, as fresh as a small server allows: unless the last full listing took more than
    /// [`DirectoryOptions::inline_steps`] steps, a listing is done now (at most that many steps,
    /// each bounded) and its result returned; otherwise, or if it does not end within them, the
    /// background list with whatever was found now. An error of the listing done now is returned.
    pub async fn fresh(&self) -> Result<Vec<String>> {
        let known = self.listing();
        if known.passes > 0 && known.steps > self.options.inline_steps {
            return Ok(known.names.to_vec());
        }
        let mut scan = QueueScan::new(self.client.clone());
        let mut found = BTreeSet::new();
        for _ in 0..self.options.inline_steps {
            match scan.next_page().await? {
                Some(page) => found.extend(page),
                None => {
                    let names: Vec<String> = found.into_iter().collect();
                    self.sender
                        .send_modify(|l| l.names = Arc::new(names.clone()));
                    return Ok(names);
                }
            }
        }
        found.extend(self.listing().names.iter().cloned());
        Ok(found.into_iter().collect())
    }
}

/// The background task: full listings, paced, forever.
async fn refresh(client: Client, options: DirectoryOptions, sender: Arc<watch::Sender<Listing>>) {
    loop {
        let started = Instant::now();
        let mut scan = QueueScan::new(client.clone());
        let mut found = BTreeSet::new();
        let mut steps = 0;
        let outcome = loop {
            match scan.next_page().await {
                Ok(Some(page)) => {
                    steps += 1;
                    let new: Vec<String> = page
                        .into_iter()
                        .filter(|n| found.insert(n.clone()))
                        .collect();
                    sender.send_if_modified(|l| {
                        let missing: Vec<&String> = new
                            .iter()
                            .filter(|n| l.names.binary_search(n).is_err())
                            .collect();
                        if missing.is_empty() {
                            return false;
                        }
                        let mut names: BTreeSet<String> = l.names.iter().cloned().collect();
                        names.extend(missing.into_iter().cloned());
                        l.names = Arc::new(names.into_iter().collect());
                        true
                    });
                    tokio::time::sleep(options.pause).await;
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        match outcome {
            Ok(()) => sender.send_modify(|l| {
                l.names = Arc::new(std::mem::take(&mut found).into_iter().collect());
                l.passes += 1;
                l.steps = steps;
                l.error = None;
            }),
            Err(e) => sender.send_modify(|l| l.error = Some(e.to_string())),
        }
        // A listing of a large server rests as long as it took: listing then uses at most about
        // half of step / (step + pause) of the server's time, however large the keyspace.
        let took = started.elapsed();
        let mut rest = options.period.saturating_sub(took);
        if steps > options.inline_steps {
            rest = rest.max(took);
        }
        tokio::time::sleep(rest).await;
    }
}

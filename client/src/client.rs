//! Connecting: [`Client`] holds a self-reconnecting multiplexed connection (or a cluster
//! connection) and opens dedicated connections for blocking commands.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, FromRedisValue, Pipeline, RedisFuture, Value};

use crate::backend::{Backend, BackendChoice, ConnectOptions};
use crate::error::{Error, Result};
use crate::queue::Queue;
use crate::record::text;

/// How long an ordinary (non-blocking) command may take before it fails.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Extra time a blocking command's connection waits beyond the command's own `BLOCK`.
const BLOCK_MARGIN: Duration = Duration::from_secs(5);

/// Where the client connects.
#[derive(Clone)]
enum Target {
    Single(redis::Client),
    Cluster(Vec<String>),
}

/// A connection: one server (reconnects on its own) or a cluster.
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// A handle to a zrq server or cluster. Cheap to clone; clones share one multiplexed connection.
///
/// ```no_run
/// # async fn demo() -> zrq::Result<()> {
/// let client = zrq::Client::connect("redis://127.0.0.1:6390").await?;
/// let id = client.queue("emails").enqueue("send", &serde_json::json!({"to": "a@b.c"})).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    target: Target,
    pub(crate) conn: Conn,
    pub(crate) backend: Backend,
    /// Whether the client loads the Functions library (at connect, and again if it vanishes).
    manage_library: bool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let target = match &self.target {
            Target::Single(c) => c.get_connection_info().addr().to_string(),
            Target::Cluster(nodes) => nodes.join(","),
        };
        f.debug_struct("Client")
            .field("target", &target)
            .field("backend", &self.backend)
            .finish()
    }
}

impl Client {
    /// Connects to one server (`redis://host:port[/db]`, `rediss://…`, `unix:///path`) and picks
    /// the backend: the module if the server has it, else the Redis Functions library, loaded or
    /// upgraded when needed (see [`ConnectOptions`]). The connection reconnects by itself after a
    /// failure or a server restart.
    pub async fn connect(url: &str) -> Result<Client> {
        Client::connect_with(url, &ConnectOptions::default()).await
    }

    /// Connects to one server with `options` (e.g. a forced backend).
    pub async fn connect_with(url: &str, options: &ConnectOptions) -> Result<Client> {
        let client = redis::Client::open(url).map_err(|e| Error::Config(format!("{url}: {e}")))?;
        let conn = manager(&client, Some(RESPONSE_TIMEOUT)).await?;
        Client {
            target: Target::Single(client),
            conn: Conn::Single(conn),
            backend: Backend::default(),
            manage_library: options.manages_library(),
        }
        .select_backend(options)
        .await
    }

    /// Connects to a Redis Cluster given some of its nodes (`redis://host:port` each). Every
    /// command of a queue goes to the node owning the queue's hash slot. The backend is picked
    /// as by [`Client::connect`] (the module is looked for on one node; the library is loaded on
    /// every primary).
    pub async fn connect_cluster(nodes: &[&str]) -> Result<Client> {
        Client::connect_cluster_with(nodes, &ConnectOptions::default()).await
    }

    /// Connects to a Redis Cluster with `options`.
    pub async fn connect_cluster_with(nodes: &[&str], options: &ConnectOptions) -> Result<Client> {
        let nodes: Vec<String> = nodes.iter().map(|n| n.to_string()).collect();
        let conn = cluster(&nodes, RESPONSE_TIMEOUT).await?;
        Client {
            target: Target::Cluster(nodes),
            conn: Conn::Cluster(conn),
            backend: Backend::default(),
            manage_library: options.manages_library(),
        }
        .select_backend(options)
        .await
    }

    async fn select_backend(mut self, options: &ConnectOptions) -> Result<Client> {
        self.backend = match options.backend_choice() {
            BackendChoice::Module => {
                if !self.has_module().await? {
                    return Err(Error::Backend(
                        "the module backend was asked for, but the server has no zrq module \
                         (ZRQ.ENQUEUE is unknown): load libzrq.so, or use the Lua backend"
                            .into(),
                    ));
                }
                Backend::Module
            }
            BackendChoice::Lua => Backend::Lua,
            BackendChoice::Auto if self.has_module().await? => Backend::Module,
            BackendChoice::Auto => {
                tracing::info!(
                    "the server has no zrq module (ZRQ.ENQUEUE is unknown): \
                     using the zrq Functions library instead"
                );
                Backend::Lua
            }
        };
        if self.backend == Backend::Lua && options.manages_library() {
            self.ensure_library().await?;
        }
        tracing::debug!(backend = ?self.backend, "connected");
        Ok(self)
    }

    /// Whether the server (in a cluster, the node asked) has the zrq module loaded.
    pub async fn has_module(&self) -> Result<bool> {
        let reply: Value = self
            .query(redis::cmd("COMMAND").arg("INFO").arg("zrq.enqueue"))
            .await?;
        Ok(match reply {
            Value::Array(items) => items.iter().any(|item| !matches!(item, Value::Nil)),
            Value::Map(items) => !items.is_empty(),
            _ => false,
        })
    }

    /// The version of the Functions library the server runs (`FCALL zrq_version 0`): `None`
    /// if it has none. In a cluster, the versions of every primary must agree, else `None`.
    pub async fn library_version(&self) -> Result<Option<String>> {
        let mut cmd = redis::cmd("FCALL");
        cmd.arg("zrq_version").arg(0);
        let reply = match &self.conn {
            Conn::Single(_) => {
                let reply: Result<Value> = self.query(&cmd).await;
                match reply {
                    Ok(value) => value,
                    Err(e) if e.code().is_some() => return Ok(None),
                    Err(e) => return Err(e),
                }
            }
            Conn::Cluster(conn) => {
                use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo};
                let routing = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
                let reply = conn
                    .clone()
                    .route_command(cmd, routing)
                    .await
                    .map_err(Error::from_redis);
                match reply {
                    Ok(Value::Map(per_node)) => {
                        let versions: Vec<Option<String>> =
                            per_node.iter().map(|(_, v)| text(v)).collect();
                        match versions.first() {
                            Some(first) if versions.iter().all(|v| v == first) => {
                                return Ok(first.clone())
                            }
                            _ => return Ok(None),
                        }
                    }
                    Ok(other) => other,
                    Err(e) if e.code().is_some() => return Ok(None),
                    Err(e) => return Err(e),
                }
            }
        };
        Ok(text(&reply))
    }

    /// Makes sure the server runs this client's Functions library ([`zrq_lua::VERSION`]): loads
    /// it with `FUNCTION LOAD REPLACE` when there is none or another version (an older library
    /// is replaced, never left running). Whether it loaded. Safe to run from many clients at
    /// once: loading the same text again changes nothing.
    pub async fn ensure_library(&self) -> Result<bool> {
        if self.library_version().await?.as_deref() == Some(zrq_lua::VERSION) {
            return Ok(false);
        }
        let loaded = self.load_library().await?;
        tracing::info!(version = %loaded, "loaded the zrq Functions library");
        Ok(true)
    }

    /// Loads this client's Functions library with `FUNCTION LOAD REPLACE` (in a cluster, on
    /// every primary), whatever the server runs now; the version the server then reports.
    pub async fn load_library(&self) -> Result<String> {
        let mut load = redis::cmd("FUNCTION");
        load.arg("LOAD").arg("REPLACE").arg(zrq_lua::library());
        let loaded: Result<Value> = self.query(&load).await;
        if let Err(e) = loaded {
            return Err(Error::Backend(format!(
                "cannot load the zrq Functions library (FUNCTION LOAD needs Redis 7 or later \
                 and the FUNCTION permission): {e}"
            )));
        }
        match self.library_version().await? {
            Some(version) => Ok(version),
            None => Err(Error::Backend(
                "the zrq Functions library was loaded, but FCALL zrq_version does not answer"
                    .into(),
            )),
        }
    }

    /// The same client speaking to another backend (see [`Backend`]), as it is: nothing is
    /// checked or loaded (prefer [`Client::connect_with`] and [`ConnectOptions`]).
    pub fn with_backend(mut self, backend: Backend) -> Client {
        self.backend = backend;
        self
    }

    /// The backend commands go to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A queue by name (nothing is sent: queues exist once something is enqueued).
    pub fn queue(&self, name: &str) -> Queue {
        Queue::new(self.clone(), name)
    }

    /// The names of the queues on the server that this connection's user may read
    /// (`ZRQ.QUEUES`, paged with its cursor to the end: each call's work inside Redis is bounded,
    /// however large the keyspace); in a cluster, of every primary. Sorted, each once. On a server
    /// with millions of keys this takes thousands of short round trips: to list repeatedly, keep
    /// a [`QueueDirectory`](crate::QueueDirectory); to stop early, walk a
    /// [`QueueScan`](crate::QueueScan).
    pub async fn queues(&self) -> Result<Vec<String>> {
        let mut names = std::collections::BTreeSet::new();
        let mut scan = crate::QueueScan::new(self.clone());
        while let Some(page) = scan.next_page().await? {
            names.extend(page);
        }
        Ok(names.into_iter().collect())
    }

    /// Runs the zrq command `name` with `args` and returns the raw reply. On the Lua backend, a
    /// library that vanished from the server (`FUNCTION FLUSH`, a server started afresh) is
    /// loaded again and the command sent once more.
    pub async fn call<A: redis::ToRedisArgs>(
        &self,
        name: &str,
        queue: Option<&str>,
        args: &[A],
    ) -> Result<Value> {
        let cmd = self.backend.command(name, queue, args);
        match self.query(&cmd).await {
            Err(e) if self.restore_library(&e).await => self.query(&cmd).await,
            other => other,
        }
    }

    /// After `error`: if it says the Functions library is missing and this client manages it,
    /// loads it again; whether it did (and the command is worth sending again).
    pub(crate) async fn restore_library(&self, error: &Error) -> bool {
        if self.backend != Backend::Lua || !self.manage_library || !is_missing_function(error) {
            return false;
        }
        match self.ensure_library().await {
            Ok(_) => {
                tracing::warn!(
                    "the zrq Functions library was missing from the server: loaded it again"
                );
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "the zrq Functions library is missing and cannot be loaded");
                false
            }
        }
    }

    /// Runs any command on the shared connection.
    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T> {
        let mut conn = self.conn.clone();
        cmd.query_async(&mut conn).await.map_err(Error::from_redis)
    }

    /// Runs a pipeline on the shared connection; one reply (or error) per command. On the Lua
    /// backend, if every command failed for want of the library, it is loaded again and the
    /// pipeline sent once more.
    pub(crate) async fn pipeline(&self, pipe: &Pipeline) -> Result<Vec<Value>> {
        let mut pipe = pipe.clone();
        pipe.ignore_errors();
        let replies: Vec<Value> = pipe
            .query_async(&mut self.conn.clone())
            .await
            .map_err(Error::from_redis)?;
        let missing = replies.iter().all(|reply| match reply {
            Value::ServerError(e) => is_missing_function(&Error::Server {
                code: e.code().to_string(),
                message: e.details().unwrap_or_default().to_string(),
            }),
            _ => false,
        });
        if missing && !replies.is_empty() {
            if let Some(Value::ServerError(e)) = replies.first() {
                let error = Error::Server {
                    code: e.code().to_string(),
                    message: e.details().unwrap_or_default().to_string(),
                };
                if self.restore_library(&error).await {
                    return pipe
                        .query_async(&mut self.conn.clone())
                        .await
                        .map_err(Error::from_redis);
                }
            }
        }
        Ok(replies)
    }

    /// A Pub/Sub connection to the server, `None` for a cluster.
    pub(crate) async fn pubsub(&self) -> Result<Option<redis::aio::PubSub>> {
        match &self.target {
            Target::Single(client) => {
                Ok(Some(client.get_async_pubsub().await.map_err(Error::Redis)?))
            }
            Target::Cluster(_) => Ok(None),
        }
    }

    /// A new connection of its own, for blocking commands of up to `block` (they must not
    /// share the multiplexed connection with other traffic, which they would hold up).
    pub(crate) async fn dedicated(&self, block: Duration) -> Result<Conn> {
        let timeout = block + BLOCK_MARGIN;
        match &self.target {
            Target::Single(client) => Ok(Conn::Single(manager(client, Some(timeout)).await?)),
            Target::Cluster(nodes) => Ok(Conn::Cluster(cluster(nodes, timeout).await?)),
        }
    }
}

/// Whether `error` says that a `zrq_*` function does not exist (the library is not loaded).
fn is_missing_function(error: &Error) -> bool {
    error
        .to_string()
        .to_lowercase()
        .contains("function not found")
}

async fn manager(client: &redis::Client, timeout: Option<Duration>) -> Result<ConnectionManager> {
    let config = ConnectionManagerConfig::new()
        .set_response_timeout(timeout)
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_max_delay(Duration::from_secs(2))
        .set_number_of_retries(3);
    ConnectionManager::new_with_config(client.clone(), config)
        .await
        .map_err(Error::Redis)
}

async fn cluster(nodes: &[String], timeout: Duration) -> Result<ClusterConnection> {
    let client = ClusterClient::builder(nodes.to_vec())
        .response_timeout(timeout)
        .build()
        .map_err(|e| Error::Config(format!("cluster nodes: {e}")))?;
    client.get_async_connection().await.map_err(Error::Redis)
}

//! Test harness: real `redis-server` processes for integration tests.
//!
//! Each [`Server`] runs in its own temporary directory on a free loopback port, with the freshly
//! built module loaded (or the Lua library, for the Lua backend), and is killed when dropped. When
//! a test fails, the server's log is printed, so the failure shows what Redis saw.
//!
//! Behaviour tests are written once against [`Zrq`], which speaks either backend, and instantiated
//! for every backend by the [`conformance!`] macro.

pub mod audit;
pub mod cluster;
pub mod proxy;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use redis;
use redis::{Connection, FromRedisValue, Value};

/// Which implementation of the zrq protocol a test talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The Redis module, `ZRQ.<CMD> <queue> …`.
    Module,
    /// The Redis Functions library, `FCALL zrq_<cmd> 1 <queue> …`.
    Lua,
}

impl Backend {
    /// Starts a server serving this backend: the module loaded, or the Lua library loaded into a
    /// server without the module.
    pub fn server(self) -> Server {
        self.server_with(Options::default())
    }

    /// The command `ZRQ.<name> args…` (module) or `FCALL zrq_<name> 1 args…` (Lua); `args[0]`
    /// is the queue.
    pub fn command(self, name: &str, args: &[&[u8]]) -> redis::Cmd {
        let mut cmd = match self {
            Backend::Module => redis::cmd(&format!("ZRQ.{}", name.to_uppercase())),
            Backend::Lua => {
                let mut cmd = redis::cmd("FCALL");
                cmd.arg(format!("zrq_{}", name.to_lowercase()));
                // QUEUES declares no key: its arguments are all ARGV (a tenant's ACL would refuse
                // `CURSOR` as a key name).
                cmd.arg(if args.is_empty() || name == "queues" {
                    0
                } else {
                    1
                });
                cmd
            }
        };
        for arg in args {
            cmd.arg(*arg);
        }
        cmd
    }

    /// Like [`Backend::server`], with extra options.
    pub fn server_with(self, options: Options) -> Server {
        let server = Server::start(Options {
            module: self == Backend::Module,
            ..options
        });
        if self == Backend::Lua {
            server.load_lua();
        }
        server
    }
}

/// How to start a server.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Load `libzrq.so`.
    pub module: bool,
    /// Turn on the append-only file (`appendfsync always`).
    pub appendonly: bool,
    /// Extra `--name value` configuration.
    pub config: Vec<(String, String)>,
}

impl Options {
    /// Lets schedules tick every few milliseconds (module config `zrq.every-min-ms` 1, below its
    /// default), so tests of the timer wait milliseconds rather than seconds. Module servers only.
    pub fn fast_schedules(mut self) -> Self {
        self.config
            .push(("zrq.every-min-ms".to_string(), "1".to_string()));
        self
    }
}

/// A running `redis-server`, killed on drop.
pub struct Server {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    options: Options,
}

/// Path of the module under test: `$ZRQ_MODULE`, else the workspace's debug build.
pub fn module_path() -> PathBuf {
    if let Some(path) = std::env::var_os("ZRQ_MODULE") {
        return PathBuf::from(path);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = root.join("target/debug/libzrq.so");
    assert!(
        path.exists(),
        "{} is missing: build the module first (cargo build -p zrq-module), or set ZRQ_MODULE",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

impl Server {
    /// Starts a server with `options` and waits until it answers PING.
    pub fn start(options: Options) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut server = Server {
            child: None,
            port: 0,
            dir,
            options,
        };
        server.spawn_on_free_port();
        server
    }

    fn spawn_on_free_port(&mut self) {
        for _ in 0..5 {
            self.port = free_port();
            if self.spawn() {
                return;
            }
        }
        panic!("redis-server did not start:\n{}", self.log());
    }

    /// Starts the process on `self.port`; false if it did not come up (port taken, say).
    fn spawn(&mut self) -> bool {
        let mut args: Vec<String> = vec![
            "--port".into(),
            self.port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--dir".into(),
            self.dir.path().display().to_string(),
            "--logfile".into(),
            "redis.log".into(),
            "--save".into(),
            "".into(),
            "--enable-debug-command".into(),
            "yes".into(),
            "--enable-module-command".into(),
            "yes".into(),
        ];
        if self.options.appendonly {
            args.extend(["--appendonly", "yes", "--appendfsync", "always"].map(String::from));
        }
        if self.options.module {
            args.extend([
                "--loadmodule".to_string(),
                module_path().display().to_string(),
            ]);
        }
        for (name, value) in &self.options.config {
            args.extend([format!("--{name}"), value.clone()]);
        }
        let child = Command::new("redis-server")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(Child::try_wait) {
                return false;
            }
            if let Ok(mut conn) = self.try_conn() {
                let loading: redis::RedisResult<String> = redis::cmd("PING").query(&mut conn);
                if loading.is_ok() {
                    // The port may have been taken, between `free_port` and the bind, by a
                    // server of another test process (then ours fails to bind and exits): only
                    // our own process counts, or two tests would share one server.
                    if self.is_own_process(&mut conn) {
                        return true;
                    }
                    if let Some(child) = self.child.as_mut() {
                        let _ = child.kill();
                        let _ = child.wait();
                    }
                    return false;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Whether the server behind `conn` is this `Server`'s process (`INFO server`'s
    /// `process_id`).
    fn is_own_process(&self, conn: &mut Connection) -> bool {
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query(conn)
            .unwrap_or_default();
        let pid = info
            .lines()
            .find_map(|line| line.strip_prefix("process_id:"))
            .and_then(|pid| pid.trim().parse::<u32>().ok());
        pid.is_some() && pid == self.child.as_ref().map(Child::id)
    }

    fn try_conn(&self) -> redis::RedisResult<Connection> {
        redis::Client::open(self.url())?.get_connection_with_timeout(Duration::from_secs(5))
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A new RESP2 connection.
    pub fn conn(&self) -> Connection {
        self.try_conn().expect("connect to test server")
    }

    /// A new RESP3 connection.
    pub fn conn_resp3(&self) -> Connection {
        redis::Client::open(format!("{}?protocol=resp3", self.url()))
            .and_then(|c| c.get_connection())
            .expect("connect to test server with RESP3")
    }

    /// A zrq connection for `backend`.
    pub fn zrq(&self, backend: Backend) -> Zrq {
        Zrq {
            conn: self.conn(),
            backend,
        }
    }

    /// Creates (or resets) ACL user `name` with password `name` and `rules` (`ACL SETUSER name
    /// reset on >name <rules…>`), and returns a connection authenticated as that user.
    pub fn user(&self, name: &str, rules: &[&str]) -> Connection {
        let _: () = redis::cmd("ACL")
            .arg("SETUSER")
            .arg(name)
            .arg("reset")
            .arg("on")
            .arg(format!(">{name}"))
            .arg(rules)
            .query(&mut self.conn())
            .expect("ACL SETUSER");
        redis::Client::open(format!("redis://{name}:{name}@127.0.0.1:{}", self.port))
            .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(5)))
            .expect("connect as the ACL user")
    }

    /// A zrq connection for `backend` authenticated as ACL user `name` (see [`Server::user`]).
    pub fn zrq_as(&self, backend: Backend, name: &str, rules: &[&str]) -> Zrq {
        Zrq {
            conn: self.user(name, rules),
            backend,
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    /// The server's directory (RDB/AOF files live here).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Loads (or replaces) the Lua library.
    pub fn load_lua(&self) {
        let _: String = redis::cmd("FUNCTION")
            .arg("LOAD")
            .arg("REPLACE")
            .arg(zrq_lua::library())
            .query(&mut self.conn())
            .expect("FUNCTION LOAD the zrq library");
    }

    /// Kills the process (SIGKILL: no shutdown save) and starts it again on the same port and
    /// directory, as after a crash.
    pub fn crash_and_restart(&mut self) {
        self.kill();
        assert!(self.spawn(), "restart failed:\n{}", self.log());
    }

    /// Stops the process with SHUTDOWN (AOF flushed) and starts it again.
    pub fn restart(&mut self) {
        let _: redis::RedisResult<()> = redis::cmd("SHUTDOWN").query(&mut self.conn());
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
        assert!(self.spawn(), "restart failed:\n{}", self.log());
    }

    /// Starts a replica of this server with the same backend options and waits for its sync.
    pub fn start_replica(&self) -> Server {
        let replica = Server::start(self.options.clone());
        let _: () = redis::cmd("REPLICAOF")
            .arg("127.0.0.1")
            .arg(self.port)
            .query(&mut replica.conn())
            .expect("REPLICAOF");
        replica.wait_for(|conn| {
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query(conn)
                .unwrap_or_default();
            info.contains("master_link_status:up")
        });
        replica
    }

    /// Leaves expired leases to `ZRQ.RECLAIM`, as on the Lua backend: turns off the module's
    /// timer expiry (`zrq.expire-leases no`). For tests of RECLAIM itself, which would otherwise
    /// race the timer; a server without the module has nothing to turn off.
    pub fn leave_leases_to_reclaim(&self) {
        if self.options.module {
            let _: () = redis::cmd("CONFIG")
                .arg("SET")
                .arg("zrq.expire-leases")
                .arg("no")
                .query(&mut self.conn())
                .expect("CONFIG SET zrq.expire-leases no");
        }
    }

    /// Waits up to 30 s for `check` to hold (generous: a loaded machine can delay a timer by
    /// seconds, and waiting longer costs only a failing test).
    pub fn wait_for(&self, mut check: impl FnMut(&mut Connection) -> bool) {
        let mut conn = self.conn();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if check(&mut conn) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("condition not reached in 30 s; server log:\n{}", self.log());
    }

    /// `DEBUG DIGEST`: a hash of the whole dataset.
    pub fn digest(&self) -> String {
        redis::cmd("DEBUG")
            .arg("DIGEST")
            .query(&mut self.conn())
            .expect("DEBUG DIGEST")
    }

    /// Every key with its type and a dump of its value, sorted: to compare a keyspace before and
    /// after a command.
    pub fn snapshot(&self) -> Vec<(String, Vec<u8>)> {
        let mut conn = self.conn();
        let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).expect("KEYS");
        keys.sort();
        keys.into_iter()
            .map(|key| {
                let dump: Vec<u8> = redis::cmd("DUMP")
                    .arg(&key)
                    .query(&mut conn)
                    .unwrap_or_default();
                (key, dump)
            })
            .collect()
    }

    /// The process id of the running server.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the process with SIGKILL (no shutdown, nothing saved), as a crash; the server stays
    /// down (its directory is kept until drop).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "---- redis-server log (port {}) ----\n{}",
                self.port,
                self.log()
            );
        }
    }
}

/// A connection that issues zrq commands to one backend.
pub struct Zrq {
    /// The underlying connection.
    pub conn: Connection,
    /// Which backend commands go to.
    pub backend: Backend,
}

impl Zrq {
    /// The command `ZRQ.<name> args…` (module) or `FCALL zrq_<name> 1 args…` (Lua); `args[0]`
    /// is the queue.
    pub fn command(&self, name: &str, args: &[&[u8]]) -> redis::Cmd {
        self.backend.command(name, args)
    }

    /// Runs a zrq command with text arguments and converts the reply.
    pub fn call<T: FromRedisValue>(&mut self, name: &str, args: &[&str]) -> redis::RedisResult<T> {
        let raw: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.command(name, &raw).query(&mut self.conn)
    }

    /// Runs a zrq command with byte arguments and returns the raw reply.
    pub fn call_raw(&mut self, name: &str, args: &[&[u8]]) -> redis::RedisResult<Value> {
        self.command(name, args).query(&mut self.conn)
    }

    /// Enqueues `task` with `payload` and options; returns the id.
    pub fn enqueue(&mut self, queue: &str, task: &str, payload: &str, options: &[&str]) -> String {
        let mut args = vec![queue, task, payload];
        args.extend_from_slice(options);
        self.call("enqueue", &args).expect("ENQUEUE")
    }

    /// Fetches up to `count` jobs without blocking.
    pub fn fetch(&mut self, queue: &str, consumer: &str, count: usize) -> Vec<JobMap> {
        let count = count.to_string();
        self.call("fetch", &[queue, consumer, "COUNT", &count])
            .map(jobs)
            .expect("FETCH")
    }

    /// Every queue `QUEUES` lists, paging with its cursor until the end (sorted, each once).
    pub fn queues(&mut self) -> Vec<String> {
        let mut names = std::collections::BTreeSet::new();
        let mut cursor = "0".to_string();
        loop {
            let (next, page): (String, Vec<String>) = self
                .call("queues", &["CURSOR", &cursor, "COUNT", "250"])
                .expect("QUEUES");
            names.extend(page);
            if next == "0" {
                return names.into_iter().collect();
            }
            cursor = next;
        }
    }

    /// The state of a job, or None.
    pub fn state(&mut self, queue: &str, id: &str) -> Option<String> {
        self.call("state", &[queue, id]).expect("STATE")
    }

    /// The whole job, or None.
    pub fn job(&mut self, queue: &str, id: &str) -> Option<JobMap> {
        let value: Value = self.call("job", &[queue, id]).expect("JOB");
        match value {
            Value::Nil => None,
            other => Some(map(other)),
        }
    }
}

/// A job reply as field → value (integers and strings both as text).
pub type JobMap = std::collections::BTreeMap<String, String>;

/// Reads a job map from a RESP2 flat array or a RESP3 map.
pub fn map(value: Value) -> JobMap {
    fn text(v: Value) -> String {
        match v {
            Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
            Value::SimpleString(s) => s,
            Value::Int(n) => n.to_string(),
            other => format!("{other:?}"),
        }
    }
    match value {
        Value::Array(items) => items
            .chunks(2)
            .map(|pair| (text(pair[0].clone()), text(pair[1].clone())))
            .collect(),
        Value::Map(pairs) => pairs.into_iter().map(|(k, v)| (text(k), text(v))).collect(),
        other => panic!("expected a job map, got {other:?}"),
    }
}

/// Reads an array of job maps.
pub fn jobs(value: Value) -> Vec<JobMap> {
    match value {
        Value::Array(items) => items.into_iter().map(map).collect(),
        Value::Nil => Vec::new(),
        other => panic!("expected an array of jobs, got {other:?}"),
    }
}

/// Instantiates behaviour tests for every backend: each listed function
/// `fn name(backend: Backend)` becomes one `#[test]` per backend (`module::name`, `lua::name`).
#[macro_export]
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod module {
            $(
                #[test]
                fn $name() {
                    super::$name($crate::Backend::Module)
                }
            )*
        }
        mod lua {
            $(
                #[test]
                fn $name() {
                    super::$name($crate::Backend::Lua)
                }
            )*
        }
    };
}

/// A small deterministic pseudo-random generator (xorshift), so failures reproduce.
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A port taken by another server between `free_port` and the bind (by a test of another
    /// process, say) is not mistaken for ours: the other server answers PING, but it is not our
    /// process, so the start is retried elsewhere.
    #[test]
    fn a_server_already_on_the_port_is_not_taken_for_ours() {
        let first = Server::start(Options::default());
        let mut second = Server {
            child: None,
            port: first.port(),
            dir: tempfile::tempdir().expect("temp dir"),
            options: Options::default(),
        };
        assert!(
            !second.spawn(),
            "another process's server was taken for ours"
        );
        second.child = None;
        second.port = 0;
        second.spawn_on_free_port();
        assert_ne!(second.port(), first.port());
        assert!(second.is_own_process(&mut second.conn()));
    }
}

//! A `redis-server` of the harness's own: a temporary directory, a free loopback port, persistence
//! off unless asked, the module and the Lua library loaded. Killed on drop.

use std::io;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::resp::Conn;

/// A running server.
pub struct Server {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

/// `$ZRQ_MODULE`, else `target/release/libzrq.so` of this workspace.
pub fn module_path() -> PathBuf {
    std::env::var_os("ZRQ_MODULE").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/libzrq.so"),
        PathBuf::from,
    )
}

impl Server {
    /// Starts `redis-server` with the module (and AOF, `appendfsync everysec`, if `aof`; and any
    /// extra `config` as `--name value`), loads the Lua library and waits until it answers.
    pub fn start(aof: bool, config: &[(String, String)]) -> io::Result<Server> {
        let module = module_path();
        if !module.exists() {
            return Err(io::Error::other(format!(
                "{} is missing: cargo build --release -p zrq-module (or set ZRQ_MODULE)",
                module.display()
            )));
        }
        let dir = tempfile::tempdir()?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--dir",
            &dir.path().display().to_string(),
            "--logfile",
            "redis.log",
            "--save",
            "",
            "--appendonly",
            if aof { "yes" } else { "no" },
            "--loadmodule",
            &module.display().to_string(),
        ]
        .map(String::from)
        .to_vec();
        if aof {
            args.extend(["--appendfsync", "everysec"].map(String::from));
        }
        for (name, value) in config {
            args.extend([format!("--{name}"), value.clone()]);
        }
        let child = Command::new("redis-server")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let server = Server {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut conn) = Conn::connect(port) {
                if conn.cmd(&["PING"]).is_ok() {
                    break;
                }
            }
            if Instant::now() > deadline {
                return Err(io::Error::other("redis-server did not start"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut conn = server.conn()?;
        conn.call(&[
            b"FUNCTION",
            b"LOAD",
            b"REPLACE",
            zrq_lua::library().as_bytes(),
        ])?;
        Ok(server)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A new connection.
    pub fn conn(&self) -> io::Result<Conn> {
        Conn::connect(self.port)
    }

    /// A field of `INFO <section>` as a number.
    pub fn info_field(&self, section: &str, field: &str) -> io::Result<f64> {
        let text = self
            .conn()?
            .cmd(&["INFO", section])?
            .text()
            .unwrap_or_default();
        text.lines()
            .find_map(|l| {
                l.strip_prefix(field)?
                    .strip_prefix(':')?
                    .trim()
                    .parse()
                    .ok()
            })
            .ok_or_else(|| io::Error::other(format!("INFO has no {field}")))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! What the `zrq` binary's tests share: the binary, and `zrq dashboard` / `zrq metrics` running
//! as child processes.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The `zrq` binary of this crate.
pub fn cli() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_zrq"))
}

/// `zrq dashboard` or `zrq metrics` running on a free loopback port; killed when dropped.
pub struct WebServer {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl WebServer {
    /// Runs `zrq --url <url> <args> --listen 127.0.0.1:0` and waits for its "listening on" line.
    pub async fn start(url: &str, args: &[&str]) -> WebServer {
        let mut child = Command::new(cli())
            .arg("--url")
            .arg(url)
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .env_remove("ZRQ_URL")
            .env_remove("ZRQ_BACKEND")
            .env_remove("ZRQ_DASHBOARD_PASSWORD")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("run zrq");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("zrq did not say where it listens within 20 s")
            .expect("read zrq's stdout")
            .expect("zrq exited before listening");
        let base = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .to_string();
        // Nothing more is printed; keep the pipe open so that a late line cannot fail.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        WebServer { child, base }
    }

    /// Stops the server.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

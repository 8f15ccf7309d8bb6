//! `scripts/server` starts the repository's `redis.conf` with the module, with the settings zrq
//! relies on (AOF on, noeviction, loopback only), from any directory.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zrq_tests::redis;

/// Kills the server when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn scripts_server_starts_redis_conf_with_the_module_from_any_directory() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let server = root
        .join("scripts/server")
        .canonicalize()
        .expect("scripts/server");
    // Started from one directory with its data in another: the module is found by its absolute
    // path whatever Redis' working directory is (a relative loadmodule would not be).
    let cwd = tempfile::tempdir().expect("temp dir");
    let dir = tempfile::tempdir().expect("temp dir");
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        listener.local_addr().expect("addr").port()
    };
    let child = Command::new(server)
        .args([
            "--port",
            &port.to_string(),
            "--logfile",
            "redis.log",
            "--dir",
        ])
        .arg(dir.path())
        .env(
            "ZRQ_MODULE",
            zrq_tests::module_path()
                .canonicalize()
                .expect("module path"),
        )
        .current_dir(cwd.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("scripts/server");
    let _running = Running(child);
    let log = || std::fs::read_to_string(dir.path().join("redis.log")).unwrap_or_default();

    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("client");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut conn = loop {
        if let Ok(mut conn) = client.get_connection() {
            if redis::cmd("PING").query::<String>(&mut conn).is_ok() {
                break conn;
            }
        }
        assert!(
            Instant::now() < deadline,
            "server did not start:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(20));
    };

    let config = |conn: &mut redis::Connection, name: &str| -> String {
        let pair: (String, String) = redis::cmd("CONFIG")
            .arg("GET")
            .arg(name)
            .query(conn)
            .expect("CONFIG GET");
        pair.1
    };
    assert_eq!(config(&mut conn, "appendonly"), "yes");
    assert_eq!(config(&mut conn, "maxmemory-policy"), "noeviction");
    assert_eq!(config(&mut conn, "protected-mode"), "yes");
    assert_eq!(config(&mut conn, "bind"), "127.0.0.1 -::1");
    let id: String = redis::cmd("ZRQ.ENQUEUE")
        .arg("q")
        .arg("t")
        .arg("{}")
        .query(&mut conn)
        .expect("the module is loaded");
    assert!(
        zrq_core::job::inline_entry(&id).is_some(),
        "a generated id: {id}"
    );
    assert!(
        !log()
            .lines()
            .any(|l| l.contains("<zrq>") && l.contains("maxmemory-policy")),
        "no eviction warning:\n{}",
        log()
    );
    assert!(
        dir.path().join("appendonlydir").is_dir(),
        "the AOF is written"
    );
}

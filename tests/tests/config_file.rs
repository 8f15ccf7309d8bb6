//! The repository's `redis.conf` starts a server that loads the module with the settings zrq
//! relies on (AOF on, noeviction, loopback only).

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
fn redis_conf_starts_a_server_with_the_module() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let conf = root.join("redis.conf");
    // redis.conf loads ./target/release/libzrq.so relative to where the server starts: start it in
    // a temporary directory laid out like the repository root, holding the module under test.
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("target/release")).expect("mkdir");
    std::os::unix::fs::symlink(
        zrq_tests::module_path()
            .canonicalize()
            .expect("module path"),
        dir.path().join("target/release/libzrq.so"),
    )
    .expect("symlink the module");
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        listener.local_addr().expect("addr").port()
    };
    let child = Command::new("redis-server")
        .arg(&conf)
        .args(["--port", &port.to_string(), "--logfile", "redis.log"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server");
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
    assert_eq!(id.len(), 36);
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

//! A Redis Cluster of real servers on loopback, started with `redis-cli --cluster create`.

use std::process::{Command, Stdio};

use redis::Connection;

use crate::{Options, Server};

/// The nodes of a cluster: `primaries` primaries, each with `replicas` replicas (the first
/// `primaries` servers are the primaries, as `redis-cli --cluster create` assigns them), the
/// module loaded on each if `module`, `config` added to every node's configuration.
/// Returns once every node reports `cluster_state:ok`.
pub fn start_cluster(
    primaries: usize,
    replicas: usize,
    module: bool,
    config: &[(&str, &str)],
) -> Vec<Server> {
    let mut settings = vec![("cluster-enabled".to_string(), "yes".to_string())];
    settings.extend(config.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let nodes: Vec<Server> = (0..primaries * (1 + replicas))
        .map(|_| {
            Server::start(Options {
                module,
                config: settings.clone(),
                ..Options::default()
            })
        })
        .collect();
    let addrs: Vec<String> = nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.port()))
        .collect();
    let status = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(&addrs)
        .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
        .stdout(Stdio::null())
        .status()
        .expect("redis-cli --cluster create");
    assert!(status.success(), "redis-cli --cluster create failed");
    for node in &nodes {
        node.wait_for(|conn| cluster_ok(conn) && replication_up(conn, replicas));
    }
    nodes
}

/// Whether the node behind `conn` reports `cluster_state:ok`.
pub fn cluster_ok(conn: &mut Connection) -> bool {
    let info: String = redis::cmd("CLUSTER")
        .arg("INFO")
        .query(conn)
        .unwrap_or_default();
    info.contains("cluster_state:ok")
}

/// Whether the node's replication is up: a primary has its `replicas` replicas connected, a
/// replica its link to its primary.
fn replication_up(conn: &mut Connection, replicas: usize) -> bool {
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query(conn)
        .unwrap_or_default();
    if info.contains("role:master") {
        info.contains(&format!("connected_slaves:{replicas}"))
    } else {
        info.contains("master_link_status:up")
    }
}

/// The port of the primary that owns `key`'s slot, as the node behind `conn` sees it.
pub fn owner_port(conn: &mut Connection, key: &str) -> u16 {
    let slot: i64 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query(conn)
        .expect("CLUSTER KEYSLOT");
    let ranges: Vec<redis::Value> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query(conn)
        .expect("CLUSTER SLOTS");
    for range in ranges {
        let redis::Value::Array(parts) = range else {
            continue;
        };
        let bound = |i: usize| match parts.get(i) {
            Some(redis::Value::Int(n)) => *n,
            _ => -1,
        };
        if (bound(0)..=bound(1)).contains(&slot) {
            if let Some(redis::Value::Array(primary)) = parts.get(2) {
                if let Some(redis::Value::Int(port)) = primary.get(1) {
                    return u16::try_from(*port).expect("port");
                }
            }
        }
    }
    panic!("no node owns slot {slot} of {key}")
}

//! A TCP forwarder on a stable loopback port: what a deployment puts in front of a primary that
//! can change (a virtual IP, a DNS name, HAProxy checking `role:master`, a cloud endpoint).
//! Clients connect to the proxy; a failover [`Proxy::switch`]es it to the new primary and cuts
//! the connections to the old one, so clients reconnect — to the same address — by themselves.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

/// A running forwarder; stops accepting when dropped (connections already made are cut).
pub struct Proxy {
    port: u16,
    shared: Arc<Mutex<Route>>,
}

/// Where connections go, and the live ones (both ends), to cut them on a switch.
struct Route {
    target: u16,
    live: Vec<TcpStream>,
    closed: bool,
}

impl Proxy {
    /// Starts forwarding a free loopback port to `127.0.0.1:<target>`.
    pub fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let shared = Arc::new(Mutex::new(Route {
            target,
            live: Vec::new(),
            closed: false,
        }));
        let route = shared.clone();
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let mut guard = route.lock().expect("proxy route");
                if guard.closed {
                    return;
                }
                // A dead target refuses: the client's connection is closed, as a dead primary's.
                let Ok(server) = TcpStream::connect(("127.0.0.1", guard.target)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                for stream in [&client, &server] {
                    if let Ok(clone) = stream.try_clone() {
                        guard.live.push(clone);
                    }
                }
                drop(guard);
                pump(&client, &server);
                pump(&server, &client);
            }
        });
        Proxy { port, shared }
    }

    /// The proxy's port: the stable address clients use.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Sends new connections to `target` and cuts every current one.
    pub fn switch(&self, target: u16) {
        let mut route = self.shared.lock().expect("proxy route");
        route.target = target;
        for stream in route.live.drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Ok(mut route) = self.shared.lock() {
            route.closed = true;
            for stream in route.live.drain(..) {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
        // Wakes the accept loop so it sees `closed` and ends.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Copies `from` into `to` on a thread until either side closes, then closes both.
fn pump(from: &TcpStream, to: &TcpStream) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
    });
}

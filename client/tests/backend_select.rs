//! Backend detection at connect time, and the client loading or upgrading the Functions library.
// Test code fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use zrq::{Backend as ClientBackend, BackendChoice, Client, ConnectOptions, Worker};
use zrq_tests::redis::{self, Value};

/// A server without the module and without the library.
fn bare_server() -> Server {
    Server::start(Options {
        module: false,
        ..Options::default()
    })
}

/// The names of the Functions libraries on the server.
fn libraries(server: &Server) -> Vec<String> {
    let reply: Value = redis::cmd("FUNCTION")
        .arg("LIST")
        .query(&mut server.conn())
        .unwrap();
    let Value::Array(libs) = reply else {
        panic!("FUNCTION LIST replied {reply:?}")
    };
    libs.into_iter()
        .map(|lib| {
            let Value::Array(fields) = lib else {
                panic!("library entry {lib:?}")
            };
            let at = fields
                .iter()
                .position(|f| matches!(f, Value::BulkString(b) if b == b"library_name"))
                .unwrap();
            redis::from_redis_value::<String>(fields[at + 1].clone()).unwrap()
        })
        .collect()
}

fn library_version(server: &Server) -> redis::RedisResult<String> {
    redis::cmd("FCALL")
        .arg("zrq_version")
        .arg(0)
        .query(&mut server.conn())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_without_the_module_loads_the_library_and_serves_jobs() {
    let server = bare_server();
    assert!(libraries(&server).is_empty());
    assert!(library_version(&server).is_err());
    let client = Client::connect(&server.url()).await.unwrap();
    assert_eq!(client.backend(), ClientBackend::Lua);
    assert_eq!(libraries(&server), [zrq::lua::LIBRARY_NAME]);
    assert_eq!(library_version(&server).unwrap(), zrq::lua::VERSION);
    let running = spawn(adder(
        Worker::new(client.clone(), &["auto"]).block(Duration::from_millis(300)),
    ));
    let job = client
        .queue("auto")
        .enqueue_task::<Add>(&AddArgs {
            a: 40,
            b: 2,
            work_ms: 0,
        })
        .await
        .unwrap();
    assert_eq!(job.wait::<i64>(Duration::from_secs(20)).await.unwrap(), 42);
    assert_eq!(running.stop().await.completed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_library_is_replaced_on_connect() {
    let server = bare_server();
    let current = format!("local VERSION = '{}'", zrq::lua::VERSION);
    assert!(zrq::lua::library().contains(&current));
    let old = zrq::lua::library().replace(&current, "local VERSION = '0'");
    let _: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(&old)
        .query(&mut server.conn())
        .unwrap();
    assert_eq!(library_version(&server).unwrap(), "0");
    let client = Client::connect(&server.url()).await.unwrap();
    assert_eq!(client.backend(), ClientBackend::Lua);
    assert_eq!(library_version(&server).unwrap(), zrq::lua::VERSION);
    assert_eq!(libraries(&server), [zrq::lua::LIBRARY_NAME]);
    // The library in place is the client's, whole: a queue works through it.
    let job = client.queue("q").enqueue("t", &1).await.unwrap();
    assert_eq!(
        job.state().await.unwrap().map(|s| s.to_string()).as_deref(),
        Some("pending")
    );
    // Up to date: nothing more to load.
    assert!(!client.ensure_library().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_connects_all_end_on_the_current_library() {
    let server = bare_server();
    let url = server.url();
    let connects: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { Client::connect(&url).await })
        })
        .collect();
    for connect in connects {
        let client = connect.await.unwrap().unwrap();
        assert_eq!(client.backend(), ClientBackend::Lua);
    }
    assert_eq!(library_version(&server).unwrap(), zrq::lua::VERSION);
    assert_eq!(libraries(&server), [zrq::lua::LIBRARY_NAME]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forcing_the_module_without_it_is_a_clear_error() {
    let server = bare_server();
    let options = ConnectOptions::new().backend(BackendChoice::Module);
    match Client::connect_with(&server.url(), &options).await {
        Err(zrq::Error::Backend(message)) => {
            assert!(message.contains("no zrq module"), "{message}");
        }
        other => panic!("expected a backend error, got {other:?}"),
    }
    // Nothing was loaded on the way.
    assert!(libraries(&server).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_with_the_module_picks_it_and_loads_nothing() {
    let server = Backend::Module.server();
    let client = Client::connect(&server.url()).await.unwrap();
    assert_eq!(client.backend(), ClientBackend::Module);
    assert!(libraries(&server).is_empty());
    let forced = ConnectOptions::new().backend(BackendChoice::Module);
    let client = Client::connect_with(&server.url(), &forced).await.unwrap();
    assert_eq!(client.backend(), ClientBackend::Module);
    assert!(libraries(&server).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forcing_lua_on_a_module_server_loads_and_uses_the_library() {
    let server = Backend::Module.server();
    let options = ConnectOptions::new().backend(BackendChoice::Lua);
    let client = Client::connect_with(&server.url(), &options).await.unwrap();
    assert_eq!(client.backend(), ClientBackend::Lua);
    assert_eq!(library_version(&server).unwrap(), zrq::lua::VERSION);
    let job = client.queue("q").enqueue("t", &1).await.unwrap();
    assert!(job.record().await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hands_off_client_leaves_the_library_alone() {
    let server = bare_server();
    let options = ConnectOptions::new()
        .backend(BackendChoice::Lua)
        .manage_library(false);
    let client = Client::connect_with(&server.url(), &options).await.unwrap();
    assert_eq!(client.backend(), ClientBackend::Lua);
    assert!(libraries(&server).is_empty());
    assert_eq!(client.library_version().await.unwrap(), None);
    assert_eq!(client.load_library().await.unwrap(), zrq::lua::VERSION);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_library_that_vanishes_is_loaded_again() {
    let server = bare_server();
    let client = Client::connect(&server.url()).await.unwrap();
    assert_eq!(client.backend(), ClientBackend::Lua);
    let flush = || {
        let _: () = redis::cmd("FUNCTION")
            .arg("FLUSH")
            .query(&mut server.conn())
            .unwrap();
        assert!(library_version(&server).is_err());
    };
    let add = |a| AddArgs {
        a,
        b: 1,
        work_ms: 0,
    };
    let queue = client.queue("gone");
    // No worker yet: only the producer talks to the server.
    flush();
    // The next command finds no function, loads the library and goes on.
    let first = queue.enqueue_task::<Add>(&add(1)).await.unwrap();
    assert_eq!(library_version(&server).unwrap(), zrq::lua::VERSION);
    // So does a pipeline.
    flush();
    let more = queue
        .enqueue_many([
            zrq::NewJob::of::<Add>(&add(2)).unwrap(),
            zrq::NewJob::of::<Add>(&add(3)).unwrap(),
        ])
        .await
        .unwrap();
    assert_eq!(library_version(&server).unwrap(), zrq::lua::VERSION);
    let mut jobs = vec![first];
    jobs.extend(more.into_iter().map(Result::unwrap));
    let running = spawn(adder(
        Worker::new(client.clone(), &["gone"]).block(Duration::from_millis(200)),
    ));
    for (job, want) in jobs.iter().zip([2, 3, 4]) {
        assert_eq!(
            job.wait::<i64>(Duration::from_secs(20)).await.unwrap(),
            want
        );
    }
    assert_eq!(running.stop().await.completed, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_alone_loads_a_vanished_library_again() {
    let server = bare_server();
    let client = Client::connect(&server.url()).await.unwrap();
    let running = spawn(adder(
        Worker::new(client.clone(), &["w"]).block(Duration::from_millis(200)),
    ));
    let _: () = redis::cmd("FUNCTION")
        .arg("FLUSH")
        .query(&mut server.conn())
        .unwrap();
    // Only the worker talks to the server now: its failing fetch brings the library back.
    eventually("the worker loads the library again", || async {
        library_version(&server).ok().as_deref() == Some(zrq::lua::VERSION)
    })
    .await;
    running.stop().await;
}

//! Listing queues in bounded steps: `QueueScan` page by page, and `QueueDirectory`, the list kept
//! fresh in the background (small servers listed afresh when asked, large ones paced).
// Test code fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use zrq::{DirectoryOptions, QueueDirectory, QueueScan};

fn populate(server: &Server, keys: usize) {
    let _: () = zrq_tests::redis::cmd("DEBUG")
        .arg("POPULATE")
        .arg(keys)
        .arg("filler")
        .query(&mut server.conn())
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_walks_every_queue_in_bounded_pages() {
    let server = server();
    let client = client(&server).await;
    for q in ["a", "b", "c"] {
        client.queue(q).enqueue("t", &()).await.unwrap();
    }
    populate(&server, 5000);
    let (mut pages, mut names) = (0, BTreeSet::new());
    let mut scan = QueueScan::new(client.clone());
    while let Some(page) = scan.next_page().await.unwrap() {
        pages += 1;
        names.extend(page);
    }
    // 5,000 keys, about 250 examined per step.
    assert!(pages >= 10, "{pages} pages");
    assert_eq!(names.into_iter().collect::<Vec<_>>(), ["a", "b", "c"]);
    assert_eq!(client.queues().await.unwrap(), ["a", "b", "c"]);
    // The walk is over.
    assert_eq!(scan.next_page().await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_server_shows_a_new_queue_at_once() {
    let server = server();
    let client = client(&server).await;
    let directory = QueueDirectory::start(client.clone(), DirectoryOptions::default());
    let listing = directory.ready(Duration::from_secs(10)).await;
    assert_eq!(listing.passes, 1);
    assert!(listing.names.is_empty() && listing.error.is_none());
    client.queue("new").enqueue("t", &()).await.unwrap();
    // Listed afresh when asked (one step), and kept.
    assert_eq!(directory.fresh().await.unwrap(), ["new"]);
    assert_eq!(*directory.listing().names, ["new"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_server_is_listed_in_the_background() {
    let server = server();
    let client = client(&server).await;
    client.queue("old").enqueue("t", &()).await.unwrap();
    populate(&server, 20_000);
    let options = DirectoryOptions {
        period: Duration::from_millis(200),
        pause: Duration::from_millis(1),
        inline_steps: 4,
    };
    let directory = QueueDirectory::start(client.clone(), options);
    let listing = directory.ready(Duration::from_secs(30)).await;
    assert_eq!(*listing.names, ["old"]);
    assert!(listing.steps > 4, "{} steps", listing.steps);
    // Asking costs no listing now: the background list, not yet the new queue.
    client.queue("new").enqueue("t", &()).await.unwrap();
    let passes = directory.listing().passes;
    let names = directory.fresh().await.unwrap();
    if directory.listing().passes == passes && !names.contains(&"new".to_string()) {
        assert_eq!(names, ["old"]);
    }
    // A later listing finds it.
    eventually("the new queue listed", || async {
        directory.listing().names.contains(&"new".to_string())
    })
    .await;
    assert_eq!(directory.fresh().await.unwrap(), ["new", "old"]);
}

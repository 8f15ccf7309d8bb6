//! `zrq dashboard` and `zrq metrics` over HTTP against a live server with the module: the
//! metrics as a Prometheus parser reads them, and who may act.
// Test code fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../client/tests/common/mod.rs"]
mod common;
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use reqwest::StatusCode;
use support::WebServer;
use zrq::{EnqueueOptions, Worker};

/// The samples of a `/metrics` page, parsed by `prometheus-parse`: (metric, queue, state) → value
/// and type.
async fn scrape(base: &str) -> BTreeMap<(String, String, String), (f64, &'static str)> {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
    scrape
        .samples
        .into_iter()
        .map(|s| {
            let label = |name: &str| s.labels.get(name).unwrap_or("").to_string();
            let (value, kind) = match s.value {
                prometheus_parse::Value::Counter(v) => (v, "counter"),
                prometheus_parse::Value::Gauge(v) => (v, "gauge"),
                other => panic!("{}: unexpected {other:?}", s.metric),
            };
            ((s.metric, label("queue"), label("state")), (value, kind))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_match_the_queue_and_survive_restarts() {
    let mut server = Backend::Module.server_with(Options {
        appendonly: true,
        ..Options::default()
    });
    let client = client(&server).await;
    let queue = client.queue("mq");
    // 3 complete, 1 dies (2 failed attempts), 2 stay pending, 1 is delayed.
    let no_retry = EnqueueOptions::new().retries(0);
    for n in 0..3 {
        queue.enqueue_with("ok", &n, &no_retry).await.unwrap();
    }
    queue
        .enqueue_with(
            "bad",
            &0,
            &EnqueueOptions::new()
                .retries(1)
                .backoff(Duration::from_millis(1)),
        )
        .await
        .unwrap();
    let running = spawn(
        fast_worker(
            Worker::new(client.clone(), &["mq"]),
            Duration::from_millis(100),
        )
        .consumer("metrics-worker")
        .handle_raw("ok", |n: i64, _| async move { Ok(n) })
        .handle_raw(
            "bad",
            |_: i64, _| async move { Err::<i64, _>("always".into()) },
        ),
    );
    eventually("3 completed and 1 dead", || async {
        let info = queue.info().await.unwrap();
        info.get("completed") == 3 && info.get("dead") == 1
    })
    .await;
    queue.pause().await.unwrap();
    for n in 0..2 {
        queue.enqueue("ok", &n).await.unwrap();
    }
    queue
        .enqueue_with(
            "ok",
            &9,
            &EnqueueOptions::new().delay(Duration::from_secs(600)),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;

    let metrics = WebServer::start(&server.url(), &["metrics"]).await;
    let samples = scrape(&metrics.base).await;
    let get = |metric: &str, state: &str| {
        samples
            .get(&(metric.to_string(), "mq".to_string(), state.to_string()))
            .copied()
            .unwrap_or_else(|| panic!("no {metric}{{queue=mq,state={state}}} in {samples:?}"))
    };
    // (metric, state label, value, type)
    let expected = [
        ("zrq_jobs", "pending", 2.0, "gauge"),
        ("zrq_jobs", "scheduled", 1.0, "gauge"),
        ("zrq_jobs", "completed", 3.0, "gauge"),
        ("zrq_jobs", "dead", 1.0, "gauge"),
        ("zrq_jobs", "active", 0.0, "gauge"),
        ("zrq_enqueued_total", "", 7.0, "counter"),
        ("zrq_completed_total", "", 3.0, "counter"),
        ("zrq_failed_total", "", 2.0, "counter"),
        ("zrq_dead_total", "", 1.0, "counter"),
        ("zrq_paused", "", 1.0, "gauge"),
        ("zrq_active_workers", "", 1.0, "gauge"),
    ];
    for (metric, state, value, kind) in expected {
        assert_eq!(get(metric, state), (value, kind), "{metric} {state}");
    }
    let (oldest, _) = get("zrq_oldest_pending_age_seconds", "");
    assert!(oldest > 0.0 && oldest < 60.0, "oldest pending age {oldest}");
    running.stop().await;
    metrics.stop().await;

    // The totals live in the queue's keys: a restarted Redis and a new `zrq metrics` agree.
    server.restart();
    let metrics = WebServer::start(&server.url(), &["metrics"]).await;
    let again = scrape(&metrics.base).await;
    for metric in [
        "zrq_enqueued_total",
        "zrq_completed_total",
        "zrq_failed_total",
        "zrq_dead_total",
    ] {
        let key = (metric.to_string(), "mq".to_string(), String::new());
        assert_eq!(
            again.get(&key),
            samples.get(&key),
            "{metric} after a restart"
        );
    }
    // `zrq metrics` serves no dashboard.
    let page = reqwest::get(format!("{}/api/overview", metrics.base))
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
}

/// POSTs an action with the given cookie / CSRF token / bearer password; the status.
async fn act(
    base: &str,
    path: &str,
    cookie: Option<&str>,
    csrf: Option<&str>,
    bearer: Option<&str>,
) -> StatusCode {
    let mut request = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&serde_json::json!({}));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    if let Some(csrf) = csrf {
        request = request.header("x-csrf-token", csrf);
    }
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    request.send().await.unwrap().status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_need_the_password_and_the_csrf_token() {
    let server = server();
    let client = client(&server).await;
    let queue = client.queue("guarded");
    queue.enqueue("t", &1).await.unwrap();
    let paused = || async { queue.info().await.unwrap().paused() };

    // Actions without a password are refused at start-up.
    let run = tokio::process::Command::new(support::cli())
        .args([
            "--url",
            &server.url(),
            "dashboard",
            "--actions",
            "--listen",
            "127.0.0.1:0",
        ])
        .env_remove("ZRQ_DASHBOARD_PASSWORD")
        .output()
        .await
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&run.stderr).contains("actions need a password"));

    // A read-only dashboard refuses every action, whoever asks.
    let read_only = WebServer::start(&server.url(), &["dashboard"]).await;
    let status = act(
        &read_only.base,
        "/api/queues/guarded/pause",
        None,
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let overview = reqwest::get(format!("{}/api/overview", read_only.base))
        .await
        .unwrap();
    assert_eq!(overview.status(), StatusCode::OK);
    read_only.stop().await;

    let web = WebServer::start(
        &server.url(),
        &["dashboard", "--actions", "--password", "s3cret"],
    )
    .await;
    let base = &web.base;
    // Reading needs the password too.
    let overview = reqwest::get(format!("{base}/api/overview")).await.unwrap();
    assert_eq!(overview.status(), StatusCode::UNAUTHORIZED);
    let http = reqwest::Client::new();
    let login = |password: &str| {
        http.post(format!("{base}/api/login"))
            .json(&serde_json::json!({ "password": password }))
            .send()
    };
    assert_eq!(
        login("wrong").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let signed_in = login("s3cret").await.unwrap();
    assert_eq!(signed_in.status(), StatusCode::OK);
    let set_cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"));
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let session: serde_json::Value = http
        .get(format!("{base}/api/session"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let csrf = session["csrf"].as_str().unwrap().to_string();

    let pause = "/api/queues/guarded/pause";
    // (cookie, CSRF token, bearer password, expected status)
    let refused = [
        (None, None, None, StatusCode::UNAUTHORIZED),
        (None, Some(csrf.as_str()), None, StatusCode::UNAUTHORIZED),
        (Some(cookie.as_str()), None, None, StatusCode::FORBIDDEN),
        (
            Some(cookie.as_str()),
            Some("forged"),
            None,
            StatusCode::FORBIDDEN,
        ),
        (
            Some("zrq_session=forged"),
            Some(csrf.as_str()),
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (None, None, Some("wrong"), StatusCode::UNAUTHORIZED),
    ];
    for (i, (cookie, csrf, bearer, want)) in refused.into_iter().enumerate() {
        assert_eq!(
            act(base, pause, cookie, csrf, bearer).await,
            want,
            "case {i}"
        );
        assert!(!paused().await, "case {i} paused the queue");
    }
    assert_eq!(
        act(base, pause, Some(&cookie), Some(&csrf), None).await,
        StatusCode::OK
    );
    assert!(paused().await);
    assert_eq!(
        act(
            base,
            "/api/queues/guarded/resume",
            None,
            None,
            Some("s3cret")
        )
        .await,
        StatusCode::OK
    );
    assert!(!paused().await);
    web.stop().await;
}

/// `GET <base><path>` as JSON.
async fn get_json(base: &str, path: &str) -> serde_json::Value {
    reqwest::get(format!("{base}{path}"))
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The ids of a jobs page and how many jobs it read.
fn ids_and_read(page: &serde_json::Value) -> (Vec<String>, u64, String) {
    let ids = page["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_string())
        .collect();
    let cursor = page["cursor"].as_str().unwrap().to_string();
    (ids, page["read"].as_u64().unwrap(), cursor)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filtered_job_list_reads_on_within_its_bound() {
    let server = server();
    let client = client(&server).await;
    let queue = client.queue("many");
    // 700 pending jobs; the 3rd, the 250th and the 650th are of task `rare`.
    let mut rare = Vec::new();
    for n in 0..700 {
        let task = if [2, 249, 649].contains(&n) {
            "rare"
        } else {
            "common"
        };
        let job = queue.enqueue(task, &n).await.unwrap();
        if task == "rare" {
            rare.push(job.id().to_string());
        }
    }
    let web = WebServer::start(&server.url(), &["dashboard"]).await;
    let jobs = "/api/queues/many/jobs?state=pending&count=20";

    // Unfiltered: one page of 20.
    let (ids, read, _) = ids_and_read(&get_json(&web.base, jobs).await);
    assert_eq!((ids.len(), read), (20, 20));

    // Filtered: the page reads on past the first 20 jobs, but stops after 500 (of 700).
    let page = get_json(&web.base, &format!("{jobs}&task=rare")).await;
    assert_eq!(page["scan_limit"], 500);
    let (ids, read, cursor) = ids_and_read(&page);
    assert_eq!(ids, rare[..2].to_vec());
    assert_eq!(read, 500);
    assert_ne!(cursor, "0");
    // The next page goes on from there to the end.
    let page = get_json(&web.base, &format!("{jobs}&task=rare&cursor={cursor}")).await;
    let (ids, read, cursor) = ids_and_read(&page);
    assert_eq!(ids, rare[2..].to_vec());
    assert_eq!((read, cursor.as_str()), (200, "0"));

    // Enough matches end the page early: 20 `common` jobs are in the first page read.
    let (ids, read, _) = ids_and_read(&get_json(&web.base, &format!("{jobs}&task=common")).await);
    assert!(
        ids.len() >= 20 && read == 100,
        "{} matches, {read} read",
        ids.len()
    );
    // A worker filter: no pending job has a worker.
    let (ids, read, _) = ids_and_read(&get_json(&web.base, &format!("{jobs}&worker=w1")).await);
    assert_eq!((ids.len(), read), (0, 500));
    web.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_queues_of_every_primary_of_a_cluster() {
    let nodes = zrq_tests::cluster::start_cluster(3, 0, true, &[]);
    let urls: Vec<String> = nodes.iter().map(Server::url).collect();
    let seeds: Vec<&str> = urls.iter().map(String::as_str).collect();
    let client = zrq::Client::connect_cluster(&seeds).await.unwrap();
    // One queue per primary (names tried in turn until each primary owns one), and n + 1 jobs
    // in the n-th.
    let mut conn = nodes[0].conn();
    let mut by_port: BTreeMap<u16, String> = BTreeMap::new();
    for i in 0..1000 {
        let name = format!("cq{i}");
        let port = zrq_tests::cluster::owner_port(&mut conn, &format!("zrq:{{{name}}}:stats"));
        by_port.entry(port).or_insert(name);
        if by_port.len() == 3 {
            break;
        }
    }
    assert_eq!(by_port.len(), 3, "a queue on each primary");
    let queues: Vec<String> = by_port.into_values().collect();
    let mut ids = Vec::new();
    for (n, name) in queues.iter().enumerate() {
        for job in 0..=n {
            ids.push(client.queue(name).enqueue("t", &job).await.unwrap());
        }
    }
    let web = WebServer::start(&urls.join(","), &["dashboard"]).await;

    // The overview lists the queues of all three primaries, with their counts.
    let overview = get_json(&web.base, "/api/overview").await;
    let listed: BTreeMap<String, i64> = overview
        .as_array()
        .unwrap()
        .iter()
        .map(|info| {
            let pending = info["fields"]["pending"].as_i64().unwrap();
            (info["queue"].as_str().unwrap().to_string(), pending)
        })
        .collect();
    let expected: BTreeMap<String, i64> = queues
        .iter()
        .enumerate()
        .map(|(n, name)| (name.clone(), n as i64 + 1))
        .collect();
    assert_eq!(listed, expected);
    // A job list and a job's page are read from the queue's own primary; search by id asks
    // every queue.
    let last = &queues[2];
    let page = get_json(&web.base, &format!("/api/queues/{last}/jobs?state=pending")).await;
    assert_eq!(page["jobs"].as_array().unwrap().len(), 3);
    let id = ids.last().unwrap().id();
    let job = get_json(&web.base, &format!("/api/queues/{last}/jobs/{id}")).await;
    assert_eq!(job["job"]["id"], id);
    let found = get_json(&web.base, &format!("/api/find/{id}")).await;
    assert_eq!(found["queue"], last.as_str());
    // /metrics covers them too.
    let samples = scrape(&web.base).await;
    for (name, pending) in &expected {
        let key = ("zrq_jobs".to_string(), name.clone(), "pending".to_string());
        assert_eq!(
            samples.get(&key),
            Some(&(*pending as f64, "gauge")),
            "{name}"
        );
    }
    web.stop().await;
}

//! The dashboard in a real browser (Debian's chromium, headless, driven through chromedriver)
//! against a live server with the module. With `ZRQ_SCREENSHOTS=<dir>` the pages shown are saved
//! there as PNG files (the ones in docs/ were taken so).
// Test code fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../client/tests/common/mod.rs"]
mod common;
mod support;

use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use fantoccini::{Client as Browser, ClientBuilder, Locator};
use support::WebServer;
use zrq::{EnqueueOptions, Every, Worker};

/// The browser binary the tests drive (Debian's `chromium` package).
const CHROMIUM: &str = "/usr/bin/chromium";
/// How long the page may take to show a change before the test fails: generous, because a
/// loaded machine delays the browser; the one timing the dashboard promises (a new job shows
/// within a second) is measured on its own.
const PAGE_WAIT: Duration = Duration::from_secs(20);

/// chromedriver and a headless chromium session; both end when dropped.
struct Session {
    browser: Browser,
    _driver: tokio::process::Child,
    _profile: tempfile::TempDir,
}

impl Session {
    async fn start() -> Session {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = tokio::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver must be installed (apt-get install chromium chromium-driver)");
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1400,900",
            &format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({ "binary": CHROMIUM, "args": args }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        let browser = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(browser) => break browser,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot start chromium through chromedriver: {e}"),
            }
        };
        Session {
            browser,
            _driver: driver,
            _profile: profile,
        }
    }

    /// The text of the first element matching `css`, or `None` if there is none (yet).
    async fn text(&self, css: &str) -> Option<String> {
        match self.browser.find(Locator::Css(css)).await {
            Ok(element) => element.text().await.ok(),
            Err(_) => None,
        }
    }

    /// Waits (up to `within`) until the text of `css` satisfies `check`; how long it took.
    async fn until(&self, css: &str, within: Duration, check: impl Fn(&str) -> bool) -> Duration {
        let start = Instant::now();
        loop {
            if let Some(text) = self.text(css).await {
                if check(&text) {
                    return start.elapsed();
                }
            }
            if start.elapsed() >= within {
                let url = self.browser.current_url().await.map(|u| u.to_string());
                panic!(
                    "'{css}' did not show what was expected within {within:?} (now: {:?}; page \
                     {url:?}, notice {:?})",
                    self.text(css).await,
                    self.text("#notice").await
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Clicks the first element matching `css`. The page redraws whenever its queues had
    /// events, which may replace the element between finding and clicking it: then it is found
    /// again (up to 10 s).
    async fn click(&self, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let element = self
                .browser
                .wait()
                .at_most(Duration::from_secs(10))
                .for_element(Locator::Css(css))
                .await
                .unwrap_or_else(|e| panic!("no '{css}': {e}"));
            match element.click().await {
                Ok(()) => return,
                Err(e) if e.is_stale_element_reference() && Instant::now() < deadline => {}
                Err(e) => panic!("cannot click '{css}': {e}"),
            }
        }
    }

    async fn goto(&self, url: &str) {
        self.browser.goto(url).await.unwrap();
    }

    /// Saves the page as `<ZRQ_SCREENSHOTS>/<name>.png` when that variable is set.
    async fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("ZRQ_SCREENSHOTS") else {
            return;
        };
        // Let the page finish drawing (the chart, fonts).
        tokio::time::sleep(Duration::from_millis(700)).await;
        let png = self.browser.screenshot().await.unwrap();
        let path = std::path::Path::new(&dir).join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_a_browser() {
    let server = server();
    let client = client(&server).await;
    let queue = client.queue("live");
    let web = WebServer::start(
        &server.url(),
        &["dashboard", "--actions", "--password", "s3cret"],
    )
    .await;
    let base = &web.base;
    let page = Session::start().await;

    // Sign in.
    page.goto(base).await;
    page.browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("#password"))
        .await
        .unwrap()
        .send_keys("s3cret")
        .await
        .unwrap();
    page.click("#login button").await;
    page.until("#mode", Duration::from_secs(10), |t| t == "actions enabled")
        .await;

    // A job enqueued appears within a second, in a queue the page has never seen. Other work on
    // a shared machine can delay a page, so up to three fresh queues are tried and the quickest
    // counts: a page that is not pushed the change (one that polls slowly, say) fails them all.
    let mut took = Vec::new();
    for attempt in 1..=3 {
        let fresh = format!("fresh-{attempt}");
        let asked = Instant::now();
        client.queue(&fresh).enqueue("first", &1).await.unwrap();
        let cell = format!(r#"#queues tr[data-queue="{fresh}"] td[data-state="pending"]"#);
        page.until(&cell, Duration::from_secs(10), |t| t == "1")
            .await;
        let elapsed = asked.elapsed();
        took.push(elapsed);
        if elapsed <= Duration::from_secs(1) {
            break;
        }
    }
    eprintln!("an enqueued job appeared after {took:?}");
    assert!(
        took.iter().any(|t| *t <= Duration::from_secs(1)),
        "an enqueued job took over a second to appear each time: {took:?}"
    );
    queue.enqueue("first", &1).await.unwrap();
    let pending = r#"#queues tr[data-queue="live"] td[data-state="pending"]"#;
    page.until(pending, Duration::from_secs(10), |t| t == "1")
        .await;

    // A worker: `flaky` reports progress 40, fails with a traceback the first time, then
    // succeeds; `slow` holds its job for a while.
    let calls = Arc::new(AtomicUsize::new(0));
    let flaky_calls = Arc::clone(&calls);
    let running = spawn(
        fast_worker(Worker::new(client.clone(), &["live"]), Duration::from_millis(200))
            .consumer("browser-worker")
            .concurrency(4)
            .handle_raw("first", |n: i64, _| async move { Ok(n) })
            .handle_raw("flaky", move |_: i64, ctx| {
                let calls = Arc::clone(&flaky_calls);
                async move {
                    ctx.progress(40).await?;
                    if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                        Err("disk full\nTraceback (most recent call last):\n  File \"report.py\", line 12, in render".into())
                    } else {
                        Ok("fixed")
                    }
                }
            })
            .handle_raw("slow", |_: i64, ctx| async move {
                ctx.progress(75).await?;
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(0)
            }),
    );
    let flaky = queue
        .enqueue_with("flaky", &1, &EnqueueOptions::new().retries(0))
        .await
        .unwrap();
    eventually("the flaky job dead", || async {
        state(&client, "live", flaky.id()).await.as_deref() == Some("dead")
    })
    .await;
    queue.enqueue("slow", &1).await.unwrap();
    queue
        .schedule(
            "nightly-report",
            &Every::Cron("0 3 * * *".into()),
            "report",
            &serde_json::json!({"format": "pdf"}),
            &EnqueueOptions::new(),
        )
        .await
        .unwrap();
    page.until(
        r#"#queues tr[data-queue="live"] td[data-state="dead"]"#,
        PAGE_WAIT,
        |t| t == "1",
    )
    .await;
    page.until(
        r#"#queues tr[data-queue="live"] td[data-state="active"]"#,
        PAGE_WAIT,
        |t| t == "1",
    )
    .await;
    page.screenshot("dashboard-overview").await;

    // The dead job's page shows its error (with the traceback) and its progress.
    page.goto(&format!("{base}/#/job/live/{}", flaky.id()))
        .await;
    page.until("#job-state", PAGE_WAIT, |t| t == "dead").await;
    page.until("#job-error", PAGE_WAIT, |t| {
        t.contains("disk full") && t.contains("Traceback")
    })
    .await;
    page.until("#job-progress", PAGE_WAIT, |t| t.contains("40%"))
        .await;
    page.screenshot("dashboard-job").await;

    // Requeued from the list of dead jobs, it runs again and completes.
    page.goto(&format!("{base}/#/queue/live/dead")).await;
    let requeue = format!(
        r#"#jobs tr[data-job="{}"] button[data-action="requeue"]"#,
        flaky.id()
    );
    page.until(
        &format!(r#"#jobs tr[data-job="{}"]"#, flaky.id()),
        PAGE_WAIT,
        |t| t.contains("disk full"),
    )
    .await;
    page.screenshot("dashboard-dead").await;
    page.click(&requeue).await;
    eventually("the requeued job completed", || async {
        state(&client, "live", flaky.id()).await.as_deref() == Some("completed")
    })
    .await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    // The workers page: who holds what.
    page.goto(&format!("{base}/#/workers")).await;
    page.until(r#"tr[data-worker="browser-worker"]"#, PAGE_WAIT, |t| {
        t.contains("75%")
    })
    .await;
    page.screenshot("dashboard-workers").await;

    // A job a schedule enqueued names the schedule on its page, linked to the schedules view,
    // which marks it.
    let ticked = client.queue("ticked");
    ticked
        .schedule(
            "every-second",
            &Every::Interval(Duration::from_secs(1)),
            "tick",
            &0,
            &EnqueueOptions::new(),
        )
        .await
        .unwrap();
    let mut tick_job = None;
    let deadline = Instant::now() + Duration::from_secs(10);
    while tick_job.is_none() && Instant::now() < deadline {
        tick_job = ticked.list("pending", 1, "0").await.unwrap().jobs.pop();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let tick_job = tick_job.expect("the first tick's job within 10 s");
    page.goto(&format!("{base}/#/job/ticked/{}", tick_job.id))
        .await;
    page.until("#job-schedule", PAGE_WAIT, |t| t == "every-second")
        .await;
    page.click("#job-schedule").await;
    page.until(
        r#"tr.selected[data-schedule="every-second"]"#,
        PAGE_WAIT,
        |t| t.contains("every 1.0s"),
    )
    .await;
    page.until(r#"tr[data-schedule="nightly-report"]"#, PAGE_WAIT, |t| {
        t.contains("cron 0 3 * * *")
    })
    .await;
    page.screenshot("dashboard-schedules").await;
    assert!(ticked.unschedule("every-second").await.unwrap());

    // An action without the CSRF token is refused, even from the signed-in page.
    let status = page
        .browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch('/api/queues/live/pause', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{}'})
               .then((r) => done(r.status));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(status, serde_json::json!(403));
    assert!(!queue.info().await.unwrap().paused());

    // Paused from the page: shows paused, and serves nothing while the worker runs.
    page.goto(&format!("{base}/#/")).await;
    page.click(r#"#queues tr[data-queue="live"] button[data-action="pause"]"#)
        .await;
    page.until(
        r#"#queues tr[data-queue="live"] td[data-field="paused"]"#,
        PAGE_WAIT,
        |t| t == "paused",
    )
    .await;
    assert!(queue.info().await.unwrap().paused());
    let held = queue.enqueue("first", &2).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        state(&client, "live", held.id()).await.as_deref(),
        Some("pending")
    );
    page.until(pending, PAGE_WAIT, |t| t == "1").await;
    page.click(r#"#queues tr[data-queue="live"] button[data-action="resume"]"#)
        .await;
    eventually("the held job completed after resume", || async {
        state(&client, "live", held.id()).await.as_deref() == Some("completed")
    })
    .await;

    let _ = page.browser.close().await;
    drop(running);
    web.stop().await;
}

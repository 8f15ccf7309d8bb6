//! The `zrq` command-line tool against a live server: output and exit codes.
// Test code fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../client/tests/common/mod.rs"]
mod common;
mod support;

use std::time::Duration;

use common::*;
use support::cli;
use zrq::{EnqueueOptions, Every, JobState, Worker};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn zrq(server: &Server, args: &[&str]) -> Run {
    zrq_url(&server.url(), args).await
}

async fn zrq_url(url: &str, args: &[&str]) -> Run {
    zrq_env(url, args, &[]).await
}

/// Runs `zrq --url <url> <args>` with `env` set (and no ZRQ_* or RUST_LOG from outside).
async fn zrq_env(url: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = tokio::process::Command::new(cli())
        .arg("--url")
        .arg(url)
        .args(args)
        .env_remove("ZRQ_URL")
        .env_remove("ZRQ_BACKEND")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .output()
        .await
        .expect("run zrq");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok(run: &Run) {
    assert_eq!(
        run.code, 0,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
}

/// A failure: the exit code, and exactly one line on stderr, returned.
fn failed(run: &Run, code: i32) -> String {
    assert_eq!(
        run.code, code,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "one line: {}", run.stderr);
    assert!(run.stderr.starts_with("zrq: "), "{}", run.stderr);
    run.stderr.trim_end().to_string()
}

fn json(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_job_cancel_and_errors() {
    let server = server();
    let client = client(&server).await;

    let run = zrq(
        &server,
        &[
            "enqueue",
            "mail",
            "send",
            r#"{"to":"a@b"}"#,
            "--retries",
            "2",
        ],
    )
    .await;
    ok(&run);
    let id = run.stdout.trim().to_string();
    assert_eq!(run.stdout.lines().count(), 1);
    let record = client.queue("mail").job(&id).record().await.unwrap();
    assert_eq!(record.payload, r#"{"to":"a@b"}"#);
    assert_eq!(record.max_attempts, 3);

    let run = zrq(
        &server,
        &[
            "--json",
            "enqueue",
            "mail",
            "send",
            "--id",
            "fixed",
            "--priority",
            "5",
            "--delay",
            "1h",
        ],
    )
    .await;
    ok(&run);
    assert_eq!(json(&run)["id"], "fixed");
    assert_eq!(
        client.queue("mail").job("fixed").state().await.unwrap(),
        Some(JobState::Scheduled)
    );

    // `job` finds the queue by itself, or takes it.
    let run = zrq(&server, &["job", &id]).await;
    ok(&run);
    assert!(run.stdout.starts_with("FIELD"), "{}", run.stdout);
    assert!(run
        .stdout
        .lines()
        .any(|l| l.starts_with("state") && l.ends_with("pending")));
    assert!(run
        .stdout
        .lines()
        .any(|l| l.starts_with("attempt") && l.ends_with("0 of 3")));
    let run = zrq(&server, &["--json", "job", "fixed", "-q", "mail"]).await;
    ok(&run);
    let v = json(&run);
    assert_eq!(v["state"], "scheduled");
    assert_eq!(v["extra"]["priority"], "5");

    let run = zrq(&server, &["cancel", "fixed"]).await;
    ok(&run);
    assert_eq!(run.stdout.trim(), "fixed: cancelled");
    let err = failed(&zrq(&server, &["cancel", "fixed", "-q", "mail"]).await, 1);
    assert_eq!(err, "zrq: job fixed is not cancellable");

    // A child waits for its parent.
    let run = zrq(
        &server,
        &[
            "enqueue",
            "mail",
            "followup",
            "--after",
            &id,
            "--with-results",
        ],
    )
    .await;
    ok(&run);
    let child = run.stdout.trim().to_string();
    assert_eq!(
        client.queue("mail").job(&child).state().await.unwrap(),
        Some(JobState::Waiting)
    );
    let batch = zrq::Batch::new("b7")
        .job("t", &1)
        .unwrap()
        .job("t", &2)
        .unwrap();
    client.queue("mail").batch(&batch).await.unwrap();
    let run = zrq(&server, &["batch", "mail", "b7"]).await;
    ok(&run);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.split_whitespace().eq(["total", "2"])),
        "{}",
        run.stdout
    );
    let err = failed(&zrq(&server, &["batch", "mail", "b8"]).await, 1);
    assert_eq!(err, "zrq: no batch 'b8' in queue 'mail'");

    // Errors: one line, non-zero.
    let err = failed(&zrq(&server, &["job", "nope"]).await, 1);
    assert_eq!(err, "zrq: no job 'nope' in any queue");
    let err = failed(&zrq(&server, &["job", "nope", "-q", "mail"]).await, 1);
    assert_eq!(err, "zrq: no job 'nope' in queue 'mail'");
    let err = failed(
        &zrq(&server, &["enqueue", "mail", "send", "{oops"]).await,
        1,
    );
    assert!(err.starts_with("zrq: payload is not valid JSON"), "{err}");
    let err = failed(
        &zrq(&server, &["enqueue", "mail", "send", "--priority", "12"]).await,
        1,
    );
    assert!(err.starts_with("zrq: ERR "), "{err}");
    assert!(err.contains("PRIORITY"), "{err}");
    let err = failed(&zrq_url("redis://127.0.0.1:1", &["queues"]).await, 1);
    assert!(
        err.starts_with("zrq: cannot connect to redis://127.0.0.1:1"),
        "{err}"
    );
    let run = zrq(&server, &["enqueue"]).await;
    assert_eq!(run.code, 2, "usage errors exit 2");
    let run = zrq(&server, &["enqueue", "q", "t", "--delay", "soon"]).await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("not a duration"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_exit_codes_follow_the_outcome() {
    let server = server();
    let client = client(&server).await;
    let q = client.queue("calc");
    let good = q.enqueue("double", &21).await.unwrap();
    let bad = q
        .enqueue_with("double", &-1, &EnqueueOptions::new().retries(0))
        .await
        .unwrap();
    // Nothing runs yet: the wait times out with 3.
    let run = zrq(
        &server,
        &["wait", good.id(), "-q", "calc", "--timeout", "200ms"],
    )
    .await;
    let err = failed(&run, 3);
    assert_eq!(err, "zrq: timed out: 1 job(s) still unfinished");
    assert!(run.stdout.contains("unfinished"));

    let running = spawn(
        Worker::new(client.clone(), &["calc"])
            .block(Duration::from_millis(200))
            .handle_raw("double", |n: i64, _| async move {
                if n < 0 {
                    return Err("negative".into());
                }
                Ok(n * 2)
            }),
    );
    let run = zrq(&server, &["wait", good.id(), "-q", "calc"]).await;
    ok(&run);
    let line = run.stdout.lines().nth(1).unwrap();
    assert!(
        line.starts_with(good.id()) && line.contains("completed") && line.ends_with("42"),
        "{line}"
    );
    let run = zrq(&server, &["--json", "wait", good.id(), bad.id()]).await;
    let err = failed(&run, 4);
    assert_eq!(err, "zrq: 1 job(s) did not complete");
    let v = json(&run);
    assert_eq!(v[0]["state"], "completed");
    assert_eq!(v[0]["result"], "42");
    assert_eq!(v[1]["state"], "dead");
    assert_eq!(v[1]["error"], "negative");
    let run = zrq(
        &server,
        &["enqueue", "calc", "double", "5", "--wait", "10s"],
    )
    .await;
    ok(&run);
    assert!(
        run.stdout.lines().nth(1).unwrap().ends_with("10"),
        "{}",
        run.stdout
    );
    running.stop().await;

    // Dead letters: listed with their error, requeued.
    let run = zrq(&server, &["dead", "calc"]).await;
    ok(&run);
    assert!(run.stdout.starts_with("ID"), "{}", run.stdout);
    let line = run.stdout.lines().nth(1).unwrap();
    assert!(
        line.starts_with(bad.id()) && line.ends_with("negative"),
        "{line}"
    );
    let run = zrq(&server, &["--json", "dead", "calc"]).await;
    ok(&run);
    assert_eq!(json(&run)["jobs"][0]["id"], bad.id());
    let run = zrq(&server, &["requeue", "calc", bad.id()]).await;
    ok(&run);
    assert_eq!(run.stdout.trim(), "requeued 1 job(s)");
    let err = failed(&zrq(&server, &["requeue", "calc", bad.id()]).await, 1);
    assert_eq!(err, "zrq: no dead job with that id");
    assert_eq!(bad.state().await.unwrap(), Some(JobState::Pending));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_info_pause_requeue_all_schedules_and_top() {
    let server = server();
    let client = client(&server).await;
    let run = zrq(&server, &["queues"]).await;
    ok(&run);
    assert_eq!(run.stdout.trim(), "no queues");

    let q = client.queue("ops");
    for i in 0..5 {
        q.enqueue("t", &i).await.unwrap();
    }
    // Three jobs die: fetched and failed with no retries left.
    let dying = client.queue("graveyard");
    for i in 0..3 {
        dying
            .enqueue_with("t", &i, &EnqueueOptions::new().retries(0))
            .await
            .unwrap();
    }
    let running = spawn(
        Worker::new(client.clone(), &["graveyard"])
            .block(Duration::from_millis(200))
            .handle_raw("t", |_: i64, _| async move { Err::<(), _>("no".into()) }),
    );
    eventually("3 dead jobs", || async {
        dying.info().await.unwrap().get("dead") == 3
    })
    .await;
    running.stop().await;

    let run = zrq(&server, &["queues"]).await;
    ok(&run);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(
        lines[0].starts_with("QUEUE") && lines[0].contains("PENDING") && lines[0].contains("DEAD")
    );
    assert!(lines[1].starts_with("graveyard"), "{}", run.stdout);
    assert!(lines[2].starts_with("ops"), "{}", run.stdout);
    let run = zrq(&server, &["--json", "queues"]).await;
    ok(&run);
    let v = json(&run);
    assert_eq!(v[1]["queue"], "ops");
    assert_eq!(v[1]["fields"]["pending"], 5);

    let run = zrq(&server, &["info", "ops"]).await;
    ok(&run);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.split_whitespace().eq(["pending", "5"])),
        "{}",
        run.stdout
    );
    let run = zrq(&server, &["pause", "ops"]).await;
    ok(&run);
    assert_eq!(run.stdout.trim(), "paused ops");
    assert!(q.info().await.unwrap().paused());
    ok(&zrq(&server, &["resume", "ops"]).await);
    assert!(!q.info().await.unwrap().paused());

    let run = zrq(&server, &["list", "ops", "pending", "--count", "2"]).await;
    ok(&run);
    assert_eq!(
        run.stdout.lines().count(),
        4,
        "header, 2 jobs, more: {}",
        run.stdout
    );
    assert!(run
        .stdout
        .lines()
        .last()
        .unwrap()
        .starts_with("more: --cursor "));

    // Pages of two (zrq.requeue-max lowered): `requeue --all` goes on to the end of the set.
    let _: () = zrq_tests::redis::cmd("CONFIG")
        .arg("SET")
        .arg("zrq.requeue-max")
        .arg("2")
        .query(&mut server.conn())
        .unwrap();
    let run = zrq(&server, &["requeue", "graveyard", "--all"]).await;
    ok(&run);
    assert_eq!(run.stdout.trim(), "requeued 3 job(s)");
    assert_eq!(dying.info().await.unwrap().get("pending"), 3);

    let run = zrq(&server, &["schedules", "ops"]).await;
    ok(&run);
    assert_eq!(run.stdout.trim(), "no schedules");
    q.schedule(
        "nightly",
        &Every::Cron("0 3 * * *".into()),
        "t",
        &"report",
        &EnqueueOptions::new(),
    )
    .await
    .unwrap();
    let run = zrq(&server, &["schedules", "ops"]).await;
    ok(&run);
    let line = run.stdout.lines().nth(1).unwrap();
    assert!(
        line.starts_with("nightly") && line.contains("cron 0 3 * * *"),
        "{line}"
    );

    let run = zrq(&server, &["top", "--iterations", "2", "--interval", "50ms"]).await;
    ok(&run);
    assert_eq!(run.stdout.matches("zrq top").count(), 2, "{}", run.stdout);
    assert!(run.stdout.contains("DONE/S") && run.stdout.contains("graveyard"));
    let run = zrq(
        &server,
        &["--json", "top", "--iterations", "2", "--interval", "50ms"],
    )
    .await;
    ok(&run);
    let frames: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[1][1]["queue"], "ops");

    let id = q.list("pending", 1, "0").await.unwrap().jobs[0].id.clone();
    let run = zrq(&server, &["delete", "ops", &id]).await;
    ok(&run);
    let err = failed(&zrq(&server, &["delete", "ops", &id]).await, 1);
    assert_eq!(err, format!("zrq: no job '{id}' in queue 'ops'"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lua_print_load_and_backend_selection() {
    // `lua print` needs no server.
    let run = zrq_url("redis://127.0.0.1:1", &["lua", "print"]).await;
    ok(&run);
    assert_eq!(run.stdout, zrq::lua::library());

    let bare = Server::start(Options {
        module: false,
        ..Options::default()
    });
    let version = || -> Option<String> {
        zrq_tests::redis::cmd("FCALL")
            .arg("zrq_version")
            .arg(0)
            .query(&mut bare.conn())
            .ok()
    };
    // Forcing the module on a server without it: one clear line, nothing loaded.
    let run = zrq(&bare, &["--backend", "module", "queues"]).await;
    let line = failed(&run, 1);
    assert!(line.contains("no zrq module"), "{line}");
    assert_eq!(version(), None);
    // `lua load` loads (again and again: REPLACE) and prints the version.
    for _ in 0..2 {
        let run = zrq(&bare, &["lua", "load"]).await;
        ok(&run);
        assert_eq!(run.stdout.trim(), zrq::lua::VERSION);
        assert_eq!(version().as_deref(), Some(zrq::lua::VERSION));
    }
    let run = zrq(&bare, &["--json", "lua", "load"]).await;
    ok(&run);
    assert_eq!(json(&run)["version"], zrq::lua::VERSION);
    // Auto (the default) on a server without the module: the library serves the commands.
    let _: () = zrq_tests::redis::cmd("FUNCTION")
        .arg("FLUSH")
        .query(&mut bare.conn())
        .unwrap();
    let run = zrq(&bare, &["enqueue", "lq", "t", "{}"]).await;
    ok(&run);
    assert_eq!(version().as_deref(), Some(zrq::lua::VERSION));
    let run = zrq(&bare, &["--json", "info", "lq"]).await;
    ok(&run);
    assert_eq!(json(&run)["fields"]["pending"], 1, "{}", run.stdout);
    // A server that cannot be reached: one line, exit 1.
    let run = zrq_url("redis://127.0.0.1:1", &["lua", "load"]).await;
    failed(&run, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_wait_follows_the_batch_to_its_end() {
    for backend in [Backend::Module, Backend::Lua] {
        let (server, client) = setup(backend).await;
        let queue = client.queue("b");
        let members: Vec<zrq::NewJob> = (0..20)
            .map(|i| zrq::NewJob::new("sq", &i).unwrap())
            .collect();
        let group = zrq::group(members)
            .retries(0)
            .on_complete("done", &serde_json::json!({"n": 1}))
            .unwrap();
        queue.batch(&group).await.unwrap();
        // No worker yet: --wait gives up after --timeout with exit 3.
        let run = zrq(
            &server,
            &["batch", "b", group.id(), "--wait", "--timeout", "200ms"],
        )
        .await;
        let line = failed(&run, 3);
        assert!(line.contains("0/20 done"), "{line}");
        // Waiting while a worker runs: returns once all are done, with the counts.
        let url = server.url();
        let id = group.id().to_string();
        let waiting =
            tokio::spawn(
                async move { zrq_url(&url, &["--json", "batch", "b", &id, "--wait"]).await },
            );
        let running = spawn(
            Worker::new(client.clone(), &["b"])
                .block(Duration::from_millis(300))
                .handle_raw("sq", |n: i64, _| async move {
                    if n == 7 {
                        Err("seven".into())
                    } else {
                        Ok(n * n)
                    }
                })
                .handle_raw("done", |v: serde_json::Value, _| async move { Ok(v) }),
        );
        let run = waiting.await.unwrap();
        ok(&run);
        let info = json(&run);
        assert_eq!(info["total"], 20);
        assert_eq!(info["done"], 20);
        assert_eq!(info["succeeded"], 19);
        assert_eq!(info["failed"], 1);
        assert!(info["callback_id"].is_string(), "{info}");
        running.stop().await;
        // The table form.
        let run = zrq(&server, &["batch", "b", group.id(), "--wait"]).await;
        ok(&run);
        assert!(run.stdout.contains("succeeded"), "{}", run.stdout);
        assert!(run.stdout.contains("19"), "{}", run.stdout);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_speaks_the_functions_backend() {
    let server = Backend::Lua.server();
    let url = server.url();
    let run = zrq_url(
        &url,
        &["--backend", "lua", "enqueue", "lq", "t", r#"{"n":1}"#],
    )
    .await;
    ok(&run);
    let id = run.stdout.trim().to_string();
    let shown = zrq_url(
        &url,
        &["--backend", "lua", "--json", "job", &id, "-q", "lq"],
    )
    .await;
    ok(&shown);
    let v = json(&shown);
    assert_eq!(v["state"], "pending");
    assert_eq!(v["payload"], r#"{"n":1}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_commands_never_write_to_a_plain_redis() {
    let bare = Server::start(Options {
        module: false,
        ..Options::default()
    });
    let libraries = || -> Vec<zrq_tests::redis::Value> {
        zrq_tests::redis::cmd("FUNCTION")
            .arg("LIST")
            .query(&mut bare.conn())
            .unwrap()
    };
    let read_only: [&[&str]; 8] = [
        &["queues"],
        &["info", "q"],
        &["list", "q", "pending"],
        &["dead", "q"],
        &["job", "some-id", "-q", "q"],
        &["schedules", "q"],
        &["top", "--iterations", "1"],
        &["wait", "some-id", "-q", "q", "--timeout", "10ms"],
    ];
    for args in read_only {
        let line = failed(&zrq(&bare, args).await, 1);
        assert!(
            line.contains("neither the zrq module nor the zrq Functions library"),
            "{args:?}: {line}"
        );
        assert!(libraries().is_empty(), "{args:?} loaded the library");
    }
    // A command that writes loads the library, and the client says (at info) why it uses it.
    let run = zrq_env(&bare.url(), &["enqueue", "q", "t"], &[("RUST_LOG", "info")]).await;
    ok(&run);
    assert!(
        run.stderr.contains("using the zrq Functions library"),
        "{}",
        run.stderr
    );
    assert_eq!(libraries().len(), 1);
    // Now the read-only commands work on the library.
    let run = zrq(&bare, &["--json", "queues"]).await;
    ok(&run);
    assert_eq!(json(&run)[0]["fields"]["pending"], 1, "{}", run.stdout);
}

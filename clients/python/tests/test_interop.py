"""Python and Rust (and redis-cli) on one queue: jobs produced by one run on the other, results
flow back (both backends). The Rust side is the Rust client's examples, `add` with `{a, b,
work_ms}` (client/examples)."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import sample_tasks
from conftest import TARGET, Server, built, worker_process

import zrq
from zrq import Job, Queue


def rust_example(name: str) -> str:
    return str(built(TARGET / "examples" / name, "the client's examples (cargo build --examples)"))


def rust_environment(server: Server, queue: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "ZRQ_URL": server.url, "ZRQ_QUEUE": queue, **extra}


@contextmanager
def running(process: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """Stops `process` with SIGTERM at the end; it must exit cleanly."""
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output


async def test_a_python_producers_jobs_run_on_the_rust_worker(connected: Server, queue_name):
    rust = subprocess.Popen(
        [rust_example("worker")],
        env=rust_environment(connected, queue_name),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    with running(rust):
        add = sample_tasks.add_by_name.options(queue=queue_name)
        jobs = [await add.enqueue(a=index, b=100, work_ms=1) for index in range(5)]
        assert [await job.result(timeout=30) for job in jobs] == [100, 101, 102, 103, 104]
        refused = await add.options(retries=0).enqueue(a=-1, b=1, work_ms=0)
        await refused.outcome(timeout=30)
        assert "refusing negative a = -1" in ((await refused.refresh()).error or "")


async def test_a_rust_producers_jobs_run_on_the_python_worker(connected: Server, queue_name):
    with running(worker_process(connected, "--queue", queue_name)):
        producer = subprocess.run(
            [rust_example("producer")],
            env=rust_environment(connected, queue_name, ZRQ_JOBS="3"),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert producer.returncode == 0, producer.stdout + producer.stderr
    assert "1 + 2 = 3" in producer.stdout
    assert "2 + 4 = 6" in producer.stdout


async def test_jobs_enqueued_by_redis_cli_run_on_the_python_worker(connected: Server, queue_name):
    await zrq.connection()  # on the Functions backend, loads the library redis-cli calls
    with running(worker_process(connected, "--queue", queue_name)):
        by_name = connected.cli(*connected.command("enqueue", queue_name, "add", '{"a":40,"b":2}'))
        by_path = connected.cli(
            *connected.command("enqueue", queue_name, "sample_tasks:multiply", "[6,7]")
        )
        assert await Job.from_id(by_name, queue_name).result(timeout=30) == 42
        assert await Job.from_id(by_path, queue_name).result(timeout=30) == 42
    assert (await Queue(queue_name).info()).totals["completed"] == 2

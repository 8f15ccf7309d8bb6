"""The worker as a process (`python -m zrq.worker`): serving, SIGTERM, `--processes`."""

from __future__ import annotations

import signal
import time

import sample_tasks
from conftest import Server, worker_process

from zrq import Queue, State


async def test_the_worker_process_runs_jobs_and_stops_on_sigterm(
    connected: Server, queue_name: str
):
    worker = worker_process(connected, "--queue", queue_name, "--concurrency", "4")
    try:
        job = await Queue(queue_name).enqueue(sample_tasks.multiply, 6, 7)
        assert await job.result(timeout=20) == 42
    finally:
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=20)
    assert worker.returncode == 0, output
    assert "worker stopped" in output


async def test_sigterm_gives_back_what_is_still_running(connected: Server, queue_name: str):
    worker = worker_process(connected, "--queue", queue_name, "--grace", "0.5")
    try:
        job = await Queue(queue_name).enqueue(sample_tasks.slow, 60)
        for _ in range(200):
            if await job.get_state() is State.ACTIVE:
                break
            time.sleep(0.05)
        assert await job.get_state() is State.ACTIVE
    finally:
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=20)
    assert worker.returncode == 0, output
    # ZRQ.RELEASE: back to pending at once, for another worker, without using an attempt.
    assert f"job {job.id} given back to {queue_name}\n" in output, output
    assert (await job.refresh()).state is State.PENDING
    sample = worker_process(connected, "--queue", queue_name, "--grace", "0.5")
    try:
        for _ in range(200):
            if (await job.refresh()).state is State.ACTIVE:
                break
            time.sleep(0.05)
        assert job.state is State.ACTIVE
        await job.cancel()
    finally:
        sample.send_signal(signal.SIGTERM)
        sample.communicate(timeout=20)


async def test_processes_run_cpu_bound_tasks_in_parallel(connected: Server, queue_name: str):
    worker = worker_process(
        connected, "--queue", queue_name, "--processes", "2", "--concurrency", "1"
    )
    try:
        # Both processes must be serving before the jobs come, or the first would run both.
        assert worker.stdout is not None
        serving = 0
        while serving < 2:
            line = worker.stdout.readline()
            assert line, "the worker processes exited before serving"
            serving += " started: " in line
        queue = Queue(queue_name)
        jobs = [await queue.enqueue(sample_tasks.spin, 1.0) for _ in range(2)]
        consumers = set()
        for job in jobs:
            assert await job.result(timeout=30) == 1.0
            consumers.add((await job.refresh()).record["consumer"])
    finally:
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=20)
    assert worker.returncode == 0, output
    assert len(consumers) == 2  # each job ran in another process


async def test_a_worker_that_lost_its_lease_cannot_finish_the_job(
    connected: Server, queue_name: str
):
    """Fenced leases: the first worker stalls past its lease and the job is handed out again; the
    stalled worker's late ACK carries a stale token and is refused, so the stored result is the
    one of the last delivery (the job's last attempt), never the stalled first attempt's."""
    stalled = worker_process(connected, "--queue", queue_name)
    job = await sample_tasks.stall_first_attempt.options(queue=queue_name, timeout=0.5).enqueue(
        stall=3, then=4
    )
    for _ in range(200):
        if (await job.refresh()).state is State.ACTIVE:
            break
        time.sleep(0.05)
    second = worker_process(connected, "--queue", queue_name)
    try:
        result = await job.result(timeout=30)
        assert result >= 2
        assert result == (await job.refresh()).attempt
    finally:
        for worker in (stalled, second):
            worker.send_signal(signal.SIGTERM)
        outputs = [worker.communicate(timeout=20)[0] for worker in (stalled, second)]
    assert "its lease was lost: result dropped" in outputs[0], outputs[0]

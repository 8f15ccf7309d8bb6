"""The worker, in-process, against both backends: outcomes, retries, progress, cancellation,
chains, batches, schedules."""

from __future__ import annotations

import asyncio
import operator

import pytest
import sample_tasks
from conftest import Server

import zrq
from zrq import Queue, State
from zrq.worker import Worker


async def test_async_and_sync_tasks_complete_with_results(worker: Worker, queue_name: str):
    queue = Queue(queue_name)
    added = await queue.enqueue(sample_tasks.add, 2, 3)
    multiplied = await queue.enqueue(sample_tasks.multiply, 4, 5)
    assert await added.result(timeout=10) == 5
    assert await multiplied.result(timeout=10) == 20
    assert (await added.refresh()).state is State.COMPLETED
    assert added.attempt == 1


async def test_any_importable_callable_runs(worker: Worker, queue_name: str):
    job = await Queue(queue_name).enqueue(operator.add, 40, 2)
    assert await job.result(timeout=10) == 42


async def test_keyword_arguments_and_attempt_reach_the_task(worker: Worker, queue_name: str):
    job = await Queue(queue_name).enqueue(sample_tasks.describe, to="a@b.c", n=1)
    assert await job.result(timeout=10) == {
        "named": {"to": "a@b.c", "n": 1},
        "attempt": 1,
        "parents": {},
    }


async def test_an_exception_is_retried_then_dead_with_its_traceback(
    worker: Worker, queue_name: str
):
    job = await Queue(queue_name).enqueue(sample_tasks.explode, "boom")
    with pytest.raises(zrq.JobFailedError) as failure:
        await job.result(timeout=20)
    assert failure.value.state == "dead"
    await job.refresh()
    assert job.attempt == 2  # retries=1 on the task: two attempts
    assert job.error is not None
    assert "Traceback (most recent call last)" in job.error
    assert "ValueError: boom" in job.error
    dead = await Queue(queue_name).dead()
    assert [found.id for found in dead] == [job.id]
    assert await Queue(queue_name).requeue(job) is True
    with pytest.raises(zrq.JobFailedError):
        await job.result(timeout=20)
    assert await Queue(queue_name).requeue_all() == 1


async def test_an_unknown_task_fails(worker: Worker, queue_name: str):
    job = await Queue(queue_name).enqueue_call(
        zrq.Call("no_such_task", "[1]", zrq.Options(retries=0))
    )
    with pytest.raises(zrq.JobFailedError) as failure:
        await job.result(timeout=10)
    assert "unknown task 'no_such_task'" in str(failure.value)


async def test_progress_is_reported_and_cancel_reaches_the_task(worker: Worker, queue_name: str):
    # A 3 s lease: heartbeats every second, well before the 3 s time limit.
    job = await sample_tasks.slow.options(queue=queue_name, timeout=3).enqueue(2.5)
    for _ in range(100):
        if (await job.refresh()).progress == 50:
            break
        await asyncio.sleep(0.05)
    assert job.state is State.ACTIVE and job.progress == 50
    assert await job.cancel() is True
    with pytest.raises(zrq.JobFailedError) as failure:
        await job.result(timeout=10)
    assert failure.value.state == "cancelled"
    assert job.id in sample_tasks.cancellations


async def test_a_time_limit_fails_the_attempt(connected: Server, queue_name: str):
    job = await sample_tasks.slow.options(queue=queue_name, retries=0).enqueue(30)
    limited = Worker([queue_name], time_limit=0.3, block=0.2)
    running = asyncio.get_running_loop().create_task(limited.run())
    with pytest.raises(zrq.JobFailedError) as failure:
        await job.result(timeout=10)
    limited.stop()
    await running
    assert "timed out after 0.3 s" in str(failure.value)


async def test_heartbeats_keep_a_job_beyond_its_lease(worker: Worker, queue_name: str):
    job = await sample_tasks.slow.options(queue=queue_name, timeout=0.6, retries=0).enqueue(1.5)
    assert await job.result(timeout=10) == "done"
    assert (await job.refresh()).attempt == 1


async def test_a_chain_passes_each_result_on(worker: Worker, queue_name: str):
    steps = await Queue(queue_name).chain(
        [
            sample_tasks.step.signature(10),
            sample_tasks.step.signature(),
            sample_tasks.step.signature(),
        ]
    )
    assert await steps[-1].result(timeout=10) == 13


async def test_a_batch_runs_its_callback_once(worker: Worker, queue_name: str):
    queue = Queue(queue_name)
    batch = await queue.batch(
        "b1",
        [sample_tasks.add.signature(1, 1), sample_tasks.explode.signature("x")],
        on_complete=sample_tasks.report.signature(album=7),
        retries=0,
    )
    assert len(batch.jobs) == 2
    for _ in range(200):
        info = await queue.batch_info("b1")
        if info is not None and info.callback is not None:
            break
        await asyncio.sleep(0.05)
    assert info is not None and info.callback is not None
    assert (info.total, info.done, info.succeeded, info.failed) == (2, 2, 1, 1)
    assert await info.callback.result(timeout=10) == {
        "batch": "b1",
        "succeeded": 1,
        "failed": 1,
        "payload": {"album": 7},
    }
    assert await queue.batch_info("none") is None


async def test_a_schedule_enqueues_on_time(worker: Worker, queue_name: str):
    queue = Queue(queue_name)
    await queue.schedule("often", sample_tasks.add.signature(1, 1), every=1)  # zrq.every-min-ms
    for _ in range(100):
        if (await queue.info()).totals["completed"] >= 2:
            break
        await asyncio.sleep(0.1)
    assert (await queue.info()).totals["completed"] >= 2
    await queue.unschedule("often")
    completed = await queue.jobs(State.COMPLETED)
    assert len(completed) >= 2
    assert {job.schedule for job in completed} == {"often"}  # each job names its schedule
    assert (await (await queue.enqueue(sample_tasks.add, 1, 1)).refresh()).schedule is None


async def test_paused_queues_deliver_nothing(worker: Worker, queue_name: str):
    queue = Queue(queue_name)
    await queue.pause()
    job = await queue.enqueue(sample_tasks.add, 1, 1)
    await asyncio.sleep(0.5)
    assert await job.get_state() is State.PENDING
    await queue.resume()
    assert await job.result(timeout=10) == 2


async def test_concurrency_runs_async_tasks_together(connected: Server, queue_name: str):
    queue = Queue(queue_name)
    jobs = [await queue.enqueue(sample_tasks.slow, 0.5) for _ in range(20)]
    running = Worker([queue_name], concurrency=20, block=0.2)
    task = asyncio.get_running_loop().create_task(running.run())
    started = asyncio.get_running_loop().time()
    for job in jobs:
        assert await job.result(timeout=10) == "done"
    assert (
        asyncio.get_running_loop().time() - started < 4
    )  # 20 times 0.5 s one by one would be 10 s
    running.stop()
    stats = await task
    assert stats.completed == 20


async def test_earlier_queues_come_first(connected: Server, queue_name: str):
    urgent, normal = f"{queue_name}-urgent", queue_name
    low = [await Queue(normal).enqueue(sample_tasks.add, 0, index) for index in range(5)]
    high = [await Queue(urgent).enqueue(sample_tasks.add, 1, index) for index in range(5)]
    running = Worker([urgent, normal], concurrency=1, batch=1, block=0.2)
    task = asyncio.get_running_loop().create_task(running.run())
    for job in low + high:
        await job.result(timeout=10)
    running.stop()
    await task
    finished = [int((await job.refresh()).record["finished_at"]) for job in high + low]
    assert max(finished[:5]) <= min(finished[5:])


async def test_idle_queues_leave_every_slot_to_a_busy_one(connected: Server, queue_name: str):
    # Eleven empty queues before a busy one: their fetchers wait holding no slot, so the busy
    # queue's 40 jobs of 0.1 s run four at a time (when idle fetchers held their slots through a
    # 5 s block, the busy queue got a few jobs per block period: about 50 s).
    idle = [f"{queue_name}-{index}" for index in range(11)]
    running = Worker([*idle, queue_name], concurrency=4, batch=16, block=5)
    task = asyncio.get_running_loop().create_task(running.run())
    await asyncio.sleep(0.3)  # every fetcher is waiting on its empty queue
    queue = Queue(queue_name)
    jobs = [await queue.enqueue(sample_tasks.slow, 0.1) for _ in range(40)]
    for job in jobs:
        assert await job.result(timeout=30) == "done"
    running.stop()
    assert (await task).completed == 40


async def test_jobs_arriving_on_idle_queues_wait_for_a_slot(connected: Server, queue_name: str):
    # Jobs that blocking fetches return on eight queues at once run two at a time (the
    # concurrency); those that find no free slot within the block time are given back, so each
    # still completes on its first attempt.
    names = [f"{queue_name}-{index}" for index in range(8)]
    running = Worker(names, concurrency=2, batch=4, block=0.2)
    task = asyncio.get_running_loop().create_task(running.run())
    await asyncio.sleep(0.3)
    jobs = [await Queue(name).enqueue(sample_tasks.slow, 0.1) for name in names for _ in range(3)]
    for job in jobs:
        assert await job.result(timeout=30) == "done"
    running.stop()
    assert (await task).completed == 24
    for job in jobs:
        assert (await job.refresh()).attempt == 1

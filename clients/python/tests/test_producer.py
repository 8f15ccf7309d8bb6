"""Producing and inspecting jobs against both backends (no worker involved)."""

from __future__ import annotations

import asyncio
import datetime
import json
import time
from typing import Any

import pytest
import redis.exceptions
import sample_tasks
from conftest import Server

import zrq
from zrq import Call, Job, Queue, State


async def test_enqueue_gives_a_pending_job_with_its_arguments(connected: Server, queue_name: str):
    job = await Queue(queue_name).enqueue(sample_tasks.add, 2, 3)
    assert job.state is State.PENDING
    assert job.task == "sample_tasks:add"
    assert json.loads(job.record["payload"]) == [2, 3]
    assert job.attempt == 0
    assert job.progress == 0
    assert job.error is None


async def test_arguments_travel_as_json_array_object_or_both(connected: Server, queue_name: str):
    queue = Queue(queue_name)
    only_named = await queue.enqueue(sample_tasks.describe, to="a@b.c")
    both = await queue.enqueue("describe", 1, 2, to="x")
    for job, payload in ((only_named, {"to": "a@b.c"}), (both, {"*": [1, 2], "to": "x"})):
        await job.refresh()
        assert json.loads(job.record["payload"]) == payload


async def test_task_options_reach_the_job(connected: Server, queue_name: str):
    emails = sample_tasks.add.options(queue=queue_name, retries=7, timeout=12.5, priority=9)
    job = await emails.enqueue(1, 2)
    await job.refresh()
    assert job.queue == queue_name
    assert (job.record["max_attempts"], job.record["timeout"], job.record["priority"]) == (
        8,
        12500,
        9,
    )


async def test_delay_and_at_schedule_and_after_waits(connected: Server, queue_name: str):
    queue = Queue(queue_name)
    delayed = await sample_tasks.add.options(queue=queue_name, delay=60).enqueue(1, 1)
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    at = await sample_tasks.add.options(queue=queue_name, at=later).enqueue(1, 1)
    child = await sample_tasks.add.options(queue=queue_name, after=[delayed]).enqueue(2, 2)
    assert delayed.state is State.SCHEDULED
    assert at.state is State.SCHEDULED
    assert abs(int(at.record["run_at"]) - later.timestamp() * 1000) < 2
    assert child.state is State.WAITING
    counts = await queue.counts()
    assert (counts[State.SCHEDULED], counts[State.WAITING], counts[State.PENDING]) == (2, 1, 0)


async def test_unique_and_id_make_enqueue_idempotent(connected: Server, queue_name: str):
    once = sample_tasks.add.options(queue=queue_name, unique=True)
    first, again = await once.enqueue(1, 2), await once.enqueue(1, 2)
    other = await once.enqueue(2, 1)
    assert first == again != other
    named = sample_tasks.add.options(queue=queue_name, id="order-42")
    assert (await named.enqueue(1, 1)).id == (await named.enqueue(5, 5)).id == "order-42"
    assert (await Queue(queue_name).counts())[State.PENDING] == 3


async def test_any_callable_is_enqueued_by_its_import_path(connected: Server, queue_name: str):
    job = await Queue(queue_name).enqueue(json.dumps, [1])
    assert job.task == "json:dumps"
    assert repr(zrq.task(asyncio.sleep)) == "Task('sleep')"


async def test_refresh_and_get_state_read_the_server(connected: Server, queue_name: str):
    job = await Queue(queue_name).enqueue(sample_tasks.add, 1, 2)
    assert job.state is State.PENDING
    assert await job.cancel() is True
    assert job.state is State.PENDING  # the snapshot, until refreshed
    assert await job.get_state() is State.CANCELLED
    assert (await job.refresh()).state is State.CANCELLED
    assert await job.cancel() is False


async def test_from_id_reads_synchronously_and_defaults_to_default(connected: Server):
    job = await Queue().enqueue(sample_tasks.add, 1, 2)
    again = Job.from_id(job.id)
    assert again.queue == "default"
    assert again.state is State.PENDING
    await job.cancel()


async def test_size_info_pause_resume(connected: Server, queue_name: str):
    queue = Queue(queue_name)
    for value in range(5):
        await queue.enqueue(sample_tasks.add, value, value)
    assert queue.size == 5
    await queue.pause()
    info = await queue.info()
    assert info.paused and info.counts[State.PENDING] == 5 and info.totals["enqueued"] == 5
    await queue.resume()
    assert not (await queue.info()).paused
    assert [job.state for job in await queue.jobs(State.PENDING, limit=3)] == [State.PENDING] * 3


async def test_result_times_out_while_nobody_works(connected: Server, queue_name: str):
    job = await Queue(queue_name).enqueue(sample_tasks.add, 1, 2)
    started = time.monotonic()
    with pytest.raises(zrq.JobTimeoutError):
        await job.result(timeout=0.3)
    assert 0.25 < time.monotonic() - started < 3
    assert (await job.outcome(timeout=0.05)) is None


async def test_a_cancelled_job_raises_job_failed_when_waited_for(connected: Server, queue_name):
    job = await Queue(queue_name).enqueue(sample_tasks.add, 1, 2)
    waiting = asyncio.ensure_future(job.result(timeout=10))
    await asyncio.sleep(0.1)
    await job.cancel()
    with pytest.raises(zrq.JobFailedError) as failure:
        await waiting
    assert failure.value.state == "cancelled"


async def test_schedules(connected: Server, queue_name: str):
    queue = Queue(queue_name)
    first = await queue.schedule("tick", sample_tasks.add.signature(1, 2), every=3600)
    assert first > time.time() * 1000
    await queue.schedule("nightly", sample_tasks.add.signature(1, 2), cron="0 3 * * *")
    schedules = {entry["name"]: entry for entry in await queue.schedules()}
    assert set(schedules) == {"tick", "nightly"}
    assert schedules["nightly"]["cron"] == "0 3 * * *"
    assert await queue.unschedule("tick") is True
    assert await queue.unschedule("tick") is False
    with pytest.raises(ValueError, match="exactly one"):
        await queue.schedule("both", sample_tasks.add.signature(), every=1, cron="* * * * *")


@pytest.mark.parametrize(
    ("call", "options", "error"),
    [
        (Call("t", "{not json"), {}, zrq.BadJsonError),
        (Call("t", "[]"), {"priority": 99}, zrq.CommandError),
        (Call("bad task name", "[]"), {}, zrq.CommandError),
    ],
)
async def test_server_errors_become_exceptions(connected, queue_name, call, options, error):
    with pytest.raises(error) as raised:
        await Queue(queue_name).enqueue_call(Call(call.task, call.payload, zrq.Options(**options)))
    assert isinstance(raised.value, zrq.ServerError)


async def test_gathered_enqueues_share_a_round_trip_and_keep_their_own_outcomes(
    connected: Server, queue_name: str, monkeypatch: pytest.MonkeyPatch
):
    conn = await zrq.connection()
    pipelines = 0
    real_pipeline = conn.client.pipeline

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal pipelines
        pipelines += 1
        return real_pipeline(*args, **kwargs)

    monkeypatch.setattr(conn.client, "pipeline", counted)
    queue = Queue(queue_name)
    calls = [sample_tasks.add.signature(n, n) for n in range(20)]
    calls.insert(7, Call("t", "{not json"))
    outcomes = await asyncio.gather(
        *(queue.enqueue_call(call) for call in calls), return_exceptions=True
    )
    # The first went at once, on its own; the other 20 together.
    assert pipelines == 1
    assert isinstance(outcomes.pop(7), zrq.BadJsonError)
    jobs = [job for job in outcomes if isinstance(job, Job)]
    assert len({job.id for job in jobs}) == 20
    for n, job in enumerate(jobs):
        await job.refresh()
        assert json.loads(job.record["payload"]) == [n, n]
    assert (await queue.info()).counts[State.PENDING] == 20


async def test_gathered_enqueues_all_learn_of_a_lost_connection(fresh_server: Server):
    zrq.connect(fresh_server.url, backend=fresh_server.backend)
    await zrq.connection()
    fresh_server.stop()
    outcomes = await asyncio.gather(
        *(Queue("q").enqueue("work", n) for n in range(3)), return_exceptions=True
    )
    # The first went at once, the other two in a pipeline: each caller gets the failure.
    assert all(isinstance(outcome, redis.exceptions.ConnectionError) for outcome in outcomes)


async def test_unknown_jobs_and_wrong_types(connected: Server, queue_name: str):
    with pytest.raises(zrq.NoJobError):
        await Job.from_id("nope", queue_name).result(timeout=0.1)
    with pytest.raises(zrq.NoJobError):
        await Job.from_id("nope", queue_name).refresh()
    connected.cli("SET", f"zrq:{{{queue_name}}}:stream", "x")
    with pytest.raises(zrq.WrongTypeError):
        await Queue(queue_name).enqueue(sample_tasks.add, 1, 2)


def test_sync_producer_needs_no_event_loop(connected: Server, queue_name: str):
    job = zrq.sync.enqueue(sample_tasks.add.options(queue=queue_name), 4, 5)
    assert zrq.sync.state(job) is State.PENDING
    with pytest.raises(zrq.JobTimeoutError):
        zrq.sync.result(job, timeout=0.2)
    assert zrq.sync.cancel(job) is True
    assert zrq.sync.state(job) is State.CANCELLED

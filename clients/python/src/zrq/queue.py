"""Queues: enqueueing, counts, pause/resume, dead jobs, schedules, batches and chains."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from . import _protocol
from ._connection import as_map, connection
from ._runner import run_sync
from .job import DEFAULT_QUEUE, Job, State
from .task import Call, Options, Seconds, Task, as_call, milliseconds


@dataclasses.dataclass(frozen=True)
class QueueInfo:
    """`ZRQ.INFO`: how many jobs are in each state, totals since the queue began, and more."""

    counts: dict[State, int]
    totals: dict[str, int]
    """`enqueued`, `completed`, `failed`, `dead`, `cancelled`, `dropped`."""
    oldest_pending_age_ms: int
    paused: bool


@dataclasses.dataclass(frozen=True)
class BatchInfo:
    """`ZRQ.BATCHINFO`: a batch's progress, and its callback job once enqueued."""

    id: str
    total: int
    done: int
    succeeded: int
    failed: int
    callback: Job | None


@dataclasses.dataclass(frozen=True)
class Batch:
    """A batch just created: its id and member jobs."""

    id: str
    jobs: list[Job]


class Queue:
    """A queue by name (nothing is sent: a queue exists once something is enqueued)."""

    def __init__(self, name: str = DEFAULT_QUEUE) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Queue({self.name!r})"

    async def _call(self, command: str, *args: str | int, batched: bool = False) -> Any:
        return await (await connection()).call(command, self.name, *args, batched=batched)

    @property
    def size(self) -> int:
        """Jobs waiting for a worker (`pending`), read now; synchronous, so it works without
        `await` (in async code, `(await queue.info()).counts` does not hold up the loop)."""
        return run_sync(self.info()).counts[State.PENDING]

    async def enqueue(
        self, target: Task[Any, Any] | Callable[..., Any] | str, /, *args: Any, **kwargs: Any
    ) -> Job:
        """Enqueues `target` — a task, any importable callable, or a task name — with these
        arguments, on this queue, with the task's options."""
        return await self.enqueue_call(as_call(target, args, kwargs))

    async def enqueue_call(self, call: Call) -> Job:
        """Enqueues a prepared call (`task.signature(...)`) on this queue. Enqueues issued
        together (`asyncio.gather`) go out in one pipeline, each with its own reply or error."""
        job_id = await self._call(
            "enqueue",
            call.task,
            call.payload,
            *call.options.enqueue_arguments(call.task, call.payload),
            batched=True,
        )
        return Job(str(job_id), self.name)

    async def info(self) -> QueueInfo:
        """Counts by state, totals, the oldest pending job's age, whether paused."""
        reply = as_map(await self._call("info"))
        return QueueInfo(
            counts={state: int(reply.get(state.value, 0)) for state in State},
            totals={
                key.removeprefix("total_"): int(value)
                for key, value in reply.items()
                if key.startswith("total_")
            },
            oldest_pending_age_ms=int(reply.get("oldest_pending_age_ms", 0)),
            paused=bool(int(reply.get("paused", 0))),
        )

    async def counts(self) -> dict[State, int]:
        """How many jobs are in each state."""
        return (await self.info()).counts

    async def pause(self) -> None:
        """Stops workers from fetching (everything else goes on)."""
        await self._call("pause")

    async def resume(self) -> None:
        """Lets workers fetch again."""
        await self._call("resume")

    async def _pages(self, command: str, *args: str, limit: int) -> list[Job]:
        jobs: list[Job] = []
        cursor = "0"
        while len(jobs) < limit:
            count = min(1000, limit - len(jobs))
            reply = await self._call(command, *args, "COUNT", count, "CURSOR", cursor)
            cursor, records = str(reply[0]), reply[1]
            jobs += [self._job(record) for record in records]
            if cursor == "0":
                break
        return jobs

    def _job(self, reply: Any) -> Job:
        record = as_map(reply)
        return Job(str(record["id"]), self.name, record)

    async def jobs(self, state: State, limit: int = 100) -> list[Job]:
        """Up to `limit` jobs in `state`, in the order they will be or were handled."""
        return await self._pages("list", state.value, limit=limit)

    async def dead(self, limit: int = 100) -> list[Job]:
        """Up to `limit` dead jobs, oldest death first, each with its last `error`."""
        return await self._pages("dead", limit=limit)

    async def requeue(self, job: Job | str) -> bool:
        """Puts a dead job back to pending with a fresh budget of attempts."""
        return (
            int(await self._call("requeue", job if isinstance(job, str) else job.id))
            == _protocol.DONE
        )

    async def requeue_all(self) -> int:
        """Requeues every dead job; how many. Works page by page (each call bounded by the
        server's `zrq.requeue-max`, so none holds it long), to the end of the dead set or until
        as many jobs were requeued as were dead at the start: a job that dies again meanwhile
        joins the end of the set and is not chased forever."""
        budget = (await self.info()).counts[State.DEAD]
        cursor, total = "0", 0
        while True:
            reply = await self._call("requeue", "ALL", "CURSOR", cursor)
            cursor, total = str(reply[0]), total + int(reply[1])
            if cursor == "0" or total >= budget:
                return total

    async def delete(self, job: Job | str) -> bool:
        """Removes a job in any state; whether it existed."""
        return (
            int(await self._call("delete", job if isinstance(job, str) else job.id))
            == _protocol.DONE
        )

    async def schedule(
        self, name: str, call: Call, *, every: Seconds | None = None, cron: str | None = None
    ) -> int:
        """Defines (or replaces) the recurring job `name`: `call` every `every` seconds, or on a
        five-field UTC `cron` expression; the server enqueues exactly one job per tick. Returns
        the first run (unix ms). The call's options (retries, timeout, priority, unique, keep,
        backoff) apply to each job."""
        if (every is None) == (cron is None):
            raise ValueError("give exactly one of every= and cron=")
        when: list[str | int] = (
            ["EVERY", milliseconds(every)] if every is not None else ["CRON", str(cron)]
        )
        options = call.options.job_arguments()
        unique = call.options.unique_key(call.task, call.payload)
        if unique is not None:
            options += ["UNIQUE", unique]
        return int(await self._call("schedule", name, *when, call.task, call.payload, *options))

    async def unschedule(self, name: str) -> bool:
        """Removes a schedule; whether it existed."""
        return int(await self._call("unschedule", name)) == _protocol.DONE

    async def schedules(self) -> list[dict[str, Any]]:
        """The queue's schedules (`name`, `every` or `cron`, `task`, `payload`, `next_run`…)."""
        return [as_map(schedule) for schedule in await self._call("schedules")]

    async def batch(
        self, id: str, calls: Sequence[Call], *, on_complete: Call | None = None, **options: Any
    ) -> Batch:
        """Creates batch `id` and its member jobs in one step; `on_complete` is enqueued exactly
        once when all have finished, with keyword arguments `batch`, `succeeded`, `failed` and
        `payload` (its own arguments' payload). `options` (retries, timeout, backoff, priority,
        keep) apply to every member."""
        if not calls:
            raise ValueError("a batch needs at least one job")
        arguments: list[str | int] = []
        if on_complete is not None:
            arguments += ["ON-COMPLETE", on_complete.task, on_complete.payload]
        arguments += Options(**options).job_arguments()
        for call in calls:
            arguments += ["JOB", call.task, call.payload]
        ids = await self._call("batch", id, *arguments)
        return Batch(id, [Job(str(job_id), self.name) for job_id in ids])

    async def batch_info(self, id: str) -> BatchInfo | None:
        """A batch's progress; None if there is no such batch."""
        reply = await self._call("batchinfo", id)
        if reply is None:
            return None
        info = as_map(reply)
        callback = info.get("callback_id")
        return BatchInfo(
            id=str(info["id"]),
            total=int(info["total"]),
            done=int(info["done"]),
            succeeded=int(info["succeeded"]),
            failed=int(info["failed"]),
            callback=None if callback is None else Job(str(callback), self.name),
        )

    async def chain(self, calls: Sequence[Call]) -> list[Job]:
        """Enqueues `calls` as a chain: each runs after the one before it has completed, and gets
        its result (`current_job().parent_result()`); a step that fails cancels the rest."""
        jobs: list[Job] = []
        for call in calls:
            options = call.options
            if jobs:
                options = options.merged(after=[jobs[-1]], with_results=True)
            jobs.append(await self.enqueue_call(dataclasses.replace(call, options=options)))
        return jobs

"""Jobs: a handle on one job of one queue, its state and its outcome."""

from __future__ import annotations

import asyncio
import enum
import json
import time
from typing import Any

from . import _protocol
from ._connection import Backend, Connection, as_map, connection
from ._runner import run_sync
from .errors import JobFailedError, JobTimeoutError, NoJobError

DEFAULT_QUEUE = "default"


class State(enum.Enum):
    """Every state of the protocol (docs/PROTOCOL.md, "States")."""

    WAITING = "waiting"
    SCHEDULED = "scheduled"
    PENDING = "pending"
    ACTIVE = "active"
    RETRYING = "retrying"
    COMPLETED = "completed"
    DEAD = "dead"
    CANCELLED = "cancelled"

    def __repr__(self) -> str:
        return f"State.{self.name}"

    @property
    def finished(self) -> bool:
        """Whether the job has ended (completed, dead or cancelled)."""
        return self in (State.COMPLETED, State.DEAD, State.CANCELLED)


class Job:
    """A job of a queue, known by its id.

    `record` is a snapshot of the job (the fields of docs/PROTOCOL.md's job record); `state`,
    `progress`, `error` and `attempt` read it. A job just enqueued or made with `from_id` has no
    snapshot yet: the first of these reads takes one synchronously, so they work without `await`
    (e.g. in `python -m asyncio`). `await job.refresh()` takes a new one.
    """

    def __init__(self, id: str, queue: str = DEFAULT_QUEUE, record: dict[str, Any] | None = None):
        self.id = id
        self.queue = queue
        self.record = record

    @classmethod
    def from_id(cls, id: str, queue: str = DEFAULT_QUEUE) -> Job:
        """The job `id` of `queue` (nothing is sent until something is read)."""
        return cls(id, queue)

    def __repr__(self) -> str:
        return f"Job({self.id!r}, queue={self.queue!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Job) and (self.id, self.queue) == (other.id, other.queue)

    def __hash__(self) -> int:
        return hash((self.id, self.queue))

    async def refresh(self) -> Job:
        """Reads the job again (`ZRQ.JOB`); raises `NoJobError` if it is gone."""
        reply = await (await connection()).call("job", self.queue, self.id)
        if reply is None:
            raise NoJobError(f"NOJOB no job '{self.id}' in queue '{self.queue}'")
        self.record = as_map(reply)
        return self

    def _snapshot(self) -> dict[str, Any]:
        if self.record is None:
            run_sync(self.refresh())
        assert self.record is not None  # refresh() sets it or raises
        return self.record

    @property
    def state(self) -> State:
        """The job's state in the snapshot."""
        return State(self._snapshot()["state"])

    @property
    def progress(self) -> int:
        """Progress (0-100) the task reported, 0 if none."""
        return int(self._snapshot().get("progress", 0))

    @property
    def error(self) -> str | None:
        """The last error (a failed attempt's traceback, or why it was cancelled), if any."""
        error = self._snapshot().get("error")
        return None if error is None else str(error)

    @property
    def attempt(self) -> int:
        """Attempts started so far (0 until a worker first fetched it)."""
        return int(self._snapshot().get("attempt", 0))

    @property
    def task(self) -> str:
        """The task name."""
        return str(self._snapshot()["task"])

    @property
    def schedule(self) -> str | None:
        """The name of the schedule whose tick enqueued the job, None if no schedule did."""
        schedule = self._snapshot().get("schedule")
        return None if schedule is None else str(schedule)

    async def get_state(self) -> State:
        """The job's current state (`ZRQ.STATE`), without touching the snapshot."""
        reply = await (await connection()).call("state", self.queue, self.id)
        if reply is None:
            raise NoJobError(f"NOJOB no job '{self.id}' in queue '{self.queue}'")
        return State(reply)

    async def cancel(self) -> bool:
        """Cancels the job: at once if it is not running, else its worker is told (the task sees
        `asyncio.CancelledError`). False if it had already finished."""
        reply = await (await connection()).call("cancel", self.queue, self.id)
        return int(reply) != _protocol.NOTHING

    async def outcome(self, timeout: float | None = None) -> dict[str, Any] | None:
        """Waits up to `timeout` seconds (None: forever) for the job to finish, inside Redis;
        `{state, result?, error?, finished_at}` once it has, None if it has not yet."""
        conn = await connection()
        if conn.backend is Backend.MODULE:
            block_ms = 0 if timeout is None else max(1, round(timeout * 1000))
            reply = await conn.call("result", self.queue, self.id, "BLOCK", block_ms, blocks=True)
            return None if reply is None else as_map(reply)
        return await _follow_events(conn, self.queue, self.id, timeout)

    async def result(self, timeout: float | None = None) -> Any:
        """The job's result (decoded JSON) once it completes, waiting up to `timeout` seconds.

        Raises `JobTimeoutError` if it does not finish in time, `JobFailedError` if it ends dead
        or cancelled, `NoJobError` if there is no such job.
        """
        outcome = await self.outcome(timeout)
        if outcome is None:
            raise JobTimeoutError(f"job {self.id} did not finish within {timeout} s")
        return decode_outcome(self.id, outcome)


def decode_outcome(job_id: str, outcome: dict[str, Any]) -> Any:
    """The result of a finished job's outcome map, or `JobFailedError` if it did not complete."""
    if outcome["state"] != State.COMPLETED.value:
        raise JobFailedError(job_id, outcome["state"], outcome.get("error"))
    result = outcome.get("result")
    return None if result is None else json.loads(result)


_END_STATES = tuple(state.value for state in State if state.finished)


async def _follow_events(
    conn: Connection, queue: str, job_id: str, timeout: float | None
) -> dict[str, Any] | None:
    """RESULT … BLOCK for the Functions library, which cannot block: subscribe to the queue's
    events, then ask RESULT (catching a job that ended before the subscription), and ask again
    when an end of this job is announced or the deadline passes."""
    deadline = None if timeout is None else time.monotonic() + timeout
    pubsub = await conn.pubsub(_protocol.events_channel(queue))
    try:
        while True:
            reply = await conn.call("result", queue, job_id)
            if reply is not None:
                return as_map(reply)
            while True:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                try:
                    message = await asyncio.wait_for(
                        pubsub.get_message(ignore_subscribe_messages=True, timeout=None), left
                    )
                except asyncio.TimeoutError:
                    message = None
                if message is None:
                    break
                state, _, ended_id = str(message["data"]).partition(" ")
                if ended_id == job_id and state in _END_STATES:
                    break
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]  # unannotated in redis-py

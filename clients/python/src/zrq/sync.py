"""The synchronous producer, for code with no event loop: Django or Flask views, scripts, shells.

    import zrq.sync
    job = zrq.sync.enqueue(send_email, to="a@b.c")
    zrq.sync.state(job)                 # State.PENDING
    zrq.sync.result(job, timeout=30)    # waits inside Redis

Each call runs on zrq's background event loop (its own thread and connection) and waits for it,
so these also work, blocking, from inside a running loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._connection import connect
from ._runner import run_sync
from .job import Job, State
from .queue import Queue
from .task import Task, as_call

__all__ = ["cancel", "connect", "enqueue", "result", "state"]


def enqueue(target: Task[Any, Any] | Callable[..., Any] | str, /, *args: Any, **kwargs: Any) -> Job:
    """Enqueues `target` (a task, any importable callable, or a task name) with these arguments
    on the task's queue (`task.options(queue=...)`, else "default")."""
    call = as_call(target, args, kwargs)
    return run_sync(Queue(call.options.queue or "default").enqueue_call(call))


def state(job: Job) -> State:
    """The job's current state."""
    return run_sync(job.get_state())


def result(job: Job, timeout: float | None = None) -> Any:
    """The job's result once it completes, waiting up to `timeout` seconds inside Redis (raises
    `JobTimeoutError`, or `JobFailedError` if it ends dead or cancelled)."""
    return run_sync(job.result(timeout))


def cancel(job: Job) -> bool:
    """Cancels the job (see `Job.cancel`)."""
    return run_sync(job.cancel())

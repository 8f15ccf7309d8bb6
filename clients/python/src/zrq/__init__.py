"""zrq: a job queue inside Redis — tasks, queues, jobs, a worker and a synchronous producer.

    >>> from zrq import task, Queue, Job
    >>> job = await Queue("default").enqueue(task(asyncio.sleep), 1)
    >>> job.state
    State.PENDING

The package speaks docs/PROTOCOL.md to the zrq module, or to the Redis Functions library on a
server without it (loaded by the package when missing).
"""

from . import sync
from ._connection import Backend, connect, connection
from .context import JobContext, current_job
from .errors import (
    BackendError,
    BadJsonError,
    CommandError,
    CorruptError,
    InternalError,
    JobFailedError,
    JobTimeoutError,
    LimitError,
    NoJobError,
    NoPermissionError,
    ServerError,
    WrongTypeError,
    ZrqError,
)
from .job import Job, State
from .queue import Batch, BatchInfo, Queue, QueueInfo
from .task import Call, Options, Task, task

__all__ = [
    "Backend",
    "BackendError",
    "BadJsonError",
    "Batch",
    "BatchInfo",
    "Call",
    "CommandError",
    "CorruptError",
    "InternalError",
    "Job",
    "JobContext",
    "JobFailedError",
    "JobTimeoutError",
    "LimitError",
    "NoJobError",
    "NoPermissionError",
    "Options",
    "Queue",
    "QueueInfo",
    "ServerError",
    "State",
    "Task",
    "WrongTypeError",
    "ZrqError",
    "connect",
    "connection",
    "current_job",
    "sync",
    "task",
]

"""What a running task knows about its job: `current_job()`."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import json
import threading
from collections.abc import Callable, Coroutine
from typing import Any

_current: contextvars.ContextVar[JobContext] = contextvars.ContextVar("zrq_current_job")


def current_job() -> JobContext:
    """The job the calling task runs for (in an async or a sync task run by the worker)."""
    try:
        return _current.get()
    except LookupError:
        raise RuntimeError(
            "current_job() is only available inside a task run by a zrq worker"
        ) from None


class JobContext:
    """The running job: its record, progress reports, cancellation, its parents' results."""

    def __init__(
        self,
        record: dict[str, Any],
        loop: asyncio.AbstractEventLoop,
        touch: Callable[[int | None], Coroutine[Any, Any, None]],
    ) -> None:
        self.record = record
        self._loop = loop
        self._touch = touch
        self._cancelled = threading.Event()
        # Holds each report until it is done: the loop alone keeps only weak references.
        self._reports: set[concurrent.futures.Future[None]] = set()

    @property
    def id(self) -> str:
        """The job id."""
        return str(self.record["id"])

    @property
    def queue(self) -> str:
        """The job's queue."""
        return str(self.record["queue"])

    @property
    def attempt(self) -> int:
        """This attempt's number (1 for the first)."""
        return int(self.record.get("attempt", 1))

    @property
    def cancelled(self) -> bool:
        """Whether the job should stop: cancellation was requested, or the worker lost its lease.

        An async task is also interrupted with `asyncio.CancelledError`; a sync task (run in a
        thread, which cannot be interrupted) should look at this now and then.
        """
        return self._cancelled.is_set()

    def mark_cancelled(self) -> None:
        """Records that the job should stop (the worker calls this)."""
        self._cancelled.set()

    def progress(self, percent: int) -> None:
        """Reports progress (0-100) and extends the lease, in the background (`ZRQ.TOUCH …
        PROGRESS`); callable from an async task or from a sync task's thread."""
        self._report(max(0, min(100, int(percent))))

    def heartbeat(self) -> None:
        """Extends the lease now, in the background (the worker also does so on its own)."""
        self._report(None)

    def _report(self, percent: int | None) -> None:
        report = asyncio.run_coroutine_threadsafe(self._touch(percent), self._loop)
        self._reports.add(report)
        report.add_done_callback(self._reports.discard)

    def parents(self) -> dict[str, Any]:
        """The parents' results by parent id (None for a parent that has not completed), for a
        job enqueued `after=` with `with_results=True` (every step of a chain)."""
        parents = self.record.get("parents")
        return {} if parents is None else dict(json.loads(parents))

    def parent_result(self) -> Any:
        """The result of the job's one parent: what a chain step gets from the step before."""
        parents = self.parents()
        if len(parents) != 1:
            raise LookupError(f"job {self.id} has {len(parents)} parent results, not one")
        return next(iter(parents.values()))

"""Tasks the tests enqueue and their workers run."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from zrq import current_job, task

cancellations: list[str] = []
"""Ids of jobs whose task saw its cancellation (in-process workers)."""


@task
async def add(a: int, b: int) -> int:
    return a + b


@task
def multiply(a: int, b: int) -> int:
    """A sync task: runs in the worker's thread pool."""
    return a * b


@task(retries=1, backoff=0.01)
async def explode(message: str) -> None:
    raise ValueError(message)


@task
async def slow(seconds: float) -> str:
    job = current_job()
    job.progress(50)
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        cancellations.append(job.id)
        raise
    return "done"


@task
def spin(seconds: float) -> float:
    """CPU-bound: busy for `seconds`."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    return seconds


@task
async def describe(**named: Any) -> dict[str, Any]:
    """Its arguments, its attempt and its parent's result, as the worker gave them."""
    job = current_job()
    return {"named": named, "attempt": job.attempt, "parents": job.parents()}


@task
async def step(value: int | None = None) -> int:
    """A chain step: the parent's result (or `value`) plus one."""
    parents = current_job().parents()
    start = current_job().parent_result() if parents else value
    return int(start or 0) + 1


@task
async def report(batch: str, succeeded: int, failed: int, payload: Any) -> dict[str, Any]:
    """A batch callback."""
    return {"batch": batch, "succeeded": succeeded, "failed": failed, "payload": payload}


@task(name="add")
async def add_by_name(a: int, b: int, work_ms: int = 0) -> int:
    """The task the Rust examples produce and consume (`add`, `{a, b, work_ms}`)."""
    await asyncio.sleep(work_ms / 1000)
    if a < 0:
        raise ValueError(f"refusing negative a = {a}")
    return a + b


@task
async def stall_first_attempt(stall: float, then: float) -> int:
    """Attempt 1 blocks its worker's event loop (no heartbeats: the lease runs out); later
    attempts take `then` seconds. Returns the attempt that produced the result."""
    attempt = current_job().attempt
    if attempt == 1:
        time.sleep(stall)
    else:
        await asyncio.sleep(then)
    return attempt

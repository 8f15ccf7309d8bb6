"""The no-op task of the benchmark, for each framework. Every variant does the same work: one
INCR of `bench:done` on the Redis it runs against, which is how the benchmark sees jobs finish."""

from __future__ import annotations

import os
from typing import Any, ClassVar

import redis
import redis.asyncio

URL = os.environ.get("BENCH_URL", "redis://127.0.0.1:6379")
DONE = "bench:done"

_async_client: redis.asyncio.Redis | None = None
_sync_client: redis.Redis | None = None


def _sync() -> redis.Redis:
    global _sync_client
    if _sync_client is None:
        _sync_client = redis.Redis.from_url(URL)
    return _sync_client


# zrq: an async task (the worker process runs one event loop, so one client serves it).
try:
    from zrq import task

    @task(name="noop")
    async def zrq_noop() -> None:
        global _async_client
        if _async_client is None:
            _async_client = redis.asyncio.Redis.from_url(URL)
        await _async_client.incr(DONE)
except ImportError:  # the benchmark's other workers need not have zrq
    pass


# arq: an async function in the worker settings; arq hands each job its Redis pool.
async def arq_noop(context: dict[str, Any]) -> None:
    await context["redis"].incr(DONE)


class ArqSettings:
    """arq's worker settings (`arq bench_tasks.ArqSettings`)."""

    functions: ClassVar[list[Any]] = [arq_noop]
    max_jobs = int(os.environ.get("BENCH_CONCURRENCY", "50"))
    try:
        from arq.connections import RedisSettings

        redis_settings = RedisSettings.from_dsn(URL)
    except ImportError:
        pass


# RQ: any importable function.
def rq_noop() -> None:
    _sync().incr(DONE)


# Celery: a task of an app whose broker is the same Redis.
try:
    from celery import Celery

    celery_app = Celery("bench_tasks", broker=URL)
    celery_app.conf.update(task_ignore_result=True, worker_hijack_root_logger=False)

    @celery_app.task(name="noop")
    def celery_noop() -> None:
        _sync().incr(DONE)
except ImportError:
    pass

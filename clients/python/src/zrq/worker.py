"""The worker: runs the tasks of one or several queues.

    zrq-worker myapp.tasks --queue default --queue low --concurrency 100
    python -m zrq.worker myapp.tasks --queue default

One fetcher per queue takes what waits in batches (`ZRQ.FETCH … COUNT n`), but only as many jobs
as the concurrency limit has room for, from the queues listed before its own first: earlier queues
come first. When nothing waits it gives its slots back and waits for its queue (`ZRQ.FETCH …
COUNT 1 BLOCK ms` inside Redis; on the Functions library, `BLPOP` on the queue's wake-up list), so
the fetchers of idle queues never keep slots from the queues that have work. A job that blocking
fetch returns takes a free slot, its lease kept alive meanwhile; if every slot stays busy for the
block time it is given back (`ZRQ.RELEASE`) for another worker, without using an attempt.

Each job runs as an asyncio task (a sync function in a thread pool), with heartbeats
(`ZRQ.TOUCH`) every third of its lease (`timeout`) and at least every second, for as long as it
runs (`--time-limit` bounds an attempt). The outcome goes back as `ZRQ.ACK …
RESULT <json>`, or `ZRQ.FAIL <traceback>` so the server retries it with its backoff or buries it.
A cancellation (`ZRQ.CANCEL`, learnt from TOUCH) interrupts an async task with
`asyncio.CancelledError`. When the server hands out leases, every report carries `LEASE
<token>`, so a worker that lost a job cannot finish it.

SIGTERM or SIGINT: fetching stops, running jobs get the grace period to finish, and what still
runs then is given back (`ZRQ.RELEASE`) for another worker, without using an attempt.
`--processes N` runs N such workers side by side, for CPU-bound tasks.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import concurrent.futures
import contextvars
import dataclasses
import importlib
import inspect
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import redis.exceptions

from . import _protocol
from ._connection import Backend, Connection, as_map, connect, connection
from .context import JobContext, _current
from .errors import CommandError
from .task import Task, decode_arguments, import_path, registry

log = logging.getLogger("zrq.worker")

ERROR_LIMIT = 65536
"""The protocol's limit on a FAIL error text, in bytes."""


def consumer_name() -> str:
    """A consumer name unique to this process: `<host>-<pid>-<random>`."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


@dataclasses.dataclass
class WorkerStats:
    """What a worker did, returned when it stops."""

    completed: int = 0
    failed: int = 0
    released: int = 0


class Slots:
    """The concurrency limit: a fetcher takes several slots at once, a finished job gives one
    back. First come, first served, so no fetcher starves the others. Used from the worker's
    loop only, so plain counters are enough."""

    def __init__(self, size: int) -> None:
        self.free = size
        self.closed = False
        self._waiting: collections.deque[tuple[asyncio.Future[int], int]] = collections.deque()

    async def take(self, most: int) -> int:
        """Waits for a free slot, then takes up to `most`; 0 once closed."""
        if self.closed:
            return 0
        if self.free and not self._waiting:
            return self._grant(most)
        turn: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.append((turn, most))
        return await turn

    def _grant(self, most: int) -> int:
        taken = min(self.free, most)
        self.free -= taken
        return taken

    def give(self, count: int) -> None:
        """Gives `count` slots back, to the longest waiting fetcher first."""
        self.free += count
        while self.free and self._waiting:
            turn, most = self._waiting.popleft()
            if not turn.done():
                turn.set_result(self._grant(most))

    def close(self) -> None:
        """Makes every waiting and later `take` return 0 (the worker stops fetching)."""
        self.closed = True
        while self._waiting:
            turn, _ = self._waiting.popleft()
            if not turn.done():
                turn.set_result(0)


def _handler(name: str) -> Callable[..., Any] | None:
    """The function for task `name`: a registered task, else (RQ's "any callable") the callable
    at the import path `module:name`."""
    registered = registry.get(name)
    if registered is not None:
        return registered.function
    if ":" not in name:
        return None
    try:
        found = import_path(name)
    except (ImportError, AttributeError, TypeError, ValueError):
        return None
    return found.function if isinstance(found, Task) else found


def _truncate(text: str) -> str:
    encoded = text.encode()
    if len(encoded) <= ERROR_LIMIT:
        return text
    return encoded[: ERROR_LIMIT - 3].decode(errors="ignore") + "..."


class _Stopped(Exception):
    """The worker is shutting down and gives the job back."""


class Worker:
    """Runs the registered tasks (and any importable callable) for the jobs of `queues`, in
    priority order (earlier first)."""

    def __init__(
        self,
        queues: Sequence[str] = ("default",),
        *,
        concurrency: int = 32,
        batch: int = 16,
        block: float = 1.0,
        grace: float = 30.0,
        time_limit: float | None = None,
        threads: int | None = None,
        reclaim_interval: float | None = None,
        consumer: str | None = None,
    ) -> None:
        if not queues:
            raise ValueError("a worker needs at least one queue")
        self.queues = list(queues)
        self.concurrency = max(1, concurrency)
        self.batch = max(1, batch)
        self.block = max(0.01, block)
        self.grace = grace
        self.time_limit = time_limit
        """Seconds one attempt may run, None for no limit (heartbeats keep the lease meanwhile)."""
        self.threads = threads or min(self.concurrency, 32)
        self.reclaim_interval = reclaim_interval
        self.consumer = consumer or consumer_name()
        self.stats = WorkerStats()
        self._stopping = asyncio.Event()
        self._running: dict[asyncio.Task[None], tuple[str, dict[str, Any]]] = {}

    def stop(self) -> None:
        """Starts a graceful shutdown (what SIGTERM does)."""
        self._stopping.set()

    async def run(self) -> WorkerStats:
        """Runs until `stop()` (or SIGTERM/SIGINT, when run by `main`), then shuts down."""
        conn = await connection()
        # On the Functions library RECLAIM is also the queue's timer (docs/LUA.md): about once a
        # second keeps delayed jobs and schedules on time.
        reclaim_every = self.reclaim_interval or (5.0 if conn.backend is Backend.MODULE else 1.0)
        slots = Slots(self.concurrency)
        loop = asyncio.get_running_loop()
        with concurrent.futures.ThreadPoolExecutor(self.threads, "zrq-task") as pool:
            fetchers = [
                loop.create_task(self._fetcher(conn, index, slots, pool, reclaim_every))
                for index in range(len(self.queues))
            ]
            log.info(
                "worker %s started: queues %s, concurrency %d, backend %s",
                self.consumer,
                self.queues,
                self.concurrency,
                conn.backend.value,
            )
            await self._stopping.wait()
            slots.close()
            log.info("shutting down: no new fetches, %d jobs running", len(self._running))
            await asyncio.gather(*fetchers)
            if self._running:
                _, late = await asyncio.wait(list(self._running), timeout=self.grace)
                for running in late:
                    running.cancel(_Stopped.__name__)
                await asyncio.gather(*late, return_exceptions=True)
            pool.shutdown(wait=False, cancel_futures=True)
        log.info("worker stopped: %s", self.stats)
        return self.stats

    async def _fetcher(
        self,
        conn: Connection,
        index: int,
        slots: Slots,
        pool: concurrent.futures.Executor,
        reclaim_every: float,
    ) -> None:
        queue = self.queues[index]
        next_reclaim = time.monotonic()
        pause = 0.05
        while not self._stopping.is_set():
            room = await slots.take(self.batch)
            if not room:
                return
            try:
                if time.monotonic() >= next_reclaim:
                    next_reclaim = time.monotonic() + reclaim_every
                    jobs = await self._reclaim(conn, queue, room)
                    if not jobs:
                        jobs = await self._take_waiting(conn, index, room)
                else:
                    jobs = await self._take_waiting(conn, index, room)
                if not jobs:
                    # Nothing waits: block holding no slot, leaving them to queues with work.
                    slots.give(room)
                    room = 0
                    jobs = await self._wait_own(conn, queue)
                pause = 0.05
            except (redis.exceptions.RedisError, OSError, CommandError) as error:
                slots.give(room)
                log.warning("fetch from %s failed (%s); retrying in %.2f s", queue, error, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 2.0)
                continue
            loop = asyncio.get_running_loop()
            if room:
                slots.give(room - len(jobs))
                for job_queue, record in jobs:
                    running = loop.create_task(self._run_job(conn, job_queue, record, pool))
                    self._running[running] = (job_queue, record)
                    running.add_done_callback(lambda done: self._finished(done, slots))
            else:
                for job_queue, record in jobs:
                    running = loop.create_task(
                        self._run_when_free(conn, job_queue, record, pool, slots)
                    )
                    self._running[running] = (job_queue, record)
                    running.add_done_callback(self._running.pop)

    def _finished(self, done: asyncio.Task[None], slots: Slots) -> None:
        del self._running[done]
        slots.give(1)

    async def _reclaim(self, conn: Connection, queue: str, room: int) -> list[tuple[str, Any]]:
        reply = await conn.call("reclaim", queue, self.consumer, "COUNT", room)
        for record in reply:
            log.info("reclaimed an expired lease: %s", as_map(record).get("id"))
        return [(queue, as_map(record)) for record in reply]

    async def _take_waiting(self, conn: Connection, index: int, room: int) -> list[tuple[str, Any]]:
        """Up to `room` jobs waiting in the queues before this fetcher's own, then in its own,
        without blocking."""
        got: list[tuple[str, Any]] = []
        for queue in self.queues[: index + 1]:
            if len(got) >= room:
                break
            reply = await conn.call("fetch", queue, self.consumer, "COUNT", room - len(got))
            got += [(queue, as_map(record)) for record in reply]
        return got

    async def _wait_own(self, conn: Connection, own: str) -> list[tuple[str, Any]]:
        """Waits up to `block` seconds for this fetcher's queue: a blocking `FETCH … COUNT 1`
        inside Redis, or on the Functions library (which cannot block) a `BLPOP` on the queue's
        wake-up list, after which the fetcher takes what waits."""
        if conn.backend is Backend.MODULE:
            block_ms = round(self.block * 1000)
            reply = await conn.call(
                "fetch", own, self.consumer, "COUNT", 1, "BLOCK", block_ms, blocks=True
            )
            return [(own, as_map(record)) for record in reply]
        # A job enqueued since the fetch that found nothing left a token: no wake-up is lost.
        await conn.blocking.execute_command("BLPOP", _protocol.wake_key(own), self.block)
        return []

    async def _run_when_free(
        self,
        conn: Connection,
        queue: str,
        record: dict[str, Any],
        pool: concurrent.futures.Executor,
        slots: Slots,
    ) -> None:
        """Runs a job a blocking fetch returned once a slot is free, its lease kept alive
        meanwhile; gives it back (`ZRQ.RELEASE`, no attempt used) when every slot stays busy for
        the block time or the worker stops first."""
        held = _Held(conn, queue, record)
        lease_seconds = int(record.get("timeout", 30000)) / 1000
        keep_alive = asyncio.get_running_loop().create_task(
            self._touches(held, min(lease_seconds / 3, 1.0))
        )
        try:
            taken = await asyncio.wait_for(slots.take(1), self.block)
        except asyncio.TimeoutError:
            taken = 0
        except asyncio.CancelledError:
            await held.report("release")
            raise
        finally:
            keep_alive.cancel()
        if not taken:
            await held.report("release")
            log.info("job %s given back to %s: no free slot", held.id, queue)
            return
        try:
            await self._run_job(conn, queue, record, pool)
        finally:
            slots.give(1)

    @staticmethod
    async def _touches(held: _Held, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            await held.report("touch")

    async def _run_job(
        self,
        conn: Connection,
        queue: str,
        record: dict[str, Any],
        pool: concurrent.futures.Executor,
    ) -> None:
        held = _Held(conn, queue, record)
        work: asyncio.Task[Any] | None = None
        lost = False

        async def touch(percent: int | None) -> None:
            nonlocal lost
            progress: list[str | int] = [] if percent is None else ["PROGRESS", percent]
            reply = await conn.call("touch", queue, held.id, *progress, *held.lease)
            if reply == _protocol.DONE:
                return
            lost = reply != _protocol.CANCELLED
            log.info("job %s: %s", held.id, "lease lost" if lost else "cancellation requested")
            context.mark_cancelled()
            if work is not None:
                work.cancel("cancelled")

        context = JobContext(record, asyncio.get_running_loop(), touch)
        function = _handler(str(record["task"]))
        lease_seconds = int(record.get("timeout", 30000)) / 1000
        # Renewed well within the lease, and at least every second, so that a cancellation
        # reaches the task quickly.
        heartbeat = _Every(min(lease_seconds / 3, 1.0), context.heartbeat)
        try:
            if function is None:
                raise LookupError(f"unknown task '{record['task']}': no @task of that name here")
            work = asyncio.get_running_loop().create_task(
                self._call(function, str(record.get("payload", "null")), pool),
                context=_with_job(context),
            )
            result = await asyncio.wait_for(asyncio.shield(work), self.time_limit)
            encoded = json.dumps(result, separators=(",", ":"))
        except asyncio.CancelledError:
            if work is not None and not work.done():
                work.cancel()
            if lost:
                return
            if context.cancelled:
                await self._fail(held, "cancelled while running")
            else:
                await self._give_back(held)
            return
        except asyncio.TimeoutError:
            if work is not None:
                work.cancel()
            await self._fail(held, f"timed out after {self.time_limit} s (the worker's time limit)")
            return
        except Exception:
            await self._fail(held, traceback.format_exc())
            return
        finally:
            heartbeat.stop()
        await self._ack(held, encoded)

    @staticmethod
    async def _call(
        function: Callable[..., Any], payload: str, pool: concurrent.futures.Executor
    ) -> Any:
        args, kwargs = decode_arguments(payload)
        if inspect.iscoroutinefunction(function):
            return await function(*args, **kwargs)
        context = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(pool, lambda: context.run(function, *args, **kwargs))
        if inspect.isawaitable(result):
            return await result
        return result

    async def _ack(self, held: _Held, result: str) -> None:
        reply = await held.report("ack", "RESULT", result)
        if reply == _protocol.DONE:
            self.stats.completed += 1
            log.debug("job %s completed", held.id)
        elif reply == _protocol.CANCELLED:
            log.info("job %s was cancelled while it ran", held.id)
        else:
            log.warning("job %s finished, but its lease was lost: result dropped", held.id)

    async def _fail(self, held: _Held, error: str) -> None:
        self.stats.failed += 1
        state = await held.report("fail", _truncate(error))
        last_line = error.strip().splitlines()[-1] if error.strip() else error
        log.warning(
            "job %s (%s, attempt %s) failed, now %s: %s",
            held.id,
            held.record.get("task"),
            held.record.get("attempt"),
            state,
            last_line,
        )

    async def _give_back(self, held: _Held) -> None:
        """Hands a job this stopping worker still holds back to the queue: `ZRQ.RELEASE` where
        the server has it (no attempt used), else a FAIL retried at once."""
        self.stats.released += 1
        try:
            await held.report("release")
            log.info("job %s given back to %s", held.id, held.queue)
        except CommandError:
            await held.report("fail", "the worker stopped before the job finished", "RETRYIN", 0)
            log.info("job %s given back to %s (FAIL RETRYIN 0)", held.id, held.queue)


class _Every:
    """Calls `action` every `every` seconds on the running loop until `stop()`: one timer,
    re-armed each time, where a task per job would cost its creation, its sleeps and its
    cancellation even when the job ends before the first call (most jobs do)."""

    def __init__(self, every: float, action: Callable[[], None]) -> None:
        self._every = every
        self._action = action
        self._loop = asyncio.get_running_loop()
        self._timer = self._loop.call_later(every, self._fire)

    def _fire(self) -> None:
        self._timer = self._loop.call_later(self._every, self._fire)
        self._action()

    def stop(self) -> None:
        """No more calls."""
        self._timer.cancel()


@dataclasses.dataclass
class _Held:
    """A job this worker holds: its queue, its record, and the lease that proves it is ours."""

    conn: Connection
    queue: str
    record: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.record["id"])

    @property
    def lease(self) -> list[str | int]:
        """`LEASE <token>` when the server hands out fenced leases (the job map has `lease`)."""
        return ["LEASE", self.record["lease"]] if "lease" in self.record else []

    async def report(self, command: str, *args: str | int) -> Any:
        """Sends `command` about this job (with its lease), retrying through a lost connection
        for up to a minute: a finished job's outcome must reach the server."""
        pause = 0.1
        deadline = time.monotonic() + 60
        while True:
            try:
                return await self.conn.call(command, self.queue, self.id, *args, *self.lease)
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                if time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(pause)
                pause = min(pause * 2, 2.0)


def _with_job(context: JobContext) -> contextvars.Context:
    """A copy of the current context in which `current_job()` is `context`."""
    copy = contextvars.copy_context()
    copy.run(_current.set, context)
    return copy


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="zrq-worker", description="Runs the zrq tasks of one or several queues."
    )
    parser.add_argument(
        "modules",
        nargs="*",
        metavar="MODULE",
        help="modules to import first, whose @task functions the worker runs (e.g. myapp.tasks)",
    )
    parser.add_argument(
        "-q",
        "--queue",
        action="append",
        dest="queues",
        metavar="QUEUE",
        help="a queue to serve (repeat it; earlier queues first); default: default",
    )
    parser.add_argument(
        "-c",
        "--concurrency",
        type=int,
        default=32,
        help="jobs running at once per process (default 32)",
    )
    parser.add_argument(
        "-p",
        "--processes",
        type=int,
        default=1,
        help="worker processes, for CPU-bound tasks (default 1)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads for sync tasks (default: concurrency, at most 32)",
    )
    parser.add_argument("--batch", type=int, default=16, help="jobs fetched per round trip")
    parser.add_argument(
        "--grace",
        type=float,
        default=30.0,
        help="seconds running jobs get to finish on SIGTERM before they are given back",
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=None,
        help="seconds one attempt may run before it fails (default: no limit)",
    )
    parser.add_argument(
        "--url",
        default=None,
        help="Redis URL (default: ZRQ_URL, else REDIS_URL, else redis://localhost:6379)",
    )
    parser.add_argument("--backend", choices=("auto", "module", "lua"), default="auto")
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    return parser.parse_args(argv)


def _supervise(argv: Sequence[str], processes: int) -> int:
    """Runs `processes` single-process workers with the same arguments; passes SIGTERM and
    SIGINT on to them and returns the worst exit status."""
    command = [sys.executable, "-m", "zrq.worker", *argv, "--processes", "1"]
    children = [subprocess.Popen(command) for _ in range(processes)]

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    return max(child.wait() for child in children)


async def _serve(arguments: argparse.Namespace) -> WorkerStats:
    worker = Worker(
        arguments.queues or ["default"],
        concurrency=arguments.concurrency,
        batch=arguments.batch,
        grace=arguments.grace,
        time_limit=arguments.time_limit,
        threads=arguments.threads,
    )
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, worker.stop)
    return await worker.run()


def main(argv: Sequence[str] | None = None) -> int:
    """The `zrq-worker` command (also `python -m zrq.worker`)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    arguments = _arguments(argv)
    logging.basicConfig(
        level=arguments.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s",
    )
    if arguments.processes > 1:
        return _supervise(argv, arguments.processes)
    # Like `python -m`: modules of the directory the worker is started from can be imported.
    sys.path.insert(0, os.getcwd())
    for module in arguments.modules:
        importlib.import_module(module)
    if arguments.url is not None or arguments.backend != "auto":
        connect(arguments.url, backend=arguments.backend)
    asyncio.run(_serve(arguments))
    return 0


if __name__ == "__main__":
    sys.exit(main())

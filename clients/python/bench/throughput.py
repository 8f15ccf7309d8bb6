"""Python worker drain and Python enqueue: zrq (module and Functions library) against arq, RQ and
Celery, each on a fresh redis-server of its own, in one run. Not part of CI.

    pip install ./clients/python arq rq celery packaging
    python clients/python/bench/throughput.py --jobs 5000 --concurrency 50 \
        --module target/release/libzrq.so

Enqueue: N no-op jobs, one after the other, with each framework's own producer call. Drain: the N
jobs are waiting, a worker starts, and the rate is counted from the first job done to the last
(worker start-up left out). Every no-op task does one INCR, how completions are counted. Over
the same span, the worker's CPU time per job (its processes' user and system time, from /proc):
what the framework itself costs per job, which the machine's load hardly moves.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis

HERE = Path(__file__).resolve().parent
DONE = "bench:done"


@dataclass
class Figure:
    framework: str
    worker: str
    enqueue_per_s: float
    drain_per_s: float
    worker_cpu_us_per_job: float


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    def __init__(self, module: Path | None) -> None:
        self.directory = tempfile.mkdtemp(prefix="zrq-bench-")
        self.port = free_port()
        command = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            self.directory,
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        if module is not None:
            command += ["--loadmodule", str(module.resolve())]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        self.url = f"redis://127.0.0.1:{self.port}"
        self.client = redis.Redis(port=self.port)
        for _ in range(200):
            try:
                self.client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def timed(enqueue_all: Callable[[], None]) -> float:
    started = time.perf_counter()
    enqueue_all()
    return time.perf_counter() - started


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of process `pid` and of its live descendants so far, from
    /proc (Linux): what a worker spends, whatever the load of the machine (unlike its rate)."""
    ticks = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    used: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        # The fields after the command name (in parentheses, which may hold spaces).
        fields = stat[stat.rindex(")") + 2 :].split()
        child = int(entry.name)
        children.setdefault(int(fields[1]), []).append(child)
        used[child] = (int(fields[11]) + int(fields[12])) / ticks
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += used.get(current, 0.0)
        todo += children.get(current, [])
    return total


def drain(server: Server, worker: list[str], jobs: int, concurrency: int) -> tuple[float, float]:
    """Starts `worker`, waits until `jobs` jobs are done; jobs per second from first to last,
    and the worker's CPU time per job over the same span, in microseconds."""
    environment = {
        **os.environ,
        "BENCH_URL": server.url,
        "ZRQ_URL": server.url,
        "BENCH_CONCURRENCY": str(concurrency),
        "PYTHONPATH": str(HERE),
    }
    process = subprocess.Popen(
        worker, cwd=HERE, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        first = None
        deadline = time.monotonic() + 600
        while True:
            done = int(server.client.get(DONE) or 0)
            now = time.perf_counter()
            if first is None and done > 0:
                first, first_done, first_cpu = now, done, cpu_seconds(process.pid)
            if done >= jobs:
                assert first is not None
                finished = done - first_done
                cpu = cpu_seconds(process.pid) - first_cpu
                return finished / max(now - first, 1e-9), cpu * 1e6 / max(finished, 1)
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"{worker[:3]} stopped at {done}/{jobs} jobs")
            time.sleep(0.005)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


@dataclass
class Framework:
    """How to produce N no-op jobs with one framework and how to start its worker."""

    name: str
    worker: str
    module: Path | None
    enqueue: Callable[[Server, int], None]
    worker_command: Callable[[Server, int], list[str]]
    concurrency: int


def measure(framework: Framework, jobs: int) -> Figure:
    """Enqueue and drain rates of `framework`, on a fresh server of its own."""
    server = Server(framework.module)
    try:
        os.environ["BENCH_URL"] = server.url  # read by bench_tasks when imported
        sys.modules.pop("bench_tasks", None)
        seconds = timed(lambda: framework.enqueue(server, jobs))
        command = framework.worker_command(server, framework.concurrency)
        rate, cpu_per_job = drain(server, command, jobs, framework.concurrency)
        return Figure(framework.name, framework.worker, jobs / seconds, rate, cpu_per_job)
    finally:
        server.stop()


def enqueue_zrq(server: Server, jobs: int) -> None:
    import zrq

    zrq.connect(server.url)

    async def enqueue_all() -> None:
        import bench_tasks

        for _ in range(jobs):
            await bench_tasks.zrq_noop.enqueue()

    asyncio.run(enqueue_all())


def enqueue_arq(server: Server, jobs: int) -> None:
    from arq import create_pool
    from arq.connections import RedisSettings

    async def enqueue_all() -> None:
        pool = await create_pool(RedisSettings.from_dsn(server.url))
        for _ in range(jobs):
            await pool.enqueue_job("arq_noop")
        await pool.aclose()

    asyncio.run(enqueue_all())


def enqueue_rq(server: Server, jobs: int) -> None:
    import bench_tasks
    from rq import Queue

    queue = Queue("bench", connection=server.client)
    for _ in range(jobs):
        queue.enqueue(bench_tasks.rq_noop)


def enqueue_celery(server: Server, jobs: int) -> None:
    import bench_tasks

    for _ in range(jobs):
        bench_tasks.celery_noop.delay()


def frameworks(module: Path | None, concurrency: int, processes: int) -> list[Framework]:
    python = sys.executable
    zrq_worker = [python, "-m", "zrq.worker", "bench_tasks", "--log-level", "WARNING"]
    zrq_backends = ([("module", module)] if module is not None else []) + [
        ("Functions library", None)
    ]
    return [
        *(
            Framework(
                f"zrq ({backend})",
                f"zrq-worker, asyncio, --concurrency {concurrency}",
                path,
                enqueue_zrq,
                lambda _server, n: [*zrq_worker, "--concurrency", str(n)],
                concurrency,
            )
            for backend, path in zrq_backends
        ),
        Framework(
            "arq",
            f"arq worker, asyncio, max_jobs {concurrency}",
            None,
            enqueue_arq,
            lambda _server, _n: [python, "-m", "arq", "bench_tasks.ArqSettings"],
            concurrency,
        ),
        Framework(
            "RQ",
            f"rq worker-pool, {processes} SimpleWorkers",
            None,
            enqueue_rq,
            lambda server, n: [
                *(python, "-m", "rq.cli", "worker-pool", "--url", server.url),
                *("--num-workers", str(n), "--worker-class", "rq.worker.SimpleWorker"),
                *("--quiet", "bench"),
            ],
            processes,
        ),
        Framework(
            "Celery",
            f"celery worker, prefork, {processes} processes",
            None,
            enqueue_celery,
            lambda _server, n: [
                *(python, "-m", "celery", "-A", "bench_tasks", "worker", "--pool", "prefork"),
                *("--concurrency", str(n), "--loglevel", "WARNING"),
            ],
            processes,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument(
        "--processes",
        type=int,
        default=os.cpu_count() or 2,
        help="worker processes for RQ and Celery (sync frameworks)",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--module", type=Path, default=None, help="libzrq.so (release build)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument(
        "--only",
        default=None,
        help="measure only the frameworks whose name starts with this (e.g. zrq)",
    )
    arguments = parser.parse_args()
    sys.path.insert(0, str(HERE))
    chosen = [
        framework
        for framework in frameworks(arguments.module, arguments.concurrency, arguments.processes)
        if arguments.only is None or framework.name.startswith(arguments.only)
    ]
    if not chosen:
        parser.error(f"no framework's name starts with {arguments.only!r}")
    # Rounds, each measuring every framework once: load from other work on the machine shifts
    # over minutes, so each framework's figures are spread over the whole run.
    rounds = [
        [measure(framework, arguments.jobs) for framework in chosen]
        for _ in range(arguments.rounds)
    ]
    print(
        f"{arguments.jobs} no-op jobs, {arguments.rounds} rounds, median (min-max), "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    print("| framework | worker | enqueue (jobs/s) | drain (jobs/s) | worker CPU per job (µs) |")
    print("|---|---|---:|---:|---:|")
    for index, framework in enumerate(chosen):
        measured = [figures[index] for figures in rounds]
        enqueue = spread([figure.enqueue_per_s for figure in measured])
        drained = spread([figure.drain_per_s for figure in measured])
        cpu = spread([figure.worker_cpu_us_per_job for figure in measured])
        print(f"| {framework.name} | {framework.worker} | {enqueue} | {drained} | {cpu} |")
    if arguments.json is not None:
        rows = [[figure.__dict__ for figure in figures] for figures in rounds]
        arguments.json.write_text(json.dumps(rows, indent=2))


def spread(values: list[float]) -> str:
    """`median (min-max)` of a figure's measurements."""
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"


if __name__ == "__main__":
    main()

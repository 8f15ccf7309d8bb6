"""Real redis-server processes for the suite: one with the zrq module, one without (the package
loads the Functions library into it). Nothing is mocked; a missing server or module fails the run.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

import zrq
from zrq.worker import Worker

TESTS = Path(__file__).resolve().parent
REPOSITORY = TESTS.parents[2]
TARGET = Path(os.environ.get("ZRQ_TARGET_DIR", REPOSITORY / "target")) / "debug"


def built(path: Path, what: str) -> Path:
    """A build product the tests need; fails (never skips) when it is missing."""
    if not path.exists():
        pytest.fail(f"{path} is missing: build {what} first (./scripts/test does)")
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    """A redis-server of our own, in a temporary directory, on a free loopback port."""

    backend: str
    port: int
    process: subprocess.Popen[bytes]
    directory: str

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def cli(self, *args: str) -> str:
        """Runs redis-cli against this server; its output."""
        done = subprocess.run(
            ["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    def command(self, name: str, queue: str, *args: str) -> list[str]:
        """A zrq command as this server's backend spells it (for redis-cli)."""
        if self.backend == "module":
            return [f"ZRQ.{name.upper()}", queue, *args]
        return ["FCALL", f"zrq_{name}", "1", queue, *args]

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def start_server(backend: str, *extra: str) -> Server:
    """Starts redis-server (with the module for backend "module") and waits until it answers."""
    directory = tempfile.mkdtemp(prefix=f"zrq-py-{backend}-")
    port = free_port()
    command = [
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        directory,
        "--save",
        "",
        "--appendonly",
        "no",
        "--maxmemory-policy",
        "noeviction",
        *extra,
    ]
    if backend == "module":
        module = built(TARGET / "libzrq.so", "the module (cargo build -p zrq-module)")
        command += ["--loadmodule", str(module)]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=directory
    )
    server = Server(backend, port, process, directory)
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis(port=port).ping()
            return server
        except redis.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                server.stop()
                pytest.fail(f"redis-server ({backend}) did not start: {' '.join(command)}")
            time.sleep(0.05)


@pytest.fixture(scope="session", params=["module", "lua"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """A shared server per backend; tests keep apart by using queues of their own."""
    started = start_server(request.param)
    yield started
    started.stop()


@pytest.fixture(params=["module", "lua"])
def fresh_server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """A server of the test's own, per backend, for tests that need an empty one."""
    started = start_server(request.param)
    yield started
    started.stop()


@pytest.fixture
def fresh_plain_server() -> Iterator[Server]:
    """A server of the test's own without the module."""
    started = start_server("lua")
    yield started
    started.stop()


@pytest.fixture
def connected(server: Server) -> Server:
    """The server, with the package connected to it by the backend under test."""
    zrq.connect(server.url, backend=server.backend)
    return server


@pytest.fixture
def queue_name() -> str:
    """A queue no other test uses."""
    return f"q-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def worker(connected: Server, queue_name: str) -> AsyncIterator[Worker]:
    """An in-process worker on the test's queue, with the test tasks registered."""
    import sample_tasks  # noqa: F401  (registers the tasks)

    running = Worker([queue_name], concurrency=8, grace=5, block=0.2)
    task = asyncio.get_running_loop().create_task(running.run())
    yield running
    running.stop()
    await asyncio.wait_for(task, 20)


def worker_process(server: Server, *args: str, url: str | None = None) -> subprocess.Popen[str]:
    """`python -m zrq.worker sample_tasks …` against `server` (as the user in `url`, if given),
    run from the tests directory."""
    environment = {**os.environ, "ZRQ_URL": url or server.url, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "zrq.worker", "sample_tasks", "--backend", server.backend, *args],
        cwd=TESTS,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

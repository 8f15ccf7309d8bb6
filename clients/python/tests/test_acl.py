"""The roles of docs/ACL.md are enough for the package: a producer and a worker user, created
from the page's own `ACL SETUSER` lines, run a job on queue `emails` (both backends)."""

from __future__ import annotations

import signal

import pytest
import sample_tasks
from conftest import REPOSITORY, Server, worker_process

import zrq


def acl_setuser(role: str, backend: str) -> list[str]:
    """The arguments of the `ACL SETUSER` line under `# <backend> <role>` in docs/ACL.md."""
    lines = (REPOSITORY / "docs" / "ACL.md").read_text().splitlines()
    marker = lines.index(f"# {backend} {role}")
    return lines[marker + 1].split()[2:]


async def test_producer_and_worker_roles(fresh_server: Server):
    for role in ("producer", "worker"):
        fresh_server.cli("ACL", "SETUSER", *acl_setuser(role, fresh_server.backend))
    zrq.connect(fresh_server.url)  # the default user: loads the library where needed
    await zrq.connection()
    producer_url = f"redis://producer:producer-secret@127.0.0.1:{fresh_server.port}"
    worker_url = f"redis://worker:worker-secret@127.0.0.1:{fresh_server.port}"
    worker = worker_process(fresh_server, "--queue", "emails", url=worker_url)
    try:
        zrq.connect(producer_url)
        job = await sample_tasks.add.options(queue="emails").enqueue(2, 3)
        assert await job.result(timeout=30) == 5
        assert job.state is zrq.State.COMPLETED
        with pytest.raises(zrq.NoPermissionError):
            await sample_tasks.add.options(queue="other").enqueue(1, 1)
    finally:
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=20)
    assert worker.returncode == 0, output

"""The lines of zrq's original documentation, typed into a real `python -m asyncio` REPL against
a fresh server whose default queue holds 1337 jobs (both backends)."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import TESTS, Server

import zrq
from zrq import Queue

SESSION = """\
>>> from zrq import task, Queue, Job
>>> task(asyncio.sleep)
Task('sleep')
>>> Queue("default").size
1337
>>> tsk = task(asyncio.sleep)
>>> job = await Queue("default").enqueue(tsk, 1)
>>> job.state
State.PENDING
>>> Job.from_id(job.id).state          # queue defaults to "default"
State.PENDING
"""


async def test_the_documented_session_runs_as_written(fresh_server: Server):
    zrq.connect(fresh_server.url)
    default = Queue("default")
    for number in range(1337):
        await default.enqueue("work", number)
    typed = [line[4:] for line in SESSION.splitlines() if line.startswith(">>> ")]
    expected = [line for line in SESSION.splitlines() if not line.startswith(">>> ")]
    repl = subprocess.run(
        [sys.executable, "-m", "asyncio"],
        input="\n".join(typed) + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        cwd=TESTS,
        env={**os.environ, "ZRQ_URL": fresh_server.url},
    )
    # The REPL writes its prompts (">>> ") and the values of expressions to stdout.
    printed = [line for line in repl.stdout.replace(">>> ", "\n").splitlines() if line.strip()]
    assert printed == expected, repl.stderr
    assert "Traceback" not in repl.stderr, repl.stderr
    assert default.size == 1338

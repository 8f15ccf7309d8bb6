"""The Functions library shipped in the package is the one `zrq lua print` prints."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import TARGET, Server, built

import zrq
from zrq import _library


def test_the_packaged_library_is_zrq_lua_print():
    binary = built(Path(os.environ.get("ZRQ_BIN", TARGET / "zrq")), "the zrq tool")
    printed = subprocess.run(
        [str(binary), "lua", "print"], capture_output=True, text=True, check=True
    ).stdout
    assert printed == _library.TEXT, (
        "clients/python/src/zrq/zrq.lua differs from `zrq lua print`: the Lua library changed; "
        "run clients/python/sync-library and commit the result"
    )
    assert f"local VERSION = '{_library.VERSION}'" in printed


async def test_a_server_without_the_library_gets_it_loaded(fresh_plain_server: Server):
    zrq.connect(fresh_plain_server.url)
    assert (await zrq.connection()).backend is zrq.Backend.LUA
    assert fresh_plain_server.cli("FCALL", "zrq_version", "0") == _library.VERSION
    fresh_plain_server.cli("FUNCTION", "FLUSH")
    job = await zrq.Queue("q").enqueue("t", 1)  # loads it again on "function not found"
    assert await job.get_state() is zrq.State.PENDING
    assert fresh_plain_server.cli("FCALL", "zrq_version", "0") == _library.VERSION

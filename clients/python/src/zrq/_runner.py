"""Synchronous calls: coroutines run on a background event loop, the caller waits for them.

This is what lets `Queue("default").size`, `job.state` and `zrq.sync` work both in code with no
event loop and from inside a running one (an asyncio REPL, a coroutine): the work happens on a
loop of its own in a daemon thread, with a connection of its own, and only the calling thread
waits. Inside async code prefer the awaitable methods, which do not hold up the caller's loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def _background_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="zrq-sync", daemon=True).start()
            _loop = loop
        return _loop


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Runs `coroutine` on the background loop and returns its result (or raises its error)."""
    loop = _background_loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        coroutine.close()
        raise RuntimeError("a synchronous zrq call cannot run on zrq's own background loop")
    return asyncio.run_coroutine_threadsafe(coroutine, loop).result()

"""What this package shares with zrq-core: reply codes and key names (docs/PROTOCOL.md).

zrq-core defines them once (core/src/reply.rs `code`, core/src/keys.rs); the Functions library
this package ships carries them as generated constants (`REPLY`, `EVENTS`, `LUA_ONLY_KEY_KINDS`),
and tests/test_protocol.py checks that these are the same.
"""

from __future__ import annotations

from typing import Final

DONE: Final = 1
"""ACK completed the job, TOUCH extended its lease, RELEASE put it back, CANCEL cancelled it at
once, REQUEUE, DELETE and UNSCHEDULE did what they were asked."""

NOTHING: Final = 0
"""Nothing done: not in a state the command acts on, unknown, or not under the given lease."""

CANCELLED: Final = -1
"""ACK, TOUCH, RELEASE: the job's cancellation was requested while it ran."""

CANCEL_REQUESTED: Final = 2
"""CANCEL: the job is running; its cancellation is requested."""


EVENTS: Final = "events"
"""Suffix of a queue's Pub/Sub channel, where each state change is announced."""

WAKE: Final = "wake"
"""Suffix of the list a client blocks on (BLPOP) for new work on the Lua backend."""


def events_channel(queue: str) -> str:
    """The Pub/Sub channel of `queue`."""
    return f"zrq:{{{queue}}}:{EVENTS}"


def wake_key(queue: str) -> str:
    """The wake-up list of `queue` (Lua backend)."""
    return f"zrq:{{{queue}}}:{WAKE}"

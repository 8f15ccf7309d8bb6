"""The integers with which zrq commands say what they did (docs/PROTOCOL.md).

zrq-core defines them once (core/src/reply.rs, `zrq_core::reply::code`); the Functions library
this package ships carries them as its generated `REPLY` table, and tests/test_protocol.py checks
that these are the same.
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

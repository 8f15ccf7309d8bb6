"""Exceptions: one per error code of the protocol (docs/PROTOCOL.md, "Errors"), and job outcomes."""

from __future__ import annotations

import redis.exceptions


class ZrqError(Exception):
    """Base of every exception this package raises on purpose."""


class ServerError(ZrqError):
    """The server refused a command; `code` is the protocol's error code (`ERR`, `NOJOB`…)."""

    code = "ERR"


class CommandError(ServerError):
    """`ERR`: a malformed command (bad option, number out of range, invalid name…)."""

    code = "ERR"


class WrongTypeError(ServerError):
    """`WRONGTYPE`: a zrq key holds another Redis type."""

    code = "WRONGTYPE"


class BadJsonError(ServerError):
    """`BADJSON`: a payload or result is not valid JSON."""

    code = "BADJSON"


class NoJobError(ServerError):
    """`NOJOB`: the command needs a job that does not exist."""

    code = "NOJOB"


class CorruptError(ServerError):
    """`CORRUPT`: a stored record was written by something other than zrq."""

    code = "CORRUPT"


class LimitError(ServerError):
    """`LIMIT`: the command goes beyond a limit set by a module config (`zrq.batch-max`…)."""

    code = "LIMIT"


class InternalError(ServerError):
    """`INTERNAL`: the server caught a zrq bug; the command was aborted."""

    code = "INTERNAL"


class NoPermissionError(ServerError):
    """`NOPERM`: the Redis user may not run this command or touch this queue (docs/ACL.md)."""

    code = "NOPERM"


class BackendError(ZrqError):
    """Neither backend can be used: no module, and the Functions library cannot be loaded."""


class JobTimeoutError(ZrqError, TimeoutError):
    """A job did not finish within the time waited for it."""


class JobFailedError(ZrqError):
    """A waited-for job ended `dead` (out of attempts) or `cancelled`; `error` is its last error."""

    def __init__(self, job_id: str, state: str, error: str | None) -> None:
        super().__init__(f"job {job_id} ended {state}: {error or 'no error recorded'}")
        self.job_id = job_id
        self.state = state
        self.error = error


_BY_CODE: dict[str, type[ServerError]] = {
    cls.code: cls
    for cls in (
        WrongTypeError,
        BadJsonError,
        NoJobError,
        CorruptError,
        LimitError,
        InternalError,
    )
}


def from_response_error(error: redis.exceptions.ResponseError) -> ServerError:
    """The exception for a server error reply.

    redis-py strips the leading `ERR ` (and `NOPERM `, raising its own class) from messages and
    keeps every other code, so a message that starts with none of the other codes is an `ERR`.
    """
    message = str(error)
    if isinstance(error, redis.exceptions.NoPermissionError):
        return NoPermissionError(message)
    code, _, _ = message.partition(" ")
    return _BY_CODE.get(code, CommandError)(message)

"""Tasks: callables registered by name, their options, and how their arguments travel as JSON.

Arguments are one JSON document, the job's payload: positional arguments as an array
(`[1, 2]`), keyword arguments as an object (`{"to": "a@b.c"}`), both as an object whose `"*"`
member holds the positional ones (`{"*": [1], "to": "a@b.c"}`; `*` is no Python identifier, so
it cannot clash with a keyword). A payload from another producer that is neither (`42`, `"x"`)
is one positional argument; `null` is no argument at all.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import importlib
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

if TYPE_CHECKING:
    from .job import Job

P = ParamSpec("P")
R = TypeVar("R")

Seconds = float | datetime.timedelta
"""A duration: seconds, or a `timedelta`."""


def milliseconds(duration: Seconds) -> int:
    """`duration` in whole milliseconds, as the protocol wants it."""
    seconds = duration.total_seconds() if isinstance(duration, datetime.timedelta) else duration
    return max(0, round(seconds * 1000))


@dataclasses.dataclass(frozen=True)
class Options:
    """Enqueue options; None leaves the server's default. Durations in seconds or `timedelta`."""

    queue: str | None = None
    retries: int | None = None
    timeout: Seconds | None = None
    priority: int | None = None
    unique: str | bool | None = None
    """A UNIQUE key; True derives one from the task name and the arguments."""
    delay: Seconds | None = None
    at: datetime.datetime | float | None = None
    """When the job is due: an aware `datetime`, or unix seconds."""
    id: str | None = None
    after: Sequence[Job | str] = ()
    """Parents (same queue) that must complete first."""
    with_results: bool = False
    """Give the job its parents' results (see `JobContext.parents`)."""
    on_parent_fail: str | None = None
    """`"cancel"` (the default) or `"run"` when a parent ends dead or cancelled."""
    backoff: Seconds | None = None
    keep: Seconds | None = None

    def merged(self, **changes: Any) -> Options:
        """These options with `changes` applied."""
        return dataclasses.replace(self, **changes)

    def job_arguments(self) -> list[str | int]:
        """The options every job of a batch or schedule shares, as command arguments."""
        arguments: list[str | int] = []
        if self.retries is not None:
            arguments += ["RETRIES", self.retries]
        if self.timeout is not None:
            arguments += ["TIMEOUT", milliseconds(self.timeout)]
        if self.backoff is not None:
            arguments += ["BACKOFF", milliseconds(self.backoff)]
        if self.priority is not None:
            arguments += ["PRIORITY", self.priority]
        if self.keep is not None:
            arguments += ["KEEP", milliseconds(self.keep)]
        return arguments

    def enqueue_arguments(self, task: str, payload: str) -> list[str | int]:
        """The ENQUEUE options (after `<queue> <task> <payload>`)."""
        arguments = self.job_arguments()
        if self.id is not None:
            arguments += ["ID", self.id]
        if self.delay is not None:
            arguments += ["DELAY", milliseconds(self.delay)]
        if self.at is not None:
            at = self.at.timestamp() if isinstance(self.at, datetime.datetime) else self.at
            arguments += ["AT", round(at * 1000)]
        unique = self.unique_key(task, payload)
        if unique is not None:
            arguments += ["UNIQUE", unique]
        if self.after:
            arguments += [
                "AFTER",
                *(parent if isinstance(parent, str) else parent.id for parent in self.after),
            ]
        if self.with_results:
            arguments.append("WITHRESULTS")
        if self.on_parent_fail is not None:
            arguments += ["ONPARENTFAIL", self.on_parent_fail]
        return arguments

    def unique_key(self, task: str, payload: str) -> str | None:
        """The UNIQUE key: the one given, or for `unique=True` a digest of task and arguments."""
        if self.unique is True:
            return "args:" + hashlib.sha256(f"{task}\0{payload}".encode()).hexdigest()
        return self.unique or None


def encode_arguments(args: Sequence[Any], kwargs: dict[str, Any]) -> str:
    """The payload carrying `args` and `kwargs` (see the module's documentation)."""
    if "*" in kwargs:
        raise ValueError("'*' cannot be a keyword argument: it carries the positional ones")
    if not kwargs:
        document: Any = list(args)
    elif not args:
        document = kwargs
    else:
        document = {"*": list(args), **kwargs}
    return json.dumps(document, separators=(",", ":"))


def decode_arguments(payload: str) -> tuple[list[Any], dict[str, Any]]:
    """The positional and keyword arguments a payload carries."""
    document = json.loads(payload)
    if document is None:
        return [], {}
    if isinstance(document, list):
        return document, {}
    if isinstance(document, dict):
        positional = document.pop("*", [])
        return (positional if isinstance(positional, list) else [positional]), document
    return [document], {}


@dataclasses.dataclass(frozen=True)
class Call:
    """A task with its arguments, not enqueued yet: a member of a batch or chain, a callback."""

    task: str
    payload: str
    options: Options = Options()


def path_of(function: Callable[..., Any]) -> str:
    """The import path of `function`, `module:qualified.name`, by which workers find it."""
    module = getattr(function, "__module__", None)
    qualname = getattr(function, "__qualname__", None)
    if not module or not qualname:
        raise TypeError(f"{function!r} has no import path: register it with @task(name=...)")
    return f"{module}:{qualname}"


def import_path(path: str) -> Callable[..., Any]:
    """The callable at `module:qualified.name`."""
    module_name, _, qualname = path.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise TypeError(f"{path} is not callable")
    return target  # type: ignore[no-any-return]


class Task(Generic[P, R]):
    """A callable that can also be enqueued; made by `@task` or `task(callable)`."""

    def __init__(self, function: Callable[P, R], name: str, options: Options) -> None:
        self.function = function
        self.name = name
        self.default_options = options

    def __repr__(self) -> str:
        return f"Task({getattr(self.function, '__name__', self.name)!r})"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Runs the function here and now, as if it were not a task."""
        return self.function(*args, **kwargs)

    def options(self, **changes: Any) -> Task[P, R]:
        """This task with other options for the jobs enqueued through it (see `Options`)."""
        return Task(self.function, self.name, self.default_options.merged(**changes))

    def signature(self, *args: P.args, **kwargs: P.kwargs) -> Call:
        """This task with these arguments, for a batch, a chain or a schedule."""
        return Call(self.name, encode_arguments(args, kwargs), self.default_options)

    async def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        """Enqueues a job running this task with these arguments on the task's queue."""
        from .queue import Queue

        queue = Queue(self.default_options.queue or "default")
        return await queue.enqueue_call(self.signature(*args, **kwargs))


registry: dict[str, Task[Any, Any]] = {}
"""Tasks by name: what `@task` registered in this process (the worker runs these)."""


@overload
def task(function: Callable[P, R], /) -> Task[P, R]: ...


@overload
def task(*, name: str | None = None, **options: Any) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(
    function: Callable[P, R] | None = None, /, *, name: str | None = None, **options: Any
) -> Task[P, R] | Callable[[Callable[P, R]], Task[P, R]]:
    """Registers a callable (sync or async) as a task, bare (`@task`) or with options
    (`@task(queue="emails", retries=5, timeout=60, priority=9, unique=True, delay=10)`).

    Its name is its import path (`module:function`) unless `name` is given (e.g. the name a
    producer in another language uses).
    """
    defaults = Options(**options)

    def register(function: Callable[P, R]) -> Task[P, R]:
        registered = Task(function, name or path_of(function), defaults)
        registry[registered.name] = registered
        return registered

    return register if function is None else register(function)


def as_call(
    target: Task[Any, Any] | Callable[..., Any] | str, args: Sequence[Any], kwargs: dict[str, Any]
) -> Call:
    """`target` (a task, any callable, or a task name) with these arguments."""
    payload = encode_arguments(args, kwargs)
    if isinstance(target, Task):
        return Call(target.name, payload, target.default_options)
    if isinstance(target, str):
        return Call(target, payload)
    return Call(path_of(target), payload)

"""Connections: where the package connects, which backend it speaks, and the wire spelling.

A `redis.asyncio` client belongs to the event loop it was created in, so there is one
`Connection` per loop: the program's own loop and the background loop that serves synchronous
calls (see `_runner`). `connect(url)` decides where all of them go.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import weakref
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import RedisCluster

from . import _library
from .errors import BackendError, from_response_error

log = logging.getLogger("zrq")

DEFAULT_URL = "redis://localhost:6379"

Arg = str | int | float
Client = aioredis.Redis | RedisCluster

RESPONSE_TIMEOUT = 10.0
"""Seconds an ordinary (non-blocking) command may take before it fails."""


def _client(url: str, clustered: bool, timeout: float | None) -> Client:
    if clustered:
        return RedisCluster.from_url(url, decode_responses=True, socket_timeout=timeout)
    return aioredis.Redis.from_url(url, decode_responses=True, socket_timeout=timeout)


class Backend(enum.Enum):
    """Which server-side implementation of the protocol commands go to."""

    MODULE = "module"
    """The Redis module: `ZRQ.<CMD> <queue> …`, blocking inside Redis."""
    LUA = "lua"
    """The Redis Functions library: `FCALL zrq_<cmd> 1 <queue> …`; the client does the waiting."""


class _Settings:
    """What `connect()` chose; read when a loop opens its connection."""

    url: str | None = None
    backend: str = "auto"


def default_url() -> str:
    """`ZRQ_URL`, else `REDIS_URL`, else `redis://localhost:6379`."""
    return os.environ.get("ZRQ_URL") or os.environ.get("REDIS_URL") or DEFAULT_URL


def connect(url: str | None = None, *, backend: str = "auto") -> None:
    """Sends every later command to `url` (a server, or any node of a Redis Cluster).

    Without a call to `connect`, the package uses `ZRQ_URL`, else `REDIS_URL`, else
    `redis://localhost:6379`. `backend` is `"auto"` (the module if the server has it, else the
    Functions library, loaded when missing), `"module"` or `"lua"`. Connections opened before
    are dropped; nothing is sent until the first command.
    """
    if backend not in ("auto", "module", "lua"):
        raise ValueError(f"backend must be 'auto', 'module' or 'lua', not {backend!r}")
    _Settings.url = url
    _Settings.backend = backend
    _connections.clear()


_connections: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[Connection]] = (
    weakref.WeakKeyDictionary()
)


async def connection() -> Connection:
    """The running loop's connection, opened (and the backend chosen) on first use."""
    loop = asyncio.get_running_loop()
    opening = _connections.get(loop)
    if opening is None or (opening.done() and opening.exception() is not None):
        opening = loop.create_task(
            Connection.open(_Settings.url or default_url(), _Settings.backend)
        )
        _connections[loop] = opening
    return await asyncio.shield(opening)


def _is_missing_function(error: redis.exceptions.ResponseError) -> bool:
    return "function not found" in str(error).lower()


class Connection:
    """One server or cluster, one backend, one event loop."""

    def __init__(
        self,
        client: Client,
        blocking: Client,
        backend: Backend,
        url: str,
    ) -> None:
        self.client = client
        self.blocking = blocking
        """For commands that wait inside Redis (FETCH/RESULT … BLOCK, BLPOP): no read timeout."""
        self.backend = backend
        self.url = url
        # Cluster pipelines route by the keys redis-py finds, which it cannot for every module
        # command (see `_send`): there each batched command goes on its own.
        self._batch = None if isinstance(client, RedisCluster) else _Batch(client)

    @classmethod
    async def open(cls, url: str, backend: str) -> Connection:
        """Connects to `url`, with cluster clients if the node is in cluster mode."""
        probe = aioredis.Redis.from_url(url, decode_responses=True)
        try:
            clustered = bool((await probe.info("cluster")).get("cluster_enabled"))
        except redis.exceptions.NoPermissionError:
            # The roles of docs/ACL.md may not run INFO: taken as a single server.
            clustered = False
        finally:
            await probe.aclose()
        client, blocking = (
            _client(url, clustered, timeout) for timeout in (RESPONSE_TIMEOUT, None)
        )
        for each in (client, blocking):
            if isinstance(each, RedisCluster):
                await each.initialize()
        connection = cls(client, blocking, Backend.MODULE, url)
        connection.backend = await connection._choose_backend(backend)
        log.debug("connected to %s, backend %s", url, connection.backend.value)
        return connection

    async def _choose_backend(self, wanted: str) -> Backend:
        if wanted == "lua":
            chosen = Backend.LUA
        elif await self.has_module():
            chosen = Backend.MODULE
        elif wanted == "module":
            raise BackendError(
                f"{self.url} has no zrq module (ZRQ.ENQUEUE is unknown): load libzrq.so, "
                "or use the Lua backend"
            )
        else:
            chosen = Backend.LUA
        if chosen is Backend.LUA:
            await self.ensure_library()
        return chosen

    async def _everywhere(self, *args: Arg) -> Any:
        """Runs a server command on the server, or on every primary of a cluster (then the
        replies by node)."""
        if isinstance(self.client, RedisCluster):
            primaries = self.client.get_primaries()
            replies = await asyncio.gather(
                *(self.client.execute_command(*args, target_nodes=node) for node in primaries)
            )
            return {node.name: reply for node, reply in zip(primaries, replies, strict=True)}
        return await self.client.execute_command(*args)  # type: ignore[no-untyped-call]

    async def _anywhere(self, *args: Arg) -> Any:
        """Runs a server command on the server, or on one node of a cluster."""
        if isinstance(self.client, RedisCluster):
            node = self.client.get_random_node()
            return await self.client.execute_command(*args, target_nodes=node)
        return await self.client.execute_command(*args)  # type: ignore[no-untyped-call]

    async def has_module(self) -> bool:
        """Whether the server (in a cluster, a node) has the zrq module loaded."""
        # One token: redis-py's parser for a bare COMMAND reply cannot read COMMAND INFO's nil.
        reply = await self._anywhere("COMMAND INFO", "zrq.enqueue")
        return any(entry is not None for entry in reply)

    async def library_version(self) -> str | None:
        """The Functions library version the server runs; None if it runs none (or, in a
        cluster, if its primaries disagree)."""
        try:
            reply = await self._everywhere("FCALL", "zrq_version", 0)
        except redis.exceptions.ResponseError:
            return None
        if isinstance(reply, dict):
            versions = set(reply.values())
            return versions.pop() if len(versions) == 1 else None
        return str(reply)

    async def ensure_library(self) -> bool:
        """Loads this package's library unless the server runs exactly that version; whether it
        loaded. Safe from many clients at once: loading the same text again changes nothing."""
        if await self.library_version() == _library.VERSION:
            return False
        try:
            await self._everywhere("FUNCTION", "LOAD", "REPLACE", _library.TEXT)
        except redis.exceptions.ResponseError as error:
            raise BackendError(
                "cannot load the zrq Functions library (FUNCTION LOAD needs Redis 7 or later "
                f"and the FUNCTION permission): {error}"
            ) from error
        log.info("loaded the zrq Functions library %s", _library.VERSION)
        return True

    def spell(self, name: str, queue: str | None, args: Sequence[Arg]) -> list[Arg]:
        """The command `name` (e.g. "fetch") for `queue` with `args`, as this backend spells it."""
        queue_part: list[Arg] = [] if queue is None else [queue]
        if self.backend is Backend.MODULE:
            return [f"ZRQ.{name.upper()}", *queue_part, *args]
        return ["FCALL", f"zrq_{name}", len(queue_part), *queue_part, *args]

    async def call(
        self,
        name: str,
        queue: str | None,
        *args: Arg,
        blocks: bool = False,
        batched: bool = False,
    ) -> Any:
        """Runs zrq command `name` and returns its reply, server errors raised as `ServerError`s;
        `blocks` for a command that waits inside Redis; `batched` to send it in one pipeline with
        the other batched commands of the same turn of the event loop (enqueues a producer
        gathers), where a round trip each would cost more than the commands.

        On the Lua backend a library that vanished (`FUNCTION FLUSH`, a fresh server) is loaded
        again and the command sent once more.
        """
        command = self.spell(name, queue, args)
        client = self.blocking if blocks else self.client
        try:
            try:
                if batched and not blocks and self._batch is not None:
                    return await self._batch.send(command)
                return await self._send(client, queue, command)
            except redis.exceptions.ResponseError as error:
                if self.backend is Backend.LUA and _is_missing_function(error):
                    await self.ensure_library()
                    return await self._send(client, queue, command)
                raise
        except redis.exceptions.ResponseError as error:
            raise from_response_error(error) from None

    @staticmethod
    async def _send(client: Client, queue: str | None, command: list[Arg]) -> Any:
        if isinstance(client, RedisCluster) and queue is not None:
            # To the node of the queue's slot (the slot of `{queue}`, every key's hash tag):
            # redis-py cannot always find the key of a module command by itself.
            node = client.get_node_from_key(queue)
            return await client.execute_command(*command, target_nodes=node)
        return await client.execute_command(*command)

    async def pubsub(self, channel: str) -> PubSub:
        """A Pub/Sub connection subscribed to `channel`, on the node that owns its slot."""
        if isinstance(self.blocking, RedisCluster):
            node = self.blocking.get_node_from_key(channel)
            if node is None:
                raise BackendError(f"no cluster node serves {channel}")
            node_client = aioredis.Redis(host=node.host, port=int(node.port), decode_responses=True)
            pubsub = node_client.pubsub()
        else:
            pubsub = self.blocking.pubsub()
        await pubsub.subscribe(channel)
        return pubsub


class _Batch:
    """Commands sent together. The first command of a turn of the event loop goes out at once, on
    its own, so a caller that sends one at a time pays nothing for this; the others issued in the
    same turn go out together when it ends, in one pipeline (no transaction), each caller getting
    its own reply or error."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._sent_this_turn = False
        self._pending: list[tuple[list[Arg], asyncio.Future[Any]]] = []
        # The loop keeps only weak references to tasks: each sending one is held until done.
        self._sending: set[asyncio.Task[None]] = set()

    async def send(self, command: list[Arg]) -> Any:
        """Sends `command`, with the others of this turn if it is not the first, and returns its
        reply."""
        loop = asyncio.get_running_loop()
        if not self._sent_this_turn:
            self._sent_this_turn = True
            loop.call_soon(self._turn_ended)
            return await self._client.execute_command(*command)  # type: ignore[no-untyped-call]
        reply: asyncio.Future[Any] = loop.create_future()
        self._pending.append((command, reply))
        return await reply

    def _turn_ended(self) -> None:
        self._sent_this_turn = False
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        sending = asyncio.get_running_loop().create_task(self._execute(batch))
        self._sending.add(sending)
        sending.add_done_callback(self._sending.discard)

    async def _execute(self, batch: list[tuple[list[Arg], asyncio.Future[Any]]]) -> None:
        replies: list[Any]
        try:
            if len(batch) == 1:
                replies = [await self._client.execute_command(*batch[0][0])]  # type: ignore[no-untyped-call]
            else:
                async with self._client.pipeline(transaction=False) as pipe:
                    for command, _ in batch:
                        pipe.execute_command(*command)
                    replies = await pipe.execute(raise_on_error=False)
        except Exception as error:  # the connection: every command of the batch failed with it
            replies = [error] * len(batch)
        for (_, reply), outcome in zip(batch, replies, strict=True):
            if reply.done():
                continue
            if isinstance(outcome, Exception):
                reply.set_exception(outcome)
            else:
                reply.set_result(outcome)


def as_map(reply: Any) -> dict[str, Any]:
    """A map reply as a dict, whether it came as a RESP3 map or a RESP2 field/value array."""
    if isinstance(reply, dict):
        return reply
    if isinstance(reply, list):
        return dict(zip(reply[::2], reply[1::2], strict=True))
    raise TypeError(f"expected a map reply, got {reply!r}")

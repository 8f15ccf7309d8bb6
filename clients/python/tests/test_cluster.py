"""A Redis Cluster, given one node: commands reach the queue's slot, the worker serves it and
`result` waits (a one-node cluster holding every slot, per backend)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import redis
import sample_tasks
from conftest import Server, free_port, start_server

import zrq
from zrq import Queue
from zrq.worker import Worker


@pytest.fixture(params=["module", "lua"])
def cluster_node(request: pytest.FixtureRequest) -> Iterator[Server]:
    node = start_server(
        request.param,
        *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
        *("--cluster-port", str(free_port())),  # the default (port + 10000) may not exist
    )
    node.cli("CLUSTER", "ADDSLOTSRANGE", "0", "16383")
    deadline = time.monotonic() + 10
    while "cluster_state:ok" not in node.cli("CLUSTER", "INFO"):
        if time.monotonic() > deadline:
            pytest.fail("the one-node cluster did not come up")
        time.sleep(0.05)
    yield node
    node.stop()


async def test_a_cluster_given_one_node(cluster_node: Server, queue_name: str):
    zrq.connect(cluster_node.url)
    connection = await zrq.connection()
    assert isinstance(connection.client, redis.asyncio.RedisCluster)
    assert connection.backend.value == cluster_node.backend
    worker = Worker([queue_name], block=0.2)
    running = asyncio.get_running_loop().create_task(worker.run())
    try:
        job = await Queue(queue_name).enqueue(sample_tasks.add, 20, 22)
        assert await job.result(timeout=20) == 42
        assert job.state is zrq.State.COMPLETED
        assert Queue(queue_name).size == 0
    finally:
        worker.stop()
        await asyncio.wait_for(running, 20)

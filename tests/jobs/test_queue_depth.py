"""The broker scripts/services.sh sets up answers queue depths over HTTP (RabbitMQ management plugin): what an
autoscaler reads to decide how many workers a processor needs."""

from __future__ import annotations

import os
import time
from urllib.parse import quote

import httpx
import pika

from hrlc.jobs.broker import Topology, connect, declare, delete

MANAGEMENT = os.environ.get("HRLC_TEST_RABBITMQ_MANAGEMENT", "http://127.0.0.1:15672")


def test_management_api_reports_the_depth_of_a_task_queue() -> None:
    topo = Topology(f"hrlcdepth{os.getpid()}")
    queue = topo.task_queue("features")
    conn = connect()
    try:
        channel = conn.channel()
        declare(channel, topo, ["features"])
        for i in range(7):
            channel.basic_publish("", queue, f'{{"n": {i}}}'.encode(), pika.BasicProperties(delivery_mode=2))
        url = f"{MANAGEMENT}/api/queues/{quote('/', safe='')}/{queue}"
        depth, t0 = None, time.monotonic()
        while time.monotonic() - t0 < 30:  # the plugin refreshes its statistics every 5 s
            response = httpx.get(url, auth=("guest", "guest"), timeout=5)
            assert response.status_code == 200, f"{url}: {response.status_code} (run scripts/services.sh)"
            depth = response.json().get("messages")
            if depth == 7:
                break
            time.sleep(0.5)
        assert depth == 7
        assert response.json()["arguments"]["x-queue-type"] == "quorum"
    finally:
        conn.close()
        delete(topo, ["features"])

"""A worker process dead-letters malformed messages with the reason and retries failures with back-off."""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

import pika

from hrlc.jobs.broker import Topology, connect, declare, delete, properties
from hrlc.jobs.messages import TaskMessage

from .conftest import spawn, stop

ROOT = Path(__file__).resolve().parents[2]


def get(ch: Any, queue: str, timeout: float = 20.0) -> tuple[Any, bytes]:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        method, props, body = ch.basic_get(queue, auto_ack=True)
        if method is not None:
            return props, body
        time.sleep(0.05)
    raise AssertionError(f"nothing on {queue}")


def statuses(ch: Any, queue: str) -> list[dict[str, Any]]:
    """Status messages until the first terminal one."""
    states: list[dict[str, Any]] = []
    while not states or states[-1]["state"] not in ("finished", "error"):
        states.append(json.loads(get(ch, queue)[1]))
    return states


def test_malformed_message_dead_lettered_and_failure_retried(tmp_path: Path) -> None:
    topo = Topology(f"hrlcedge{os.getpid()}")
    env = {
        **os.environ,
        "HRLC_BROKER_PREFIX": topo.prefix,
        "HRLC_JOBS_DSN": "postgresql://nobody@127.0.0.1:1/none",  # no registry: the worker still works
        "HRLC_STORE": str(tmp_path / "lake"),
        "HRLC_RETRY_BACKOFF_S": "0.2",
        "HRLC_TEST_FLAKY_DIR": str(tmp_path),
        "PYTHONPATH": str(ROOT),
    }
    conn = connect()
    ch = conn.channel()
    declare(ch, topo, ["flaky"])
    ch.confirm_delivery()
    worker = spawn(
        ["hrlc.cli", "worker", "--processor", "flaky", "--entry-point", "tests.jobs.jobprocs:Flaky"],
        env,
        tmp_path / "worker.log",
    )
    try:
        queue = topo.task_queue("flaky")
        ch.basic_publish("", queue, b'{"job_id": 1}', properties(), mandatory=True)
        props, body = get(ch, topo.dead_queue)
        assert body == b'{"job_id": 1}' and "invalid task message" in props.headers["x-hrlc-reason"]
        task = TaskMessage(
            job_id="j", run=1, task_id="t", processor="flaky", processor_version="1.0.0", params={"name": "a"}
        )
        ch.basic_publish("", queue, task.to_json(), properties(), mandatory=True)
        states = statuses(ch, topo.status_queue)
        assert [s["state"] for s in states] == ["running", "queued", "running", "finished"]
        assert "transient failure" in states[1]["message"] and states[-1]["attempt"] == 2
        assert all((s["message_version"], s["run"]) == (2, 1) for s in states)
        # a version-1 task (queued before an upgrade: no run) is answered in version 1
        old = TaskMessage(
            message_version=1,
            job_id="j",
            task_id="t1",
            processor="flaky",
            processor_version="1.0.0",
            params={"name": "a"},
        )
        ch.basic_publish("", queue, old.to_json(), properties(version=1), mandatory=True)
        states = statuses(ch, topo.status_queue)
        assert [(s["state"], s["message_version"], "run" in s) for s in states] == [
            ("running", 1, False),
            ("finished", 1, False),
        ]
        assert worker.poll() is None
    finally:
        stop([worker])
        with contextlib.suppress(pika.exceptions.AMQPError):
            conn.close()
        delete(topo, ["flaky"])

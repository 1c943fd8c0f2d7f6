"""Dispatch benchmark: no-op tasks through RabbitMQ with 2 worker processes.

Publishes N no-op task messages (publisher confirms, persistent, quorum queue) with at most WINDOW in
flight, and measures tasks/s and the latency from publish to the finished status message (read directly
from the status queue; no job store involved). Prints one JSON line. Goal: >= 300 tasks/s, p95 <= 50 ms.

    .venv/bin/python benchmarks/dispatch.py [--tasks 2000] [--window 8]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any, ClassVar

from hrlc.jobs.broker import Topology, connect, declare, delete, properties
from hrlc.jobs.messages import TaskMessage
from hrlc.processors.base import Context, Params, Processor


class NoOpParams(Params):
    n: int = 0


class NoOp(Processor[NoOpParams]):
    name: ClassVar[str] = "noop"
    version: ClassVar[str] = "1.0.0"
    Params: ClassVar[type[NoOpParams]] = NoOpParams  # type: ignore[assignment]

    def outputs(self, params: NoOpParams) -> list[str]:
        return []

    def run(self, params: NoOpParams, ctx: Context) -> list[str]:
        return []


def worker_main(prefix: str) -> None:
    from hrlc.catalog.static import StaticCatalog
    from hrlc.jobs.worker import Worker
    from hrlc.lake.store import LocalStore

    store = LocalStore(tempfile.mkdtemp(prefix="hrlc-dispatch-"))
    w = Worker(NoOp, topo=Topology(prefix), dsn=None, store=store, catalog=StaticCatalog(store))
    import signal

    signal.signal(signal.SIGTERM, w.stop)
    w.run()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=2000)
    ap.add_argument("--window", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker_main(args.worker)
        return
    topo = Topology(f"hrlcbench{os.getpid()}")
    conn = connect(heartbeat=0)
    ch = conn.channel()
    declare(ch, topo, ["noop"])
    ch.confirm_delivery()
    status_ch = conn.channel()
    status_ch.basic_qos(prefetch_count=200)
    env = {**os.environ, "HRLC_LOG_LEVEL": "WARNING"}
    workers = [
        subprocess.Popen([sys.executable, __file__, "--worker", topo.prefix], env=env)
        for _ in range(args.workers)
    ]
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    warmup = min(100, args.tasks // 10)

    def on_status(channel: Any, method: Any, _props: Any, body: bytes) -> None:
        msg = json.loads(body)
        if msg["state"] == "finished" and msg["task_id"] in sent_at:
            latencies.append(time.perf_counter() - sent_at.pop(msg["task_id"]))
        channel.basic_ack(method.delivery_tag)

    status_ch.basic_consume(topo.status_queue, on_status)
    queue = topo.task_queue("noop")
    job = uuid.uuid4().hex
    total = args.tasks + warmup
    sent = 0
    t_start = 0.0
    try:
        while len(latencies) < total:
            while sent < total and sent - len(latencies) < args.window:
                if sent == warmup:
                    while len(latencies) < warmup:
                        conn.process_data_events(time_limit=0.001)
                    t_start = time.perf_counter()
                task = TaskMessage(
                    job_id=job,
                    run=1,
                    task_id=f"t{sent}",
                    processor="noop",
                    processor_version="1.0.0",
                    params={},
                )
                sent_at[task.task_id] = time.perf_counter()
                ch.basic_publish("", queue, task.to_json(), properties(), mandatory=True)
                sent += 1
            conn.process_data_events(time_limit=0.001)
        elapsed = time.perf_counter() - t_start
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait(10)
        conn.close()
        delete(topo, ["noop"])
    measured = sorted(latencies[warmup:])
    ms = [v * 1000 for v in measured]
    result = {
        "benchmark": "dispatch",
        "tasks": len(measured),
        "workers": args.workers,
        "window": args.window,
        "tasks_per_s": round(len(measured) / elapsed, 1),
        "p50_ms": round(ms[len(ms) // 2], 2),
        "p95_ms": round(ms[int(len(ms) * 0.95)], 2),
        "max_ms": round(ms[-1], 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

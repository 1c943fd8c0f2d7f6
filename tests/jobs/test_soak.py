"""A bounded soak (issue 11): land-cover jobs while workers are killed with kill -9, the status consumer is
killed, the job store's database drops every connection (what a PostgreSQL restart does to its clients) and
RabbitMQ is stopped and started. 0 jobs lost, 0 failed, every class map equal to an undisturbed in-process run,
never more than one consumer on the status queue, and a bound on the longest stall."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from hrlc.jobs.broker import Topology, connect, declare_common, delete
from hrlc.jobs.dag import LAND_COVER_PROCESSORS
from hrlc.jobs.planner import plan
from hrlc.jobs.service import JobService
from hrlc.lake.store import LocalStore
from landcover import Reference, class_map_of, land_cover_args, run_chain
from subprocesses import spawn, stop

pytestmark = pytest.mark.slow
USER = "soak"
PROCESSORS = list(LAND_COVER_PROCESSORS)
STALL_BOUND_S = 45.0  # no task state changes for longer than this while jobs are unfinished: a stall


def _processes(ref: Reference) -> list[dict[str, Any]]:
    """Six jobs: three AOIs (whole, western and eastern half: three grids) x two seeds."""
    out = []
    for part in ("whole", "west", "east"):
        args = land_cover_args(ref.repo)
        extent = dict(args["spatial_extent"])
        mid = (extent["west"] + extent["east"]) / 2
        if part == "west":
            extent["east"] = mid
        elif part == "east":
            extent["west"] = mid
        for seed in (0, 1):
            arguments = {**args, "spatial_extent": extent, "seed": seed}
            graph = {"lc": {"process_id": "hrlc_land_cover", "arguments": arguments, "result": True}}
            out.append({"process_graph": graph})
    return out


def _retrying(fn: Any, *args: Any) -> Any:
    """What a client does on 503: try again (the database or the broker is restarting)."""
    for attempt in range(40):
        try:
            return fn(*args)
        except Exception as e:  # noqa: BLE001 - psycopg, pool and pika errors while a service restarts
            if attempt == 39:
                raise
            print(f"client retry after {type(e).__name__}: {e}")
            time.sleep(0.5)
    return None


def _rabbitmq_restart() -> str | None:
    """Stop and start the RabbitMQ application; why not, when it cannot be done here."""
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        return "rabbitmqctl not found"
    stopped = subprocess.run([ctl, "stop_app"], capture_output=True, text=True, timeout=60)
    if stopped.returncode != 0:
        return f"rabbitmqctl stop_app failed: {stopped.stderr.strip()[:200]}"
    time.sleep(2)
    started = subprocess.run([ctl, "start_app"], capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stderr
    return None


def test_soak_loses_nothing_and_stalls_little(
    jobs_dsn: str, land_cover_reference: Reference, tmp_path: Path
) -> None:
    ref = land_cover_reference
    processes = _processes(ref)
    expected = []
    for p in processes:  # the undisturbed answers, in process
        result = run_chain(ref.repo, LocalStore(tmp_path / "reference"), dag=plan(p))
        expected.append(class_map_of(result.items))

    topo = Topology(f"hrlcsoak{os.getpid()}")
    env = {**os.environ, "HRLC_STORE": str(tmp_path / "lake"), "HRLC_CATALOG": "static", "HRLC_JOBS_DSN": jobs_dsn,
           "HRLC_BROKER_PREFIX": topo.prefix, "HRLC_LOG_LEVEL": "INFO", "HRLC_RETRY_BACKOFF_S": "0.5"}  # fmt: skip
    log = tmp_path / "processes.log"
    workers = {
        f"{p}-{i}": spawn(["hrlc.cli", "worker", "--processor", p], env, log)
        for p in PROCESSORS
        for i in (0, 1)
    }
    consumer = spawn(["hrlc.cli", "status-consumer"], env, log)
    service = JobService(jobs_dsn, topology=topo)
    broker = connect()
    ch = broker.channel()
    declare_common(ch, topo)
    rng = random.Random(11)
    events: list[str] = []
    try:
        jobs = [_retrying(service.create_job, USER, p).id for p in processes]
        for job in jobs:
            _retrying(service.start_job, USER, job)
        t0 = time.monotonic()
        schedule = {2.0: "kill", 4.0: "kill", 6.0: "consumer", 8.0: "kill", 10.0: "database", 12.0: "kill"}
        schedule[14.0] = "broker"
        last_change, last_state, longest, most_consumers = t0, None, 0.0, 0
        while True:
            now = time.monotonic() - t0
            for at in [a for a in schedule if a <= now]:
                what = schedule.pop(at)
                if what == "kill":
                    name = rng.choice(sorted(workers))
                    workers[name].send_signal(signal.SIGKILL)
                    workers[name].wait()
                    workers[name] = spawn(
                        ["hrlc.cli", "worker", "--processor", name.rsplit("-", 1)[0]], env, log
                    )
                    events.append(f"{now:.1f}s kill -9 {name}")
                elif what == "consumer":
                    consumer.send_signal(signal.SIGKILL)
                    consumer.wait()
                    time.sleep(1)
                    consumer = spawn(["hrlc.cli", "status-consumer"], env, log)
                    events.append(f"{now:.1f}s kill -9 status consumer")
                elif what == "database":
                    with psycopg.connect(jobs_dsn, autocommit=True) as conn:
                        n = conn.execute(
                            "select count(pg_terminate_backend(pid)) from pg_stat_activity "
                            "where datname = current_database() and pid <> pg_backend_pid()"
                        ).fetchone()
                    events.append(f"{now:.1f}s database dropped {n[0] if n else 0} connections")
                else:
                    ch.close() if ch.is_open else None
                    broker.close() if broker.is_open else None
                    why = _rabbitmq_restart()
                    events.append(f"{now:.1f}s RabbitMQ restart: {why or 'done'}")
                    if why:
                        print(f"RabbitMQ restart skipped: {why}")
                    broker = _retrying(connect)
                    ch = broker.channel()
            state = _retrying(lambda: [(t["id"], t["status"]) for j in jobs for t in service.tasks(USER, j)])
            statuses = [_retrying(lambda j=j: service.get_job(USER, j).status) for j in jobs]
            if state != last_state:
                last_state, last_change = state, time.monotonic()
            longest = max(longest, time.monotonic() - last_change)
            try:
                most_consumers = max(
                    most_consumers, ch.queue_declare(topo.status_queue, passive=True).method.consumer_count
                )
            except Exception:  # noqa: BLE001 - the broker restarting
                broker = _retrying(connect)
                ch = broker.channel()
            if all(s in ("finished", "error", "canceled") for s in statuses) and not schedule:
                break
            assert time.monotonic() - t0 < 400, f"jobs still running: {statuses}\n" + "\n".join(events)
            time.sleep(0.2)
        print("\n".join(events))
        print(f"soak: {len(jobs)} jobs in {time.monotonic() - t0:.1f} s, longest stall {longest:.1f} s")
        assert statuses == ["finished"] * len(jobs), [service.logs(USER, j) for j in jobs]
        for job, want in zip(jobs, expected, strict=True):
            assert np.array_equal(class_map_of(service.results(USER, job)), want), job
        assert most_consumers <= 1, "two consumers on the status queue"
        assert longest <= STALL_BOUND_S, f"a stall of {longest:.1f} s"
    finally:
        stop([*workers.values(), consumer])
        service.close()
        if broker.is_open:
            broker.close()
        delete(topo, PROCESSORS)

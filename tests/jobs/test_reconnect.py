"""Connections have one owner and are closed on failure (issue 11): the status consumer that loses its database
session reconnects without leaving a second subscription on the status queue holding messages."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from hrlc.jobs.broker import Topology, connect, declare_common, delete, properties
from hrlc.jobs.messages import StatusMessage
from subprocesses import spawn, stop

from .jobprocs import Sleepy


def _consumers(ch, queue: str) -> int:  # noqa: ANN001
    return int(ch.queue_declare(queue, passive=True).method.consumer_count)


def _task_status(dsn: str) -> str:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "select status from hrlc_jobs.tasks where job_id = 'rc-job' and id = 't1'"
        ).fetchone()
    return str(row[0]) if row else ""


def test_status_consumer_reconnects_to_the_database_without_an_orphan_subscription(
    jobs_dsn: str, tmp_path: Path
) -> None:
    topo = Topology(f"hrlcreconnect{os.getpid()}")
    env = {
        **os.environ,
        "HRLC_JOBS_DSN": jobs_dsn,
        "HRLC_BROKER_PREFIX": topo.prefix,
        "HRLC_LOG_LEVEL": "INFO",
    }
    with psycopg.connect(jobs_dsn, autocommit=True) as conn:
        conn.execute("delete from hrlc_jobs.jobs where id = 'rc-job'")
        conn.execute(
            "insert into hrlc_jobs.jobs (id, user_id, process, status, run) values ('rc-job', 'u', '{}', 'queued', 1)"
        )
        conn.execute(
            "insert into hrlc_jobs.tasks (job_id, id, processor, processor_version, params, status, run) "
            "values ('rc-job', 't1', 'features', '0.1.0', '{}', 'queued', 1)"
        )
    broker = connect()
    ch = broker.channel()
    declare_common(ch, topo)
    log = tmp_path / "status-consumer.log"
    consumer = spawn(["hrlc.cli", "status-consumer"], env, log)
    try:
        deadline = time.monotonic() + 30
        while _consumers(ch, topo.status_queue) < 1:
            assert consumer.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        with psycopg.connect(jobs_dsn, autocommit=True) as conn:  # the database drops its session
            killed = conn.execute(
                "select count(pg_terminate_backend(pid)) from pg_stat_activity "
                "where application_name = 'hrlc-status-consumer' and datname = current_database()"
            ).fetchone()
        assert killed == (1,)
        status = StatusMessage(
            message_version=2,
            job_id="rc-job",
            run=1,
            task_id="t1",
            state="running",
            progress=0.5,
            worker="test",
        )
        ch.confirm_delivery()
        ch.basic_publish("", topo.status_queue, status.to_json(), properties(), mandatory=True)
        t0, most = time.monotonic(), 0
        while _task_status(jobs_dsn) != "running":  # applied by the reconnected consumer
            most = max(most, _consumers(ch, topo.status_queue))
            assert time.monotonic() - t0 < 15, f"status not applied within 15 s:\n{log.read_text()}"
            time.sleep(0.1)
        most = max(most, _consumers(ch, topo.status_queue))
        assert most <= 1, "an abandoned connection stayed subscribed to the status queue"
        text = log.read_text()
        assert text.count("unavailable") == 1 and "back after" in text and "Traceback" not in text, text
    finally:
        stop([consumer])
        broker.close()
        delete(topo, [])


def test_a_worker_finds_its_idle_lock_connection_dropped_and_makes_a_new_one(
    jobs_dsn: str, tmp_path: Path
) -> None:
    """The task thread's job store connection sits idle while a processor runs; a database restart meanwhile drops
    it. The commit step then connects anew instead of failing the attempt (which would rerun the processor)."""
    from hrlc.catalog.static import StaticCatalog
    from hrlc.jobs.messages import TaskMessage
    from hrlc.jobs.worker import Worker
    from hrlc.lake.store import LocalStore

    store = LocalStore(tmp_path)
    worker = Worker(Sleepy, dsn=jobs_dsn, store=store, catalog=StaticCatalog(store))
    msg = TaskMessage(
        message_version=2,
        job_id="rc-lock",
        run=1,
        task_id="t1",
        processor="sleepy",
        processor_version=Sleepy.version,
        params={},
    )
    first = worker._lock_connection(msg)
    assert first is not None
    pid = first.info.backend_pid
    with psycopg.connect(jobs_dsn, autocommit=True) as conn:
        assert conn.execute("select pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
    time.sleep(0.2)
    with worker._task_lock(msg, ["a/key.tif"], row=False) as stopped:
        assert stopped is None
        again = worker._lock_db
        assert again is not None and not again.closed and again.info.backend_pid != pid
    again.close()


MANAGEMENT = "http://127.0.0.1:15672/api/connections"


def _connections(named: str) -> list[str]:
    """RabbitMQ's names of the connections whose client-given name starts with `named`, once it lists one (the
    management API lists a new connection a few seconds late)."""
    import httpx

    deadline = time.monotonic() + 15
    while True:
        found = [
            c["name"]
            for c in httpx.get(MANAGEMENT, auth=("guest", "guest"), timeout=10).json()
            if str((c.get("client_properties") or {}).get("connection_name", "")).startswith(named)
        ]
        if found:
            return found
        assert time.monotonic() < deadline, f"no broker connection named {named}"
        time.sleep(0.2)


def _close_connections(names: list[str]) -> None:
    """Have RabbitMQ close these connections (management API)."""
    from urllib.parse import quote

    import httpx

    for name in names:
        url = f"{MANAGEMENT}/{quote(name, safe='')}"
        r = httpx.delete(url, auth=("guest", "guest"), headers={"X-Reason": "test"}, timeout=10)
        assert r.status_code == 204, r.text


@dataclass
class CountedWorkers:
    """Worker processes of the test processor `counted` (tests/jobs/jobprocs.py) on a lake of their own, and a
    channel that publishes its tasks and reads the status queue (no status consumer: the test reads statuses)."""

    ch: Any
    topo: Topology
    queue: str
    lake: Path
    log: Path
    procs: list[Any]

    def publish(self, job_id: str, name: str, wait_s: float = 3.0) -> None:
        from hrlc.jobs.messages import TaskMessage

        from .jobprocs import Counted

        task = TaskMessage(message_version=2, job_id=job_id, run=1, task_id="t1", processor="counted",
                           processor_version=Counted.version, params={"name": name, "wait_s": wait_s})  # fmt: skip
        self.ch.basic_publish("", self.queue, task.to_json(), properties(), mandatory=True)

    def status(self) -> Any:
        """The next status message (None: none waiting)."""
        from hrlc.jobs.messages import parse_status

        method, _props, body = self.ch.basic_get(self.topo.status_queue, auto_ack=True)
        return None if method is None else parse_status(body)

    def runs(self, name: str) -> int:
        """How many times the processor ran for `name`."""
        from hrlc.lake.store import LocalStore

        return len(list(LocalStore(self.lake).list(f"test/runs/{name}/")))


@contextlib.contextmanager
def counted_workers(jobs_dsn: str, tmp_path: Path, prefix: str, n: int) -> Iterator[CountedWorkers]:
    from hrlc.jobs.broker import declare_task_queue

    topo = Topology(f"{prefix}{os.getpid()}")
    lake = tmp_path / "lake"
    env = {**os.environ, "HRLC_JOBS_DSN": jobs_dsn, "HRLC_BROKER_PREFIX": topo.prefix, "HRLC_LOG_LEVEL": "INFO",
           "HRLC_STORE": str(lake), "HRLC_CATALOG": "static",
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}  # fmt: skip
    broker = connect()
    ch = broker.channel()
    declare_common(ch, topo)
    queue = declare_task_queue(ch, topo, "counted")
    ch.confirm_delivery()
    log = tmp_path / "workers.log"
    args = ["--processor", "counted", "--entry-point", "tests.jobs.jobprocs:Counted"]
    procs = [spawn(["hrlc.cli", "worker", *args], env, log) for _ in range(n)]
    try:
        deadline = time.monotonic() + 30
        while log.read_text().count("consuming") < n:
            assert all(p.poll() is None for p in procs) and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield CountedWorkers(ch, topo, queue, lake, log, procs)
    finally:
        stop(procs)
        broker.close()
        delete(topo, ["counted"])


def test_a_worker_that_loses_the_broker_mid_task_keeps_the_work(jobs_dsn: str, tmp_path: Path) -> None:
    """The broker drops a worker's connection while its processor runs: the processor finishes and commits, the
    worker reconnects, and the redelivered task finds its output registered: computed once, not twice."""
    with counted_workers(jobs_dsn, tmp_path, "hrlclost", 1) as w:
        connections = _connections(f"hrlc worker {socket.gethostname()}:{w.procs[0].pid}:")
        w.publish("lost-job", "lost")
        states: list[str] = []
        closed = False
        deadline = time.monotonic() + 60
        while not any(s.startswith("finished") for s in states):
            assert time.monotonic() < deadline, f"{states}\n{w.log.read_text()}"
            status = w.status()
            if status is None:
                time.sleep(0.05)
                continue
            states.append(f"{status.state}: {status.message}")
            if status.state == "running" and not closed:
                _close_connections(connections)  # mid-task
                closed = True
        assert closed
        assert states[-1] == "finished: outputs exist: not recomputed", states
        assert w.runs("lost") == 1  # computed once
        assert "broker lost while task t1 runs" in w.log.read_text()
        assert w.procs[0].poll() is None


def test_two_tasks_with_the_same_outputs_compute_them_once(jobs_dsn: str, tmp_path: Path) -> None:
    """Two jobs ask for the same product at once: one worker computes it, the other waits and finds it (single
    flight); both tasks finish, the processor ran once."""
    with counted_workers(jobs_dsn, tmp_path, "hrlcflight", 2) as w:
        for job in ("flight-a", "flight-b"):
            w.publish(job, "shared")
        finished: dict[str, str] = {}
        deadline = time.monotonic() + 60
        while len(finished) < 2:
            assert time.monotonic() < deadline, f"{finished}\n{w.log.read_text()}"
            status = w.status()
            if status is None:
                time.sleep(0.05)
            elif status.state in ("finished", "error"):
                finished[status.job_id] = f"{status.state}: {status.message}"
        assert sorted(finished.values()) == ["finished: 1 items", "finished: outputs exist: not recomputed"]
        assert w.runs("shared") == 1  # computed once
        assert w.log.read_text().count("waits: another task computes the same products") == 1

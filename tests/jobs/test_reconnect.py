"""Connections have one owner and are closed on failure (issue 11): the status consumer that loses its database
session reconnects without leaving a second subscription on the status queue holding messages."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

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
    consumer = spawn(["hrlc.jobs.status_consumer"], env, log)
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
    from hrlc.jobs.messages import TaskMessage
    from hrlc.jobs.worker import Worker
    from hrlc.lake.store import LocalStore

    worker = Worker(Sleepy, dsn=jobs_dsn, store=LocalStore(tmp_path), catalog=object())
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


def _close_connection(named: str) -> None:
    """Have RabbitMQ close the connection whose client-given name starts with `named` (management API)."""
    import httpx

    api = "http://127.0.0.1:15672/api/connections"
    deadline = time.monotonic() + 10
    while True:
        found = [
            c["name"]
            for c in httpx.get(api, auth=("guest", "guest"), timeout=10).json()
            if str((c.get("client_properties") or {}).get("connection_name", "")).startswith(named)
        ]
        if found:
            break
        assert time.monotonic() < deadline, f"no broker connection named {named}"
        time.sleep(0.2)
    from urllib.parse import quote

    for name in found:
        r = httpx.delete(
            f"{api}/{quote(name, safe='')}", auth=("guest", "guest"), headers={"X-Reason": "test"}
        )
        assert r.status_code == 204, r.text


def test_a_worker_that_loses_the_broker_mid_task_keeps_the_work(jobs_dsn: str, tmp_path: Path) -> None:
    """The broker drops a worker's connection while its processor runs: the processor finishes and commits, the
    worker reconnects, and the redelivered task finds its output registered: computed once, not twice."""
    from hrlc.jobs.broker import declare_task_queue
    from hrlc.jobs.messages import TaskMessage, parse_status
    from hrlc.lake.store import LocalStore

    from .jobprocs import Counted

    topo = Topology(f"hrlclost{os.getpid()}")
    lake = tmp_path / "lake"
    env = {**os.environ, "HRLC_JOBS_DSN": jobs_dsn, "HRLC_BROKER_PREFIX": topo.prefix, "HRLC_LOG_LEVEL": "INFO",
           "HRLC_STORE": str(lake), "HRLC_CATALOG": "static",
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}  # fmt: skip
    broker = connect()
    ch = broker.channel()
    declare_common(ch, topo)
    queue = declare_task_queue(ch, topo, "counted")
    log = tmp_path / "worker.log"
    worker = spawn(
        ["hrlc.jobs.worker", "--processor", "counted", "--entry-point", "tests.jobs.jobprocs:Counted"],
        env,
        log,
    )
    try:
        deadline = time.monotonic() + 30
        while "consuming" not in log.read_text():
            assert worker.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        task = TaskMessage(message_version=2, job_id="lost-job", run=1, task_id="t1", processor="counted",
                           processor_version=Counted.version, params={"name": "lost", "wait_s": 3.0})  # fmt: skip
        ch.confirm_delivery()
        ch.basic_publish("", queue, task.to_json(), properties(), mandatory=True)
        states: list[str] = []
        closed = False
        deadline = time.monotonic() + 60
        while not any(s.startswith("finished") for s in states):
            assert time.monotonic() < deadline, f"{states}\n{log.read_text()}"
            method, _props, body = ch.basic_get(topo.status_queue, auto_ack=True)
            if method is None:
                time.sleep(0.05)
                continue
            status = parse_status(body)
            states.append(f"{status.state}: {status.message}")
            if status.state == "running" and not closed:
                _close_connection(f"hrlc worker {socket.gethostname()}:{worker.pid}:")  # mid-task
                closed = True
        assert closed
        assert states[-1] == "finished: outputs exist: not recomputed", states
        assert len(list(LocalStore(lake).list("test/runs/lost/"))) == 1  # computed once
        assert "broker lost while task t1 runs" in log.read_text()
        assert worker.poll() is None
    finally:
        stop([worker])
        broker.close()
        delete(topo, ["counted"])


def test_two_tasks_with_the_same_outputs_compute_them_once(jobs_dsn: str, tmp_path: Path) -> None:
    """Two jobs ask for the same product at once: one worker computes it, the other waits and finds it (single
    flight); both tasks finish, the processor ran once."""
    from hrlc.jobs.broker import declare_task_queue
    from hrlc.jobs.messages import TaskMessage, parse_status
    from hrlc.lake.store import LocalStore

    from .jobprocs import Counted

    topo = Topology(f"hrlcflight{os.getpid()}")
    lake = tmp_path / "lake"
    env = {**os.environ, "HRLC_JOBS_DSN": jobs_dsn, "HRLC_BROKER_PREFIX": topo.prefix, "HRLC_LOG_LEVEL": "INFO",
           "HRLC_STORE": str(lake), "HRLC_CATALOG": "static",
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}  # fmt: skip
    broker = connect()
    ch = broker.channel()
    declare_common(ch, topo)
    queue = declare_task_queue(ch, topo, "counted")
    log = tmp_path / "workers.log"
    args = ["--processor", "counted", "--entry-point", "tests.jobs.jobprocs:Counted"]
    workers = [spawn(["hrlc.jobs.worker", *args], env, log) for _ in range(2)]
    try:
        deadline = time.monotonic() + 30
        while log.read_text().count("consuming") < 2:
            assert all(w.poll() is None for w in workers) and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        ch.confirm_delivery()
        for job in ("flight-a", "flight-b"):
            task = TaskMessage(message_version=2, job_id=job, run=1, task_id="t1", processor="counted",
                               processor_version=Counted.version, params={"name": "shared", "wait_s": 3.0})  # fmt: skip
            ch.basic_publish("", queue, task.to_json(), properties(), mandatory=True)
        finished: dict[str, str] = {}
        deadline = time.monotonic() + 60
        while len(finished) < 2:
            assert time.monotonic() < deadline, f"{finished}\n{log.read_text()}"
            method, _props, body = ch.basic_get(topo.status_queue, auto_ack=True)
            if method is None:
                time.sleep(0.05)
                continue
            status = parse_status(body)
            if status.state in ("finished", "error"):
                finished[status.job_id] = f"{status.state}: {status.message}"
        assert sorted(finished.values()) == ["finished: 1 items", "finished: outputs exist: not recomputed"]
        assert len(list(LocalStore(lake).list("test/runs/shared/"))) == 1  # computed once
        assert log.read_text().count("waits: another task computes the same products") == 1
    finally:
        stop(workers)
        broker.close()
        delete(topo, ["counted"])

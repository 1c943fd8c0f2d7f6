"""Connections have one owner and are closed on failure (issue 11): the status consumer that loses its database
session reconnects without leaving a second subscription on the status queue holding messages."""

from __future__ import annotations

import os
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

"""The status consumer: `hrlc status-consumer` (DESIGN.md §3).

Consumes `hrlc.status` and, per message, in one transaction of the job store: updates the task (state,
progress, attempts, worker, outputs), appends a log line, moves the job (queued -> running on the first
running task; finished when every task has finished; error on the first task error, canceling the tasks
not started; canceled), sets the job's progress to the mean of its tasks' progress, and publishes the
tasks that became ready. The message is acknowledged after the commit, so a crash redelivers it.
Idempotent: a terminal task state (finished, error, canceled) is never overwritten, so duplicate, late or
redelivered status messages change nothing; a restarted consumer just catches up with the queue (a late
terminal status of a task already terminal, e.g. a worker stopping after its job was canceled, is only logged).
Dead-lettered task messages (`<prefix>.dead.watch`: the broker's delivery limit reached, or a worker gave up)
are drained about once a second and applied as an error status of their task, so the job ends `error`
instead of staying running; for a task already terminal this changes nothing.
Runs: status messages (and dead-lettered tasks) of message version 2 carry the job's run; one of another run than
the job's current one (a job started again after a cancel) is ignored, so a late or redelivered message of an
earlier run can neither finish nor fail the new run. Version-1 messages (no run) are applied as before.
Accepted versions: `hrlc.jobs.messages.SUPPORTED_VERSIONS` (1 and 2).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import time
from typing import Any

import pika
import psycopg

from hrlc.db.migrations import SchemaBehind
from hrlc.jobs import jobstore
from hrlc.jobs.broker import Publisher, Topology, connect, declare_common
from hrlc.jobs.health import Health, serve_health
from hrlc.jobs.jobstore import SCHEMA
from hrlc.jobs.messages import TERMINAL, MessageError, StatusMessage, parse_status, parse_task
from hrlc.jobs.planner import publish_ready
from hrlc.outage import Outage, quiet_clients
from hrlc.settings import DEFAULT_BROKER_URL, DEFAULT_JOBS_DSN, Settings

log = logging.getLogger("hrlc.status")

RECOVERABLE = (pika.exceptions.AMQPConnectionError, pika.exceptions.ChannelClosed, psycopg.OperationalError)
PING_S = 5.0  # seconds between checks of an idle job store connection
LEVEL = {"queued": "warning", "running": "info", "finished": "info", "error": "error", "canceled": "warning"}


def apply_status(conn: psycopg.Connection[Any], msg: StatusMessage, publisher: Publisher) -> str:
    """Apply one status message; returns what happened (for logs and tests)."""
    with conn.transaction():
        job = conn.execute(
            f"select status, run from {SCHEMA}.jobs where id = %s for update", (msg.job_id,)
        ).fetchone()
        if job is None:
            return "unknown job"
        if msg.run is not None and msg.run != job["run"]:
            if msg.terminal:
                text = (
                    f"{msg.state} of run {msg.run} ignored, the job is on run {job['run']}: {msg.message} "
                    f"({msg.worker})"
                )
                jobstore.add_log(conn, msg.job_id, "debug", text, msg.task_id)
            return f"ignored: run {msg.run}, job on run {job['run']}"
        task = conn.execute(
            f"select status, progress from {SCHEMA}.tasks where job_id = %s and id = %s for update",
            (msg.job_id, msg.task_id),
        ).fetchone()
        if task is None:
            return "unknown task"
        if task["status"] in TERMINAL:
            if msg.terminal:
                text = (
                    f"late {msg.state} ignored, task already {task['status']}: {msg.message} ({msg.worker})"
                )
                jobstore.add_log(conn, msg.job_id, "debug", text, msg.task_id)
            return f"ignored: task already {task['status']}"
        if task["status"] == "created":
            return "ignored: task not queued (stale message of an earlier run)"
        progress = 1.0 if msg.state == "finished" else msg.progress
        conn.execute(
            f"update {SCHEMA}.tasks set status = %s, progress = %s, worker = %s, message = %s, "
            "attempts = greatest(attempts, %s), outputs = case when %s then %s else outputs end, "
            "updated = now() where job_id = %s and id = %s",
            (
                msg.state,
                progress,
                msg.worker,
                msg.message,
                msg.attempt or 1,
                msg.state == "finished",
                jobstore.jsonb(msg.outputs),
                msg.job_id,
                msg.task_id,
            ),
        )
        if msg.state != task["status"] or msg.state != "running":
            text = f"{msg.state}: {msg.message}" if msg.message else msg.state
            jobstore.add_log(conn, msg.job_id, LEVEL[msg.state], f"{text} ({msg.worker})", msg.task_id)
        else:
            jobstore.add_log(conn, msg.job_id, "debug", f"{progress:.0%} {msg.message}", msg.task_id)
        job_status = job["status"]
        if job_status in TERMINAL:
            return f"task {msg.state}; job already {job_status}"
        sets: list[str] = []
        if msg.state == "running" and job_status == "queued":
            sets.append("status = 'running', started = coalesce(started, now())")
        elif msg.state == "finished":
            publish_ready(msg.job_id, conn=conn, publisher=publisher)
            left = conn.execute(
                f"select count(*) as n from {SCHEMA}.tasks where job_id = %s and status <> 'finished'",
                (msg.job_id,),
            ).fetchone()
            if left is not None and left["n"] == 0:
                sets.append("status = 'finished', finished = now()")
                jobstore.add_log(conn, msg.job_id, "info", "job finished")
            elif job_status == "queued":
                sets.append("status = 'running', started = coalesce(started, now())")
        elif msg.state in ("error", "canceled"):
            conn.execute(
                f"update {SCHEMA}.tasks set status = 'canceled', updated = now() where job_id = %s "
                "and status not in ('finished', 'error', 'canceled')",
                (msg.job_id,),
            )
            if msg.state == "error":
                sets.append("status = 'error', finished = now(), error = %(error)s")
            else:
                sets.append("status = 'canceled', finished = now()")
            jobstore.add_log(conn, msg.job_id, LEVEL[msg.state], f"job {msg.state}: task {msg.task_id}")
        sets.append(
            f"progress = (select coalesce(avg(progress), 0) from {SCHEMA}.tasks where job_id = %(job)s)"
        )
        conn.execute(
            f"update {SCHEMA}.jobs set {', '.join(sets)}, updated = now() where id = %(job)s",
            {"job": msg.job_id, "error": f"task {msg.task_id}: {msg.message}"},
        )
        return f"task {msg.state}"


class StatusConsumer:
    def __init__(
        self,
        dsn: str | None = None,
        url: str | None = None,
        topo: Topology | None = None,
        *,
        settings: Settings | None = None,
    ):
        self.dsn = dsn or (settings.jobs_dsn if settings is not None else DEFAULT_JOBS_DSN)
        self.url = url or (settings.broker_url if settings is not None else DEFAULT_BROKER_URL)
        self.topo = topo or Topology.from_settings(settings)
        self.stopping = False
        self.health = Health("status consumer", ["broker", "job store"])

    def run(self, max_messages: int | None = None) -> int:
        checked = False
        handled = 0
        outage = Outage("job store or broker", log)
        publisher = Publisher(self.url, self.topo)
        try:
            while not self.stopping:
                db: psycopg.Connection[Any] | None = None
                conn: Any = None
                try:
                    if not checked:  # SchemaBehind (not retried): `hrlc migrate` first
                        with jobstore.connect(self.dsn, autocommit=True) as store:
                            jobstore.check_schema(store)
                        checked = True
                    db = jobstore.connect(self.dsn, application_name="hrlc-status-consumer")
                    self.health.up("job store")
                    conn = connect(
                        self.url,
                        heartbeat=30,
                        name=f"hrlc status consumer {socket.gethostname()}:{os.getpid()}",
                    )
                    ch = conn.channel()
                    declare_common(ch, self.topo)
                    ch.basic_qos(prefetch_count=50)
                    self.health.up("broker")
                    log.info("status consumer on %s", self.topo.status_queue)
                    outage.recovered()
                    last_dead = last_ping = time.monotonic()
                    for method, _props, body in ch.consume(self.topo.status_queue, inactivity_timeout=1.0):
                        self.health.tick()
                        if method is not None:
                            self._handle(db, ch, method, body, publisher)
                            handled += 1
                        if time.monotonic() - last_dead >= 1.0:
                            last_dead = time.monotonic()
                            self._drain_dead(db, ch, publisher)
                        # find a dropped session before a message does
                        if time.monotonic() - last_ping >= PING_S:
                            last_ping = time.monotonic()
                            with db.transaction():
                                db.execute("select 1")
                        if self.stopping or (max_messages is not None and handled >= max_messages):
                            break
                    ch.cancel()
                    break
                except RECOVERABLE as e:
                    self.health.down("job store" if isinstance(e, psycopg.Error) else "broker", e)
                    if self.stopping:
                        break
                    time.sleep(outage.failed(e))
                    self.health.tick()
                finally:
                    # one owner per connection, closed whatever happened: an abandoned broker connection would
                    # stay subscribed to the status queue, holding its unacknowledged messages (issue 11)
                    _close(conn)
                    _close(db)
        finally:
            publisher.close()
        return handled

    def _handle(
        self, db: psycopg.Connection[Any], ch: Any, method: Any, body: bytes, publisher: Publisher
    ) -> None:
        try:
            msg = parse_status(body)
        except MessageError as e:
            log.error("status message dead-lettered: %s", e)
            ch.basic_publish(
                self.topo.dead_exchange, self.topo.dead_queue, body, _props({"x-hrlc-reason": str(e)[:1000]})
            )
            ch.basic_ack(method.delivery_tag)
            return
        outcome = apply_status(db, msg, publisher)
        log.debug("%s %s: %s", msg.job_id, msg.task_id, outcome)
        ch.basic_ack(method.delivery_tag)

    def _drain_dead(self, db: psycopg.Connection[Any], ch: Any, publisher: Publisher) -> None:
        """Turn every dead-lettered task message waiting in the watch queue into an error status."""
        while True:
            method, props, body = ch.basic_get(self.topo.dead_watch_queue, auto_ack=False)
            if method is None:
                return
            try:
                task = parse_task(body)
            except MessageError:  # a malformed task or status message: nothing to attribute it to
                ch.basic_ack(method.delivery_tag)
                continue
            status = task.status(  # with the task's run: a dead letter of an older run is ignored
                state="error",
                progress=0.0,
                message=f"task dead-lettered: {dead_reason(props.headers or {})}"[:4000],
                worker="status-consumer",
            )
            outcome = apply_status(db, status, publisher)
            log.warning("dead-lettered task %s %s: %s", task.job_id, task.task_id, outcome)
            ch.basic_ack(method.delivery_tag)

    def stop(self, *_: Any) -> None:
        self.stopping = True


def _close(resource: Any) -> None:
    """Close a broker or database connection, ignoring that it is already broken."""
    if resource is None:
        return
    closed = getattr(resource, "is_closed", None)  # pika
    if closed is None:
        closed = getattr(resource, "closed", False)  # psycopg
    try:
        if not closed:
            resource.close()
    except Exception:  # noqa: BLE001 - a dead connection may refuse even its own close
        pass


def dead_reason(headers: dict[str, Any]) -> str:
    """Why a message was dead-lettered: the worker's `x-hrlc-reason`, else the broker's (`delivery_limit`)."""
    if headers.get("x-hrlc-reason"):
        return str(headers["x-hrlc-reason"])
    reason = headers.get("x-first-death-reason")
    deaths = headers.get("x-death") or []
    if not reason and deaths and isinstance(deaths[0], dict):
        reason = deaths[0].get("reason")
    reason = reason.decode() if isinstance(reason, bytes) else reason
    if reason == "delivery_limit":
        return "the broker's delivery limit was reached (the task kept failing or killing its worker)"
    return str(reason or "unknown reason")


def _props(headers: dict[str, Any]) -> pika.BasicProperties:
    from hrlc.jobs.broker import properties

    return properties(headers)


def serve(settings: Settings, health_port: int | None = None, health_host: str = "127.0.0.1") -> int:
    """`hrlc status-consumer`: consume until SIGTERM/SIGINT; the exit code (2: schema behind, port taken)."""
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    quiet_clients(settings.log_level)
    consumer = StatusConsumer(settings=settings)
    signal.signal(signal.SIGTERM, consumer.stop)
    signal.signal(signal.SIGINT, consumer.stop)
    port = settings.health_port if health_port is None else health_port
    if port and not serve_health(consumer.health, port, health_host):
        return 2
    try:
        consumer.run()
    except SchemaBehind as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0

"""The queue worker: `hrlc worker --processor NAME [--concurrency N]` (DESIGN.md §3).

Consumes `hrlc.tasks.<NAME>` with prefetch 1 and manual acknowledgement. For each task message:
1. validate it against the task schema; a malformed message goes to the dead-letter queue with the reason
   (header `x-hrlc-reason`, and logged), never crashes the worker;
2. skip it (status canceled) if its task was canceled in the job store, or belongs to an older run of its job
   (the task row's `run` is newer than the message's: the job was started again);
3. if every output of the task already exists (a redelivery after a crash), publish finished at once; if another
   task is computing the same outputs right now (two jobs asking for the same products, or a redelivery while an
   earlier attempt still runs), wait for it (`_single_flight`: a session advisory lock in the job store, released
   with a killed holder's session) and then find them;
4. otherwise publish running, run the processor in a thread (the connection keeps serving heartbeats and
   publishes throttled progress); the processor's items are staged, not registered (`hrlc.jobs.staging`).
   When it returns, check the task's state once more, holding a share lock on the task row (a cancel waits
   for it) and advisory locks on the task's lake keys: canceled or superseded -> nothing is registered;
   else register the staged items, write the task's log record in the lake, commit, publish finished with
   the STAC item hrefs *with publisher confirms*, and only then ack. A worker killed before the ack leaves
   the task unacknowledged, so RabbitMQ redelivers it to another worker; outputs are idempotent. A worker
   whose broker connection breaks while its processor runs lets the processor finish and commit, then
   reconnects: the redelivered task finds its outputs registered instead of being computed twice.
   A canceled task (stopped by `ctx.check_cancelled()` or by that last check) registers nothing and removes
   the lake keys it created (`hrlc.jobs.staging.discard`: never a key that existed before or is registered).
Bad input (`ProcessorError`, invalid params) -> error status + dead-letter, no retry. Other exceptions are
retried with exponential back-off (`HRLC_TASK_MAX_ATTEMPTS`, default 3; `HRLC_RETRY_BACKOFF_S`, default 2),
counting redeliveries through the quorum queue's `x-delivery-count`; then error status + dead-letter.
Status messages answer in the task message's version, with its run (`TaskMessage.status`).
The worker registers itself (and its processor) in the job store and heartbeats every 10 s; `ctx.cancelled`
reads the task's state there (at most once a second). Without a reachable job store it still works, with
neither registry nor cancel checks (and registers a task's items when the processor returns).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from typing import Any

import pika
import psycopg
from pika.adapters.blocking_connection import BlockingChannel
from pydantic import ValidationError

from hrlc.ancillary.port import AncillaryLayers
from hrlc.catalog.port import Catalog
from hrlc.db.migrations import SchemaBehind
from hrlc.jobs import jobstore, staging
from hrlc.jobs.broker import Topology, connect, declare_common, declare_task_queue, properties
from hrlc.jobs.health import Health, serve_health
from hrlc.jobs.messages import MessageError, TaskMessage, now_iso, parse_task
from hrlc.lake.layout import item_key_of, log_key
from hrlc.lake.store import Store
from hrlc.outage import Outage, quiet_clients
from hrlc.processors.base import Cancelled, Context, Processor, ProcessorError, registry
from hrlc.settings import Settings, defaults
from hrlc.training.port import TrainingSamples

log = logging.getLogger("hrlc.worker")
BROKER_ERRORS = (pika.exceptions.AMQPConnectionError, pika.exceptions.ChannelClosed, ConnectionError)


def load_entry_point(spec: str) -> type[Processor[Any]]:
    """`module:Class` -> the processor class."""
    import importlib

    module, _, attr = spec.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj  # type: ignore[return-value]


class _StoppedLate(Cancelled):
    """The task was canceled (or superseded) after its processor returned, before anything was registered."""


def _compatible(planned: str, mine: str) -> bool:
    """Same semver major version (0.x: same minor)."""
    a, b = planned.split("."), mine.split(".")
    return a[0] == b[0] and (a[0] != "0" or a[1] == b[1])


class Worker:
    def __init__(
        self,
        processor: type[Processor[Any]],
        *,
        url: str | None = None,
        topo: Topology | None = None,
        dsn: str | None = "",
        store: Store,
        catalog: Catalog,
        training: TrainingSamples | None = None,
        ancillary: AncillaryLayers | None = None,
        entry_point: str = "",
        max_attempts: int | None = None,
        backoff_s: float | None = None,
        heartbeat_s: float = 10.0,
        settings: Settings | None = None,
    ):
        """The processor runs on `store` and `catalog` (the ports of `hrlc.backends`). Broker, queue prefix, job
        store (`dsn=""`: from the settings; None: none), attempts and back-off default to `settings` (the process
        reads them: `hrlc worker`; None: the defaults, `hrlc.settings.defaults`)."""
        self.settings = settings or defaults()
        self.cls = processor
        self.proc = processor()
        self.url = url or self.settings.broker_url
        self.topo = topo or Topology.from_settings(self.settings)
        self.dsn = self.settings.jobs_dsn if dsn == "" else dsn
        self.store, self.catalog = store, catalog
        self.training, self.ancillary = training, ancillary  # the processor's other ports (None: it has none)
        self.entry_point = entry_point or f"{processor.__module__}:{processor.__qualname__}"
        self.max_attempts = max_attempts or self.settings.task_max_attempts
        self.backoff_s = self.settings.retry_backoff_s if backoff_s is None else backoff_s
        self.heartbeat_s = heartbeat_s
        self.id = f"{socket.gethostname()}:{os.getpid()}:{processor.name}"
        self.stopping = False
        self.health = Health(f"worker {processor.name}", ["broker"] + (["job store"] if self.dsn else []))
        self._db: Any = None
        self._db_lock = threading.Lock()
        self._lock_db: psycopg.Connection[Any] | None = (
            None  # used by the task thread only (one task at a time)
        )
        self._flight_db: psycopg.Connection[Any] | None = None  # the main thread's: `_single_flight`
        self._last_beat = 0.0
        self.conn: pika.BlockingConnection | None = None
        self.ch: BlockingChannel | None = None  # consuming; advisory status (running/progress)
        self.confirm: BlockingChannel | None = None  # terminal statuses and dead-letters, confirmed

    # ------------------------------------------------------------------------------------------ resources
    def _db_call(self, fn: Any, *args: Any, **kw: Any) -> Any:
        """Run a job-store call; None (and a reconnect next time) if the database is unreachable."""
        if self.dsn is None:
            return None
        with self._db_lock:
            try:
                if self._db is None or self._db.closed:
                    self._db = jobstore.connect(self.dsn, autocommit=True)
                result = fn(self._db, *args, **kw)
                self.health.up("job store")
                return result
            except Exception as e:  # noqa: BLE001 - the registry is best effort; the queue is the contract
                log.warning("job store unavailable: %s", e)
                self.health.down("job store", e)
                try:
                    if self._db is not None:
                        self._db.close()
                except Exception:  # noqa: BLE001
                    pass
                self._db = None
                return None

    def _beat(self, force: bool = False) -> None:
        if self.dsn is None or (not force and time.monotonic() - self._last_beat < self.heartbeat_s):
            return
        self._last_beat = time.monotonic()
        self._db_call(
            jobstore.heartbeat,
            self.id,
            self.cls.name,
            self.cls.version,
            host=socket.gethostname(),
            pid=os.getpid(),
        )

    def _stopped(self, msg: TaskMessage) -> str | None:
        """Why the task must not run (on): canceled, or superseded by a newer run of its job; else None."""
        return _stop_reason(msg, self._db_call(jobstore.task_state, msg.job_id, msg.task_id))

    # ------------------------------------------------------------------------------------------ publishing
    def _status(
        self,
        msg: TaskMessage,
        state: str,
        progress: float,
        message: str = "",
        outputs: list[str] | None = None,
        attempt: int | None = None,
        confirmed: bool = True,
    ) -> None:
        status = msg.status(
            state=state,
            progress=max(0.0, min(1.0, progress)),
            message=message[:4000],
            outputs=outputs or [],
            worker=self.id,
            time=now_iso(),
            attempt=attempt,
        )
        ch = self.confirm if confirmed else self.ch
        assert ch is not None
        props = properties(version=status.message_version)
        ch.basic_publish("", self.topo.status_queue, status.to_json(), props, mandatory=confirmed)

    def _dead_letter(self, body: bytes, reason: str) -> None:
        log.error("task message dead-lettered: %s", reason)
        assert self.confirm is not None
        self.confirm.basic_publish(
            self.topo.dead_exchange, self.topo.dead_queue, body, properties({"x-hrlc-reason": reason[:1000]})
        )

    # ------------------------------------------------------------------------------------------ one task
    def _finished_hrefs(self, keys: list[str]) -> list[str] | None:
        if not staging.registered(self.store, keys):
            return None
        return [self.store.href(k) for k in dict.fromkeys(k for k in map(item_key_of, keys) if k)]

    def handle(self, method: Any, props: Any, body: bytes) -> None:
        assert self.ch is not None and self.conn is not None
        tag = method.delivery_tag
        try:
            msg = parse_task(body)
        except MessageError as e:
            self._dead_letter(body, str(e))
            self.ch.basic_ack(tag)
            return
        redeliveries = int((props.headers or {}).get("x-delivery-count") or 0)
        attempt = msg.attempt + redeliveries
        if msg.processor != self.cls.name or not _compatible(msg.processor_version, self.cls.version):
            reason = (
                f"task for {msg.processor} {msg.processor_version} reached worker of "
                f"{self.cls.name} {self.cls.version}"
            )
            self._status(msg, "error", 0.0, reason, attempt=attempt)
            self._dead_letter(body, reason)
            self.ch.basic_ack(tag)
            return
        stopped = self._stopped(msg)
        if stopped is not None:
            self._status(msg, "canceled", 0.0, f"{stopped} before it started", attempt=attempt)
            self.ch.basic_ack(tag)
            return
        try:
            params = self.proc.parse_params(msg.params)
            keys = self.proc.outputs(params)
            done = self._finished_hrefs(keys)
        except (ValidationError, ProcessorError) as e:
            reason = f"invalid params for {msg.processor}: {str(e).splitlines()[0]}"
            self._status(msg, "error", 0.0, reason, attempt=attempt)
            self._dead_letter(body, reason)
            self.ch.basic_ack(tag)
            return
        kind: str = "error"
        value: Any = "the task ended without a result"
        try:
            owner = self._owner(msg)
            if done is None:
                self._status(
                    msg, "running", 0.0, f"attempt {attempt} on {self.id}", attempt=attempt, confirmed=False
                )
                with self._single_flight(msg, keys, attempt) as done:
                    if done is None:
                        kind, value = self._run(msg, params, keys, attempt, owner)
            if done is not None and owner not in (None, staging.UNKNOWN_OWNER):
                with self._task_lock(msg, keys, row=False):
                    staging.adopt(self.catalog, done, owner)
        except BROKER_ERRORS:
            raise  # the run loop reconnects; the task is redelivered
        except Exception as e:  # noqa: BLE001 - job store or catalogue down: retried like a failed run
            kind, value = "error", f"{type(e).__name__}: {e}"
        else:
            if done is not None:
                self._status(msg, "finished", 1.0, "outputs exist: not recomputed", done, attempt=attempt)
                self.ch.basic_ack(tag)
                return
        if kind == "ok":
            self._status(msg, "finished", 1.0, f"{len(value)} items", value, attempt=attempt)
            self.ch.basic_ack(tag)
        elif kind == "canceled":
            self._status(msg, "canceled", 0.0, value, attempt=attempt)
            self.ch.basic_ack(tag)
        elif kind == "bad-input":
            self._status(msg, "error", 0.0, value, attempt=attempt)
            self._dead_letter(body, value)
            self.ch.basic_ack(tag)
        elif attempt < self.max_attempts:
            delay = self.backoff_s * 2 ** (attempt - 1)
            self._status(
                msg,
                "queued",
                0.0,
                f"attempt {attempt} failed ({value}); retrying in {delay:g} s",
                attempt=attempt,
            )
            self.conn.sleep(delay)  # back-off while keeping the connection alive
            self.ch.basic_nack(tag, requeue=True)
        else:
            reason = f"failed after {attempt} attempts: {value}"
            self._status(msg, "error", 0.0, reason, attempt=attempt)
            self._dead_letter(body, reason)
            self.ch.basic_ack(tag)

    def _owner(self, msg: TaskMessage) -> str | None:
        """The user of the task's job: None without a job store or without a job row (a bare task message: the
        deployment's own data); `staging.UNKNOWN_OWNER` when the job store cannot be reached (the items are
        then registered private to operators, never public: fail closed, and the task still runs)."""
        if self.dsn is None:
            return None
        found = self._db_call(lambda conn: ("ok", jobstore.job_owner(conn, msg.job_id)))
        if found is None:
            log.warning(
                "job store unavailable: the items of task %s are registered without owner", msg.task_id
            )
            return staging.UNKNOWN_OWNER
        return found[1]

    def _run(
        self, msg: TaskMessage, params: Any, keys: list[str], attempt: int, owner: str | None = None
    ) -> tuple[str, Any]:
        assert self.conn is not None
        progress_q: queue.SimpleQueue[tuple[float, str]] = queue.SimpleQueue()
        result: dict[str, Any] = {}
        last_check = [0.0, False]

        def cancelled() -> bool:
            if time.monotonic() - last_check[0] >= 1.0:
                last_check[0] = time.monotonic()
                last_check[1] = self._stopped(msg) is not None
            return bool(last_check[1])

        staged = staging.StagedCatalog(self.catalog)
        recording = staging.RecordingStore(self.store)
        ctx = Context(
            store=recording,  # a Store by delegation
            catalog=staged,
            training=self.training,
            ancillary=self.ancillary,  # a shared cache, not task output: its layers and items are not staged
            progress=lambda f, m: progress_q.put((f, m)),
            log=logging.getLogger(f"hrlc.processor.{msg.processor}"),
            cancelled=cancelled,
            owner=owner,
        )

        def target() -> None:
            started = now_iso()
            t0 = time.perf_counter()
            try:
                items = self.proc.run(params, ctx)
                with self._task_lock(msg, keys + list(recording.written)) as stopped:
                    if stopped is not None:  # canceled after the processor's last check: register nothing
                        raise _StoppedLate(f"{stopped} while running (after its processor returned)")
                    staging.commit(self.catalog, staged, recording, owner)
                    self._write_log(msg, params, started, time.perf_counter() - t0, items, attempt)
                result["ok"] = items
            except Cancelled as e:
                self._discard(msg, keys, recording)
                late = isinstance(e, _StoppedLate)
                result["canceled"] = (
                    str(e) if late else f"{self._stopped(msg) or 'task canceled'} while running"
                )
            except (ProcessorError, ValidationError) as e:
                result["bad-input"] = f"{type(e).__name__}: {str(e).splitlines()[0]}"
            except Exception as e:  # noqa: BLE001 - reported as a status, retried
                log.error("task %s failed: %s", msg.task_id, traceback.format_exc())
                result["error"] = f"{type(e).__name__}: {e}"

        thread = threading.Thread(target=target, name=f"task-{msg.task_id}", daemon=True)
        thread.start()
        last_progress = 0.0
        lost: BaseException | None = None  # the broker connection broke while the processor ran
        while True:
            thread.join(0.05)
            latest = None
            while not progress_q.empty():
                latest = progress_q.get()
            try:
                if lost is None and latest is not None and time.monotonic() - last_progress > 0.5:
                    last_progress = time.monotonic()
                    self._status(msg, "running", latest[0], latest[1], attempt=attempt, confirmed=False)
                if not thread.is_alive():
                    break
                if lost is None:
                    self.conn.process_data_events(time_limit=0)
            except BROKER_ERRORS as e:
                # let the processor finish and commit its outputs: the broker redelivers the task (its delivery
                # tag died with the connection) and the next worker finds them registered, instead of computing
                # them again while this thread still does
                lost = e
                self.health.down("broker", e)
                log.warning(
                    "broker lost while task %s runs: it finishes, its outputs wait for the redelivery",
                    msg.task_id,
                )
            self.health.tick()
            self._beat()
        if lost is not None:
            raise lost
        for kind in ("ok", "canceled", "bad-input", "error"):
            if kind in result:
                return kind, result[kind]
        return "error", "processor thread ended without a result"

    @contextlib.contextmanager
    def _task_lock(self, msg: TaskMessage, keys: list[str], row: bool = True) -> Iterator[str | None]:
        """A transaction of its own in the job store that holds advisory locks on the lake `keys` and (`row`) a
        share lock on the task's row, so a cancel waits until the block ends; yields why the task must stop
        (`_stop_reason`; None: go on). Without a reachable job store: no locks, None."""
        conn = self._lock_connection(msg)
        if conn is None or conn.closed:
            yield None
            return
        try:
            with conn.transaction():
                state = jobstore.task_state(conn, msg.job_id, msg.task_id, lock=True) if row else None
                with staging.lock_keys(conn, keys):
                    yield _stop_reason(msg, state)
        except psycopg.OperationalError:
            conn.close()  # reconnect next time
            raise

    @contextlib.contextmanager
    def _single_flight(self, msg: TaskMessage, keys: list[str], attempt: int) -> Iterator[list[str] | None]:
        """Hold the cluster-wide "computing" lock of the task's outputs (a session advisory lock in the job store)
        while the task runs, so that tasks with the same outputs (two jobs asking for the same products, or a
        redelivery while an earlier attempt still runs) compute them once: the later one waits, heartbeating, and
        then finds them registered. A killed holder's lock goes with its database session. Yields the output hrefs
        when they were made meanwhile (nothing to run), else None; without a job store, None at once."""
        conn = self._flight_connection()
        if conn is None or not keys:
            yield None
            return
        name = f"hrlc.compute:{min(keys)}"
        waited = held = False
        try:
            while not _try_lock(conn, name):
                if not waited:
                    waited = True
                    log.info("task %s waits: another task computes the same products", msg.task_id)
                    self._status(msg, "running", 0.0, "waiting for another task computing the same products",
                                 attempt=attempt, confirmed=False)  # fmt: skip
                if self._stopped(msg) is not None:
                    break  # canceled meanwhile: the run stops at its first check
                assert self.conn is not None
                self.conn.process_data_events(time_limit=0.5)
                self.health.tick()
                self._beat()
            else:
                held = True
        except psycopg.OperationalError as e:
            log.warning("job store unavailable (%s): task %s runs without waiting for others", _first_line(e),
                        msg.task_id)  # fmt: skip
            self._close_flight()
        try:
            yield self._finished_hrefs(keys) if waited else None
        finally:
            if held and self._flight_db is not None:
                try:
                    self._flight_db.execute("select pg_advisory_unlock(hashtext(%s))", (name,))
                except psycopg.Error:
                    self._close_flight()  # the session, and its lock, are gone

    def _flight_connection(self) -> psycopg.Connection[Any] | None:
        """The main thread's connection for `_single_flight` locks (the task thread has its own)."""
        if self.dsn is None:
            return None
        if self._flight_db is None or self._flight_db.closed:
            try:
                self._flight_db = jobstore.connect(self.dsn, autocommit=True)
            except psycopg.OperationalError:
                return None
        return self._flight_db

    def _close_flight(self) -> None:
        if self._flight_db is not None:
            with contextlib.suppress(psycopg.Error):
                self._flight_db.close()
        self._flight_db = None

    def _lock_connection(self, msg: TaskMessage) -> psycopg.Connection[Any] | None:
        """The task thread's own job store connection (the main thread's heartbeats use `_db`), alive: it sat idle
        while the processor ran, so a database restart meanwhile dropped it; then one new connection is made
        (one round trip per task, instead of a failed attempt that reruns the processor). None: unreachable."""
        if self.dsn is None:
            return None
        for _ in range(2):
            try:
                if self._lock_db is None or self._lock_db.closed:
                    self._lock_db = jobstore.connect(self.dsn, autocommit=True)
                self._lock_db.execute("select 1")
                return self._lock_db
            except psycopg.OperationalError as e:
                if self._lock_db is not None:
                    self._lock_db.close()
                self._lock_db = None
                error = e
        log.warning(
            "job store unavailable (%s): task %s goes on without locks", _first_line(error), msg.task_id
        )
        return None

    def _discard(self, msg: TaskMessage, keys: list[str], recording: staging.RecordingStore) -> None:
        """Remove what a canceled task created in the lake (`hrlc.jobs.staging.discard`); best effort."""
        if not recording.written:
            return
        try:
            with self._task_lock(msg, keys + list(recording.written), row=False):
                removed = staging.discard(recording, keys)
        except Exception as e:  # noqa: BLE001 - a cleanup failure must not turn a cancel into an error
            log.warning("task %s canceled; could not remove what it wrote: %s", msg.task_id, e)
            return
        if removed:
            log.info("task %s canceled: removed %d key(s) it wrote", msg.task_id, len(removed))

    def _write_log(
        self, msg: TaskMessage, params: Any, started: str, seconds: float, items: list[str], attempt: int
    ) -> None:
        record = {
            "job_id": msg.job_id,
            "task_id": msg.task_id,
            "processor": self.cls.name,
            "processor_version": self.cls.version,
            "params": params.model_dump(mode="json"),
            "started": started,
            "finished": now_iso(),
            "seconds": round(seconds, 3),
            "items": items,
            "attempt": attempt,
            "runner": f"worker {self.id}",
        }
        self.store.write_bytes(log_key(msg.task_id), json.dumps(record, indent=1).encode())

    # ------------------------------------------------------------------------------------------ main loop
    def _close_broker(self) -> None:
        conn, self.conn = self.conn, None
        try:
            if conn is not None and not conn.is_closed:
                conn.close()
        except Exception:  # noqa: BLE001 - a broken connection may refuse even its own close
            pass

    def _open(self) -> None:
        self.conn = connect(self.url, heartbeat=30, name=f"hrlc worker {self.id}")
        self.ch = self.conn.channel()
        declare_common(self.ch, self.topo)
        self.queue = declare_task_queue(self.ch, self.topo, self.cls.name)
        self.ch.basic_qos(prefetch_count=1)
        self.confirm = self.conn.channel()
        self.confirm.confirm_delivery()

    def check_schema(self) -> None:
        """`SchemaBehind` when the job store is reachable and older than the code (the worker would write rows
        it does not know); an unreachable job store is no reason not to start (the registry is best effort)."""
        if self.dsn is None:
            return
        try:
            with jobstore.connect(self.dsn, autocommit=True) as conn:
                jobstore.check_schema(conn)
        except psycopg.OperationalError as e:
            log.warning("job store unavailable at start (%s): going on without the registry", _first_line(e))

    def run(self, max_tasks: int | None = None) -> int:
        """Consume until stopped (SIGTERM/SIGINT) or `max_tasks` messages were handled; returns that count."""
        self.check_schema()
        self._db_call(jobstore.register_processor, self.cls.name, self.cls.version, self.entry_point)
        self._beat(force=True)
        handled = 0
        outage = Outage("broker", log)
        while not self.stopping:
            try:
                self._open()
                assert self.ch is not None
                outage.recovered()
                self.health.up("broker")
                log.info("worker %s consuming %s", self.id, self.queue)
                for method, props, body in self.ch.consume(self.queue, inactivity_timeout=1.0):
                    self.health.tick()
                    if method is not None:
                        self.handle(method, props, body)
                        handled += 1
                    self._beat()
                    if self.stopping or (max_tasks is not None and handled >= max_tasks):
                        break
                self.ch.cancel()
                self.conn.close()  # type: ignore[union-attr]
                break
            except BROKER_ERRORS as e:
                self._close_broker()  # an abandoned connection would keep its unacknowledged task
                self.health.down("broker", e)
                if self.stopping:
                    break
                time.sleep(outage.failed(e))
                self.health.tick()
        self._db_call(jobstore.remove_worker, self.id)
        if self._lock_db is not None:
            self._lock_db.close()
        self._close_flight()
        return handled

    def stop(self, *_: Any) -> None:
        self.stopping = True


def _try_lock(conn: psycopg.Connection[Any], name: str) -> bool:
    """Take the session advisory lock `name` if it is free (job store rows are dicts)."""
    row = conn.execute("select pg_try_advisory_lock(hashtext(%s)) as got", (name,)).fetchone()
    return bool(row and row["got"])


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _stop_reason(msg: TaskMessage, state: tuple[str, int] | None) -> str | None:
    """Why a task must not run (on), from its row's (status, run): "task canceled", "task of run N superseded by
    run M" (its job was started again); None when it may (also when there is no row: no job store)."""
    if state is None:
        return None
    status, run = state
    if msg.run is not None and run != msg.run:
        return f"task of run {msg.run} superseded by run {run}"
    return "task canceled" if status == "canceled" else None


def serve(
    processor: str,
    *,
    settings: Settings,
    store: Store,
    catalog: Catalog,
    training: TrainingSamples | None = None,
    ancillary: AncillaryLayers | None = None,
    concurrency: int = 1,
    entry_point: str | None = None,
    health_port: int | None = None,
    health_host: str = "127.0.0.1",
) -> int:
    """`hrlc worker`: consume the processor's queue until SIGTERM/SIGINT, with the ports the process built
    (`hrlc.backends`); returns the exit code (2: unknown processor, schema behind, health port taken).
    `concurrency` N > 1 starts N processes of `hrlc worker` (health ports P..P+N-1) and waits for them."""
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    quiet_clients(settings.log_level)
    port = settings.health_port if health_port is None else health_port
    if concurrency > 1:
        cmd = [sys.executable, "-m", "hrlc.cli", "worker", "--processor", processor, "--concurrency", "1"]
        cmd += ["--health-host", health_host]
        if entry_point:
            cmd += ["--entry-point", entry_point]
        children = [
            subprocess.Popen(cmd + (["--health-port", str(port + i)] if port else []))
            for i in range(concurrency)
        ]

        def forward(signum: int, _frame: Any) -> None:
            for c in children:
                if c.poll() is None:
                    c.send_signal(signum)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        return max(c.wait() for c in children)
    if entry_point:
        cls = load_entry_point(entry_point)
    else:
        procs = registry()
        if processor not in procs:
            log.error("no processor %r registered; known: %s", processor, sorted(procs))
            return 2
        cls = procs[processor]
    if cls.name != processor:
        log.error("entry point %s is processor %r, not %r", entry_point, cls.name, processor)
        return 2
    worker = Worker(
        cls,
        entry_point=entry_point or "",
        settings=settings,
        store=store,
        catalog=catalog,
        training=training,
        ancillary=ancillary,
    )
    try:
        worker.check_schema()
    except SchemaBehind as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    if port and not serve_health(worker.health, port, health_host):
        return 2
    worker.run()
    return 0

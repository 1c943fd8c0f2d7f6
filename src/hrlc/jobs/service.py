"""The job service: what the openEO API calls to create, start, watch, cancel and collect batch jobs.

Backed by the job store (PostgreSQL, `hrlc_jobs`) and the broker (RabbitMQ). Planning happens at creation
(a bad process graph raises `PlanError` and nothing is stored) and again at start (tasks rows, then the
ready tasks are published). Every method takes the user: another user's job is `JobNotFound`.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from hrlc.jobs import jobstore
from hrlc.jobs.backend import Job, JobNotFound, JobStateError, LogEntry
from hrlc.jobs.broker import Publisher, Topology
from hrlc.jobs.jobstore import LEVELS, SCHEMA
from hrlc.jobs.planner import Admission, PlanError, UserProcesses, plan, processor_versions, publish_ready
from hrlc.settings import DEFAULT_BROKER_URL, DEFAULT_JOBS_DSN, Settings

__all__ = ["Job", "JobNotFound", "JobService", "JobStateError", "LogEntry", "PlanError"]

ACTIVE = ("queued", "running")


def _job(row: dict[str, Any]) -> Job:
    return Job(
        id=row["id"],
        user=row["user_id"],
        title=row["title"],
        description=row["description"],
        process=row["process"],
        status=row["status"],
        progress=float(row["progress"]),
        created=row["created"],
        updated=row["updated"],
        queued=row["queued"],
        started=row["started"],
        finished=row["finished"],
        error=row["error"],
        run=int(row.get("run") or 0),
    )


class JobService:
    def __init__(
        self,
        dsn: str | None = None,
        broker_url: str | None = None,
        topology: Topology | None = None,
        *,
        settings: Settings | None = None,
    ):
        """The job store `dsn`, the broker and the queue prefix, each given or from `settings` (`HRLC_JOBS_DSN`,
        `HRLC_BROKER_URL`, `HRLC_BROKER_PREFIX`), else the local defaults."""
        self.dsn = dsn or (settings.jobs_dsn if settings is not None else DEFAULT_JOBS_DSN)
        self.broker_url = broker_url or (settings.broker_url if settings is not None else DEFAULT_BROKER_URL)
        self.pool: ConnectionPool[Any] = ConnectionPool(
            self.dsn,
            min_size=1,
            max_size=4,
            kwargs={"row_factory": dict_row, "connect_timeout": 10, "application_name": "hrlc-api"},
            check=ConnectionPool.check_connection,  # a restarted PostgreSQL costs no request: stale ones replaced
            timeout=5,  # then 503: a request waits through a short restart, not a long outage
            open=True,
        )
        with self.pool.connection() as conn:
            jobstore.check_schema(conn)  # SchemaBehind: run `hrlc migrate` (no DDL here)
        self.publisher = Publisher(self.broker_url, topology or Topology.from_settings(settings))
        self._lock = threading.Lock()

    def close(self) -> None:
        self.publisher.close()
        self.pool.close()

    # ------------------------------------------------------------------------------------------ helpers
    def _row(self, conn: Any, user: str, job_id: str, lock: bool = False) -> dict[str, Any]:
        row = conn.execute(
            f"select * from {SCHEMA}.jobs where id = %s and user_id = %s" + (" for update" if lock else ""),
            (job_id, user),
        ).fetchone()
        if row is None:
            raise JobNotFound(job_id)
        return dict(row)

    # ------------------------------------------------------------------------------------------ CRUD
    def create_job(
        self,
        user: str,
        process: dict[str, Any],
        title: str | None = None,
        description: str | None = None,
        resolve: UserProcesses | None = None,
        admit: Admission | None = None,
    ) -> Job:
        """`resolve(id)`: the user's own process of that id, or None (for graphs that use them); `admit`: the
        budget and inputs allowed to the user (`planner.TooLarge`, `planner.InputNotAllowed` beyond them)."""
        plan(process, resolve, admit)  # PlanError propagates; nothing stored
        job_id = uuid.uuid4().hex
        with self.pool.connection() as conn, conn.transaction():
            row = conn.execute(
                f"insert into {SCHEMA}.jobs (id, user_id, title, description, process) "
                "values (%s, %s, %s, %s, %s) returning *",
                (job_id, user, title, description, jobstore.jsonb(process)),
            ).fetchone()
            jobstore.add_log(conn, job_id, "info", "job created")
        return _job(row)

    def list_jobs(self, user: str, limit: int = 100, offset: int = 0) -> tuple[list[Job], int]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                f"select * from {SCHEMA}.jobs where user_id = %s order by created desc, id limit %s offset %s",
                (user, limit, offset),
            ).fetchall()
            total = conn.execute(
                f"select count(*) as n from {SCHEMA}.jobs where user_id = %s", (user,)
            ).fetchone()
        return [_job(r) for r in rows], int(total["n"]) if total else 0

    def get_job(self, user: str, job_id: str) -> Job:
        with self.pool.connection() as conn:
            return _job(self._row(conn, user, job_id))

    def update_job(
        self,
        user: str,
        job_id: str,
        *,
        title: str | None = None,
        description: str | None = None,
        process: dict[str, Any] | None = None,
        resolve: UserProcesses | None = None,
        admit: Admission | None = None,
    ) -> Job:
        if process is not None:
            plan(process, resolve, admit)
        with self.pool.connection() as conn, conn.transaction():
            row = self._row(conn, user, job_id, lock=True)
            if row["status"] in ACTIVE:
                raise JobStateError(f"job {job_id} is {row['status']}: it cannot be modified")
            row = conn.execute(
                f"update {SCHEMA}.jobs set title = coalesce(%s, title), description = coalesce(%s, description), "
                "process = coalesce(%s, process), updated = now() where id = %s returning *",
                (title, description, None if process is None else jobstore.jsonb(process), job_id),
            ).fetchone()
        return _job(row)

    def delete_job(self, user: str, job_id: str) -> None:
        job = self.get_job(user, job_id)
        if job.status in ACTIVE:
            self.cancel_job(user, job_id)
        with self.pool.connection() as conn, conn.transaction():
            conn.execute(f"delete from {SCHEMA}.jobs where id = %s and user_id = %s", (job_id, user))

    # ------------------------------------------------------------------------------------------ lifecycle
    def start_job(
        self, user: str, job_id: str, resolve: UserProcesses | None = None, admit: Admission | None = None
    ) -> Job:
        """Plan the job into task rows and publish the ready tasks; status queued. A queued or running job is
        left as it is; a finished, failed or canceled one is planned again as a new run (`jobs.run` + 1, carried
        by its task and status messages: what an older run still sends is ignored, and its workers stop).
        Finished tasks are not recomputed: workers find their outputs."""
        with self.pool.connection() as conn:
            with conn.transaction():
                row = self._row(conn, user, job_id, lock=True)
                if row["status"] in ACTIVE:
                    return _job(row)
                dag = plan(
                    row["process"], resolve, admit
                )  # the user's processes and admission as they are now
                versions = processor_versions()
                run = int(row["run"]) + 1
                conn.execute(f"delete from {SCHEMA}.tasks where job_id = %s", (job_id,))
                for seq, task in enumerate(dag.order()):
                    conn.execute(
                        f"insert into {SCHEMA}.tasks (job_id, id, run, seq, processor, processor_version, "
                        "params, depends_on) values (%s, %s, %s, %s, %s, %s, %s, %s)",
                        (
                            job_id,
                            task.id,
                            run,
                            seq,
                            task.processor,
                            versions[task.processor],
                            jobstore.jsonb(task.params),
                            list(task.depends_on),
                        ),
                    )
                conn.execute(
                    f"update {SCHEMA}.jobs set status = 'queued', run = %s, progress = 0, queued = now(), "
                    "started = null, finished = null, error = null, updated = now() where id = %s",
                    (run, job_id),
                )
                jobstore.add_log(conn, job_id, "info", f"job queued with {len(dag.tasks)} tasks (run {run})")
                publish_ready(job_id, conn=conn, publisher=self.publisher)
            return _job(self._row(conn, user, job_id))

    def cancel_job(self, user: str, job_id: str) -> Job:
        """Cancel a queued or running job: its tasks not yet finished are marked canceled (workers check the
        flag between steps and once more before they register a task's products, drop queued messages of
        canceled tasks, and remove what a canceled task wrote; see `hrlc.jobs.worker`)."""
        with self.pool.connection() as conn:
            with conn.transaction():
                row = self._row(conn, user, job_id, lock=True)
                if row["status"] in ACTIVE:
                    conn.execute(
                        f"update {SCHEMA}.tasks set status = 'canceled', updated = now() where job_id = %s "
                        "and status not in ('finished', 'error', 'canceled')",
                        (job_id,),
                    )
                    conn.execute(
                        f"update {SCHEMA}.jobs set status = 'canceled', finished = now(), updated = now() "
                        "where id = %s",
                        (job_id,),
                    )
                    jobstore.add_log(conn, job_id, "warning", "job canceled by the user")
            return _job(self._row(conn, user, job_id))

    # ------------------------------------------------------------------------------------------ outputs
    def logs(
        self, user: str, job_id: str, offset: str | None = None, limit: int = 100, level: str = "debug"
    ) -> list[LogEntry]:
        """Log entries after the entry `offset` (an id returned before), at `level` or above."""
        minimum = LEVELS.get(level, 10)
        levels = [name for name, v in LEVELS.items() if v >= minimum]
        after = int(offset) if offset and offset.isascii() and offset.isdigit() else 0  # not '³'.isdigit()
        with self.pool.connection() as conn:
            self._row(conn, user, job_id)
            rows = conn.execute(
                f"select * from {SCHEMA}.logs where job_id = %s and id > %s and level = any(%s) "
                "order by id limit %s",
                (job_id, after, levels, limit),
            ).fetchall()
        return [LogEntry(str(r["id"]), r["time"], r["level"], r["message"], r["task_id"]) for r in rows]

    def results(self, user: str, job_id: str, partial: bool = False) -> list[str]:
        """STAC item hrefs of the job's outputs, in task order. `JobStateError` unless the job finished
        (or `partial`: the outputs of the tasks finished so far)."""
        with self.pool.connection() as conn:
            row = self._row(conn, user, job_id)
            if row["status"] != "finished" and not partial:
                raise JobStateError(f"job {job_id} is {row['status']}, not finished")
            rows = conn.execute(
                f"select outputs from {SCHEMA}.tasks where job_id = %s and status = 'finished' order by seq",
                (job_id,),
            ).fetchall()
        return list(dict.fromkeys(h for r in rows for h in (r["outputs"] or [])))

    def tasks(self, user: str, job_id: str) -> list[dict[str, Any]]:
        """The job's task rows (state, progress, attempts, worker, outputs) in plan order."""
        with self.pool.connection() as conn:
            self._row(conn, user, job_id)
            return [
                dict(r)
                for r in conn.execute(
                    f"select * from {SCHEMA}.tasks where job_id = %s order by seq", (job_id,)
                ).fetchall()
            ]

    def registry(self) -> dict[str, list[dict[str, Any]]]:
        """Registered processors and live workers (for the API's registry view)."""
        with self.pool.connection() as conn:
            return {"processors": jobstore.processors(conn), "workers": jobstore.live_workers(conn)}

"""In-memory fakes of the API's ports, so route tests run in milliseconds without PostgreSQL or RabbitMQ (as
openeo-python-driver's dummy backend does). The catalogue and the lake are the embedded back ends themselves
(`StaticCatalog` over a `LocalStore` in a temporary folder): real code, no server.

`MemoryJobs` implements `hrlc.jobs.backend.JobsBackend` with the real planner (`hrlc.jobs.planner.plan`), so a
process that cannot run is refused exactly as `JobService` refuses it; what the queue would do later (tasks
running, products registered) a test does by hand with `finish`.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from hrlc.jobs.backend import Job, JobNotFound, JobStateError, LogEntry
from hrlc.jobs.planner import Admission, UserProcesses, plan

ACTIVE = ("queued", "running")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class MemoryJobs:
    """Batch jobs in a dict: created, planned, started and canceled as `JobService` does, never run."""

    jobs: dict[str, Job] = field(default_factory=dict)
    products: dict[str, list[str]] = field(default_factory=dict)  # job id -> item hrefs
    log: dict[str, list[LogEntry]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def _own(self, user: str, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None or job.user != user:
            raise JobNotFound(job_id)
        return job

    def create_job(
        self,
        user: str,
        process: dict[str, Any],
        title: str | None = None,
        description: str | None = None,
        resolve: UserProcesses | None = None,
        admit: Admission | None = None,
    ) -> Job:
        plan(process, resolve, admit)  # PlanError propagates; nothing stored
        now = _now() + dt.timedelta(microseconds=next(self._ids))  # distinct, ordered creation times
        job = Job(uuid.uuid4().hex, user, title, description, process, "created", 0.0, now, now, *[None] * 4)
        self.jobs[job.id] = job
        self._log(job.id, "info", "job created")
        return job

    def list_jobs(self, user: str, limit: int = 100, offset: int = 0) -> tuple[list[Job], int]:
        mine = sorted(
            (j for j in self.jobs.values() if j.user == user), key=lambda j: j.created, reverse=True
        )
        return mine[offset : offset + limit], len(mine)

    def get_job(self, user: str, job_id: str) -> Job:
        return self._own(user, job_id)

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
        job = self._own(user, job_id)
        if process is not None:
            plan(process, resolve, admit)
        if job.status in ACTIVE:
            raise JobStateError(f"job {job_id} is {job.status}: it cannot be modified")
        given = {"title": title, "description": description, "process": process}
        changes = {k: v for k, v in given.items() if v is not None}
        self.jobs[job_id] = replace(job, **changes, updated=_now())
        return self.jobs[job_id]

    def delete_job(self, user: str, job_id: str) -> None:
        self.cancel_job(user, job_id)
        del self.jobs[job_id]

    def start_job(
        self, user: str, job_id: str, resolve: UserProcesses | None = None, admit: Admission | None = None
    ) -> Job:
        job = self._own(user, job_id)
        if job.status in ACTIVE:
            return job
        plan(job.process, resolve, admit)
        self.jobs[job_id] = replace(job, status="queued", queued=_now(), run=job.run + 1, error=None)
        self._log(job_id, "info", f"job queued (run {job.run + 1})")
        return self.jobs[job_id]

    def cancel_job(self, user: str, job_id: str) -> Job:
        job = self._own(user, job_id)
        if job.status in ACTIVE:
            self.jobs[job_id] = replace(job, status="canceled", finished=_now())
        return self.jobs[job_id]

    def logs(
        self, user: str, job_id: str, offset: str | None = None, limit: int = 100, level: str = "debug"
    ) -> list[LogEntry]:
        self._own(user, job_id)
        after = int(offset) if offset and offset.isdigit() else 0
        return [e for e in self.log.get(job_id, []) if int(e.id) > after][:limit]

    def results(self, user: str, job_id: str, partial: bool = False) -> list[str]:
        job = self._own(user, job_id)
        if job.status != "finished" and not partial:
            raise JobStateError(f"job {job_id} is {job.status}, not finished")
        return list(self.products.get(job_id, []))

    def tasks(self, user: str, job_id: str) -> list[dict[str, Any]]:
        self._own(user, job_id)
        return []

    def registry(self) -> dict[str, list[dict[str, Any]]]:
        return {}

    def close(self) -> None:
        pass

    # -- what the queue would do
    def finish(self, job_id: str, hrefs: list[str], message: str = "finished") -> None:
        """The job's tasks ran: its products are `hrefs` (STAC item hrefs of the lake)."""
        job = self.jobs[job_id]
        self.jobs[job_id] = replace(job, status="finished", progress=100.0, started=_now(), finished=_now())
        self.products[job_id] = hrefs
        self._log(job_id, "info", message)

    def _log(self, job_id: str, level: str, message: str) -> None:
        entries = self.log.setdefault(job_id, [])
        entries.append(LogEntry(str(len(entries) + 1), _now(), level, message, None))


@dataclass
class MemoryProcessGraphs:
    """User-defined processes in a dict, per user (`hrlc.api.openeo.udp.ProcessGraphs`)."""

    rows: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def list(self, user: str) -> list[dict[str, Any]]:
        return [p for (u, _), p in sorted(self.rows.items()) if u == user]

    def get(self, user: str, pid: str) -> dict[str, Any] | None:
        return self.rows.get((user, pid))

    def put(self, user: str, pid: str, process: dict[str, Any]) -> None:
        self.rows[(user, pid)] = process

    def delete(self, user: str, pid: str) -> bool:
        return self.rows.pop((user, pid), None) is not None

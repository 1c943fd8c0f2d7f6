"""The jobs port: what the openEO API asks of batch jobs, and the records it gets back.

`hrlc.jobs.service.JobService` implements it on the job store (PostgreSQL) and the broker (RabbitMQ); the API
is typed against `JobsBackend` only, so its route tests run against an in-memory fake
(`tests/api/fakes.py`). Every method takes the user: another user's job is `JobNotFound`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from hrlc.jobs.planner import Admission, UserProcesses


class JobNotFound(KeyError):
    """No such job for this user."""


class JobStateError(ValueError):
    """The job's state does not allow the operation."""


@dataclass
class Job:
    id: str
    user: str
    title: str | None
    description: str | None
    process: dict[str, Any]
    status: str
    progress: float
    created: dt.datetime
    updated: dt.datetime
    queued: dt.datetime | None
    started: dt.datetime | None
    finished: dt.datetime | None
    error: str | None
    run: int = 0  # how many times the job was started (its current run)


@dataclass
class LogEntry:
    id: str
    time: dt.datetime
    level: str
    message: str
    task_id: str | None


class JobsBackend(Protocol):
    """Batch jobs of openEO users. Creating or updating a job plans its process (a bad one raises
    `PlanError` and nothing is stored); starting publishes its ready tasks."""

    def create_job(
        self,
        user: str,
        process: dict[str, Any],
        title: str | None = None,
        description: str | None = None,
        resolve: UserProcesses | None = None,
        admit: Admission | None = None,
    ) -> Job: ...

    def list_jobs(self, user: str, limit: int = 100, offset: int = 0) -> tuple[list[Job], int]: ...

    def get_job(self, user: str, job_id: str) -> Job: ...

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
    ) -> Job: ...

    def delete_job(self, user: str, job_id: str) -> None: ...

    def start_job(
        self, user: str, job_id: str, resolve: UserProcesses | None = None, admit: Admission | None = None
    ) -> Job: ...

    def cancel_job(self, user: str, job_id: str) -> Job: ...

    def logs(
        self, user: str, job_id: str, offset: str | None = None, limit: int = 100, level: str = "debug"
    ) -> list[LogEntry]: ...

    def results(self, user: str, job_id: str, partial: bool = False) -> list[str]:
        """The STAC item hrefs of the job's products (`partial`: also of a job not finished)."""
        ...

    def tasks(self, user: str, job_id: str) -> list[dict[str, Any]]: ...

    def registry(self) -> dict[str, list[dict[str, Any]]]:
        """The processor registry: processors by name, with their versions and workers."""
        ...

    def close(self) -> None: ...

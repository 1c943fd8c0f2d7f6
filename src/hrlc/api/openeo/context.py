"""What the routes of the openEO API share: settings, the authenticator, catalogue, process store, jobs.

One `OpenEOContext` lives on `app.state.openeo`; routes reach it with the `context` dependency."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from hrlc.api.openeo.auth import Authenticator
from hrlc.api.openeo.collections import CollectionSource
from hrlc.api.openeo.errors import OpenEOError
from hrlc.api.openeo.udp import ProcessGraphStore
from hrlc.settings import Settings
from hrlc.settings import pg_dsn as _catalog_dsn


def pg_dsn(settings: Settings) -> str | None:
    """The PostgreSQL DSN of the platform (`HRLC_CATALOG`), or None with the static catalogue."""
    return _catalog_dsn(settings.catalog)


def jobs_available() -> bool:
    """Whether the jobs back end (`hrlc.jobs.service`) is installed."""
    try:
        import hrlc.jobs.service  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class OpenEOContext:
    settings: Settings
    authenticator: Authenticator
    collections: CollectionSource
    dsn: str | None
    _udps: ProcessGraphStore | None = None
    _jobs: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def create(cls, settings: Settings) -> OpenEOContext:
        dsn = pg_dsn(settings)
        return cls(settings, Authenticator(settings), CollectionSource(dsn), dsn)

    def _need_db(self, what: str) -> str:
        if self.dsn is None:
            raise OpenEOError(
                "FeatureUnsupported",
                f"{what} needs the platform database: set HRLC_CATALOG to a postgresql:// DSN.",
            )
        return self.dsn

    @property
    def udps(self) -> ProcessGraphStore:
        with self._lock:
            if self._udps is None:
                self._udps = ProcessGraphStore(self._need_db("User-defined processes"))
            return self._udps

    @property
    def jobs(self) -> Any:
        """The `JobService` (created on first use)."""
        with self._lock:
            if self._jobs is None:
                from hrlc.jobs.service import JobService

                # the jobs back end's settings: HRLC_JOBS_DSN (default: the pgstac database of HRLC_CATALOG),
                # HRLC_BROKER_URL, HRLC_BROKER_PREFIX
                self._jobs = JobService(settings=self.settings)
            return self._jobs

    def user_process(self, user: str | None) -> Any:
        """A resolver of the user's own processes for validation (None without a user or database)."""
        if user is None or self.dsn is None:
            return None
        return lambda pid: self.udps.get(user, pid)


def context(request: Request) -> OpenEOContext:
    ctx: OpenEOContext = request.app.state.openeo
    return ctx


def base_url(request: Request) -> str:
    """The root URL of the openEO API, as the client sees it (mount and proxy prefix included)."""
    return str(request.base_url).rstrip("/")

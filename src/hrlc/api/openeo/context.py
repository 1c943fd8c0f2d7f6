"""What the routes of the openEO API share: settings, the authenticator, the back ends (catalogue, lake, jobs) and
the store of user-defined processes.

One `OpenEOContext` lives on `app.state.openeo`; routes reach it with the `context` dependency."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request

from hrlc.api.openeo.auth import Authenticator
from hrlc.api.openeo.collections import stac_collection
from hrlc.api.openeo.errors import OpenEOError
from hrlc.api.openeo.udp import ProcessGraphs, ProcessGraphStore
from hrlc.backends import Backends
from hrlc.catalog.port import Catalog
from hrlc.lake.store import Store
from hrlc.settings import Settings

if TYPE_CHECKING:
    from hrlc.jobs.backend import JobsBackend
    from hrlc.jobs.planner import UserProcesses
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
    """The openEO API's view of the back ends (`hrlc.backends`, built where the process starts, or fakes in route
    tests) and of its own parts: the authenticator and the store of user-defined processes."""

    settings: Settings
    authenticator: Authenticator
    backends: Backends
    process_graphs: ProcessGraphs | None = None  # None: the static catalogue, no database for them

    @classmethod
    def create(cls, settings: Settings, backends: Backends) -> OpenEOContext:
        """The context of `settings` over `backends`; user-defined processes live in the catalogue's PostgreSQL
        (`HRLC_CATALOG`), none with the static catalogue."""
        dsn = pg_dsn(settings)
        return cls(settings, Authenticator(settings), backends, ProcessGraphStore(dsn) if dsn else None)

    @property
    def catalog(self) -> Catalog:
        """Collections, sample items, data checks and synchronous evaluations read it."""
        return self.backends.catalog

    @property
    def lake(self) -> Store:
        """Where the catalogue's products (and job results) are."""
        return self.backends.store

    @property
    def jobs(self) -> JobsBackend:
        """Batch jobs (`JobService`, built on first use: a job store that is down answers 503)."""
        return self.backends.jobs

    @property
    def udps(self) -> ProcessGraphs:
        if self.process_graphs is None:
            raise OpenEOError(
                "FeatureUnsupported",
                "User-defined processes need the platform database: set HRLC_CATALOG to a postgresql:// DSN.",
            )
        return self.process_graphs

    def collection_exists(self, cid: str) -> bool:
        """Whether the catalogue has the collection `cid` (what validation checks `load_collection` against)."""
        return stac_collection(self.catalog, cid) is not None

    def user_process(self, user: str | None) -> UserProcesses | None:
        """A resolver of the user's own processes for validation (None without a user or their store)."""
        graphs = self.process_graphs
        if user is None or graphs is None:
            return None
        return lambda pid: graphs.get(user, pid)


def context(request: Request) -> OpenEOContext:
    ctx: OpenEOContext = request.app.state.openeo
    return ctx


def base_url(request: Request) -> str:
    """The root URL of the openEO API, as the client sees it (mount and proxy prefix included)."""
    return str(request.base_url).rstrip("/")

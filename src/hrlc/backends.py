"""The composition root: the one place where settings become the back ends every part of hrlc works with.

A process starts (`hrlc run`, `hrlc demo`, `hrlc serve`, `hrlc worker`, `hrlc status-consumer`, `hrlc ingest`),
reads its `Settings` once (the `HRLC_*` environment) and calls `Backends.from_settings(settings)`. What it gets
are the ports, each owned by its package:

| port        | protocol                              | back ends                                   |
|-------------|---------------------------------------|---------------------------------------------|
| `store`     | `hrlc.lake.store.Store`               | `LocalStore` (a folder), `S3Store`          |
| `catalog`   | `hrlc.catalog.port.Catalog`           | `StaticCatalog` (lake JSON), `PgstacCatalog` |
| `training`  | `hrlc.training.port.TrainingSamples`  | `TrainingDb` (PostGIS)                      |
| `ancillary` | `hrlc.ancillary.port.AncillaryLayers` | `Ancillary` (registry, lake cache, database) |
| `jobs`      | `hrlc.jobs.backend.JobsBackend`       | `JobService` (job store + RabbitMQ)         |

Below this module nothing reads the environment or calls `Settings()`: a function that needs a setting gets
it (or the object built from it) as an argument. Building is cheap and opens no connection; the first use
does (`jobs` is built on first use, since it checks its database at once).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hrlc.catalog.factory import open_catalog
from hrlc.catalog.port import Catalog
from hrlc.lake.store import Store, open_store
from hrlc.settings import Settings

if TYPE_CHECKING:
    from hrlc.ancillary.port import AncillaryLayers
    from hrlc.jobs.backend import JobsBackend
    from hrlc.training.port import TrainingSamples


@dataclass
class Backends:
    """The back ends of one process, built from its settings (`from_settings`) or given (tests: fakes)."""

    settings: Settings
    store: Store
    catalog: Catalog
    training: TrainingSamples | None = None
    ancillary: AncillaryLayers | None = None
    jobs_backend: JobsBackend | None = None  # given (route tests: a fake) or built on first use of `jobs`
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, *, store: Store | None = None) -> Backends:
        """The back ends `settings` name: the lake `HRLC_STORE` (or `store`), the catalogue `HRLC_CATALOG`,
        the training-set database `HRLC_TRAINING_DSN` and the ancillary data over them (with the platform
        extra; without it, None: a chain that needs them says so in one line), the jobs on first use."""
        from hrlc.extras import missing

        store = store if store is not None else open_store(settings.store, settings)
        catalog = open_catalog(store, settings)
        training: TrainingSamples | None = None
        ancillary: AncillaryLayers | None = None
        if not missing("platform"):
            from hrlc.ancillary.service import Ancillary
            from hrlc.training.select import TrainingDb

            training = TrainingDb(settings.training_dsn)
            ancillary = Ancillary(settings, store=store, catalog=catalog)
        return cls(settings, store, catalog, training, ancillary)

    @property
    def jobs(self) -> JobsBackend:
        """The batch jobs (`JobService`: job store `HRLC_JOBS_DSN`, broker `HRLC_BROKER_URL`), built on first
        use; a database that is down raises here (the API answers 503)."""
        with self._lock:
            if self.jobs_backend is None:
                from hrlc.jobs.service import JobService

                self.jobs_backend = JobService(settings=self.settings)
            return self.jobs_backend

    def close(self) -> None:
        """Close what holds connections (the pgstac pool, the jobs' pool and publisher)."""
        with self._lock:
            if self.jobs_backend is not None:
                self.jobs_backend.close()
                self.jobs_backend = None
        self.catalog.close()

"""One small synthetic repository and one chain run, shared by the end-to-end tests of this folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.console import Console

from hrlc import sample
from hrlc.catalog.static import StaticCatalog
from hrlc.jobs.dag import land_cover_dag
from hrlc.jobs.runner import InProcessRunner, RunResult
from hrlc.lake.store import LocalStore

SIZE = 192
YEAR = 2021
LANDSAT_YEAR = 2018


@dataclass
class ChainRun:
    repo: sample.SampleRepository
    store: LocalStore
    catalog: StaticCatalog
    result: RunResult
    bbox: tuple[float, float, float, float]


def utm_bbox(repo: sample.SampleRepository) -> tuple[float, float, float, float]:
    t = repo.transform
    return (t.c, t.f + t.e * repo.size, t.c + t.a * repo.size, t.f)


@pytest.fixture(scope="session")
def repo(tmp_path_factory: pytest.TempPathFactory) -> sample.SampleRepository:
    return sample.generate(
        tmp_path_factory.mktemp("external"), size=SIZE, year=YEAR, landsat_year=LANDSAT_YEAR
    )


@pytest.fixture(scope="session")
def chain(repo: sample.SampleRepository, tmp_path_factory: pytest.TempPathFactory) -> ChainRun:
    store = LocalStore(tmp_path_factory.mktemp("lake"))
    catalog = StaticCatalog(store)
    bbox = utm_bbox(repo)
    dag = land_cover_dag(
        bbox=bbox,
        bbox_crs=f"EPSG:{repo.epsg}",
        crs=f"EPSG:{repo.epsg}",
        resolution=10,
        year=YEAR,
        source=str(repo.catalog),
        training=str(repo.training_points),
        sensor="sentinel2",
    )
    result = InProcessRunner(store, catalog, console=Console(quiet=True)).run(dag)
    return ChainRun(repo, store, catalog, result, bbox)


def quiet_runner(store: LocalStore) -> InProcessRunner:
    return InProcessRunner(store, StaticCatalog(store), console=Console(quiet=True))


@pytest.fixture
def fresh_lake(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "lake")

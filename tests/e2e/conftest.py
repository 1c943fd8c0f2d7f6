"""One small synthetic repository and one chain run, shared by the end-to-end tests of this folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from hrlc import sample
from hrlc.catalog.static import StaticCatalog
from hrlc.jobs.runner import RunResult
from hrlc.lake.store import LocalStore
from landcover import YEAR, run_chain, utm_bbox

SIZE = 192
LANDSAT_YEAR = 2018


@dataclass
class ChainRun:
    repo: sample.SampleRepository
    store: LocalStore
    catalog: StaticCatalog
    result: RunResult
    bbox: tuple[float, float, float, float]


@pytest.fixture(scope="session")
def repo(tmp_path_factory: pytest.TempPathFactory) -> sample.SampleRepository:
    return sample.generate(
        tmp_path_factory.mktemp("external"), size=SIZE, year=YEAR, landsat_year=LANDSAT_YEAR
    )


@pytest.fixture(scope="session")
def chain(repo: sample.SampleRepository, tmp_path_factory: pytest.TempPathFactory) -> ChainRun:
    store = LocalStore(tmp_path_factory.mktemp("lake"))
    catalog = StaticCatalog(store)
    result = run_chain(repo, store, catalog)
    return ChainRun(repo, store, catalog, result, utm_bbox(repo))


@pytest.fixture
def fresh_lake(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "lake")

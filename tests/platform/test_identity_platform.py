"""Product identity on the platform's lake and catalogue (S3 on moto's server + pgstac), as
tests/e2e/test_identity.py checks it on the embedded default: two AOIs in one lake give two maps, each equal
to its run in an empty lake; identical parameters skip; a pixel-changing parameter recomputes what it changes
and nothing else. A lake and a pgstac database of its own: the items it adds must not meet the counts of the
other platform tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rasterio.io import MemoryFile

from hrlc import sample
from hrlc.catalog.pgstac import PgstacCatalog
from hrlc.jobs.dag import Dag, product_key
from hrlc.lake import layout
from hrlc.lake.store import LocalStore, S3Store, Store
from hrlc.settings import Settings
from landcover import chain_dag, run_chain, west_half

pytestmark = pytest.mark.slow
YEAR = 2021  # the platform runs' year (conftest.PLATFORM_YEAR)

SHARED = {"optical-preprocessing": True, "features": True}  # the tile's products, whoever's AOI
REMADE = {"classification": False, "prediction": False, "mosaic": False}  # another model: other maps


def _map(store: Store, dag: Dag) -> np.ndarray:
    with MemoryFile(store.read_bytes(product_key(dag, "class-map"))) as mem, mem.open() as src:
        return src.read(1)


def _skipped(result: Any) -> dict[str, bool]:
    return {t.task_id.split(":")[0]: t.skipped for t in result.tasks}


def test_identity_on_s3_and_pgstac(
    small_repo: sample.SampleRepository,
    static_run: Any,
    s3_server: Any,
    pgstac_db_factory: Callable[[str], str],
    tmp_path: Path,
) -> None:
    dsn = pgstac_db_factory("identity")
    settings = Settings(store=f"s3://{s3_server.new_bucket('hrlc-identity-lake')}/lake", catalog=dsn)
    store = S3Store(settings.store, settings)
    whole, half = (
        chain_dag(small_repo, year=YEAR),
        chain_dag(small_repo, year=YEAR, bbox=west_half(small_repo)),
    )
    rf = chain_dag(small_repo, year=YEAR, classifier="rf")
    with PgstacCatalog(store, dsn) as catalog:
        first = run_chain(small_repo, store, catalog, dag=whole)
        assert not any(_skipped(first).values())
        whole_map = _map(store, whole)
        np.testing.assert_array_equal(whole_map, _map(static_run.store, static_run.dag))  # = in an empty lake

        # a second AOI (inside the first's tile): the tile's products shared, its own model and maps
        second = run_chain(small_repo, store, catalog, dag=half)
        assert _skipped(second) == {**SHARED, **REMADE}
        alone = LocalStore(tmp_path / "alone")
        run_chain(small_repo, alone, dag=half)
        half_map = _map(store, half)
        assert half_map.shape == (small_repo.size, small_repo.size // 2)
        np.testing.assert_array_equal(half_map, _map(alone, half))
        np.testing.assert_array_equal(_map(store, whole), whole_map)  # the first AOI's map untouched
        maps = {layout.item_id(product_key(d, "class-map")) for d in (whole, half)}
        assert len(maps) == 2 and all(catalog.get("hrlc-class-maps", i) is not None for i in maps)

        # identical parameters: everything skipped; a classifier changes the model and the maps only
        assert all(_skipped(run_chain(small_repo, store, catalog, dag=whole)).values())
        assert _skipped(run_chain(small_repo, store, catalog, dag=rf)) == {**SHARED, **REMADE}
        rf_map = _map(store, rf)
        assert rf_map.shape == whole_map.shape and not np.array_equal(rf_map, whole_map)
        np.testing.assert_array_equal(_map(store, whole), whole_map)

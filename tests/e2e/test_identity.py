"""Product identity (hrlc.lake.identity): two AOIs or two parameter sets in one lake never share a map;
identical requests share it (a rerun skips), and AOIs in the same tiles share the tiles' products."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hrlc.catalog.items import item_id
from hrlc.catalog.static import StaticCatalog
from hrlc.jobs.dag import product_key
from hrlc.lake import layout
from hrlc.lake.store import LocalStore
from landcover import chain_dag, read_class_map, run_chain, utm_bbox, west_half

from .conftest import ChainRun

SHARED = {"optical-preprocessing": True, "features": True}  # the tile's products, whoever's AOI
REMADE = {"classification": False, "prediction": False, "mosaic": False}  # another model: other maps


@pytest.fixture(scope="module")
def lake(repo, tmp_path_factory: pytest.TempPathFactory) -> ChainRun:
    """The whole repository's chain in a lake of this module's own (the tests here add products to it)."""
    store = LocalStore(tmp_path_factory.mktemp("identity-lake"))
    catalog = StaticCatalog(store)
    return ChainRun(repo, store, catalog, run_chain(repo, store, catalog), utm_bbox(repo))


def _half_dag(lake: ChainRun):
    return chain_dag(lake.repo, bbox=west_half(lake.repo))


def test_two_aois_in_one_lake_give_two_maps_each_as_in_an_empty_lake(lake: ChainRun, tmp_path: Path) -> None:
    whole_key = product_key(chain_dag(lake.repo), "class-map")
    whole = lake.store.path(whole_key)
    before = (whole.stat().st_mtime_ns, whole.read_bytes())
    half = _half_dag(lake)
    half_key = product_key(half, "class-map")
    assert half_key != whole_key
    assert layout.parse(half_key).fields["space"] != layout.parse(whole_key).fields["space"]

    shared = run_chain(lake.repo, lake.store, lake.catalog, dag=half)
    skipped = {t.task_id.split(":")[0]: t.skipped for t in shared.tasks}  # the half lies in the whole's tile
    assert skipped == {**SHARED, **REMADE}
    alone = LocalStore(tmp_path / "alone")
    run_chain(lake.repo, alone, dag=half)
    got, expected = read_class_map(lake.store.path(half_key)), read_class_map(alone.path(half_key))
    assert got.shape == (lake.repo.size, lake.repo.size // 2)
    np.testing.assert_array_equal(got, expected)
    assert (whole.stat().st_mtime_ns, whole.read_bytes()) == before  # the first map is untouched


def test_a_pixel_changing_parameter_recomputes_only_what_it_changes(lake: ChainRun) -> None:
    rf = chain_dag(lake.repo, classifier="rf")
    lgbm_key = product_key(chain_dag(lake.repo), "class-map")
    rf_key = product_key(rf, "class-map")
    assert rf_key != lgbm_key
    before = lake.store.path(lgbm_key).read_bytes()
    result = run_chain(lake.repo, lake.store, lake.catalog, dag=rf)
    skipped = {t.task_id.split(":")[0]: t.skipped for t in result.tasks}
    assert skipped == {**SHARED, **REMADE}
    assert lake.store.exists(rf_key)
    assert lake.store.path(lgbm_key).read_bytes() == before
    item = lake.catalog.get("hrlc-class-maps", item_id(rf_key))
    assert item is not None and item.properties["hrlc:config"] == layout.parse(rf_key).fields["config"]

    dilated = chain_dag(lake.repo, dilate=2)  # a composite parameter changes every key downstream
    assert product_key(dilated, "features") != product_key(chain_dag(lake.repo), "features")
    assert product_key(dilated, "class-map") != lgbm_key

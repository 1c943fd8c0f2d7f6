"""The optical land-cover chain end to end on the synthetic repository (embedded default)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio

from hrlc import periods
from hrlc.catalog.validate import OfflineSchemas, validate
from hrlc.chain import optical
from hrlc.chain.classification import accuracy_report
from hrlc.lake import layout
from landcover import chain_key, run_chain

from .conftest import LANDSAT_YEAR, YEAR, ChainRun


def test_class_map_matches_truth(chain: ChainRun) -> None:
    key = chain_key(chain.repo, "class-map")
    with rasterio.open(chain.store.gdal_path(key)) as src:
        predicted = src.read(1)
        assert src.dtypes[0] == "uint8" and src.nodata == 0
        assert src.colormap(1)[80][:3] == (255, 255, 100)
    with rasterio.open(chain.repo.truth_map) as src:
        truth = src.read(1)
    valid = (predicted > 0) & (truth > 0)
    assert valid.mean() > 0.99
    report = accuracy_report(truth[valid], predicted[valid])
    assert report["overall_accuracy"] >= 0.88, report
    heldout = json.loads(chain.store.read_bytes(chain_key(chain.repo, "accuracy-report")))
    assert heldout["overall_accuracy"] >= 0.85
    assert set(heldout) >= {"overall_accuracy", "kappa", "per_class_f1", "confusion_matrix"}


def test_every_product_has_a_valid_item_and_a_parsable_name(chain: ChainRun, shared) -> None:
    schemas = OfflineSchemas(shared / "schemas")
    items = list(chain.catalog.items())
    assert (
        len(items) == 12 * 2 + 1 + 4 + 2
    )  # composites+masks, features, model+accuracy+AOI's maps, tile's maps
    assert sorted(chain.result.items) == sorted(chain.catalog.href(i) for i in items)
    for item in items:
        d = json.loads(chain.store.read_bytes(chain.store.key_of(chain.catalog.href(item))))
        validate(d, schemas)
        for asset in item.assets.values():
            key = chain.store.key_of(asset.href)
            assert chain.store.exists(key), key
            assert layout.parse(key).family in {
                item.properties["hrlc:product"],
                "model-metadata",
                "accuracy-report",
                "map-accuracy",
                "map-accuracy-plot",
                "class-confidence",
                "class-map-categories",
                "class-map-qml",
                "class-map-sld",
                "class-map-thumbnail",
            }
        assert item.properties["hrlc:processor_version"]
        assert item.properties["hrlc:inputs"], item.id
    for key in ("metadata/stac/catalog.json", "metadata/stac/hrlc-class-maps/collection.json"):
        validate(json.loads(chain.store.read_bytes(key)), schemas)
    comp = chain.catalog.get(
        "hrlc-optical-composites", layout.item_id(chain_key(chain.repo, "optical-composite", "07"))
    )
    assert comp is not None
    assert 0 <= comp.properties["hrlc:cloud_ratio"] <= 1
    assert comp.properties["hrlc:composite_method"] == "median"
    assert all(i.startswith("S2") for i in comp.properties["hrlc:inputs"])


def test_every_task_leaves_a_log_record(chain: ChainRun) -> None:
    for task in chain.result.tasks:
        record = json.loads(chain.store.read_bytes(layout.log_key(task.task_id)))
        assert record["task_id"] == task.task_id and record["items"] == task.items
        assert record["processor_version"] and record["params"]["year"] == YEAR


def test_composites_hold_only_clear_values(chain: ChainRun) -> None:
    """Where a pixel has a clear observation in the month, the composite lies within its clear values."""
    import pystac

    cat = pystac.Catalog.from_file(str(chain.repo.catalog))
    month = 4
    scenes = sorted(
        (
            i
            for i in cat.get_items(recursive=True)
            if i.collection_id == "sentinel-2-l2a" and i.datetime.year == YEAR and i.datetime.month == month
        ),
        key=lambda i: i.datetime,
    )
    reds, scls = [], []
    for it in scenes:
        with rasterio.open(it.assets["red"].get_absolute_href()) as src:
            reds.append(src.read(1))
        with rasterio.open(it.assets["scl"].get_absolute_href()) as src:
            scls.append(src.read(1))
    red, scl = np.stack(reds), np.stack(scls)
    clear = ~optical.scl_mask(scl)
    key = chain_key(chain.repo, "optical-composite", f"{month:02d}")
    with rasterio.open(chain.store.gdal_path(key)) as src:
        comp_red = src.read(list(src.descriptions).index("red") + 1)
    has_clear = clear.any(axis=0)
    lo = np.where(clear, red, np.iinfo(np.uint16).max).min(axis=0)
    hi = np.where(clear, red, 0).max(axis=0)
    inside = (comp_red >= lo) & (comp_red <= hi)
    assert has_clear.mean() > 0.9
    assert inside[has_clear].all()
    assert (comp_red[~has_clear] == 0).all()
    # and the clouds really were there: many pixels had a cloud brighter than every clear value
    cloudy = np.isin(scl, optical.SCL_CLOUD)
    assert cloudy.mean() > 0.2


def test_rerun_skips_finished_tasks(chain: ChainRun) -> None:
    key = chain_key(chain.repo, "class-map")
    before = chain.store.path(key).stat().st_mtime_ns
    again = run_chain(chain.repo, chain.store)
    assert all(t.skipped for t in again.tasks)
    assert sorted(again.items) == sorted(chain.result.items)
    assert chain.store.path(key).stat().st_mtime_ns == before


@pytest.mark.slow
def test_landsat_seasonal_bap_chain_with_polygons(repo, fresh_lake) -> None:
    """Landsat C2 L2-like scenes (QA_PIXEL, scale/offset) -> 4 seasonal BAP composites -> a class map."""
    options = {
        "year": LANDSAT_YEAR,
        "resolution": 30,
        "training": repo.training_polygons,
        "sensor": "landsat",
        "composite": "bap",
        "classifier": "rf",
    }
    run_chain(repo, fresh_lake, **options)
    for season in periods.SEASONS:
        key = chain_key(repo, "optical-composite", season, **options)
        with rasterio.open(fresh_lake.gdal_path(key)) as src:
            assert src.res == (30.0, 30.0)
            assert list(src.descriptions) == ["blue", "green", "red", "nir", "swir16", "swir22"]
            nir = src.read(4).astype(float) * 1e-4
            assert (
                0.05 < np.median(nir[nir > 0]) < 0.6
            )  # scale/offset of C2 L2 applied: plausible reflectance
    report = json.loads(fresh_lake.read_bytes(chain_key(repo, "accuracy-report", **options)))
    assert report["overall_accuracy"] >= 0.7, report

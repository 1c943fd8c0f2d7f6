"""The classification streams (issue 13): it reads the training samples from the blocks that hold them only,
predicts and writes the maps block by block, never reads a window larger than a block, and its products are
those of mapping the whole stack at once: the same samples, the same model, the same pixels, the same files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import cast

import geopandas as gpd
import numpy as np
import pystac
import pytest
import rasterio
import xarray as xr
from affine import Affine
from shapely.geometry import MultiPoint, Point, box

from hrlc.catalog.static import StaticCatalog
from hrlc.chain import classification as clf
from hrlc.chain import features as chain_features
from hrlc.lake.store import LocalStore
from hrlc.processors.base import Context
from hrlc.processors.classification import (
    PROB_NODATA,
    Classification,
    ClassificationParams,
    FeatureStack,
    Piece,
    sample_pieces,
)
from hrlc.products.netcdf import grid_of, read_feature_stack
from hrlc.training.samples import (
    extract_samples,
    read_training,
    sample_pixels,
    split_holdout,
    validation_groups,
)
from landcover import Reference, chain_dag

# 10 m grid, 23 x 31 pixels, upper-left corner (500000, 5000230) in UTM 33N
TRANSFORM = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5000230.0)
CRS = "EPSG:32633"
NY, NX = 23, 31


def _stack() -> xr.Dataset:
    """A small feature stack: one temporal variable of 3 periods and one 2-D variable; a few pixels without any
    observation (all NaN) and a few with some."""
    rng = np.random.default_rng(0)
    red = rng.random((3, NY, NX), dtype=np.float32)
    ndvi = rng.random((NY, NX), dtype=np.float32)
    red[:, 4, 5] = ndvi[4, 5] = np.nan  # no observation at all
    red[:, 10:13, 20:22] = ndvi[10:13, 20:22] = np.nan
    red[1, 7, 7] = np.nan  # one missing period only
    ys = TRANSFORM.f - 10 * (np.arange(NY) + 0.5)
    xs = TRANSFORM.c + 10 * (np.arange(NX) + 0.5)
    return xr.Dataset(
        {"red": (("period", "y", "x"), red), "ndvi_median": (("y", "x"), ndvi)},
        coords={"period": ["01", "02", "03"], "y": ys, "x": xs},
    )


def _training() -> gpd.GeoDataFrame:
    rng = np.random.default_rng(1)
    x0, y0 = TRANSFORM.c, TRANSFORM.f
    points = [
        Point(x0 + rng.uniform(-20, 330), y0 - rng.uniform(-20, 250)) for _ in range(60)
    ]  # a few outside
    polygons = [
        box(x0 + 41, y0 - 89, x0 + 169, y0 - 18),
        box(x0 + 150, y0 - 150, x0 + 250, y0 - 60),  # overlaps the first one, and the NaN pixels
        box(x0 + 281, y0 - 209, x0 + 284, y0 - 206),  # covers no pixel centre: its representative point
        box(x0 + 200, y0 - 300, x0 + 400, y0 - 200),  # partly outside the grid
    ]
    geoms = [*points, *polygons, MultiPoint([(x0 + 1, y0 - 1), (x0 + 305, y0 - 225)])]
    codes = rng.choice([10, 30, 70, 80, 130], size=len(geoms))
    return gpd.GeoDataFrame({"class_code": codes}, geometry=geoms, crs=CRS)


@pytest.fixture
def windows(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, int, int]]:
    """(first row, first column, rows, cols) of every window of a feature stack read."""
    read: list[tuple[int, int, int, int]] = []
    original = FeatureStack.read

    def recording(self: FeatureStack, rows: slice, cols: slice) -> np.ndarray:
        matrix = original(self, rows, cols)
        read.append((rows.start, cols.start, matrix.shape[1], matrix.shape[2]))
        return matrix

    monkeypatch.setattr(FeatureStack, "read", recording)
    return read


@pytest.mark.parametrize("block", [5, 7, 64])
def test_samples_read_from_blocks_are_those_of_the_whole_stack(
    block: int, windows: list[tuple[int, int, int, int]]
) -> None:
    stack, training = _stack(), _training()
    whole, _ = chain_features.to_matrix(stack)
    windows.clear()
    whole_grid = (slice(0, NY), slice(0, NX))
    X, y, group, rowcol = sample_pieces(
        [Piece(FeatureStack(stack), cast(pystac.Item, None), whole_grid, whole_grid)],
        training,
        crs=CRS,
        transform=TRANSFORM,
        shape=(NY, NX),
        max_pixels_per_polygon=9,
        seed=3,
        block=block,
    )
    want_X, want_y, want_group, want_rowcol = extract_samples(
        training, whole, crs=CRS, transform=TRANSFORM, max_pixels_per_polygon=9, seed=3
    )
    assert len(y) > 50  # points, capped polygons, the sliver's pixel, the multipoint; NaN pixels dropped
    np.testing.assert_array_equal(X, want_X)
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(group, want_group)
    np.testing.assert_array_equal(rowcol, want_rowcol)

    # the blocks that hold sample pixels were read, each within its block, and no other
    _, _, pixels = sample_pixels(
        training, shape=(NY, NX), crs=CRS, transform=TRANSFORM, max_pixels_per_polygon=9, seed=3
    )
    read = set()
    for r, c, h, w in windows:
        assert (r + h - 1) // block == r // block and (c + w - 1) // block == c // block
        read.add((r // block, c // block))
    assert read == {(int(r) // block, int(c) // block) for r, c in pixels}
    assert len(pixels) > len(y)  # some sample pixels had no observation: read, then dropped


def _lake_with_features(reference: Reference, root: Path) -> tuple[LocalStore, ClassificationParams]:
    """A copy of the reference run's lake (its feature stack), and the classification params of its DAG."""
    shutil.copytree(reference.lake, root)
    [task] = [t for t in chain_dag(reference.repo).tasks if t.processor == Classification.name]
    return LocalStore(root), Classification().parse_params({**task.params, "predict": True})  # maps too


def _products(store: LocalStore, params: ClassificationParams) -> dict[str, bytes]:
    """The bytes of the products, the model metadata left out (it holds its creation time)."""
    keys = Classification().outputs(params)
    return {k: store.path(k).read_bytes() for k in keys if not k.startswith("models/metadata/")}


@pytest.mark.slow
def test_block_by_block_products_equal_the_whole_stack_mapped_at_once(
    land_cover_reference: Reference, tmp_path: Path, windows: list[tuple[int, int, int, int]]
) -> None:
    repo = land_cover_reference.repo
    store, params = _lake_with_features(land_cover_reference, tmp_path / "lake")
    ctx = Context(store=store, catalog=StaticCatalog(store))

    windows.clear()
    blocks = Classification()
    blocks.block_px = 40  # 96 px: 3 x 3 blocks, the last ones 16 px wide
    blocks.run(params, ctx)
    by_blocks = _products(store, params)
    assert windows and max(max(h, w) for _, _, h, w in windows) <= 40

    one = Classification()
    one.block_px = 4096  # the whole stack in one block
    one.run(params, ctx)
    assert (
        _products(store, params) == by_blocks
    )  # same model, report, probabilities and class map, byte for byte

    # and the pixels are those of the whole stack sampled, trained on and predicted at once
    _, _, prob_key, map_key, acc_key, *_ = Classification().outputs(params)
    [feat_key] = [k for k in store.list("features/") if k.endswith(".nc")]
    stack = read_feature_stack(store.path(feat_key)).load()
    crs, transform = grid_of(stack)
    matrix, _ = chain_features.to_matrix(stack)
    X, y, geometry, rowcol = extract_samples(
        read_training(repo.training_points), matrix, crs=crs, transform=transform, seed=params.seed
    )
    groups, _ = validation_groups(geometry, rowcol, block_px=round(params.validation_block_m / transform.a))
    held = split_holdout(groups, y, fraction=params.holdout, seed=params.seed)
    model = clf.train(X[~held], y[~held], method=params.method, seed=params.seed)
    probs, classes = clf.predict_proba(model, matrix)
    with rasterio.open(store.path(map_key)) as src:
        np.testing.assert_array_equal(src.read(1), clf.class_map(probs, classes))
    with rasterio.open(store.path(prob_key)) as src:
        want = np.where(probs.sum(axis=0) > 0, np.rint(probs * 100), PROB_NODATA).astype(np.uint8)
        np.testing.assert_array_equal(src.read(), want)
    report = json.loads(store.path(acc_key).read_text())
    want_report = clf.accuracy_report(y[held], model.predict(X[held]), labels=np.unique(y))
    assert report["overall_accuracy"] == want_report["overall_accuracy"]
    assert report["confusion_matrix"] == want_report["confusion_matrix"]

"""The features processor computes and writes its stack block by block (issue 13): whatever the block size, the
NetCDF holds the same variables, values and attributes, and they equal the stack of the whole composites made in
memory; the DEM's slope, computed per window with a pixel of its neighbours, equals the whole grid's."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import rasterio
import xarray as xr
from affine import Affine

from hrlc.catalog.items import raster_item
from hrlc.catalog.sources import CANONICAL_S2
from hrlc.catalog.static import StaticCatalog
from hrlc.chain.features import feature_stack, to_matrix
from hrlc.chain.terrain import pixel_size_m, slope_degrees
from hrlc.lake import layout
from hrlc.lake.store import LocalStore
from hrlc.periods import period_range, periods_of
from hrlc.processors.base import Context
from hrlc.processors.features import Composites, DemFeatures, Features, FeaturesParams, block_px, blocks
from hrlc.products.cog import write_cog
from hrlc.products.netcdf import read_feature_stack
from hrlc.settings import Settings

YEAR = 2021
HEIGHT, WIDTH = 150, 200  # blocks of 64 px: 3 x 4, the last row and column partial
TRANSFORM = Affine(10.0, 0.0, 430000.0, 0.0, -10.0, 5140000.0)


def _lake(root: Path, chunk_px: int | None) -> tuple[LocalStore, StaticCatalog]:
    """A lake with the 12 monthly Sentinel-2 composites of YEAR: uint16 reflectance x 10 000, ~30 % nodata
    (no clear observation) and a corner never observed (stays NaN after gap filling); same pixels every time."""
    store = LocalStore(root, Settings(chunk_px=chunk_px) if chunk_px else None)
    catalog = StaticCatalog(store)
    rng = np.random.default_rng(3)
    for month in periods_of("sentinel2"):
        key = layout.key("optical-composite", sensor="sentinel2", year=YEAR, period=month)
        dn = rng.integers(100, 6000, (len(CANONICAL_S2), HEIGHT, WIDTH)).astype(np.uint16)
        dn[:, rng.random((HEIGHT, WIDTH)) < 0.3] = 0
        dn[:, :5, :7] = 0
        write_cog(
            store,
            key,
            dn,
            crs="EPSG:32633",
            transform=TRANSFORM,
            nodata=0,
            band_names=list(CANONICAL_S2),
            scales=[1e-4] * len(CANONICAL_S2),
            offsets=[0.0] * len(CANONICAL_S2),
        )
        start, end = period_range(YEAR, month)
        catalog.add(
            raster_item(
                store, key, start=start, end=end, processor="optical-preprocessing", processor_version="t"
            )
        )
    return store, catalog


def _stack(store: LocalStore, catalog: StaticCatalog) -> tuple[xr.Dataset, list[str]]:
    proc = Features()
    params = FeaturesParams(year=YEAR, sensor="sentinel2")
    messages: list[str] = []
    [href] = proc.run(params, Context(store=store, catalog=catalog, progress=lambda f, m: messages.append(m)))
    item = catalog.get_href(href)
    assert item.properties["proj:shape"] == [HEIGHT, WIDTH]
    with store.reading(proc.outputs(params)[0]) as path:
        ds = read_feature_stack(path).load()
    ds.close()
    for key in ("date_created", "history"):  # the time of writing
        ds.attrs.pop(key)
    return ds, messages


def test_the_stack_is_the_same_whatever_the_block_size(tmp_path: Path) -> None:
    blocked, messages = _stack(*_lake(tmp_path / "blocks", chunk_px=64))
    assert "block 12/12 (64 px)" in messages  # 3 x 4 blocks
    whole, messages = _stack(*_lake(tmp_path / "whole", chunk_px=None))
    assert "block 1/1 (1024 px)" in messages  # a lake without settings: Settings.chunk_px's default
    xr.testing.assert_identical(blocked, whole)  # values (NaN where NaN), coordinates and every attribute

    # and both are the stack of the whole composites made in memory
    store, catalog = _lake(tmp_path / "memory", chunk_px=None)
    items = [
        catalog.get_href(store.href(layout.item_key(k))) for k in sorted(store.list()) if k.endswith(".tif")
    ]
    with store.raster_env():
        expected = feature_stack(Composites(items).read())
    m0, names0 = to_matrix(expected)
    m1, names1 = to_matrix(blocked)
    assert names0 == names1 and len(names1) == 16 * 12 + 6 * 4  # 10 bands + 6 indices a month; 4 statistics
    np.testing.assert_array_equal(np.isnan(m0), np.isnan(m1))
    np.testing.assert_allclose(m1, m0, rtol=2.0**-13, atol=0)  # as kept in the file: 12 significant bits
    assert (
        np.isnan(blocked["red"].values[:, :5, :7]).all() and not np.isnan(blocked["red"].values[:, 5:]).any()
    )


def test_block_size_is_a_multiple_of_the_netcdf_chunk() -> None:
    assert [block_px(n) for n in (1024, 1500, 700, 512, 300, 64)] == [1024, 1024, 512, 512, 300, 64]
    with pytest.raises(ValueError):
        block_px(0)
    assert blocks(150, 200, 64)[-1] == (slice(128, 150), slice(192, 200))
    assert sum((r.stop - r.start) * (c.stop - c.start) for r, c in blocks(150, 200, 64)) == 150 * 200


@pytest.mark.parametrize("geographic", [False, True])
def test_dem_windows_join_into_the_slope_of_the_grid(tmp_path: Path, geographic: bool) -> None:
    ny, nx = 70, 90
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:ny, 0:nx]
    elev = (300 + 2.0 * xx + 0.5 * yy**1.5 + rng.normal(0, 3, (ny, nx))).astype(np.float32)  # curved, noisy
    t = Affine(0.0003, 0.0, 14.0, 0.0, -0.0003, 46.0) if geographic else TRANSFORM
    path = tmp_path / "dem.tif"
    profile = {"driver": "GTiff", "height": ny, "width": nx, "count": 1, "dtype": "float32", "transform": t}
    with rasterio.open(path, "w", crs="EPSG:4326" if geographic else "EPSG:32633", **profile) as dst:
        dst.write(elev, 1)
    lat = t.f + t.e * (np.arange(ny) + 0.5) if geographic else None
    dx, dy = pixel_size_m(t.a, t.e, geographic=geographic, lat=lat)
    expected = slope_degrees(elev, dx, dy)

    grid = SimpleNamespace(transform=t, geographic=geographic, height=ny, width=nx)
    dem = DemFeatures(str(path), grid)  # type: ignore[arg-type]
    slope = np.full((ny, nx), -1.0, np.float32)
    for rows, cols in blocks(ny, nx, 16):
        window = dem.read(rows, cols)
        np.testing.assert_array_equal(window["elevation"].values, elev[rows, cols])
        slope[rows, cols] = window["slope"].values
    np.testing.assert_array_equal(slope, expected)
    assert window["slope"].attrs["units"] == "degree" and window["elevation"].attrs["units"] == "m"

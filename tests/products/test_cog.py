"""The COG writer (`hrlc.products.cog`): a raster written block by block (a dask array, or windows into
`cog_blocks`) is a valid COG that reads back as written, with the very bytes GDAL's COG driver writes from the
whole array at once; no more than a few blocks are in memory at a time; a failed write leaves nothing."""

from __future__ import annotations

import hashlib
import tracemalloc
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pytest
import rasterio
from affine import Affine
from rio_cogeo.cogeo import cog_validate

from hrlc.lake.store import LocalStore
from hrlc.products.cog import chunk_regions, cog_blocks, write_cog

TRANSFORM = Affine(10.0, 0.0, 430000.0, 0.0, -10.0, 5140000.0)
CLASS_COLOURS = {0: (0, 0, 0, 0), 1: (255, 0, 0, 255), 2: (0, 160, 0, 255), 3: (0, 0, 255, 255)}


def _cases() -> dict[str, tuple[np.ndarray, dict[str, Any]]]:
    rng = np.random.default_rng(7)
    reflectance = rng.integers(0, 6000, (6, 700, 900), dtype=np.uint16)
    reflectance[:, :40, :50] = 0  # nodata corner
    return {
        "reflectance": (
            reflectance,
            {
                "nodata": 0,
                "band_names": [f"b{i}" for i in range(6)],
                "scales": [1e-4] * 6,
                "offsets": [0.0] * 6,
                "tags": {"hrlc_product": "optical-composite", "method": "median"},
            },
        ),
        "class map": (
            rng.integers(0, 4, (700, 900), dtype=np.uint8),
            {"nodata": 0, "colormap": CLASS_COLOURS, "categorical": True, "band_names": ["class"]},
        ),
        "probabilities": (rng.random((2, 300, 260), dtype=np.float32), {"nodata": None}),
    }


def _gdal_whole(path: Path, data: np.ndarray, opts: dict[str, Any]) -> None:
    """The reference: GDAL's COG driver given the whole array (rasterio buffers it in memory)."""
    data = data if data.ndim == 3 else data[np.newaxis]
    floating = np.issubdtype(data.dtype, np.floating)
    with rasterio.open(
        path,
        "w",
        driver="COG",
        width=data.shape[2],
        height=data.shape[1],
        count=data.shape[0],
        dtype=data.dtype,
        crs="EPSG:32633",
        transform=TRANSFORM,
        nodata=opts.get("nodata"),
        compress="DEFLATE",
        predictor="NO" if "colormap" in opts else ("FLOATING_POINT" if floating else "STANDARD"),
        blocksize=512 if min(data.shape[1:]) >= 512 else 256,
        overview_resampling="nearest" if opts.get("categorical") else "average",
        num_threads="ALL_CPUS",
        bigtiff="IF_SAFER",
    ) as dst:
        dst.write(data)
        for i, name in enumerate(opts.get("band_names") or [], start=1):
            dst.set_band_description(i, name)
        if "colormap" in opts:
            dst.write_colormap(1, opts["colormap"])
        if "scales" in opts:
            dst.scales = tuple(opts["scales"])
            dst.offsets = tuple(opts["offsets"])
        if "tags" in opts:
            dst.update_tags(**opts["tags"])


def _sha(path: Path | str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.mark.parametrize("case", list(_cases()))
def test_a_cog_written_by_blocks_is_the_cog_of_the_whole_array(case: str, tmp_path: Path) -> None:
    data, opts = _cases()[case]
    store = LocalStore(tmp_path / "lake")
    _gdal_whole(tmp_path / "whole.tif", data, opts)

    whole = write_cog(store, "a/whole.tif", data, crs="EPSG:32633", transform=TRANSFORM, **opts)
    lazy = da.from_array(data, chunks=(-1, 256, 384) if data.ndim == 3 else (256, 384))
    blocks = write_cog(store, "a/blocks.tif", lazy, crs="EPSG:32633", transform=TRANSFORM, **opts)

    assert _sha(whole) == _sha(blocks) == _sha(tmp_path / "whole.tif")
    assert sorted(store.list()) == ["a/blocks.tif", "a/whole.tif"]  # no intermediate file left behind
    valid, errors, _warnings = cog_validate(blocks)
    assert valid, errors
    with rasterio.open(blocks) as src:
        np.testing.assert_array_equal(src.read(), data if data.ndim == 3 else data[np.newaxis])
        assert src.overviews(1)  # internal overviews
        assert src.nodata == opts["nodata"]
        if "band_names" in opts:
            assert list(src.descriptions) == opts["band_names"]
        if "colormap" in opts:
            assert src.colormap(1)[2] == CLASS_COLOURS[2]
        if "tags" in opts:
            assert src.tags()["method"] == "median"


def test_windows_written_in_any_order_make_the_same_cog(tmp_path: Path) -> None:
    data, opts = _cases()["reflectance"]
    store = LocalStore(tmp_path)
    write_cog(store, "whole.tif", data, crs="EPSG:32633", transform=TRANSFORM, **opts)
    c, h, w = data.shape
    with cog_blocks(
        store,
        "windows.tif",
        count=c,
        height=h,
        width=w,
        dtype=data.dtype,
        crs=32633,
        transform=TRANSFORM,
        **opts,
    ) as cog:
        for rows, cols in reversed(list(chunk_regions(da.zeros((h, w), chunks=300), at_once=1))):
            cog[:, rows, cols] = data[:, rows, cols]
    assert _sha(store.path("windows.tif")) == _sha(store.path("whole.tif"))


def test_a_dask_array_is_computed_a_few_chunks_at_a_time(tmp_path: Path) -> None:
    """64 MB of lazily made reflectance, 256 px chunks: the writer never holds more than a few of them."""
    lazy = da.random.default_rng(3).integers(0, 6000, (8, 2048, 2048), dtype=np.uint16, chunks=(-1, 256, 256))
    chunk_bytes = 8 * 256 * 256 * 2
    tracemalloc.start()
    try:
        write_cog(LocalStore(tmp_path), "big.tif", lazy, crs="EPSG:32633", transform=TRANSFORM)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * chunk_bytes == lazy.nbytes / 8, f"peak {peak / 2**20:.1f} MB"


def test_chunk_regions_cover_the_array_once_row_by_row() -> None:
    array = da.zeros((3, 100, 250), chunks=(3, 40, 60))  # chunk rows 40, 40, 20; columns 60 x 4, 10
    regions = list(chunk_regions(array, at_once=2))
    assert regions[:3] == [
        (slice(0, 40), slice(0, 120)),
        (slice(0, 40), slice(120, 240)),
        (slice(0, 40), slice(240, 250)),
    ]
    covered = np.zeros((100, 250), int)
    for rows, cols in regions:
        covered[rows, cols] += 1
    assert (covered == 1).all() and len(regions) == 9


def test_a_failed_write_leaves_nothing_in_the_lake(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    with (
        pytest.raises(RuntimeError, match="reading failed"),
        cog_blocks(
            store, "x/map.tif", count=1, height=600, width=600, dtype="uint8", crs=32633, transform=TRANSFORM
        ) as cog,
    ):
        cog[0:300, 0:300] = np.ones((300, 300), np.uint8)
        raise RuntimeError("reading failed")
    assert not store.exists("x/map.tif")
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == []

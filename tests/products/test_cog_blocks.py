"""A COG written block by block (`hrlc.products.cog.cog_blocks`) is, byte for byte, the COG that GDAL's COG
driver writes from the whole array at once (how `write_cog` wrote every product), overviews included: a map
streamed block by block is the same file as a map written whole."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine
from scipy import ndimage

from hrlc import legend
from hrlc.lake.store import LocalStore
from hrlc.products.cog import cog_blocks

TRANSFORM = Affine(10.0, 0.0, 430000.0, 0.0, -10.0, 5140000.0)


def _maps(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities (5, h, w) uint8 percent with a nodata corner, class map (h, w) uint8): smooth fields, so
    the overviews' averages differ between levels."""
    rng = np.random.default_rng(3)
    fields = ndimage.gaussian_filter(rng.standard_normal((5, height, width)), (0, 6, 6))
    probs = np.exp(30 * fields)
    probs /= probs.sum(axis=0)
    percent = np.rint(probs * 100).astype(np.uint8)
    cmap = np.array([10, 30, 70, 80, 130], np.uint8)[np.argmax(probs, axis=0)]
    percent[:, :5, :9] = 255
    cmap[:5, :9] = legend.NODATA
    return percent, cmap


def _whole(path: Path, data: np.ndarray, **options: Any) -> None:
    """The COG of the whole array in one write (rasterio's COG driver), with `write_cog`'s options."""
    count, height, width = data.shape
    colormap = options.pop("colormap", None)
    with rasterio.open(
        path,
        "w",
        driver="COG",
        width=width,
        height=height,
        count=count,
        dtype=data.dtype,
        crs="EPSG:32633",
        transform=TRANSFORM,
        nodata=options.pop("nodata"),
        compress="DEFLATE",
        predictor="STANDARD" if colormap is None else "NO",
        blocksize=512 if min(height, width) >= 512 else 256,
        overview_resampling="nearest" if colormap is not None else "average",
        num_threads="ALL_CPUS",
        bigtiff="IF_SAFER",
    ) as dst:
        dst.write(data)
        for i, name in enumerate(options["band_names"], start=1):
            dst.set_band_description(i, name)
        if colormap is not None:
            dst.write_colormap(1, dict(colormap))
        if "scales" in options:
            dst.scales = tuple(options["scales"])
        dst.update_tags(**options["tags"])


@pytest.mark.parametrize(("height", "width", "block"), [(1100, 1300, 512), (1100, 1300, 300), (200, 300, 64)])
def test_blocks_give_the_bytes_of_the_whole_array(
    tmp_path: Path, height: int, width: int, block: int
) -> None:
    percent, cmap = _maps(height, width)
    store = LocalStore(tmp_path / "lake")
    cases = {
        "probs.tif": (
            percent,
            {
                "nodata": 255,
                "band_names": [f"p_{i}" for i in range(5)],
                "scales": [0.01] * 5,
                "tags": {"k": "v"},
            },
        ),
        "map.tif": (
            cmap[np.newaxis],
            {
                "nodata": legend.NODATA,
                "band_names": ["land_cover_class"],
                "colormap": legend.colormap(),
                "categorical": True,
                "tags": {"legend": "CCI HRLC v1.2"},
            },
        ),
    }
    for name, (data, options) in cases.items():
        with cog_blocks(
            store,
            name,
            count=data.shape[0],
            height=height,
            width=width,
            dtype=data.dtype,
            crs="EPSG:32633",
            transform=TRANSFORM,
            **options,
        ) as target:
            for row in range(0, height, block):
                for col in range(0, width, block):
                    rows, cols = slice(row, row + block), slice(col, col + block)
                    target[:, rows, cols] = data[:, rows, cols]
        whole = tmp_path / f"whole-{name}"
        _whole(whole, data, **{k: v for k, v in options.items() if k != "categorical"})
        assert store.path(name).read_bytes() == whole.read_bytes(), name
        with rasterio.open(store.path(name)) as src:
            assert src.overviews(1)  # a COG with its overviews
            np.testing.assert_array_equal(src.read(), data)
    assert sorted(p.name for p in store.root.iterdir()) == ["map.tif", "probs.tif"]  # no temporary file left


def test_a_failed_write_commits_nothing(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "lake")
    with (
        pytest.raises(RuntimeError, match="prediction failed"),
        cog_blocks(
            store,
            "map.tif",
            count=1,
            height=64,
            width=64,
            dtype=np.uint8,
            crs="EPSG:32633",
            transform=TRANSFORM,
        ) as target,
    ):
        target[0:32, 0:64] = np.ones((32, 64), np.uint8)
        raise RuntimeError("prediction failed")
    assert not [p for p in store.root.rglob("*") if p.is_file()]

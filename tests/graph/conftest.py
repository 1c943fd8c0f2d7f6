"""A tiny lake with known products: three monthly Sentinel-2 composites (bands with known values, some pixels
no-data) and their cloud masks (other bands), on a 10 m UTM grid, registered in a static catalogue."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from hrlc.catalog.items import raster_item
from hrlc.catalog.static import StaticCatalog
from hrlc.lake import layout
from hrlc.lake.store import LocalStore
from hrlc.products.cog import write_cog

BANDS = ["blue", "green", "red", "nir"]
CRS = "EPSG:32633"
ORIGIN = (430000.0, 5140000.0)
SIZE = 64
TRANSFORM = Affine(10.0, 0.0, ORIGIN[0], 0.0, -10.0, ORIGIN[1])
MONTHS = (1, 2, 3)


@dataclass
class Lake:
    root: Path
    store: LocalStore
    catalog: StaticCatalog
    data: dict[int, np.ndarray]  # month -> (band, y, x) uint16, 0 = no data
    class_map: np.ndarray  # (y, x) uint8 HRLC codes of 2021

    def bbox(self, x0: int, y0: int, x1: int, y1: int) -> dict[str, float | str]:
        """A UTM bounding box of pixel columns x0..x1 and rows y0..y1 (end exclusive)."""
        return {
            "west": ORIGIN[0] + 10 * x0,
            "east": ORIGIN[0] + 10 * x1,
            "north": ORIGIN[1] - 10 * y0,
            "south": ORIGIN[1] - 10 * y1,
            "crs": 32633,
        }


def _month_range(month: int) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime(2021, month, 1, tzinfo=dt.UTC)
    end = dt.datetime(2021, month + 1, 1, tzinfo=dt.UTC) - dt.timedelta(seconds=1)
    return start, end


@pytest.fixture(scope="session")
def products(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    return make_lake(tmp_path_factory.mktemp("graph-lake"))


def make_lake(root: Path) -> Lake:
    """Write the products into a local lake at `root` with a static catalogue."""
    store = LocalStore(root)
    catalog = StaticCatalog(store)
    rng = np.random.default_rng(7)
    data = {}
    for month in MONTHS:
        arr = rng.integers(100, 6000, size=(len(BANDS), SIZE, SIZE), dtype=np.uint16)
        arr[:, month : month + 3, 10:20] = 0  # a no-data patch, different in every month
        data[month] = arr
        start, end = _month_range(month)
        period = f"{month:02d}"
        comp = layout.key("optical-composite", sensor="sentinel2", year=2021, period=period)
        write_cog(store, comp, arr, crs=CRS, transform=TRANSFORM, nodata=0, band_names=BANDS)
        mask = layout.key("optical-cloudmask", sensor="sentinel2", year=2021, period=period)
        counts = (arr[:1] > 0).astype(np.uint16) * 5
        write_cog(store, mask, np.concatenate([counts, counts]), crs=CRS, transform=TRANSFORM, nodata=None,
                  band_names=["valid_count", "quality"])  # fmt: skip
        for key in (comp, mask):
            catalog.add(
                raster_item(store, key, start=start, end=end, processor="test", processor_version="1")
            )
    classes = rng.choice(np.array([10, 20, 30, 40], dtype=np.uint8), size=(SIZE, SIZE))
    key = layout.key("class-map", kind="optical", year=2021, period="annual")
    write_cog(store, key, classes, crs=CRS, transform=TRANSFORM, nodata=0, band_names=["class"])
    start, end = dt.datetime(2021, 1, 1, tzinfo=dt.UTC), dt.datetime(2021, 12, 31, 23, 59, 59, tzinfo=dt.UTC)
    catalog.add(raster_item(store, key, start=start, end=end, processor="test", processor_version="1"))
    return Lake(root, store, catalog, data, classes)

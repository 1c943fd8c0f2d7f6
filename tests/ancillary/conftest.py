"""A local STAC API serving the Planetary Computer `cop-dem-glo-30` and `esa-worldcover` items of ../shared/data,
with their assets rewritten to small COGs made here with a known answer, and a database for the registry.

The answer:
- DEM: a plane in the UTM zone of the test area (EPSG:32726), z = 500 + 0.10 (E - E0) + 0.05 (N - N0) metres,
  sampled on four 1-arc-second lon/lat tiles (the four real `cop-dem-glo-30` items, moved to the test area and
  cut to quadrants of it, so a grid spans all four); its slope is atan(hypot(0.10, 0.05)) = 6.379 degrees.
- WorldCover: the real 2021 v200 item (tile S60W030) whose `map` asset is a 10 m (1/12000 degree) uint8 map of
  blocks of 0.02 x 0.025 degrees cycling through the 11 WorldCover classes, with a nodata hole.

The API is `hrlc.api.create_app` (stac-fastapi-pgstac) over a fresh pgstac database, served by uvicorn in a
thread on a free port, behind a middleware that counts the requests it receives.
"""

from __future__ import annotations

import copy
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
import rasterio
import uvicorn
from pyproj import Transformer
from rasterio.transform import from_origin

from hrlc.ancillary import Ancillary
from hrlc.settings import Settings

AOI = (-27.58, -57.59, -27.50, -57.55)  # lon/lat, inside the WorldCover tile S60W030, UTM zone 26 south
UTM = "EPSG:32726"
CENTRE = (-27.54, -57.57)
DEM_A, DEM_B, DEM_Z0 = 0.10, 0.05, 500.0
DEM_SLOPE_DEG = float(np.degrees(np.arctan(np.hypot(DEM_A, DEM_B))))
DEM_RES = 1 / 3600
WC_RES = 1 / 12000
WC_EXTENT = (-27.62, -57.62, -27.46, -57.52)
WC_BLOCK = (0.02, 0.025)  # lon, lat
WC_CLASSES = np.array([10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100], dtype=np.uint8)
WC_HOLE = (-27.575, -57.585, -27.565, -57.575)  # nodata (0) square inside the AOI
_TO_UTM = Transformer.from_crs("EPSG:4326", UTM, always_xy=True)
E0, N0 = _TO_UTM.transform(*CENTRE)


def dem_truth(e: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Elevation of the plane at UTM coordinates (metres)."""
    return DEM_Z0 + DEM_A * (e - E0) + DEM_B * (n - N0)


def worldcover_truth(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """WorldCover class at lon/lat (0 in the hole)."""
    col = np.floor((lon - WC_EXTENT[0]) / WC_BLOCK[0]).astype(int)
    row = np.floor((WC_EXTENT[3] - lat) / WC_BLOCK[1]).astype(int)
    out = WC_CLASSES[(row * 8 + col) % len(WC_CLASSES)]
    hole = (lon > WC_HOLE[0]) & (lon < WC_HOLE[2]) & (lat > WC_HOLE[1]) & (lat < WC_HOLE[3])
    return np.where(hole, 0, out).astype(np.uint8)


def _cog(path: Path, data: np.ndarray, transform: Any, nodata: float | None) -> None:
    with rasterio.open(
        path,
        "w",
        driver="COG",
        width=data.shape[1],
        height=data.shape[0],
        count=1,
        dtype=data.dtype,
        crs="EPSG:4326",
        transform=transform,
        nodata=nodata,
        compress="DEFLATE",
        overview_resampling="nearest",
    ) as dst:
        dst.write(data, 1)


def _centres(x0: float, y1: float, res: float, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    lon = x0 + (np.arange(w) + 0.5) * res
    lat = y1 - (np.arange(h) + 0.5) * res
    return np.meshgrid(lon, lat)


def _box(x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


@dataclass
class PcData:
    folder: Path
    dem_items: list[dict[str, Any]]
    worldcover_item: dict[str, Any]
    collections: list[dict[str, Any]]


@pytest.fixture(scope="session")
def pc_data(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> PcData:
    """The PC items with rewritten assets, and their COGs."""
    folder = tmp_path_factory.mktemp("pc-assets")
    src = shared / "data" / "stac-geoparquet"
    dem_templates = json.loads((src / "tests/data/cop-dem-glo-30-pc.json").read_text())
    assert len(dem_templates) == 4
    # four quadrant tiles around the centre, 1 arc second
    xs, ys = (WC_EXTENT[0], CENTRE[0], WC_EXTENT[2]), (WC_EXTENT[1], CENTRE[1], WC_EXTENT[3])
    dem_items = []
    for i, (qx, qy) in enumerate([(0, 1), (1, 1), (0, 0), (1, 0)]):
        x0, x1, y0, y1 = xs[qx], xs[qx + 1], ys[qy], ys[qy + 1]
        w, h = round((x1 - x0) / DEM_RES), round((y1 - y0) / DEM_RES)
        lon, lat = _centres(x0, y1, DEM_RES, w, h)
        e, n = _TO_UTM.transform(lon, lat)
        path = folder / f"dem_{i}.tif"
        t = from_origin(x0, y1, DEM_RES, DEM_RES)
        _cog(path, dem_truth(e, n).astype(np.float32), t, None)
        item = copy.deepcopy(dem_templates[i])
        item["id"] = f"Copernicus_DSM_COG_10_S58_00_W028_00_DEM_q{i}"
        item["bbox"] = [x0, y0, x1, y1]
        item["geometry"] = _box(x0, y0, x1, y1)
        item["properties"]["proj:shape"] = [h, w]
        item["properties"]["proj:transform"] = list(t)[:6]
        item["assets"]["data"]["href"] = path.as_uri()
        item["links"] = [
            ln for ln in item["links"] if ln["rel"] not in ("self", "root", "parent", "collection")
        ]
        dem_items.append(item)

    wc = json.loads((src / "extracted_from_cassettes/pc_esa-worldcover_items_limit1.json").read_text())
    wc_item = copy.deepcopy(wc["features"][0])
    x0, y0, x1, y1 = WC_EXTENT
    w, h = round((x1 - x0) / WC_RES), round((y1 - y0) / WC_RES)
    lon, lat = _centres(x0, y1, WC_RES, w, h)
    t = from_origin(x0, y1, WC_RES, WC_RES)
    path = folder / "worldcover_map.tif"
    _cog(path, worldcover_truth(lon, lat), t, 0)
    wc_item["assets"]["map"]["href"] = path.as_uri()
    wc_item["assets"]["map"]["proj:shape"] = [h, w]
    wc_item["assets"]["map"]["proj:transform"] = list(t)[:6]
    wc_item["links"] = [
        ln for ln in wc_item["links"] if ln["rel"] not in ("self", "root", "parent", "collection")
    ]
    collections = [
        {
            "type": "Collection",
            "stac_version": "1.0.0",
            "id": cid,
            "description": f"{cid} (test copy of the Planetary Computer collection)",
            "license": "proprietary",
            "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[t0, None]]}},
            "links": [],
        }
        for cid, t0 in (
            ("cop-dem-glo-30", "2021-04-22T00:00:00Z"),
            ("esa-worldcover", "2020-01-01T00:00:00Z"),
        )
    ]
    return PcData(folder, dem_items, wc_item, collections)


class _Counter:
    """ASGI middleware recording the path of every HTTP request."""

    def __init__(self, app: Any):
        self.app = app
        self.paths: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.paths.append(scope["path"])
        await self.app(scope, receive, send)


@dataclass
class StacServer:
    url: str
    counter: _Counter
    server: uvicorn.Server = field(repr=False)
    thread: threading.Thread = field(repr=False)

    @property
    def requests(self) -> list[str]:
        return self.counter.paths

    def reset(self) -> None:
        self.counter.paths.clear()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def stac_server(
    pc_data: PcData, pgstac_db_factory: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StacServer]:
    """`hrlc.api.create_app` over a pgstac database holding the rewritten PC items; its STAC API URL."""
    from pypgstac.db import PgstacDB
    from pypgstac.load import Loader, Methods

    from hrlc.api import create_app

    dsn = pgstac_db_factory("ancillary_pc")
    with PgstacDB(dsn=dsn) as pg:
        loader = Loader(db=pg)
        loader.load_collections(iter(copy.deepcopy(pc_data.collections)), insert_mode=Methods.upsert)
        loader.load_items(
            iter(copy.deepcopy([*pc_data.dem_items, pc_data.worldcover_item])), insert_mode=Methods.upsert
        )
    settings = Settings(  # a public catalogue, as the Planetary Computer's
        catalog=dsn,
        store=str(tmp_path_factory.mktemp("api-lake")),
        stac_public_collections=[c["id"] for c in pc_data.collections],
    )
    counter = _Counter(create_app(settings))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(counter, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the STAC API did not start")
        time.sleep(0.02)
    yield StacServer(f"http://127.0.0.1:{port}/stac", counter, server, thread)
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def ancillary_dsn(pgstac_db_factory: Callable[[str], str]) -> str:
    """A fresh PostGIS database with the `ancillary` schema (the §3.4 database of these tests), migrated explicitly
    as `hrlc migrate` does: using the database only checks the schema, it never creates it."""
    from hrlc.ancillary import db

    dsn = pgstac_db_factory("ancillary_meta")
    db.migrate(dsn)
    return dsn


def service(settings: Settings) -> Ancillary:
    """The ancillary component over the lake, catalogue and database of `settings`, built as the composition
    root (`hrlc.backends`) builds it."""
    from hrlc.catalog.factory import open_catalog
    from hrlc.lake.store import open_store

    store = open_store(settings.store, settings)
    return Ancillary(settings, store=store, catalog=open_catalog(store, settings))


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ancillary_dsn: str, stac_server: StacServer
) -> Settings:
    """HRLC_* for one test: a fresh local lake, the static catalogue, the test database and STAC API."""
    lake = tmp_path / "lake"
    values = {
        "HRLC_STORE": str(lake),
        "HRLC_CATALOG": "static",
        "HRLC_TRAINING_DSN": ancillary_dsn,
        "HRLC_ANCILLARY_STAC_API": stac_server.url,
    }
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    # each test starts with nothing put or cached
    with psycopg.connect(ancillary_dsn, autocommit=True) as conn:
        conn.execute("truncate ancillary.uploads, ancillary.cache")
    stac_server.reset()
    return Settings()

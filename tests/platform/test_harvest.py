"""Harvest (EXT-IF-000010) offline: a tiny STAC API on 127.0.0.1 serving the REAL item JSONs of Earth Search
(from `shared/data`) with their asset hrefs rewritten to small local COGs, which it serves with HTTP range
requests (206). Harvest copies the assets into raw/ of the lake and registers the items in `hrlc-raw`."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
import psycopg
import pytest
from rasterio.io import MemoryFile
from rasterio.transform import from_origin
from typer.testing import CliRunner

from hrlc.catalog.harvest import harvest
from hrlc.catalog.ingest import watch
from hrlc.lake.store import LocalStore

EARTH_SEARCH = "data/pystac-client/extracted_from_cassettes/earth-search-v1"
ITEM_FILES = (
    "sentinel-2-l2a__S2A_13TDE_20231008_0_L2A.json",
    "sentinel-2-l2a__S2B_20EPT_20250731_0_L2A.json",
    "landsat-c2-l2__LC08_L2SP_033032_20231008_02_T1.json",
    "sentinel-1-grd__S1A_IW_GRDH_1SSH_20250731T135702_20250731T135722_060328_077F7E.json",
)


@pytest.fixture(scope="module")
def dsn(pgstac_db_factory: Callable[[str], str]) -> str:
    """A pgstac database of this module's own (dropped at the end of the session)."""
    return pgstac_db_factory("harvest")


def _cog_bytes(value: int) -> bytes:
    data = np.full((1, 300, 300), value, dtype=np.uint16)
    profile = {
        "driver": "COG",
        "width": 300,
        "height": 300,
        "count": 1,
        "dtype": "uint16",
        "crs": "EPSG:32613",
        "transform": from_origin(399960.0, 4500000.0, 20.0, 20.0),
        "nodata": 0,
        "compress": "NONE",  # ~180 kB: several range requests with a small chunk
    }
    with MemoryFile() as mem:
        with mem.open(**profile) as dst:
            dst.write(data)
        return bytes(mem.read())


@dataclass
class FakeStac:
    """State of the test STAC API: items, files, and a log of the requests it served."""

    items: list[dict[str, Any]]
    files: dict[str, bytes]
    log: list[tuple[str, str, str | None]] = field(default_factory=list)
    base: str = ""

    def search(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        cols = params.get("collections") or []
        if isinstance(cols, str):
            cols = cols.split(",")
        bbox = params.get("bbox")
        if isinstance(bbox, str):
            bbox = [float(v) for v in bbox.split(",")]
        dt_range = params.get("datetime")
        out = []
        for it in self.items:
            if cols and it["collection"] not in cols:
                continue
            if bbox:
                b = it["bbox"]
                if b[0] > bbox[2] or b[2] < bbox[0] or b[1] > bbox[3] or b[3] < bbox[1]:
                    continue
            if dt_range:
                start, _, end = str(dt_range).partition("/")
                t = _t(it["properties"]["datetime"])
                if start not in ("", "..") and t < _t(start):
                    continue
                if end not in ("", "..") and t > _t(end):
                    continue
            out.append(it)
        limit = int(params.get("limit") or 10)
        return out[:limit]


def _t(s: str) -> dt.datetime:
    if len(s) == 10:
        s += "T00:00:00Z"
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


def _handler(state: FakeStac) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _json(self, body: Any, status: int = 200) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _file(self, name: str, head: bool) -> None:
            data = state.files.get(name)
            rng = self.headers.get("Range")
            state.log.append(("HEAD" if head else "GET", name, rng))
            if data is None:
                self.send_error(404)
                return
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng or "")
            if m:
                a = int(m.group(1))
                b = min(int(m.group(2)) if m.group(2) else len(data) - 1, len(data) - 1)
                part = data[a : b + 1]
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {a}-{b}/{len(data)}")
            else:
                part = data
                self.send_response(200)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Type", "image/tiff")
            self.send_header("Content-Length", str(len(part)))
            self.end_headers()
            if not head:
                self.wfile.write(part)

        def _landing(self) -> dict[str, Any]:
            b = state.base
            return {
                "type": "Catalog",
                "id": "fake-earth-search",
                "stac_version": "1.0.0",
                "description": "offline STAC API of the harvest tests",
                "conformsTo": [
                    "https://api.stacspec.org/v1.0.0/core",
                    "https://api.stacspec.org/v1.0.0/item-search",
                    "https://api.stacspec.org/v1.0.0/collections",
                ],
                "links": [
                    {"rel": "self", "href": f"{b}/", "type": "application/json"},
                    {"rel": "root", "href": f"{b}/", "type": "application/json"},
                    {"rel": "data", "href": f"{b}/collections", "type": "application/json"},
                    {"rel": "conformance", "href": f"{b}/conformance", "type": "application/json"},
                    {"rel": "search", "href": f"{b}/search", "type": "application/geo+json", "method": "GET"},
                    {
                        "rel": "search",
                        "href": f"{b}/search",
                        "type": "application/geo+json",
                        "method": "POST",
                    },
                ],
            }

        def _collection(self, cid: str) -> dict[str, Any]:
            return {
                "type": "Collection",
                "id": cid,
                "stac_version": "1.0.0",
                "description": cid,
                "license": "proprietary",
                "extent": {
                    "spatial": {"bbox": [[-180, -90, 180, 90]]},
                    "temporal": {"interval": [[None, None]]},
                },
                "links": [],
            }

        def _results(self, params: dict[str, Any]) -> None:
            feats = state.search(params)
            self._json({"type": "FeatureCollection", "features": feats, "links": []})

        def do_HEAD(self) -> None:  # noqa: N802
            path = urlparse(self.path).path
            if path.startswith("/files/"):
                self._file(path.removeprefix("/files/"), head=True)
            else:
                self.send_error(404)

        def do_GET(self) -> None:  # noqa: N802
            u = urlparse(self.path)
            if u.path.startswith("/files/"):
                self._file(u.path.removeprefix("/files/"), head=False)
            elif u.path in ("", "/"):
                self._json(self._landing())
            elif u.path == "/conformance":
                self._json({"conformsTo": self._landing()["conformsTo"]})
            elif u.path == "/collections":
                cids = sorted({i["collection"] for i in state.items})
                self._json({"collections": [self._collection(c) for c in cids], "links": []})
            elif u.path.startswith("/collections/"):
                self._json(self._collection(u.path.split("/")[2]))
            elif u.path == "/search":
                q = {k: v[0] for k, v in parse_qs(u.query).items()}
                state.log.append(("GET", "/search", None))
                self._results(q)
            else:
                self.send_error(404)

        def do_POST(self) -> None:  # noqa: N802
            if urlparse(self.path).path != "/search":
                self.send_error(404)
                return
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            state.log.append(("POST", "/search", None))
            self._results(body)

    return Handler


@pytest.fixture(scope="module")
def stac_server(shared: Path) -> Iterator[FakeStac]:
    items, files = [], {}
    for n, name in enumerate(ITEM_FILES):
        it = json.loads((shared / EARTH_SEARCH / name).read_text())
        items.append(it)
        for k, a in it["assets"].items():
            if "tiff" in a.get("type", "") or a["href"].lower().endswith((".tif", ".tiff")):
                fname = f"{it['id']}/{k}.tif"
                files[fname] = _cog_bytes(100 + n)
                a["href"] = f"@BASE@/files/{fname}"
    state = FakeStac(items=items, files=files)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.base = f"http://127.0.0.1:{server.server_port}"
    state.items = json.loads(json.dumps(items).replace("@BASE@", state.base))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    thread.join(timeout=5)


def _item(dsn: str, item_id: str) -> dict[str, Any] | None:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("select pgstac.get_item(%s, 'hrlc-raw')", [item_id]).fetchone()
    return None if row is None or row[0] is None else dict(row[0])


def _xmins(dsn: str) -> dict[str, str]:
    with psycopg.connect(dsn) as conn:
        r = conn.execute("select id, xmin::text from pgstac.items where collection = 'hrlc-raw'").fetchall()
    return dict(r)


def test_harvest_sentinel2_copies_with_ranges_and_registers(
    tmp_path: Path, dsn: str, stac_server: FakeStac
) -> None:
    store = LocalStore(tmp_path / "lake")
    rep = harvest(
        f"{stac_server.base}/",
        "sentinel-2-l2a",
        [-106.0, 39.8, -105.0, 40.5],
        "2023-10-01/2023-10-31",
        store,
        dsn,
        assets=["red", "nir"],
        chunk=64 * 1024,
    )
    assert rep.errors == [] and rep.item_ids == ["S2A_13TDE_20231008_0_L2A"]
    assert rep.assets_copied == 2 and rep.range_requests >= 6  # ~180 kB in 64 kB ranges
    red = "raw/sentinel2/2023/10/S2A_13TDE_20231008_0_L2A_red.tif"
    assert store.read_bytes(red) == stac_server.files["S2A_13TDE_20231008_0_L2A/red.tif"]
    ranged = [r for r in stac_server.log if r[0] == "GET" and r[1].endswith("/red.tif")]
    assert ranged and all(r[2] and r[2].startswith("bytes=") for r in ranged)

    item = _item(dsn, "S2A_13TDE_20231008_0_L2A")
    assert item is not None
    assert set(item["assets"]) == {"red", "nir"}
    a = item["assets"]["red"]
    assert a["href"] == store.href(red)
    assert a["hrlc:original_href"] == f"{stac_server.base}/files/S2A_13TDE_20231008_0_L2A/red.tif"
    assert a["alternate"]["original"]["href"] == a["hrlc:original_href"]
    assert a["file:size"] == len(stac_server.files["S2A_13TDE_20231008_0_L2A/red.tif"])
    p = item["properties"]
    assert p["hrlc:original_id"] == item["id"] == "S2A_13TDE_20231008_0_L2A"
    assert p["hrlc:original_collection"] == "sentinel-2-l2a"
    assert (p["hrlc:sensor"], p["hrlc:year"], p["hrlc:period"]) == ("sentinel2", 2023, "10")
    assert p["eo:cloud_cover"] is not None  # the original metadata is kept
    assert any(lk["rel"] == "via" and "earth-search" in lk["href"] for lk in item["links"])

    # re-harvest: no download, no item rewritten
    before = _xmins(dsn)
    stac_server.log.clear()
    again = harvest(
        f"{stac_server.base}/",
        "sentinel-2-l2a",
        [-106.0, 39.8, -105.0, 40.5],
        "2023-10-01/2023-10-31",
        store,
        dsn,
        assets=["red", "nir"],
    )
    assert (again.assets_copied, again.assets_skipped, again.errors) == (0, 2, [])
    assert not [r for r in stac_server.log if r[0] == "GET" and r[1].startswith("S2A")]
    assert _xmins(dsn) == before
    assert sorted(store.list("raw/")) == sorted(
        [red, "raw/sentinel2/2023/10/S2A_13TDE_20231008_0_L2A_nir.tif"]
    )

    # the watcher does not turn harvested copies into items of their own
    rep_w = watch(store, dsn, once=True)
    assert rep_w.pending == 0
    assert set(_xmins(dsn)) == {"S2A_13TDE_20231008_0_L2A"}


def test_harvest_landsat_and_sentinel1_folders_and_cli(
    tmp_path: Path, dsn: str, stac_server: FakeStac
) -> None:
    from hrlc.cli import app

    store = LocalStore(tmp_path / "lake")
    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "ingest",
            "harvest",
            "--stac-url",
            f"{stac_server.base}/",
            "--collection",
            "landsat-c2-l2",
            "--bbox",
            "-105.5,39.5,-103,41",
            "--datetime",
            "2023-10-01/2023-12-31",
            "--assets",
            "red,nir08",
            "--store",
            store.url,
            "--dsn",
            dsn,
        ],
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.strip().splitlines()[-1])["item_ids"] == ["LC08_L2SP_033032_20231008_02_T1"]
    assert sorted(store.list("raw/")) == [
        "raw/landsat/2023/season4/LC08_L2SP_033032_20231008_02_T1_nir08.tif",
        "raw/landsat/2023/season4/LC08_L2SP_033032_20231008_02_T1_red.tif",
    ]
    rep = harvest(f"{stac_server.base}/", "sentinel-1-grd", None, "2025-07", store, dsn)  # default assets
    assert rep.errors == [] and rep.assets_copied == 1
    assert list(store.list("raw/sentinel1/")) == [
        "raw/sentinel1/2025/07/S1A_IW_GRDH_1SSH_20250731T135702_20250731T135722_060328_077F7E_hh.tif"
    ]
    item = _item(dsn, "S1A_IW_GRDH_1SSH_20250731T135702_20250731T135722_060328_077F7E")
    assert item is not None and item["properties"]["hrlc:sensor"] == "sentinel1"

    # a bad bbox is one line and exit code 2
    bad = runner.invoke(
        app,
        ["ingest", "harvest", "--stac-url", stac_server.base, "--collection", "x", "--bbox", "1,2,3"],
    )
    assert bad.exit_code == 2

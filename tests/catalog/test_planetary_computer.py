"""Real Planetary Computer and Earth Search items, read as `hrlc run` reads them (issue 14: PC hrefs were never
signed, so every PC scene failed with 403).

The real item JSONs of ../shared/data (a PC sentinel-2-l2a item of tile 06VVN and an Earth Search v1
sentinel-2-l2a item) are kept as they are but for the scheme of their asset hrefs (https -> http), so that GDAL
can reach "Azure" and "AWS" through a local HTTP proxy (`GDAL_HTTP_PROXY`): this test's server, which plays
the blob storage (it answers a PC href only with the container's SAS token in its query, 403 without), the S3
bucket (no token) and the PC SAS API (`PC_SDK_SAS_URL`), and serves small COGs with known pixels on each
item's own grid. The optical preprocessing's loader must sign the PC hrefs, not the Earth Search ones, and
read the pixels.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
import pystac
import pytest
import rasterio
from affine import Affine
from odc.geo.geobox import GeoBox

from hrlc.catalog import sources

PC_ITEM = Path("data/odc-stac/tests/data/S2B_MSIL2A_20190629T212529_R043_T06VVN_20201006T080531.json")
ES_ITEM = Path(
    "data/pystac-client/extracted_from_cassettes/earth-search-v1/sentinel-2-l2a__S2A_13TDE_20231008_0_L2A.json"
)
TOKEN = (
    "st=2026-12-01T00%3A00%3A00Z&se=2099-01-01T00%3A00%3A00Z&sp=rl&sv=2021-06-08&sr=c&sig=hrlc-test-signature"
)
SIDE_M = 1280  # the COGs cover the first 1 280 m of each item's grid (the upper-left corner)


class Server:
    """The fake remote: blob storage, S3 bucket and PC SAS API behind one HTTP proxy port."""

    def __init__(self) -> None:
        self.files: dict[str, Path] = {}  # "host/path" -> local COG
        self.token_requests: list[str] = []
        self.reads: list[tuple[str, bool]] = []  # ("host/path", signed)
        self.refused: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _target(self) -> tuple[str, dict[str, list[str]]]:
                url = urlparse(self.path)
                return f"{url.netloc or '127.0.0.1'}{url.path}", parse_qs(url.query)  # proxied, or to us

            def _send(self, head: bool) -> None:
                target, query = self._target()
                if target.startswith("127.0.0.1/") and "/sas/token/" in target:  # PC SAS API
                    server.token_requests.append(target)
                    body = json.dumps({"msft:expiry": "2099-01-01T00:00:00Z", "token": TOKEN}).encode()
                    self._reply(200, body, "application/json", head)
                    return
                signed = query.get("sig") == ["hrlc-test-signature"]
                if target.split("/")[0].endswith(sources.BLOB_STORAGE) and not signed:
                    server.refused.append(target)
                    self._reply(403, b"AuthenticationFailed: no SAS token", "text/plain", head)
                    return
                path = server.files.get(target)
                if path is None:
                    self._reply(404, b"not found", "text/plain", head)
                    return
                server.reads.append((target, signed))
                data = path.read_bytes()
                ranged = self.headers.get("Range")
                if ranged:
                    start, _, end = ranged.removeprefix("bytes=").partition("-")
                    lo, hi = int(start), min(int(end) if end else len(data) - 1, len(data) - 1)
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {lo}-{hi}/{len(data)}")
                    part = data[lo : hi + 1]
                else:
                    self.send_response(200)
                    part = data
                self.send_header("Content-Type", "image/tiff")
                self.send_header("Content-Length", str(len(part)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if not head:
                    self.wfile.write(part)

            def _reply(self, code: int, body: bytes, kind: str, head: bool) -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self._send(head=False)

            def do_HEAD(self) -> None:  # noqa: N802
                self._send(head=True)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def remote(monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    import planetary_computer.sas
    import planetary_computer.settings

    server = Server()
    monkeypatch.setenv("GDAL_HTTP_PROXY", f"127.0.0.1:{server.port}")
    monkeypatch.setenv("PC_SDK_SAS_URL", f"http://127.0.0.1:{server.port}/api/sas/token")
    planetary_computer.settings.Settings.get.cache_clear()
    planetary_computer.sas.TOKEN_CACHE.clear()
    yield server
    server.httpd.shutdown()
    planetary_computer.settings.Settings.get.cache_clear()
    planetary_computer.sas.TOKEN_CACHE.clear()


def _served_item(
    path: Path, server: Server, root: Path, seed: int
) -> tuple[pystac.Item, dict[str, np.ndarray]]:
    """The real item with http hrefs, and a small COG with known pixels behind each band asset it has."""
    doc = json.loads(path.read_text())
    item = pystac.Item.from_dict(doc)
    epsg = item.properties.get("proj:epsg") or int(str(item.properties["proj:code"]).split(":")[1])
    rng = np.random.default_rng(seed)
    pixels: dict[str, np.ndarray] = {}
    for key, asset in item.assets.items():
        transform = asset.extra_fields.get("proj:transform")
        if not asset.href.startswith("https://") or transform is None:
            continue
        res = float(transform[0])
        n = int(SIDE_M / res)
        values = (
            rng.integers(1, 5000, size=(n, n))
            if key.upper() not in ("SCL", "SCL_20M")
            else np.full((n, n), 4)
        )
        data = values.astype(np.uint16 if key.upper() not in ("SCL",) else np.uint8)
        url = urlparse(asset.href)
        local = root / f"{seed}-{key}.tif"
        with rasterio.open(
            local, "w", driver="COG", width=n, height=n, count=1, dtype=data.dtype, crs=f"EPSG:{epsg}",
            transform=Affine(res, 0, transform[2], 0, -res, transform[5]), nodata=0,
        ) as dst:  # fmt: skip
            dst.write(data, 1)
        server.files[f"{url.netloc}{url.path}"] = local
        asset.href = "http://" + asset.href.removeprefix("https://")
        pixels[key] = data
    return item, pixels


def test_pc_hrefs_are_signed_and_read_earth_search_hrefs_read_as_they_are(
    remote: Server, shared: Path, tmp_path: Path
) -> None:
    pc, pc_pixels = _served_item(shared / PC_ITEM, remote, tmp_path, seed=1)
    es, es_pixels = _served_item(shared / ES_ITEM, remote, tmp_path, seed=2)
    for item, pixels in ((pc, pc_pixels), (es, es_pixels)):
        epsg = item.properties.get("proj:epsg") or int(str(item.properties["proj:code"]).split(":")[1])
        t = item.assets["B04" if "B04" in item.assets else "red"].extra_fields["proj:transform"]
        grid = GeoBox((64, 64), Affine(10.0, 0, t[2], 0, -10.0, t[5]), f"EPSG:{epsg}")
        cube = sources.load_optical([item], sensor="sentinel2", geobox=grid).compute()
        red = "B04" if "B04" in pixels else "red"
        np.testing.assert_array_equal(cube["red"].values[0], pixels[red][:64, :64])  # DN as stored
        assert "qa" in cube

    pc_reads = [t for t, _ in remote.reads if t.split("/")[0].endswith(sources.BLOB_STORAGE)]
    es_reads = [(t, s) for t, s in remote.reads if t.split("/")[0].endswith("amazonaws.com")]
    assert pc_reads and all(s for t, s in remote.reads if t in pc_reads)  # every PC read carried the token
    assert es_reads and not any(s for _, s in es_reads)  # Earth Search hrefs left as they are
    assert remote.refused == []
    assert remote.token_requests == [
        "127.0.0.1/api/sas/token/sentinel2l2a01/sentinel2-l2"
    ]  # one, then cached


def test_without_signing_the_blob_storage_refuses(remote: Server, shared: Path, tmp_path: Path) -> None:
    """The server is strict: the same load without the signer is refused (the test above can fail)."""
    pc, _ = _served_item(shared / PC_ITEM, remote, tmp_path, seed=1)
    t = pc.assets["B04"].extra_fields["proj:transform"]
    grid = GeoBox((64, 64), Affine(10.0, 0, t[2], 0, -10.0, t[5]), "EPSG:32606")
    with pytest.raises(Exception):  # noqa: B017 - GDAL's 403, whichever way odc-stac reports it
        sources.load_optical([pc], sensor="sentinel2", geobox=grid, patch_url=lambda href: href).compute()
    assert remote.refused

"""The Data Lake on S3 (moto's server on 127.0.0.1, a real HTTP endpoint): the chain gives the same products
as on a local lake, COGs are read through GDAL's /vsis3/ with range requests, presigned URLs, bad input."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import shutil
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window
from typer.testing import CliRunner

from hrlc import sample
from hrlc.cli import app
from hrlc.lake.layout import LayoutError
from hrlc.lake.store import LocalStore, S3Store, Store, gdal_env, open_store
from hrlc.products.cog import write_cog
from hrlc.settings import Settings
from landcover import chain_key, one_tile, run_chain, utm_bbox

SIZE = 128
YEAR = 2021

pytestmark = pytest.mark.slow


def _inputs_on_s3(repo: sample.SampleRepository, client: Any, bucket: str, dest: Path) -> Path:
    """Upload the Sentinel-2 scenes of the synthetic repository to S3 and write a copy of its static
    catalogue whose asset hrefs are s3:// URIs, so the chain also reads its inputs through /vsis3/."""
    src = repo.catalog.parent
    for f in sorted((src / "sentinel-2-l2a").rglob("*.tif")):
        client.upload_file(str(f), bucket, f"external/{f.relative_to(src).as_posix()}")
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("*.tif", "*.TIF"))
    n = 0
    for item_file in (dest / "sentinel-2-l2a").glob("*/*.json"):
        d = json.loads(item_file.read_text())
        rel = item_file.parent.relative_to(dest).as_posix()
        for a in d["assets"].values():
            if a["href"].startswith("./"):
                a["href"] = f"s3://{bucket}/external/{rel}/{a['href'][2:]}"
                n += 1
        item_file.write_text(json.dumps(d))
    assert n > 100
    return dest / "catalog.json"


@dataclass
class Runs:
    repo: sample.SampleRepository
    local: LocalStore
    s3: S3Store
    s3_source: Path  # the repository's catalogue with s3:// hrefs: another source, so other product keys

    def class_map(self, on_s3: bool) -> str:
        return chain_key(self.repo, "class-map", year=YEAR, **({"source": self.s3_source} if on_s3 else {}))


@pytest.fixture(scope="module", autouse=True)
def _quiet_moto() -> Iterator[None]:
    """moto's werkzeug logs every request at INFO: thousands of captured records slow the chain down."""
    log = logging.getLogger("werkzeug")
    level = log.level
    log.setLevel(logging.WARNING)
    yield
    log.setLevel(level)


@pytest.fixture(scope="module")
def runs(s3_server, tmp_path_factory: pytest.TempPathFactory) -> Runs:  # noqa: ANN001
    repo = sample.generate(tmp_path_factory.mktemp("external"), size=SIZE, year=YEAR)
    local = LocalStore(tmp_path_factory.mktemp("lake"))
    run_chain(repo, local, year=YEAR)

    bucket = s3_server.new_bucket("hrlc-chain")
    s3_source = _inputs_on_s3(repo, s3_server.client(), bucket, tmp_path_factory.mktemp("s3-catalog") / "c")
    store = open_store(f"s3://{bucket}/prod/lake", Settings())
    assert isinstance(store, S3Store)
    run_chain(repo, store, year=YEAR, source=s3_source)
    return Runs(repo, local, store, s3_source)


def _class_map(store: Store, key: str) -> tuple[np.ndarray, dict[str, Any]]:
    with store.reading(key) as path, rasterio.open(path) as src:
        return src.read(1), {"crs": src.crs, "transform": src.transform, "colormap": src.colormap(1)}


def test_chain_on_s3_gives_the_same_class_map(runs: Runs) -> None:
    with runs.s3.reading(runs.class_map(on_s3=True)) as path:
        assert path.startswith("/vsis3/hrlc-chain/prod/lake/")  # read in place, not downloaded
    on_s3, meta_s3 = _class_map(runs.s3, runs.class_map(on_s3=True))
    local, meta_local = _class_map(runs.local, runs.class_map(on_s3=False))
    assert on_s3.shape == (SIZE, SIZE)
    assert (on_s3 > 0).mean() > 0.9
    np.testing.assert_array_equal(on_s3, local)
    assert meta_s3 == meta_local

    def families(keys: list[str]) -> list[str]:  # the same products, items and logs (their configs differ)
        return sorted(re.split(r"_(?:aoi-|utm\d+[ns]-)", k.rsplit("/", 1)[-1])[0] for k in keys)

    assert families(runs.s3.list()) == families(runs.local.list())


def test_every_item_points_into_the_bucket(runs: Runs) -> None:
    items = [
        k
        for k in runs.s3.list("metadata/stac/")
        if k.endswith(".json") and not k.endswith(("/collection.json", "/catalog.json"))
    ]
    assert len(items) >= 12 * 2 + 3
    for key in items:
        d = json.loads(runs.s3.read_bytes(key))
        assert d["type"] == "Feature"
        self_href = next(link["href"] for link in d["links"] if link["rel"] == "self")
        assert self_href == runs.s3.href(key)
        for name, asset in d["assets"].items():
            assert asset["href"].startswith("s3://hrlc-chain/prod/lake/"), (key, name, asset["href"])
            assert runs.s3.exists(runs.s3.key_of(asset["href"])), asset["href"]


def test_rerun_on_s3_resumes(runs: Runs, s3_server) -> None:  # noqa: ANN001
    key = runs.s3._k(runs.class_map(on_s3=True))
    before = runs.s3.client.head_object(Bucket=runs.s3.bucket, Key=key)["ETag"]
    again = run_chain(runs.repo, runs.s3, year=YEAR, source=runs.s3_source)  # every task's outputs exist
    assert all(t.skipped for t in again.tasks)
    after = runs.s3.client.head_object(Bucket=runs.s3.bucket, Key=key)["ETag"]
    assert before == after


# --------------------------------------------------------------------------- range reads, no full download


@dataclass
class Counter:
    """WSGI middleware in front of moto's app: the bytes of every response body, per request (counted as
    they are handed to the server, so before the client has them)."""

    app: Any
    log: list[list[Any]] = field(default_factory=list)  # [method, path, Range header, bytes]
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        entry = [environ["REQUEST_METHOD"], environ["PATH_INFO"], environ.get("HTTP_RANGE"), 0]
        with self.lock:
            self.log.append(entry)
        for chunk in self.app(environ, start_response):
            entry[3] += len(chunk)
            yield chunk


@pytest.fixture(scope="module")
def counting_endpoint(s3_server) -> Iterator[tuple[str, Counter]]:  # noqa: ANN001
    """A second HTTP front of the same moto backend, counting the bytes it sends."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    counter = Counter(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, counter, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", counter
    finally:
        server.shutdown()
        thread.join()


def test_cog_window_read_uses_range_requests(s3_server, counting_endpoint) -> None:  # noqa: ANN001
    endpoint, counter = counting_endpoint
    settings = Settings(
        s3_endpoint=endpoint,
        s3_access_key_id=s3_server.access_key,
        s3_secret_access_key=s3_server.secret_key,
    )
    bucket = s3_server.new_bucket("hrlc-range")
    store = S3Store(f"s3://{bucket}/lake", settings)
    key = "classification/2021/annual/noise.tif"
    data = np.random.default_rng(0).integers(0, 60000, (2048, 2048), dtype=np.uint16)  # incompressible
    write_cog(store, key, data, crs=32633, transform=Affine(10, 0, 500000, 0, -10, 5000000))
    size = store.client.head_object(Bucket=bucket, Key=store._k(key))["ContentLength"]
    assert size > 6_000_000

    counter.log.clear()
    with store.reading(key) as path, rasterio.open(path) as src:
        assert path == f"/vsis3/{bucket}/lake/{key}"
        window = src.read(1, window=Window(1024, 512, 256, 256))
    np.testing.assert_array_equal(window, data[512:768, 1024:1280])
    gets = [r for r in counter.log if r[0] == "GET" and r[1].endswith(key)]
    sent = sum(r[3] for r in gets)
    assert gets and all(r[2] and r[2].startswith("bytes=") for r in gets), gets  # only ranged GETs
    assert sent < 0.15 * size, (sent, size, gets)  # one 512 px tile + the header, not the file


# ----------------------------------------------------------------------------------------- presigned URLs


@pytest.fixture(scope="module")
def lake(s3_server) -> S3Store:  # noqa: ANN001
    return S3Store(f"s3://{s3_server.new_bucket('hrlc-lake')}/prefix", Settings())


def test_presigned_get_and_range(lake: S3Store) -> None:
    body = bytes(range(256)) * 40
    lake.write_bytes("products/x.bin", body)
    url = lake.presign("products/x.bin")
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert q["X-Amz-Expires"] == ["900"]  # HRLC_PRESIGN_TTL_S default: 15 min
    r = httpx.get(url)
    assert r.status_code == 200 and r.content == body
    r = httpx.get(url, headers={"Range": "bytes=100-199"})
    assert r.status_code == 206 and r.content == body[100:200]
    assert r.headers["Content-Range"] == f"bytes 100-199/{len(body)}"


def test_presigned_url_is_a_get_signature_with_the_ttl(lake: S3Store) -> None:
    """Signed for GET only, valid `ttl_s`. moto's server checks neither signatures nor X-Amz-Expires (a
    PUT or an expired GET with the URL still succeed against moto, measured), so this verifies the
    signature itself with botocore: S3 and MinIO recompute it from method + path + query, so a PUT
    (different canonical request) or a request after X-Amz-Date + X-Amz-Expires is refused there."""
    from botocore.auth import S3SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    lake.write_bytes("products/y.bin", b"y")
    t0 = dt.datetime.now(dt.UTC)
    url = lake.presign("products/y.bin", ttl_s=2)
    parts = urllib.parse.urlsplit(url)
    q = {k: v[0] for k, v in urllib.parse.parse_qs(parts.query).items()}
    assert q["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert q["X-Amz-Expires"] == "2" and q["X-Amz-SignedHeaders"] == "host"
    signed_at = dt.datetime.strptime(q["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    assert abs((signed_at - t0).total_seconds()) < 5
    assert parts.path == "/hrlc-lake/prefix/products/y.bin"  # path style, the key under the lake prefix

    def signature(method: str) -> str:
        base = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        req = AWSRequest(method=method, url=base)
        req.context["timestamp"] = q["X-Amz-Date"]
        S3SigV4QueryAuth(Credentials("testing", "testing"), "s3", "us-east-1", expires=2).add_auth(req)
        return urllib.parse.parse_qs(urllib.parse.urlsplit(req.url).query)["X-Amz-Signature"][0]

    assert signature("GET") == q["X-Amz-Signature"]
    assert signature("PUT") != q["X-Amz-Signature"]  # the URL does not authorise a write


def test_presign_ttl_bounds_and_key_checks(lake: S3Store) -> None:
    with pytest.raises(ValueError, match="TTL"):
        lake.presign("products/x.bin", ttl_s=0)
    with pytest.raises(LayoutError):
        lake.presign("../other/x.bin")


def test_local_presign_is_a_file_url(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.write_bytes("a/b.json", b"{}")
    url = store.presign("a/b.json", ttl_s=5)
    assert url == (tmp_path.resolve() / "a/b.json").as_uri()


# ---------------------------------------------------------------------------------------- store, bad input


@pytest.mark.parametrize("key", ["../x", "/abs/x", "a/../../x", "a//b", ""])
def test_escaping_keys_refused_on_s3(lake: S3Store, key: str) -> None:
    for call in (
        lambda: lake.write_bytes(key, b"x"),
        lambda: lake.read_bytes(key),
        lambda: lake.exists(key),
        lambda: lake.href(key),
        lambda: lake.gdal_path(key),
    ):
        with pytest.raises(LayoutError):
            call()
    with pytest.raises(LayoutError), lake.writing(key):
        pass
    with pytest.raises((LayoutError, ValueError)):
        lake.key_of(f"s3://hrlc-lake/prefix/{key}")


def test_s3_store_roundtrip_and_atomic_writing(lake: S3Store) -> None:
    lake.write_bytes("logs/a.txt", b"old")
    with pytest.raises(RuntimeError), lake.writing("logs/a.txt") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("crash in the middle")
    assert lake.read_bytes("logs/a.txt") == b"old"  # nothing uploaded
    with lake.writing("logs/sub/b.txt") as tmp:
        tmp.write_bytes(b"new")
    assert list(lake.list("logs/")) == ["logs/a.txt", "logs/sub/b.txt"]
    assert list(lake.list("logs/sub")) == ["logs/sub/b.txt"]
    assert lake.key_of(lake.href("logs/sub/b.txt")) == "logs/sub/b.txt"
    assert lake.key_of(lake.gdal_path("logs/sub/b.txt")) == "logs/sub/b.txt"
    with pytest.raises(ValueError, match="is not in"):
        lake.key_of("s3://hrlc-lake/prefix2/logs/a.txt")
    with lake.reading("logs/a.txt") as p:  # not a raster: a temporary local copy
        assert Path(p).read_bytes() == b"old"
    assert not Path(p).exists()
    lake.delete("logs/a.txt")
    assert not lake.exists("logs/a.txt")
    with pytest.raises(FileNotFoundError):
        lake.read_bytes("logs/a.txt")


def test_s3_store_takes_its_settings(s3_server, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("HRLC_PRESIGN_TTL_S", "60")
    store = S3Store("s3://b/p", Settings())
    assert store.endpoint == s3_server.endpoint and store.presign_ttl_s == 60
    env = gdal_env(store.settings)
    assert env["AWS_S3_ENDPOINT"] == s3_server.host_port
    assert env["AWS_HTTPS"] == "NO" and env["AWS_VIRTUAL_HOSTING"] == "FALSE"
    aws = gdal_env(Settings(s3_endpoint=None, s3_access_key_id=None, s3_secret_access_key=None))
    assert "AWS_S3_ENDPOINT" not in aws and "AWS_ACCESS_KEY_ID" not in aws


def test_cli_unreachable_endpoint_is_one_line(tmp_path: Path, runs: Runs) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # nothing listens once closed
    repo = runs.repo
    bbox = ",".join(str(v) for v in utm_bbox(repo))
    args = ["run", "--aoi", bbox, "--aoi-crs", f"EPSG:{repo.epsg}", "--year", str(YEAR)]
    args += ["--source", str(repo.catalog), "--training", str(repo.training_points)]
    args += ["--workdir", str(tmp_path / "w"), "--sensor", "sentinel2", "--tile-size", str(one_tile(repo))]
    env = {"HRLC_STORE": "s3://hrlc-lake/run", "HRLC_S3_ENDPOINT": f"http://127.0.0.1:{dead}"}
    t0 = time.perf_counter()
    result = CliRunner().invoke(app, args, env=env)
    assert time.perf_counter() - t0 < 15  # a few quick retries, no long hang
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[0].startswith("error: cannot reach the bucket in s3://hrlc-lake/run"), result.output
    assert f"127.0.0.1:{dead}" in result.output

    env = {"HRLC_STORE": "s3://no-such-bucket/run"}
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert "no-such-bucket" in result.output and "404" in result.output, result.output

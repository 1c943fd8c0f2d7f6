"""The object store under the Data Lake: one interface for `file://` (embedded default) and `s3://`.

Storage knows bytes and keys, nothing of metadata or jobs. Every write is atomic: a reader sees the old
object or the new one, never half of it (local: write to a temporary file, then rename; S3: a single PUT).
Writers that need a file on disk (GDAL, netCDF) use `store.writing(key)`, which yields a local path and
commits it under `key` only when the block finishes without error. Readers use `store.reading(key)`: a
local path, or on S3 the /vsis3/ path of a raster (range requests, no download) inside the GDAL
environment of the lake (`raster_env`), or a temporary copy of formats GDAL cannot range-read (NetCDF).
Rasters read by href (STAC assets, `s3://...`) are opened inside `store.raster_env()`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import rasterio
import rasterio.env

from hrlc.extras import require
from hrlc.lake.layout import check_key
from hrlc.settings import Settings, defaults, local_path


@dataclass(frozen=True)
class ObjectInfo:
    """One object of the lake as a listing shows it: key, change token (ETag), size, modification time."""

    key: str
    etag: str
    size: int
    mtime: dt.datetime


class Store(Protocol):
    url: str  # the lake: file:///path or s3://bucket/prefix
    settings: Settings | None  # the S3/GDAL configuration the lake was opened with (None: no S3 at all)

    def href(self, key: str) -> str: ...
    def key_of(self, href: str) -> str: ...
    def gdal_path(self, key: str) -> str: ...
    def exists(self, key: str) -> bool: ...
    def read_bytes(self, key: str) -> bytes: ...
    def write_bytes(self, key: str, data: bytes) -> None: ...
    def delete(self, key: str) -> None: ...
    def list(self, prefix: str = "") -> Iterator[str]: ...
    def list_info(self, prefix: str = "") -> Iterator[ObjectInfo]: ...
    def writing(self, key: str) -> contextlib.AbstractContextManager[Path]: ...
    def reading(self, key: str) -> contextlib.AbstractContextManager[str]: ...
    def raster_env(self) -> rasterio.env.Env: ...
    def presign(self, key: str, ttl_s: int | None = None) -> str: ...


def _file_mode() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _file_mode()


class LocalStore:
    """A Data Lake in a local folder."""

    def __init__(self, root: str | Path, settings: Settings | None = None):
        self.settings = settings
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.url = self.root.as_uri()

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    def href(self, key: str) -> str:
        """The href of an object as STAC assets carry it (absolute path here, s3:// URI on S3)."""
        return str(self.path(key))

    def key_of(self, href: str) -> str:
        """The key of an href of this lake (inverse of `href`); ValueError if it is outside."""
        p = Path(href.removeprefix("file://")).resolve()
        return check_key(p.relative_to(self.root).as_posix())

    def gdal_path(self, key: str) -> str:
        return str(self.path(key))

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def read_bytes(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def write_bytes(self, key: str, data: bytes) -> None:
        with self.writing(key) as tmp:
            tmp.write_bytes(data)

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def list(self, prefix: str = "") -> Iterator[str]:
        base = self.root / prefix if prefix else self.root
        start = base if base.is_dir() else base.parent
        for p in sorted(start.rglob("*")):
            rel = p.relative_to(self.root).as_posix()
            if p.is_file() and rel.startswith(prefix) and ".tmp-" not in p.name:
                yield rel

    def list_info(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """The objects of `list` with size, mtime and a change token of both (`{mtime_ns:x}-{size:x}`)."""
        for key in self.list(prefix):
            try:
                st = self.path(key).stat()
            except FileNotFoundError:  # removed between list and stat
                continue
            mtime = dt.datetime.fromtimestamp(st.st_mtime, dt.UTC)
            yield ObjectInfo(key, f"{st.st_mtime_ns:x}-{st.st_size:x}", st.st_size, mtime)

    @contextlib.contextmanager
    def writing(self, key: str) -> Iterator[Path]:
        dest = self.path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".tmp-{dest.stem}-", suffix=dest.suffix, dir=dest.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            yield tmp
            tmp.chmod(_FILE_MODE)  # mkstemp makes 0600; products are for everyone who may read the lake
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)

    @contextlib.contextmanager
    def reading(self, key: str) -> Iterator[str]:
        with self.raster_env():
            yield str(self.path(key))

    def raster_env(self) -> rasterio.env.Env:
        """GDAL environment for raster reads: the lake is local, but inputs may still be s3:// hrefs."""
        return raster_env(self.settings)

    def presign(self, key: str, ttl_s: int | None = None) -> str:
        """The `file://` URL of an object. A local lake has no HTTP server and no access control, so there
        is nothing to sign and no expiry: the URL is only good on this machine (the embedded default is
        single-user). `ttl_s` is accepted for interface compatibility and ignored."""
        return self.path(key).as_uri()


RASTER_SUFFIXES = frozenset({".tif", ".tiff", ".vrt", ".jp2"})
"""Formats GDAL range-reads through /vsis3/: `S3Store.reading` never downloads these."""


class StoreError(Exception):
    """The store cannot be reached or refuses a request (one line a user can act on)."""


# ------------------------------------------------------------------------------------------ GDAL and S3
# The one place that owns GDAL's S3 configuration. Every raster read of hrlc goes through `raster_env`
# (directly, through `Store.raster_env()` / `Store.reading()`, or, for odc-stac, through
# `configure_odc_s3`), so /vsis3/ and s3:// hrefs use the endpoint, region and credentials of the settings
# and read COGs with HTTP range requests, never a full download.


def _endpoint_parts(endpoint: str) -> tuple[str, bool]:
    """`http://host:port[/]` -> ("host:port", https?) as GDAL's AWS_S3_ENDPOINT and AWS_HTTPS want them."""
    https = not endpoint.startswith("http://")
    host = endpoint.split("://", 1)[-1].rstrip("/")
    return host, https


_NO_S3 = defaults()  # no endpoint, no keys


def gdal_env(settings: Settings | None, *, credentials: bool = True) -> dict[str, str]:
    """GDAL configuration options for /vsis3/ under `settings` (None: no S3 configuration, the AWS defaults).

    With `credentials=False` the access keys are left out (rasterio refuses them as `Env` options; they go
    into an `AWSSession`, see `raster_env`). The whole dict also works as the process environment of GDAL
    command-line tools (`gdalinfo /vsis3/...`).
    """
    s = settings or _NO_S3
    opts: dict[str, str] = {
        # odc-stac's cloud defaults, used for every read: COGs have no side-car files, so no LIST per open
        "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
        "GDAL_HTTP_MAX_RETRY": "5",
        "GDAL_HTTP_RETRY_DELAY": "0.5",
        "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
        "AWS_REGION": s.s3_region,
    }
    if s.s3_endpoint:
        host, https = _endpoint_parts(s.s3_endpoint)
        opts |= {
            "AWS_S3_ENDPOINT": host,
            "AWS_HTTPS": "YES" if https else "NO",
            "AWS_VIRTUAL_HOSTING": "FALSE",  # path-style: MinIO, moto
        }
    if credentials and s.s3_access_key_id and s.s3_secret_access_key:
        opts |= {"AWS_ACCESS_KEY_ID": s.s3_access_key_id, "AWS_SECRET_ACCESS_KEY": s.s3_secret_access_key}
    return opts


def _aws_session_args(s: Settings) -> dict[str, Any]:
    args: dict[str, Any] = {"region_name": s.s3_region}
    if s.s3_access_key_id and s.s3_secret_access_key:
        args |= {"aws_access_key_id": s.s3_access_key_id, "aws_secret_access_key": s.s3_secret_access_key}
    if s.s3_endpoint:
        args["endpoint_url"] = _endpoint_parts(s.s3_endpoint)[0]
    return args


_SESSIONS = threading.local()  # this thread's AWSSession of each S3 configuration, see `raster_env`


def raster_env(settings: Settings | None, **options: str) -> rasterio.env.Env:
    """A `rasterio.Env` that reads /vsis3/ and s3:// with the S3 settings (endpoint, region, keys).

    Keys of the settings (`HRLC_S3_ACCESS_KEY_ID`, ...) go into an `AWSSession`; without them rasterio
    falls back to the usual AWS chain (environment, ~/.aws, instance role). `options` add GDAL options.
    The `AWSSession` of an S3 configuration is made once per thread (a boto3 session is not to be shared
    across threads): made for every `Env`, it cost 8 ms, and a worker opens rasters block by block.
    """
    from rasterio.session import AWSSession, DummySession

    s = settings or _NO_S3
    opts: dict[str, Any] = gdal_env(s, credentials=False) | options
    if not (s.s3_endpoint or s.s3_access_key_id):
        # plain AWS (or no S3 at all): let rasterio find credentials only when an s3:// path is opened,
        # so local reads never wait for the AWS credential chain (instance metadata lookups); without a
        # session, the Env would make an AWSSession (8 ms) whenever AWS_ACCESS_KEY_ID is set
        return rasterio.env.Env(session=DummySession(), **opts)
    args = _aws_session_args(s)
    sessions: dict[tuple[tuple[str, Any], ...], AWSSession] = _SESSIONS.__dict__.setdefault("by_args", {})
    key = tuple(sorted(args.items()))
    if key not in sessions:
        sessions[key] = AWSSession(**args)
    return rasterio.env.Env(session=sessions[key], **opts)


def configure_odc_s3(settings: Settings | None) -> None:
    """Give odc-stac's reader threads the same S3 configuration (process-wide, idempotent).

    odc-stac reads in dask threads with its own rasterio environment, captured when `odc.stac.load` is
    called; call this before each load so s3:// asset hrefs go through the configured endpoint.
    """
    import odc.stac

    s = settings or _NO_S3
    opts: dict[str, Any] = gdal_env(s, credentials=False)
    aws = _aws_session_args(s) if (s.s3_endpoint or s.s3_access_key_id) else None
    odc.stac.configure_rio(aws=aws, **opts)


# ------------------------------------------------------------------------------------------------- S3


class S3Store:
    """A Data Lake under `s3://bucket/prefix` (AWS S3, MinIO, moto). Needs the `s3` extra (boto3).

    Endpoint, region and credentials come from `settings` (`HRLC_S3_*`, read where the process starts).
    Writes are single PUTs (`write_bytes`)
    or `upload_file` of a finished local file (`writing`; multipart uploads complete atomically too), so a
    reader never sees part of an object. Raster reads go through GDAL's /vsis3/ with range requests.
    """

    def __init__(self, url: str, settings: Settings):
        require("s3", "an S3 Data Lake (HRLC_STORE)")
        import boto3
        from botocore.config import Config

        if not url.startswith("s3://"):
            raise ValueError(f"not an S3 URL: {url!r} (want s3://bucket/prefix)")
        self.settings: Settings | None = settings
        s = settings
        self.url = url.rstrip("/")
        bucket_prefix = self.url.removeprefix("s3://")
        self.bucket, _, prefix = bucket_prefix.partition("/")
        if not self.bucket:
            raise ValueError(f"no bucket in {url!r} (want s3://bucket/prefix)")
        self.prefix = check_key(prefix.strip("/")) if prefix.strip("/") else ""
        self.endpoint = s.s3_endpoint
        self.presign_ttl_s = s.presign_ttl_s
        self.client = boto3.client(
            "s3",
            endpoint_url=s.s3_endpoint,
            region_name=s.s3_region,
            aws_access_key_id=s.s3_access_key_id,
            aws_secret_access_key=s.s3_secret_access_key,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path" if s.s3_endpoint else "auto"},
                connect_timeout=5,
                read_timeout=60,
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        )

    def __repr__(self) -> str:
        return f"S3Store({self.url!r}, endpoint={self.endpoint!r})"

    def _k(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _where(self) -> str:
        return f"{self.url} at {self.endpoint or 'AWS S3'}"

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """botocore errors -> StoreError with one line (unreachable endpoint, missing bucket, denied)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as e:
            err = e.response.get("Error", {})
            raise StoreError(
                f"S3 refused {what} in {self._where()}: {err.get('Code', '?')} {err.get('Message', '')}".strip()
            ) from e
        except BotoCoreError as e:
            raise StoreError(f"cannot {what} in {self._where()}: {e}") from e

    def check(self) -> None:
        """Fail early with a StoreError if the endpoint is unreachable or the bucket is missing/denied."""
        with self._errors("reach the bucket"):
            self.client.head_bucket(Bucket=self.bucket)

    def href(self, key: str) -> str:
        """The s3:// URI of an object (what STAC assets carry)."""
        return f"s3://{self.bucket}/{self._k(key)}"

    def key_of(self, href: str) -> str:
        """The key of an s3:// href (or /vsis3/ path) of this lake; ValueError if it is outside."""
        if href.startswith("/vsis3/"):
            href = "s3://" + href.removeprefix("/vsis3/")
        head = f"s3://{self.bucket}/{self.prefix + '/' if self.prefix else ''}"
        if not href.startswith(head):
            raise ValueError(f"{href} is not in {self.url}")
        return check_key(href[len(head) :])

    def gdal_path(self, key: str) -> str:
        """The /vsis3/ path of an object; open it inside `raster_env()` (or use `reading`)."""
        return f"/vsis3/{self.bucket}/{self._k(key)}"

    def raster_env(self) -> rasterio.env.Env:
        """GDAL environment for reading this lake's rasters (and any s3:// input) through /vsis3/.

        Objects of the lake are not cached between opens (`CPL_VSIL_CURL_NON_CACHED`): a product rewritten
        under the same key is never read stale from GDAL's per-process cache.
        """
        return raster_env(self.settings, CPL_VSIL_CURL_NON_CACHED=self.gdal_path_prefix())

    def gdal_path_prefix(self) -> str:
        return f"/vsis3/{self.bucket}/{self.prefix + '/' if self.prefix else ''}"

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        k = self._k(key)
        with self._errors(f"check {key}"):
            try:
                self.client.head_object(Bucket=self.bucket, Key=k)
                return True
            except ClientError as e:
                if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    return False
                raise

    def read_bytes(self, key: str) -> bytes:
        """The object's bytes; FileNotFoundError if it does not exist (like LocalStore)."""
        from botocore.exceptions import ClientError

        k = self._k(key)
        with self._errors(f"read {key}"):
            try:
                return bytes(self.client.get_object(Bucket=self.bucket, Key=k)["Body"].read())
            except ClientError as e:
                if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    raise FileNotFoundError(self.href(key)) from e
                raise

    def write_bytes(self, key: str, data: bytes) -> None:
        """One PUT: the object appears whole or not at all."""
        k = self._k(key)
        with self._errors(f"write {key}"):
            self.client.put_object(Bucket=self.bucket, Key=k, Body=data, ContentType=_content_type(key))

    def delete(self, key: str) -> None:
        k = self._k(key)
        with self._errors(f"delete {key}"):
            self.client.delete_object(Bucket=self.bucket, Key=k)

    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys under `prefix` (a key prefix, e.g. `logs/` or `logs/task_`), sorted."""
        for info in self.list_info(prefix):
            yield info.key

    def list_info(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """The objects of `list` with ETag, size and mtime, from the LIST pages (ListObjectsV2: no HEAD per
        object)."""
        p = prefix.rstrip("/")
        if p:
            check_key(p)
        full = (f"{self.prefix}/" if self.prefix else "") + prefix
        strip = len(self.prefix) + 1 if self.prefix else 0
        paginator = self.client.get_paginator("list_objects_v2")
        with self._errors(f"list {prefix or '/'}"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
                for obj in page.get("Contents", []):
                    etag = str(obj.get("ETag", "")).strip('"')
                    mtime = obj["LastModified"].astimezone(dt.UTC)
                    yield ObjectInfo(obj["Key"][strip:], etag, int(obj.get("Size", 0)), mtime)

    def presign(self, key: str, ttl_s: int | None = None) -> str:
        """A presigned GET URL of an object: read-only (signed for GetObject only; range requests work),
        valid `ttl_s` seconds (default `HRLC_PRESIGN_TTL_S`, 900 s). Signing is local: no request is made."""
        ttl = int(ttl_s if ttl_s is not None else self.presign_ttl_s)
        if not 1 <= ttl <= 7 * 24 * 3600:
            raise ValueError(f"presign TTL {ttl} s is outside 1 s .. 7 days")
        k = self._k(key)
        with self._errors(f"presign {key}"):
            return str(
                self.client.generate_presigned_url(
                    "get_object", Params={"Bucket": self.bucket, "Key": k}, ExpiresIn=ttl
                )
            )

    @contextlib.contextmanager
    def writing(self, key: str) -> Iterator[Path]:
        """A local temporary path; uploaded under `key` only if the block ends without error."""
        k = self._k(key)
        with tempfile.TemporaryDirectory(prefix="hrlc-") as d:
            tmp = Path(d) / Path(key).name
            yield tmp
            with self._errors(f"write {key}"):
                self.client.upload_file(
                    str(tmp), self.bucket, k, ExtraArgs={"ContentType": _content_type(key)}
                )

    @contextlib.contextmanager
    def reading(self, key: str) -> Iterator[str]:
        """A path GDAL/netCDF can open. Rasters (.tif, ...): the /vsis3/ path inside `raster_env()`, read
        with range requests, never downloaded. Other formats (NetCDF through netCDF4, JSON, ...): a
        temporary local copy, removed after the block."""
        if Path(key).suffix.lower() in RASTER_SUFFIXES:
            path = self.gdal_path(key)
            with self.raster_env():
                yield path
            return
        k = self._k(key)
        with tempfile.TemporaryDirectory(prefix="hrlc-") as d:
            tmp = Path(d) / Path(key).name
            with self._errors(f"read {key}"):
                self.client.download_file(self.bucket, k, str(tmp))
            yield str(tmp)


def _content_type(key: str) -> str:
    return {
        ".tif": "image/tiff; application=geotiff; profile=cloud-optimized",
        ".tiff": "image/tiff; application=geotiff",
        ".json": "application/json",
        ".nc": "application/x-netcdf",
        ".png": "image/png",
    }.get(Path(key).suffix.lower(), "application/octet-stream")


def open_store(url: str, settings: Settings) -> LocalStore | S3Store:
    """The store of a lake URL (`settings.store` is `HRLC_STORE`); `settings` configure S3 and GDAL."""
    if url.startswith("s3://"):
        return S3Store(url, settings)
    if "://" in url and not url.startswith("file://"):
        raise ValueError(f"unsupported Data Lake URL {url!r}: use file:///path or s3://bucket/prefix")
    return LocalStore(local_path(url), settings)

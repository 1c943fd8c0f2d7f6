"""The object store under the Data Lake: one interface for `file://` (embedded default) and `s3://`.

Storage knows bytes and keys, nothing of metadata or jobs. Every write is atomic: a reader sees the old
object or the new one, never half of it (local: write to a temporary file, then rename; S3: a single PUT).
Writers that need a file on disk (GDAL, netCDF) use `store.writing(key)`, which yields a local path and
commits it under `key` only when the block finishes without error.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from hrlc.lake.layout import check_key
from hrlc.settings import Settings, get_settings, local_path


class Store(Protocol):
    url: str

    def href(self, key: str) -> str: ...
    def key_of(self, href: str) -> str: ...
    def gdal_path(self, key: str) -> str: ...
    def exists(self, key: str) -> bool: ...
    def read_bytes(self, key: str) -> bytes: ...
    def write_bytes(self, key: str, data: bytes) -> None: ...
    def delete(self, key: str) -> None: ...
    def list(self, prefix: str = "") -> Iterator[str]: ...
    def writing(self, key: str) -> contextlib.AbstractContextManager[Path]: ...
    def reading(self, key: str) -> contextlib.AbstractContextManager[str]: ...


class LocalStore:
    """A Data Lake in a local folder."""

    def __init__(self, root: str | Path):
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

    @contextlib.contextmanager
    def writing(self, key: str) -> Iterator[Path]:
        dest = self.path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".tmp-{dest.stem}-", suffix=dest.suffix, dir=dest.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            yield tmp
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)

    @contextlib.contextmanager
    def reading(self, key: str) -> Iterator[str]:
        yield str(self.path(key))


class S3Store:
    """A Data Lake under `s3://bucket/prefix` (AWS, MinIO, moto). Needs the `s3` extra (boto3)."""

    def __init__(self, url: str, settings: Settings | None = None):
        import boto3  # optional dependency

        s = settings or get_settings()
        self.url = url.rstrip("/")
        bucket_prefix = self.url.removeprefix("s3://")
        self.bucket, _, self.prefix = bucket_prefix.partition("/")
        self.endpoint = s.s3_endpoint
        self.client = boto3.client(
            "s3",
            endpoint_url=s.s3_endpoint,
            region_name=s.s3_region,
            aws_access_key_id=s.s3_access_key_id,
            aws_secret_access_key=s.s3_secret_access_key,
        )

    def _k(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def href(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._k(key)}"

    def key_of(self, href: str) -> str:
        head = f"s3://{self.bucket}/{self.prefix + '/' if self.prefix else ''}"
        if not href.startswith(head):
            raise ValueError(f"{href} is not in {self.url}")
        return check_key(href[len(head) :])

    def gdal_path(self, key: str) -> str:
        return f"/vsis3/{self.bucket}/{self._k(key)}"

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._k(key))
            return True
        except self.client.exceptions.ClientError:
            return False

    def read_bytes(self, key: str) -> bytes:
        return bytes(self.client.get_object(Bucket=self.bucket, Key=self._k(key))["Body"].read())

    def write_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._k(key), Body=data)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._k(key))

    def list(self, prefix: str = "") -> Iterator[str]:
        strip = len(self.prefix) + 1 if self.prefix else 0
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._k(prefix) if prefix else self.prefix):
            for obj in page.get("Contents", []):
                yield obj["Key"][strip:]

    @contextlib.contextmanager
    def writing(self, key: str) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix="hrlc-") as d:
            tmp = Path(d) / Path(key).name
            yield tmp
            self.client.upload_file(str(tmp), self.bucket, self._k(key))

    @contextlib.contextmanager
    def reading(self, key: str) -> Iterator[str]:
        with tempfile.TemporaryDirectory(prefix="hrlc-") as d:
            tmp = Path(d) / Path(key).name
            self.client.download_file(self.bucket, self._k(key), str(tmp))
            yield str(tmp)


def open_store(url: str | None = None) -> LocalStore | S3Store:
    """The store of a lake URL (default: `HRLC_STORE`)."""
    url = url or get_settings().store
    if url.startswith("s3://"):
        return S3Store(url)
    if "://" in url and not url.startswith("file://"):
        raise ValueError(f"unsupported Data Lake URL {url!r}: use file:///path or s3://bucket/prefix")
    return LocalStore(local_path(url))

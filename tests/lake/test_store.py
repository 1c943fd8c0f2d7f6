"""The object store: atomic writes, listing (with ETag, size, mtime: local and S3), refusal of keys that
escape the lake."""

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import pytest

from hrlc.lake.layout import LayoutError
from hrlc.lake.store import LocalStore, S3Store, open_store
from hrlc.settings import Settings, defaults


def test_roundtrip_list_delete(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.write_bytes("logs/a.txt", b"1")
    store.write_bytes("logs/sub/b.txt", b"2")
    assert store.read_bytes("logs/a.txt") == b"1"
    assert list(store.list("logs/")) == ["logs/a.txt", "logs/sub/b.txt"]
    assert store.key_of(store.href("logs/sub/b.txt")) == "logs/sub/b.txt"
    store.delete("logs/a.txt")
    assert not store.exists("logs/a.txt")


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.write_bytes("logs/a.txt", b"old")
    with pytest.raises(RuntimeError), store.writing("logs/a.txt") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("crash in the middle")
    assert store.read_bytes("logs/a.txt") == b"old"
    assert [p.name for p in (tmp_path / "logs").iterdir()] == ["a.txt"]


@pytest.mark.parametrize("key", ["../x", "/abs/x", "a/../../x"])
def test_escaping_keys_refused(tmp_path: Path, key: str) -> None:
    store = LocalStore(tmp_path / "lake")
    with pytest.raises(LayoutError):
        store.write_bytes(key, b"x")
    assert not (tmp_path / "x").exists()


def test_open_store_urls(tmp_path: Path) -> None:
    settings = defaults()
    assert isinstance(open_store(tmp_path.as_uri(), settings), LocalStore)
    assert open_store(str(tmp_path), settings).root == tmp_path.resolve()
    with pytest.raises(ValueError, match="unsupported"):
        open_store("ftp://x/y", settings)


def test_products_are_readable_by_others(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.write_bytes("logs/a.txt", b"1")
    assert (tmp_path / "logs/a.txt").stat().st_mode & 0o044 == 0o044


def test_local_list_info_gives_size_mtime_and_a_change_token(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.write_bytes("logs/a.txt", b"1")
    store.write_bytes("logs/sub/b.txt", b"22")
    store.write_bytes("other/c.txt", b"333")
    infos = list(store.list_info("logs/"))
    assert [i.key for i in infos] == list(store.list("logs/")) == ["logs/a.txt", "logs/sub/b.txt"]
    assert [i.size for i in infos] == [1, 2]
    assert all(i.mtime.tzinfo is not None and i.etag for i in infos)
    before = infos[0]
    store.write_bytes("logs/a.txt", b"changed")
    (after,) = [i for i in store.list_info("logs/a") if i.key == "logs/a.txt"]
    assert after.etag != before.etag and after.size == 7


def test_s3_list_info_gives_etag_size_and_mtime(s3_server: Any) -> None:
    """The S3 store lists ETag, size and mtime from ListObjectsV2 pages, with keys relative to its prefix."""
    bucket = s3_server.new_bucket("hrlc-list-info")
    settings = Settings(
        s3_endpoint=s3_server.endpoint,
        s3_region=s3_server.region,
        s3_access_key_id=s3_server.access_key,
        s3_secret_access_key=s3_server.secret_key,
    )
    store = S3Store(f"s3://{bucket}/lake", settings)
    store.write_bytes("logs/a.txt", b"1")
    store.write_bytes("logs/sub/b.txt", b"22")
    s3_server.client().put_object(Bucket=bucket, Key="elsewhere/logs/c.txt", Body=b"outside the lake")
    t0 = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    infos = list(store.list_info("logs/"))
    assert [i.key for i in infos] == list(store.list("logs/")) == ["logs/a.txt", "logs/sub/b.txt"]
    assert [i.size for i in infos] == [1, 2]
    assert [i.etag for i in infos] == [hashlib.md5(b"1").hexdigest(), hashlib.md5(b"22").hexdigest()]
    assert all(i.mtime.tzinfo is not None and i.mtime > t0 for i in infos)
    assert [i.key for i in store.list_info()] == ["logs/a.txt", "logs/sub/b.txt"]

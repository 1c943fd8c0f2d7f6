"""The local object store: atomic writes, listing, refusal of keys that escape the lake."""

from pathlib import Path

import pytest

from hrlc.lake.layout import LayoutError
from hrlc.lake.store import LocalStore, open_store


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
    assert isinstance(open_store(tmp_path.as_uri()), LocalStore)
    assert open_store(str(tmp_path)).root == tmp_path.resolve()
    with pytest.raises(ValueError, match="unsupported"):
        open_store("ftp://x/y")


def test_products_are_readable_by_others(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.write_bytes("logs/a.txt", b"1")
    assert (tmp_path / "logs/a.txt").stat().st_mode & 0o044 == 0o044

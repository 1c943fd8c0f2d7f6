"""What one task writes on a worker: its products are recorded, its STAC items staged until the task may finish.

A processor registers an item the moment its product is written (`ctx.register`). On a queue worker that
would let a task canceled afterwards (or one that fails later) leave items in the catalogue. So the worker
gives the processor a `StagedCatalog` (`add` keeps the item and returns the href it will have) and a
`RecordingStore` (notes every key the task writes, and whether the key existed before the task's first write).
When the processor returns, the worker checks the task's state again and only then `commit`s: it registers the
staged items. A canceled task is `discard`ed instead: nothing is registered, and the keys this run created are
removed from the lake.

Lake keys are shared: the same inputs give the same keys in every job (idempotent outputs). So `discard` keeps
a key that existed before this run wrote it, whose item is registered, or whose task's whole output set is
registered (a finished task of another job or run made it), and `commit` and `discard` of tasks writing the same
keys are serialised by PostgreSQL advisory locks on those keys (`lock_keys`, in the job store database):
a commit that finds a product removed by a concurrent discard raises `OutputsMissing`, and the task is retried.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import psycopg
import pystac

from hrlc.catalog.port import Catalog
from hrlc.catalog.visibility import OWNERS, with_owner
from hrlc.lake.layout import LayoutError, item_key_of
from hrlc.lake.store import Store

log = logging.getLogger("hrlc.worker")


class OutputsMissing(RuntimeError):
    """A product of the task vanished before its item was registered (removed by a canceled task of another
    job or run that wrote the same key); retrying the task writes it again."""


class StagedCatalog:
    """A catalogue whose `add` only stages the item; `get_href` sees staged items first."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self.staged: dict[str, pystac.Item] = {}  # href -> item, in the order added

    def add(self, item: pystac.Item) -> str:
        href = str(self.catalog.href(item))
        self.staged.pop(href, None)
        self.staged[href] = item
        return href

    def get_href(self, href: str) -> pystac.Item:
        if href in self.staged:
            return self.staged[href]
        return self.catalog.get_href(href)

    def href(self, item: pystac.Item) -> str:
        return str(self.catalog.href(item))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.catalog, name)


class RecordingStore:
    """A store that notes every key written through it: `written[key]` = whether it existed before."""

    def __init__(self, store: Store):
        self.store = store
        self.written: dict[str, bool] = {}

    def _note(self, key: str) -> None:
        if key not in self.written:
            self.written[key] = bool(self.store.exists(key))

    def write_bytes(self, key: str, data: bytes) -> None:
        self._note(key)
        self.store.write_bytes(key, data)

    @contextlib.contextmanager
    def writing(self, key: str) -> Iterator[Any]:
        self._note(key)
        with self.store.writing(key) as tmp:
            yield tmp

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def _item_key(key: str) -> str | None:
    try:
        return item_key_of(key)
    except LayoutError:  # a key outside the layout (a test processor's): no item
        return None


def registered(store: Store, outputs: list[str]) -> bool:
    """Whether every output of a task and the item of each exists (the task finished somewhere)."""
    keys = outputs + [k for k in map(_item_key, outputs) if k]
    return bool(outputs) and all(store.exists(k) for k in keys)


@contextlib.contextmanager
def lock_keys(conn: psycopg.Connection[Any] | None, keys: list[str]) -> Iterator[None]:
    """Hold transaction-level advisory locks on `keys` (in sorted order, so two holders cannot deadlock) for
    the block; the caller's connection must be in a transaction. No connection: no lock."""
    if conn is not None:
        for key in sorted(set(keys)):
            conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"hrlc.lake:{key}",))
    yield


def _owners_of(catalog: Catalog, href: str) -> list[str]:
    """The owners of the registered item at `href` ([] when there is none yet)."""
    try:
        item = catalog.get_href(href)
    except Exception:  # noqa: BLE001 - not registered yet: a missing file, whatever the catalogue raises
        return []
    return list(item.properties.get(OWNERS) or [])


UNKNOWN_OWNER = ""  # the job's user could not be learnt: items get `hrlc:owners: []` (operators only)


def commit(
    catalog: Catalog, staged: StagedCatalog, recording: RecordingStore, owner: str | None = None
) -> list[str]:
    """Register the staged items (under `lock_keys` held by the caller); `OutputsMissing` if a product the
    task wrote is gone. With `owner`, each item's `hrlc:owners` gains the job's user (kept: the owners of an
    item registered before). Returns the hrefs registered."""
    missing = [k for k in recording.written if not recording.store.exists(k)]
    if missing:
        raise OutputsMissing(f"{len(missing)} product(s) removed before registration, e.g. {missing[0]}")
    hrefs = []
    for href, item in staged.staged.items():
        if owner == UNKNOWN_OWNER:
            item.properties[OWNERS] = _owners_of(catalog, href)
        elif owner is not None:
            item.properties[OWNERS] = with_owner(_owners_of(catalog, href), owner)
        hrefs.append(str(catalog.add(item)))
    return hrefs


def adopt(catalog: Catalog, hrefs: list[str], owner: str) -> int:
    """Add `owner` to the owners of finished products another job made (under `lock_keys` held by the
    caller), so the user whose job reuses them may read them; returns how many items changed."""
    changed = 0
    for href in hrefs:
        item = catalog.get_href(href)
        owners = item.properties.get(OWNERS)
        if owners is None or owner in owners:  # the deployment's own data, or already theirs
            continue
        item.properties[OWNERS] = with_owner(owners, owner)
        catalog.add(item)
        changed += 1
    return changed


def discard(recording: RecordingStore, outputs: list[str]) -> list[str]:
    """Remove what a canceled task created (under `lock_keys` held by the caller); returns the keys removed.

    Kept: keys that existed before this task's first write, keys whose item is registered, and everything when
    the task's whole output set is registered."""
    store = recording.store
    if registered(store, outputs):
        return []
    removed = []
    for key, existed in recording.written.items():
        item = _item_key(key)
        if existed or (item is not None and store.exists(item)):
            continue
        store.delete(key)
        removed.append(key)
    return removed

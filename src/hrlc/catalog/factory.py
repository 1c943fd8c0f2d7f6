"""Choosing the catalogue back end from settings: the static JSON catalogue or pgstac (`HRLC_CATALOG`)."""

from __future__ import annotations

from hrlc.catalog.static import StaticCatalog
from hrlc.extras import require
from hrlc.lake.store import Store
from hrlc.settings import Settings


def open_catalog(store: Store, settings: Settings) -> StaticCatalog:
    """The catalogue of a lake: `StaticCatalog` for `HRLC_CATALOG=static`, `PgstacCatalog` for a
    `postgresql://` (or `postgres://`) DSN. Both keep the item JSON in the lake."""
    value = settings.catalog.strip()
    if value in {"", "static"}:
        return StaticCatalog(store)
    if value.startswith(("postgresql://", "postgres://")):
        require("platform", "a pgstac catalogue (HRLC_CATALOG)")
        from hrlc.catalog.pgstac import PgstacCatalog

        return PgstacCatalog(store, value)
    raise ValueError(f"unsupported HRLC_CATALOG {value!r}: use 'static' or a postgresql:// DSN")

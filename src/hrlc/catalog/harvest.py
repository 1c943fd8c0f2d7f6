"""Harvest from external repositories (EXT-IF-000010): external STAC API -> raw/ of the lake -> `hrlc-raw`.

`harvest(stac_url, collection, bbox, datetime, store, dsn)` searches an external STAC API (Earth Search,
Planetary Computer, Copernicus Data Space, ...) with pystac-client, copies the needed assets of every item
into `raw/{sensor}/{year}/{month|season}/{item_id}_{asset_key}{ext}` (layout families `raw-sentinel2`,
`raw-landsat`, `raw-sentinel1`), streaming them with HTTP range requests (chunked GET when the server does
not serve ranges), and registers one item per scene in the `hrlc-raw` collection of pgstac:

- same `id` as the original, `hrlc:original_id` / `hrlc:original_collection` / `hrlc:source` properties and a
  `via` link to the original item;
- only the copied assets, with `href` = the lake copy and the original href kept twice: `hrlc:original_href`
  and the Alternate Assets extension's `alternate.original.href`; `file:size` and `file:checksum` (sha2-256
  multihash) of the copy.

Idempotent: an asset whose lake copy already has the source's size (and, if the source item gives one, the
same `file:checksum`) is not downloaded again; items are upserted with content that does not depend on the
time of the run, so a re-harvest changes nothing. The copied objects are written into the ingest
checkpoint (`hrlc.ingest_state`, status `harvested`) in the same transaction as the item, under the lake's
ingest lock, so the watcher never turns them into per-file items of their own.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlparse

import httpx
import pystac

from hrlc.catalog.ingest import Catalogue, ObjectInfo, Outcome, stat_object
from hrlc.lake import layout
from hrlc.lake.store import Store
from hrlc.periods import season_of_month

log = logging.getLogger(__name__)

RAW_COLLECTION = "hrlc-raw"
ALTERNATE_EXT = "https://stac-extensions.github.io/alternate-assets/v1.2.0/schema.json"
FILE_EXT = "https://stac-extensions.github.io/file/v2.1.0/schema.json"
CHUNK = 8 * 1024 * 1024


class HarvestError(Exception):
    """The source cannot be searched or an asset cannot be copied (one line a user can act on)."""


def sensor_of(item: pystac.Item) -> str:
    """`sentinel2`, `landsat` or `sentinel1` from the collection id, else the `platform` property."""
    text = f"{item.collection_id or ''} {item.properties.get('platform', '')} {item.id}".lower()
    for needle, sensor in (
        ("sentinel-2", "sentinel2"),
        ("sentinel2", "sentinel2"),
        ("s2", "sentinel2"),
        ("landsat", "landsat"),
        ("sentinel-1", "sentinel1"),
        ("sentinel1", "sentinel1"),
        ("s1", "sentinel1"),
    ):
        if needle in text:
            return sensor
    raise HarvestError(f"cannot tell the sensor of item {item.id} (collection {item.collection_id})")


def raw_key(item: pystac.Item, asset_key: str, href: str) -> str:
    """The lake key of one asset of a scene: raw/{sensor}/{year}/{month|season}/{item_id}_{asset}{ext}."""
    sensor = sensor_of(item)
    when = item.datetime or _parse_dt(item.properties.get("start_datetime"))
    if when is None:
        raise HarvestError(f"item {item.id} has no datetime")
    ext = PurePosixPath(urlparse(href).path).suffix.lower() or ".bin"
    name = f"{item.id}_{asset_key}{ext}"
    if sensor == "landsat":
        return layout.key("raw-landsat", year=when.year, season=season_of_month(when.month), name=name)
    return layout.key(f"raw-{sensor}", year=when.year, month=when.month, name=name)


def _parse_dt(value: Any) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def default_assets(item: pystac.Item) -> list[str]:
    """Assets worth copying when none are named: data assets that are GeoTIFF/COG."""
    out = []
    for k, a in item.assets.items():
        roles = a.roles or []
        if "data" in roles and "tiff" in (a.media_type or ""):
            out.append(k)
    return out


# ------------------------------------------------------------------------------------------------ copying


@dataclass
class CopyResult:
    key: str
    size: int
    sha256: str | None
    copied: bool
    ranges: int = 0


def _head(client: httpx.Client, href: str) -> tuple[int | None, bool]:
    """(size, accepts ranges) of a remote object; size None if the server does not tell."""
    r = client.head(href)
    if r.status_code >= 400:
        raise HarvestError(f"HEAD {href}: HTTP {r.status_code}")
    size = r.headers.get("content-length")
    return (int(size) if size is not None else None), r.headers.get("accept-ranges", "").lower() == "bytes"


def _download(
    client: httpx.Client, href: str, out: Any, size: int | None, ranges: bool, chunk: int
) -> tuple[int, str, int]:
    """Stream `href` into the open file `out`; returns (bytes, sha256 hex, range requests made)."""
    h = hashlib.sha256()
    written = 0
    n_ranges = 0
    if ranges and size:
        while written < size:
            end = min(written + chunk, size) - 1
            r = client.get(href, headers={"Range": f"bytes={written}-{end}"})
            if r.status_code != 206:
                raise HarvestError(f"GET {href} range {written}-{end}: HTTP {r.status_code} (want 206)")
            data = r.content
            if len(data) != end - written + 1:
                raise HarvestError(f"GET {href}: short range {len(data)} bytes at {written}")
            out.write(data)
            h.update(data)
            written += len(data)
            n_ranges += 1
    else:
        with client.stream("GET", href) as r:
            if r.status_code >= 400:
                raise HarvestError(f"GET {href}: HTTP {r.status_code}")
            for data in r.iter_bytes(chunk):
                out.write(data)
                h.update(data)
                written += len(data)
    if size is not None and written != size:
        raise HarvestError(f"GET {href}: got {written} bytes, expected {size}")
    return written, h.hexdigest(), n_ranges


def _multihash_sha256(hexdigest: str) -> str:
    return "1220" + hexdigest


def copy_asset(
    client: httpx.Client,
    store: Store,
    href: str,
    key: str,
    *,
    checksum: str | None = None,
    chunk: int = CHUNK,
) -> CopyResult:
    """Copy one remote object into the lake under `key` unless an identical copy is there already."""
    if urlparse(href).scheme not in ("http", "https"):
        raise HarvestError(f"cannot copy {href}: only http(s) hrefs are harvested (sign s3:// ones first)")
    size, ranges = _head(client, href)
    existing = stat_object(store, key)
    if existing is not None and size is not None and existing.size == size:
        same = True
        sha = None
        if checksum:  # the source publishes a checksum: verify the copy
            sha = hashlib.sha256(store.read_bytes(key)).hexdigest()
            same = _multihash_sha256(sha) == checksum
        if same:
            return CopyResult(key, size, sha, copied=False)
    with store.writing(key) as tmp, tmp.open("wb") as out:
        written, sha, n = _download(client, href, out, size, ranges, chunk)
    if checksum and _multihash_sha256(sha) != checksum:
        store.delete(key)
        raise HarvestError(f"{href}: checksum mismatch (got sha2-256 {sha})")
    return CopyResult(key, written, sha, copied=True, ranges=n)


# ------------------------------------------------------------------------------------------------- items


def lake_item(item: pystac.Item, copies: dict[str, CopyResult], store: Store, source: str) -> dict[str, Any]:
    """The `hrlc-raw` item of a harvested scene: original id and metadata, assets in the lake."""
    d = item.to_dict(include_self_link=True, transform_hrefs=False)
    original_self = next((lk["href"] for lk in d.get("links", []) if lk.get("rel") == "self"), None)
    first_key = next(iter(copies.values())).key
    fields = layout.parse(first_key).fields
    period = fields.get("month") or fields.get("season")
    props = dict(d["properties"])
    props.update(
        {
            "hrlc:product": layout.parse(first_key).family,
            "hrlc:sensor": sensor_of(item),
            "hrlc:year": int(fields["year"]),
            "hrlc:period": period,
            "hrlc:original_id": item.id,
            "hrlc:original_collection": item.collection_id,
            "hrlc:source": source,
        }
    )
    assets: dict[str, Any] = {}
    for k, c in copies.items():
        a = dict(d["assets"][k])
        original = a["href"]
        a["href"] = store.href(c.key)
        a["hrlc:original_href"] = original
        a["alternate"] = {"original": {"href": original, "title": "Original location"}}
        a["file:size"] = c.size
        if c.sha256:
            a["file:checksum"] = _multihash_sha256(c.sha256)
        assets[k] = a
    links = []
    if original_self:
        links.append({"rel": "via", "href": original_self, "type": "application/geo+json"})
    exts = list(dict.fromkeys([*d.get("stac_extensions", []), ALTERNATE_EXT, FILE_EXT]))
    return {
        "type": "Feature",
        "stac_version": d.get("stac_version", "1.0.0"),
        "stac_extensions": exts,
        "id": item.id,
        "collection": RAW_COLLECTION,
        "geometry": d["geometry"],
        "bbox": d.get("bbox"),
        "properties": props,
        "assets": assets,
        "links": links,
    }


# ---------------------------------------------------------------------------------------------- harvest


@dataclass
class HarvestReport:
    items: int = 0
    assets_copied: int = 0
    assets_skipped: int = 0
    bytes_copied: int = 0
    range_requests: int = 0
    errors: list[str] = field(default_factory=list)
    item_ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def search(
    stac_url: str,
    collection: str,
    bbox: Sequence[float] | None,
    datetime: str | None,
    limit: int | None = None,
) -> Iterator[pystac.Item]:
    from pystac_client import Client

    try:
        client = Client.open(stac_url)
        s = client.search(
            collections=[collection], bbox=list(bbox) if bbox else None, datetime=datetime, max_items=limit
        )
        yield from s.items()
    except HarvestError:
        raise
    except Exception as e:  # noqa: BLE001 - any client error is one line for the user
        raise HarvestError(f"search of {stac_url} failed: {type(e).__name__}: {e}") from e


def harvest(
    stac_url: str,
    collection: str,
    bbox: Sequence[float] | None,
    datetime: str | None,
    store: Store,
    dsn: str,
    *,
    assets: Sequence[str] | None = None,
    limit: int | None = None,
    chunk: int = CHUNK,
    http: httpx.Client | None = None,
) -> HarvestReport:
    """Copy the matching scenes' assets into raw/ of the lake and register them in `hrlc-raw`."""
    rep = HarvestReport()
    own_client = http is None
    client = http or httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0), follow_redirects=True)
    try:
        with Catalogue(dsn) as cat:
            for item in search(stac_url, collection, bbox, datetime, limit):
                try:
                    _harvest_item(item, client, store, cat, stac_url, assets, chunk, rep)
                except (HarvestError, layout.LayoutError, httpx.HTTPError) as e:
                    msg = f"{item.id}: {e}"
                    log.error("harvest: %s", msg)
                    rep.errors.append(msg)
    finally:
        if own_client:
            client.close()
    return rep


def _registered_assets(cat: Catalogue, item_id: str) -> dict[str, tuple[int, str]]:
    """asset key -> (file:size, file:checksum) of the item already registered in `hrlc-raw`, if any."""
    row = cat.conn.execute("SELECT get_item(%s, %s)", [item_id, RAW_COLLECTION]).fetchone()
    if not row or not row[0]:
        return {}
    out = {}
    for k, a in (row[0].get("assets") or {}).items():
        if "file:size" in a and "file:checksum" in a:
            out[k] = (int(a["file:size"]), str(a["file:checksum"]))
    return out


def _harvest_item(
    item: pystac.Item,
    client: httpx.Client,
    store: Store,
    cat: Catalogue,
    source: str,
    wanted: Sequence[str] | None,
    chunk: int,
    rep: HarvestReport,
) -> None:
    keys = list(wanted) if wanted else default_assets(item)
    keys = [k for k in keys if k in item.assets]
    if not keys:
        raise HarvestError(f"none of the assets {list(wanted or [])} in item {item.id}")
    with cat.lake_lock(store.url):  # the watcher does not see half-registered copies
        known = _registered_assets(cat, item.id)
        copies: dict[str, CopyResult] = {}
        for k in keys:
            href = item.assets[k].href
            checksum = item.assets[k].extra_fields.get("file:checksum")
            c = copy_asset(client, store, href, raw_key(item, k, href), checksum=checksum, chunk=chunk)
            if c.sha256 is None:  # not copied again: the checksum registered before, else hash the copy
                size_sum = known.get(k)
                if size_sum and size_sum[0] == c.size and size_sum[1].startswith("1220"):
                    c.sha256 = size_sum[1][4:]
                else:
                    c.sha256 = hashlib.sha256(store.read_bytes(c.key)).hexdigest()
            copies[k] = c
            if c.copied:
                rep.assets_copied += 1
                rep.bytes_copied += c.size
                rep.range_requests += c.ranges
            else:
                rep.assets_skipped += 1
        d = lake_item(item, copies, store, source)
        outcomes = []
        for i, c in enumerate(copies.values()):
            info = stat_object(store, c.key) or ObjectInfo(c.key, "", c.size, dt.datetime.now(dt.UTC))
            outcomes.append(
                Outcome(
                    info,
                    "harvested",
                    item=d if i == 0 else None,
                    item_id=item.id,
                    collection=RAW_COLLECTION,
                )
            )
        cat.commit_batch(store.url, outcomes)
        with contextlib.suppress(Exception):
            cat.run_queue()
            cat.update_extents([RAW_COLLECTION])
    rep.items += 1
    rep.item_ids.append(item.id)

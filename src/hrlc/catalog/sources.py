"""Sources of input scenes: find optical scenes in any STAC source and load them lazily onto a target grid.

The chain must not care whether a Sentinel-2 or Landsat scene was catalogued by Earth Search, the Planetary
Computer, the USGS, CDSE or a static catalogue in the Data Lake: they name the same band differently
("red" / "B04" / "SR_B4"), publish scale and offset in different places (or not at all), and keep Sentinel-2
reflectances of processing baseline >= 04.00 with a -1000 DN offset. This module is the one place that knows
those differences. It is a pure I/O adapter (it imports nothing of hrlc but `hrlc.settings`).

Conventions of the cubes returned by `load_optical`:

* variables carry CANONICAL names (`CANONICAL_S2`, `CANONICAL_LANDSAT`) plus ``"qa"`` for the sensor's
  quality layer (Sentinel-2 SCL, Landsat QA_PIXEL), whatever the asset keys of the items were;
* pixel values are the stored digital numbers, dtype as stored (uint16 DN, uint8 SCL): scale and offset are
  NOT applied (a float32 cube is twice the memory); every variable carries ``attrs`` ``scale``, ``offset``,
  ``nodata`` and ``asset`` (the asset key(s) it came from) so that `to_reflectance` (or the caller) can apply
  ``reflectance = DN * scale + offset`` later, on the pixels it keeps;
* all items must agree on scale and nodata per band. Offsets may differ (Sentinel-2 before/after the
  2022-01-25 baseline 04.00 change): such items are loaded per offset group and the DN of the groups with
  the larger offset are shifted (``DN + (offset_group - offset_ref) / scale``, saturating at the dtype
  maximum, nodata kept) to the smallest offset, which becomes the ``offset`` attribute. Pixels are therefore
  comparable along the whole time axis;
* items of the same solar day are fused into one time step (odc-stac's ``"solar_day"`` rule, UTC + whole
  hours of the grid centre's longitude / 15, given as an explicit groupby key so that offset groups line
  up; first valid pixel in time order); the time coordinate is the time of the first item of that day;
* resampling is nearest neighbour for ``qa`` (categorical, always) and by default also for the reflectance
  bands (keeps measured DN, exact on native grids; 20 m Sentinel-2 bands on a 10 m grid become 2x2 blocks);
  ``resampling="bilinear"`` (or any rasterio method) is available for the reflectance bands;
* the cube is dask-backed, chunked ``(time=1, y=chunks, x=chunks)``; nothing is read before compute.

odc-stac itself never applies scale/offset (it reads ``raster:bands`` only for dtype and nodata), and it
resolves band names through the first item's collection; so before loading, every item is rewritten into a
light copy whose assets are keyed by canonical name (only the assets to load, with their ``proj:`` fields),
and dtype/nodata are given to odc-stac through ``stac_cfg`` for those names. Mixed sources (PC "B04" and
Earth Search "red") therefore load in one call.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pystac
import xarray as xr
from odc.geo import geom
from odc.geo.geobox import GeoBox

from hrlc.extras import require
from hrlc.lake.grid import Zone
from hrlc.lake.store import configure_odc_s3
from hrlc.settings import Settings, defaults, local_path

_DEFAULTS = defaults()


class SourceError(ValueError):
    """A STAC source, item or request that this module cannot serve (one-line message)."""


# ----------------------------------------------------------------------------------------------- sensors

CANONICAL_S2: tuple[str, ...] = (
    "blue",  # B02
    "green",  # B03
    "red",  # B04
    "rededge1",  # B05
    "rededge2",  # B06
    "rededge3",  # B07
    "nir",  # B08
    "nir08",  # B8A
    "swir16",  # B11
    "swir22",  # B12
)
CANONICAL_LANDSAT: tuple[str, ...] = ("blue", "green", "red", "nir", "swir16", "swir22")
QA = "qa"


@dataclass(frozen=True)
class SensorSpec:
    """What an optical sensor's Level-2 items look like in the STAC sources we know."""

    name: str
    collections: tuple[str, ...]
    bands: dict[str, tuple[str, ...]]  # canonical band -> candidate asset keys, first present wins
    qa: tuple[str, ...]  # candidate asset keys of the quality layer
    resolution: float  # native resolution of the reflectance bands, metres
    # defaults used when an item does not say: (scale, nodata) of bands and qa, dtype of bands and qa
    band_scale: float = 1.0
    band_offset: float = 0.0
    band_nodata: float | None = 0
    band_dtype: str = "uint16"
    qa_nodata: float | None = 0
    qa_dtype: str = "uint16"
    platforms: tuple[str, ...] = field(default=())  # normalised platform prefixes

    @property
    def canonical(self) -> tuple[str, ...]:
        return tuple(self.bands)

    def __hash__(self) -> int:  # the `bands` dict is not hashable; the name identifies the sensor
        return hash(self.name)


def _s2_keys(name: str, band: str, res: int) -> tuple[str, ...]:
    # Earth Search v1 / CDSE-style common name, then PC / Earth Search v0 band ids, then CDSE resolution keys
    return (name, band, f"{band}_{res}m")


SENTINEL2 = SensorSpec(
    name="sentinel2",
    collections=("sentinel-2-l2a", "sentinel-2-c1-l2a", "sentinel-s2-l2a-cogs"),
    bands={
        "blue": _s2_keys("blue", "B02", 10),
        "green": _s2_keys("green", "B03", 10),
        "red": _s2_keys("red", "B04", 10),
        "rededge1": _s2_keys("rededge1", "B05", 20),
        "rededge2": _s2_keys("rededge2", "B06", 20),
        "rededge3": _s2_keys("rededge3", "B07", 20),
        "nir": _s2_keys("nir", "B08", 10),
        "nir08": _s2_keys("nir08", "B8A", 20),
        "swir16": _s2_keys("swir16", "B11", 20),
        "swir22": _s2_keys("swir22", "B12", 20),
    },
    qa=("scl", "SCL", "SCL_20m"),
    resolution=10.0,
    band_scale=1e-4,
    band_offset=0.0,  # -0.1 from baseline 04.00 on, see `scale_offset`
    band_nodata=0,
    band_dtype="uint16",
    qa_nodata=0,
    qa_dtype="uint8",
    platforms=("sentinel-2",),
)

# Landsat 8/9 OLI numbering; TM/ETM+ (Landsat 4, 5, 7) number the same bands differently, see _TM_ETM_KEYS.
LANDSAT = SensorSpec(
    name="landsat",
    collections=("landsat-c2-l2", "landsat-c2l2-sr"),
    bands={
        "blue": ("blue", "SR_B2"),
        "green": ("green", "SR_B3"),
        "red": ("red", "SR_B4"),
        "nir": ("nir08", "nir", "SR_B5"),  # the 0.85 um NIR is our canonical "nir"
        "swir16": ("swir16", "SR_B6"),
        "swir22": ("swir22", "SR_B7"),
    },
    qa=("qa_pixel", "QA_PIXEL"),
    resolution=30.0,
    band_scale=2.75e-5,
    band_offset=-0.2,
    band_nodata=0,
    band_dtype="uint16",
    qa_nodata=1,  # QA_PIXEL bit 0 = fill
    qa_dtype="uint16",
    platforms=("landsat-",),
)
_TM_ETM_KEYS: dict[str, tuple[str, ...]] = {
    "blue": ("blue", "SR_B1"),
    "green": ("green", "SR_B2"),
    "red": ("red", "SR_B3"),
    "nir": ("nir08", "nir", "SR_B4"),
    "swir16": ("swir16", "SR_B5"),
    "swir22": ("swir22", "SR_B7"),
}
_TM_ETM_PLATFORMS = ("landsat-4", "landsat-5", "landsat-7")

SENSORS: dict[str, SensorSpec] = {s.name: s for s in (SENTINEL2, LANDSAT)}

# Date of the Sentinel-2 processing baseline 04.00 (BOA_ADD_OFFSET = -1000) when an item does not say.
_S2_BASELINE_04_DATE = dt.datetime(2022, 1, 25, tzinfo=dt.UTC)


def _norm_platform(value: Any) -> str:
    return re.sub(r"[\s_]+", "-", str(value or "").strip().lower())


def _spec(sensor: str | SensorSpec) -> SensorSpec:
    if isinstance(sensor, SensorSpec):
        return sensor
    try:
        return SENSORS[sensor]
    except KeyError:
        raise SourceError(f"unknown sensor {sensor!r}; known: {', '.join(SENSORS)}") from None


def _guess_sensor(item: pystac.Item) -> SensorSpec | None:
    """Sensor by platform/constellation/instruments, then by `eo:bands` names; None if none fits."""
    props = item.properties
    for key in ("platform", "constellation"):
        p = _norm_platform(props.get(key))
        for spec in SENSORS.values():
            if any(p.startswith(prefix) for prefix in spec.platforms):
                return spec
    instruments = {str(i).lower() for i in props.get("instruments") or []}
    if "msi" in instruments:
        return SENTINEL2
    if instruments & {"oli", "etm", "etm+", "tm"}:
        return LANDSAT
    names: set[str] = set()
    for asset in item.assets.values():
        for b in asset.extra_fields.get("eo:bands") or []:
            names.update(str(b.get(k) or "").lower() for k in ("name", "common_name"))
    if names & {"b8a", "b05", "b11", "rededge", "rededge1"}:  # red edge: only the MSI has it
        return SENTINEL2
    if any(n.startswith(("oli_b", "sr_b", "etm_b", "tm_b", "lwir")) for n in names):
        return LANDSAT
    return None


def sensor_of(item: pystac.Item) -> SensorSpec:
    """The optical sensor of a Level-2 item: by collection id, else by platform/instruments/`eo:bands`.

    Items whose collection is not one we know (e.g. copied into the lake) are accepted when the platform
    says Sentinel-2/Landsat AND the item has the sensor's quality asset (SCL / QA_PIXEL): that keeps out
    Level-1 products (Sentinel-2 L1C, Landsat L1) which have the same platform but no such layer.
    """
    cid = item.collection_id
    for known in SENSORS.values():
        if cid in known.collections:
            return known
    spec = _guess_sensor(item)
    if spec is None:
        raise SourceError(f"item {item.id} (collection {cid}) is not from an optical sensor we know")
    if not any(k in item.assets for k in spec.qa):
        raise SourceError(
            f"item {item.id} (collection {cid}) looks like {spec.name} but has no {'/'.join(spec.qa)} "
            "asset: not a Level-2 product"
        )
    return spec


def _band_candidates(item: pystac.Item, spec: SensorSpec) -> dict[str, tuple[str, ...]]:
    if spec is LANDSAT and _norm_platform(item.properties.get("platform")).startswith(_TM_ETM_PLATFORMS):
        return _TM_ETM_KEYS
    return spec.bands


def band_assets(
    item: pystac.Item, sensor: SensorSpec | str, bands: Sequence[str] | None = None
) -> dict[str, str]:
    """Canonical name -> asset key present in this item, for `bands` (default: all canonical + "qa").

    Raises SourceError naming the bands the item lacks.
    """
    spec = _spec(sensor)
    wanted = list(bands) if bands is not None else [*spec.canonical, QA]
    candidates = {**_band_candidates(item, spec), QA: spec.qa}
    out: dict[str, str] = {}
    missing: list[str] = []
    for name in wanted:
        if name not in candidates:
            raise SourceError(f"{name!r} is not a band of {spec.name}; known: {', '.join(candidates)}")
        key = next((k for k in candidates[name] if k in item.assets), None)
        if key is None:
            missing.append(name)
        else:
            out[name] = key
    if missing:
        raise SourceError(f"item {item.id} lacks {spec.name} band(s) {', '.join(missing)}")
    return out


# ------------------------------------------------------------------------------------- scale and offset


def _s2_baseline(item: pystac.Item) -> float | None:
    """Processing baseline (e.g. 5.09) from the item's properties, product id or item id."""
    props = item.properties
    for key in ("s2:processing_baseline", "processing:version", "sentinel:processing_baseline"):
        value = props.get(key)
        if value is not None:
            try:
                return float(str(value))
            except ValueError:
                pass
    for text in (
        props.get("s2:product_uri"),
        props.get("sentinel:product_id"),
        props.get("s2:datatake_id"),
        item.id,
    ):
        m = re.search(r"_N(\d{2})\.?(\d{2})(?:[_.]|$)", str(text or ""))
        if m:
            return float(f"{m.group(1)}.{m.group(2)}")
    return None


def _raster_info(item: pystac.Item, asset: pystac.Asset) -> dict[str, Any]:
    """scale/offset/nodata/data_type from raster:bands (v1, asset or old item level) or STAC 1.1 bands."""
    info: dict[str, Any] = {}

    def take(d: Mapping[str, Any]) -> None:
        for key, name in (
            ("scale", "scale"),
            ("offset", "offset"),
            ("raster:scale", "scale"),
            ("raster:offset", "offset"),
            ("nodata", "nodata"),
            ("data_type", "data_type"),
        ):
            if d.get(key) is not None and name not in info:
                info[name] = d[key]

    ef = asset.extra_fields
    for rb in (ef.get("raster:bands"), ef.get("bands")):
        if isinstance(rb, list) and rb and isinstance(rb[0], Mapping):
            take(rb[0])
    take(ef)  # STAC 1.1 / raster v2 single-band asset fields
    old = item.properties.get("raster:bands")
    if isinstance(old, list) and len(old) == 1 and isinstance(old[0], Mapping):
        take(old[0])
    return info


def _role(item: pystac.Item, spec: SensorSpec | None, asset_key: str) -> str | None:
    if spec is None:
        return None
    if asset_key in spec.qa:
        return QA
    if any(asset_key in keys for keys in _band_candidates(item, spec).values()):
        return "band"
    return None


def scale_offset(item: pystac.Item, asset_key: str) -> tuple[float, float, float | None]:
    """(scale, offset, nodata) of an asset: reflectance = DN * scale + offset, DN == nodata is no data.

    Taken field by field from ``raster:bands`` (asset, STAC 1.1 ``bands``, or the old item-level form);
    missing fields come from the sensor's defaults: Sentinel-2 reflectance 1e-4 with offset -0.1 when the
    processing baseline (``s2:processing_baseline``, ``processing:version``, the N0xyz of the product id,
    else the acquisition date vs 2022-01-25) is >= 04.00, else 0, nodata 0; Landsat C2 L2 SR 2.75e-5 /
    -0.2 / 0; SCL 1/0/0, QA_PIXEL 1/0/1. Other assets without raster metadata: (1, 0, None).
    """
    if asset_key not in item.assets:
        raise SourceError(f"item {item.id} has no asset {asset_key!r}")
    info = _raster_info(item, item.assets[asset_key])
    try:
        spec: SensorSpec | None = sensor_of(item)
    except SourceError:
        spec = None
    role = _role(item, spec, asset_key)
    scale, offset, nodata = 1.0, 0.0, None
    if spec is not None and role == QA:
        nodata = spec.qa_nodata
    elif spec is not None and role == "band":
        scale, offset, nodata = spec.band_scale, spec.band_offset, spec.band_nodata
        if spec is SENTINEL2 and "offset" not in info:
            baseline = _s2_baseline(item)
            if baseline is None:
                when = item.datetime or item.common_metadata.start_datetime
                new = when is not None and when >= _S2_BASELINE_04_DATE
            else:
                new = baseline >= 4.0
            offset = -0.1 if new else 0.0
    scale = float(info.get("scale", scale))
    offset = float(info.get("offset", offset))
    nd = info.get("nodata", nodata)
    return scale, offset, (None if nd is None else float(nd))


def _data_type(item: pystac.Item, asset_key: str, default: str) -> str:
    return str(_raster_info(item, item.assets[asset_key]).get("data_type", default))


# ------------------------------------------------------------------------------------------------ search


def _parse_instant(text: str, end: bool) -> dt.datetime | None:
    text = text.strip()
    if text in ("", ".."):
        return None
    if re.fullmatch(r"\d{4}", text):
        y = int(text)
        return dt.datetime(y + 1, 1, 1, tzinfo=dt.UTC) if end else dt.datetime(y, 1, 1, tzinfo=dt.UTC)
    if re.fullmatch(r"\d{4}-\d{2}", text):
        y, m = map(int, text.split("-"))
        start = dt.datetime(y, m, 1, tzinfo=dt.UTC)
        if not end:
            return start
        return dt.datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=dt.UTC)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        d = dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
        return d + dt.timedelta(days=1) if end else d
    d = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    d = d if d.tzinfo else d.replace(tzinfo=dt.UTC)
    return d + dt.timedelta(microseconds=1) if end else d


def _parse_range(datetime: str | None) -> tuple[dt.datetime | None, dt.datetime | None]:
    """STAC API datetime ("2023", "2023-06", "2023-06-01", ISO, "a/b", "../b") -> [start, end)."""
    if datetime is None:
        return None, None
    try:
        if "/" in datetime:
            a, b = datetime.split("/", 1)
            return _parse_instant(a, end=False), _parse_instant(b, end=True)
        return _parse_instant(datetime, end=False), _parse_instant(datetime, end=True)
    except ValueError as e:
        raise SourceError(f"bad datetime {datetime!r}: {e}") from None


def _item_interval(item: pystac.Item) -> tuple[dt.datetime | None, dt.datetime | None]:
    cm = item.common_metadata
    return (cm.start_datetime or item.datetime), (cm.end_datetime or item.datetime)


def _in_time(item: pystac.Item, start: dt.datetime | None, end: dt.datetime | None) -> bool:
    a, b = _item_interval(item)
    if start is not None and b is not None and b < start:
        return False
    return not (end is not None and a is not None and a >= end)


def _lon_ranges(x0: float, x1: float) -> list[tuple[float, float]]:
    return [(x0, x1)] if x0 <= x1 else [(x0, 180.0), (-180.0, x1)]  # antimeridian-crossing bbox


def _item_bbox(item: pystac.Item) -> tuple[float, float, float, float] | None:
    if item.bbox is not None and len(item.bbox) >= 4:
        b = item.bbox
        return (b[0], b[1], b[3], b[4]) if len(b) == 6 else (b[0], b[1], b[2], b[3])
    if item.geometry is not None:
        return tuple(geom.Geometry(item.geometry, "epsg:4326").boundingbox)  # type: ignore[return-value]
    return None


def _in_bbox(item: pystac.Item, bbox: tuple[float, float, float, float] | None) -> bool:
    if bbox is None:
        return True
    ib = _item_bbox(item)
    if ib is None:
        return False
    if ib[1] > bbox[3] or ib[3] < bbox[1]:
        return False
    return any(
        a0 <= b1 and b0 <= a1
        for a0, a1 in _lon_ranges(ib[0], ib[2])
        for b0, b1 in _lon_ranges(bbox[0], bbox[2])
    )


def _cloud_ok(item: pystac.Item, max_cloud: float | None) -> bool:
    cc = item.properties.get("eo:cloud_cover")
    return max_cloud is None or cc is None or float(cc) <= max_cloud


def _is_sensor(item: pystac.Item, spec: SensorSpec) -> bool:
    try:
        return sensor_of(item) is spec
    except SourceError:
        return False


def _sort_key(item: pystac.Item) -> tuple[dt.datetime, str]:
    a, _ = _item_interval(item)
    return (a or dt.datetime.min.replace(tzinfo=dt.UTC), item.id)


item_sort_key = _sort_key


def item_matches(
    item: pystac.Item,
    bbox: tuple[float, float, float, float] | None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> bool:
    """Whether an item intersects a lon/lat bbox and the time range [start, end) (None: open)."""
    return _in_bbox(item, bbox) and _in_time(item, start, end)


def _resolve_relative_assets(item: pystac.Item, base: Path) -> None:
    for asset in item.assets.values():
        href = asset.href
        if "://" not in href and not Path(href).is_absolute():
            asset.href = str((base / href).resolve())


def _items_from_json(d: Any, path: Path) -> list[pystac.Item]:
    if isinstance(d, list):
        dicts = d
    elif isinstance(d, dict) and d.get("type") == "FeatureCollection":
        dicts = d.get("features", [])
    elif isinstance(d, dict) and d.get("type") == "Feature":
        dicts = [d]
    else:
        raise SourceError(f"cannot open STAC source {path}: not a catalog, collection or item list")
    items = []
    for x in dicts:
        item = pystac.Item.from_dict(x, preserve_dict=False)
        _resolve_relative_assets(item, path.parent)
        items.append(item)
    return items


def _local_items(source: str) -> Iterable[pystac.Item]:
    path = local_path(source)
    if path.is_dir():
        path = next((path / n for n in ("catalog.json", "collection.json") if (path / n).is_file()), path)
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise SourceError(f"cannot open STAC source {source}: {e}") from None
    if isinstance(d, dict) and d.get("type") in ("Catalog", "Collection"):
        try:
            cat = pystac.read_file(str(path))
            assert isinstance(cat, pystac.Catalog)
            return list(cat.get_items(recursive=True))
        except Exception as e:  # pystac raises many kinds on broken catalogues
            raise SourceError(f"cannot open STAC source {source}: {e}") from None
    return _items_from_json(d, path)


def _api_items(
    source: str,
    spec: SensorSpec,
    collections: Sequence[str],
    bbox: tuple[float, float, float, float] | None,
    datetime: str | None,
    max_cloud: float | None,
    limit: int | None,
) -> list[pystac.Item]:
    import pystac_client
    from pystac_client.conformance import ConformanceClasses

    try:
        client = pystac_client.Client.open(source)
    except Exception as e:  # network, HTTP and JSON errors of every kind
        raise SourceError(f"cannot open STAC source {source}: {e}") from None
    have = []
    for cid in collections:
        try:
            if client.get_collection(cid) is not None:
                have.append(cid)
        except Exception:  # 404 as APIError, or an API without /collections
            continue
    if not have:
        raise SourceError(
            f"STAC API {source} has none of the {spec.name} collections {', '.join(collections)}"
        )
    query = None
    if max_cloud is not None and client.conforms_to(ConformanceClasses.QUERY):
        query = {"eo:cloud_cover": {"lte": max_cloud}}
    try:
        found = client.search(
            collections=have,
            bbox=bbox,
            datetime=datetime,
            query=query,
            max_items=limit if (query is not None or max_cloud is None) else None,
        )
        return list(found.items())
    except Exception as e:
        raise SourceError(f"STAC search failed on {source}: {e}") from None


def search(
    source: str,
    *,
    sensor: str,
    bbox: tuple[float, float, float, float] | None,
    datetime: str | None,
    max_cloud: float | None = None,
    limit: int | None = None,
    collections: Sequence[str] | None = None,
) -> list[pystac.Item]:
    """Level-2 items of `sensor` over `bbox` (lon/lat) in `datetime` (STAC API syntax), sorted by time.

    `source` is a STAC API URL (http/https, searched with those of the sensor's collections the API has,
    or `collections`), a path / file:// URL of a static catalog.json / collection.json (or a folder holding
    one; walked with pystac and filtered here on sensor, bbox intersection and datetime range), or of a
    JSON file holding an ItemCollection / FeatureCollection / list of items / one item. `max_cloud` keeps
    items with ``eo:cloud_cover <= max_cloud`` (items without it are kept).
    """
    spec = _spec(sensor)
    wanted = tuple(collections) if collections else spec.collections
    scheme = urlparse(source).scheme.lower()
    if scheme in ("http", "https"):
        items = _api_items(source, spec, wanted, bbox, datetime, max_cloud, limit)
        items = [it for it in items if _cloud_ok(it, max_cloud) and _is_sensor(it, spec)]
    else:
        if scheme not in ("", "file") and len(scheme) > 1:  # (one letter = a Windows drive)
            raise SourceError(f"cannot open STAC source {source}: unsupported scheme {scheme!r}")
        start, end = _parse_range(datetime)
        items = [
            it
            for it in _local_items(source)
            if (collections is None or it.collection_id in wanted)
            and _is_sensor(it, spec)
            and _in_bbox(it, bbox)
            and _in_time(it, start, end)
            and _cloud_ok(it, max_cloud)
        ]
    items.sort(key=_sort_key)
    return items[:limit] if limit is not None else items


# -------------------------------------------------------------------------------------------------- grid


#: the host suffix of Azure blob storage, where the Planetary Computer keeps its data (readable with a SAS token)
BLOB_STORAGE = ".blob.core.windows.net"


def sign_planetary_computer(href: str) -> str:
    """`href` with a SAS token when it is on Planetary Computer's blob storage (planetary-computer's `get_token`: a
    token per storage container, fetched from the PC's SAS API, or `PC_SDK_SAS_URL`, and cached until it nearly
    expires; `PC_SDK_SUBSCRIPTION_KEY` raises its rate limits), any other href as it is. Called when a cube is
    planned (odc-stac's `patch_url`), so PC items need the SAS API then: `SourceError` in seconds when it cannot
    be reached. Needs the platform extra (the planetary-computer package) for blob hrefs only."""
    parsed = urlparse(href)
    if not parsed.netloc.endswith(BLOB_STORAGE) or "sig=" in parsed.query:  # not PC's, or signed already
        return href
    require("platform", "reading Planetary Computer scenes (SAS-signed hrefs)")
    from planetary_computer.sas import get_token
    from planetary_computer.settings import Settings as PcSettings
    from planetary_computer.utils import parse_blob_url

    account, container = parse_blob_url(parsed)
    try:  # a few quick retries: offline, say so in seconds (the library's default retries for minutes)
        token = get_token(account, container, retry_total=2, retry_backoff_factor=0.5)
    except Exception as e:  # noqa: BLE001 - requests raises several kinds; one line for the user
        where = PcSettings.get().sas_url
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SourceError(
            f"cannot get a Planetary Computer SAS token for {account}/{container} from {where}: {reason}"
        ) from None
    return str(token.sign(href).href)


def utm_crs(lon: float, lat: float) -> str:
    """EPSG code of the WGS 84 / UTM zone of a point (regular 6-degree zones, no Norway exceptions): the zone of
    the product grid (`hrlc.lake.grid.Zone.of_point`)."""
    return Zone.of_point(lon, lat).crs


def grid_for(
    bbox: tuple[float, float, float, float],
    *,
    bbox_crs: str | int = "EPSG:4326",
    crs: str | int | None = None,
    resolution: float,
    anchor: str = "edge",
) -> GeoBox:
    """Target grid covering `bbox` (in `bbox_crs`, lon/lat by default): `crs` (default the UTM zone of the bbox
    centre), square pixels of `resolution`.

    Pixel edges are snapped to multiples of `resolution` (``anchor="edge"``, the Sentinel-2 tile grid);
    ``anchor="center"`` puts pixel centres there (the Landsat WRS-2 grid).
    """
    x0, y0, x1, y1 = (float(v) for v in bbox)
    if not (x0 < x1 and y0 < y1):
        raise SourceError(f"bbox {list(bbox)} is empty: it must be [left, bottom, right, top]")
    bbox_crs = f"EPSG:{bbox_crs}" if isinstance(bbox_crs, int) else bbox_crs
    box = geom.box(x0, y0, x1, y1, bbox_crs)
    if crs is None:
        centre = box.centroid.to_crs("epsg:4326").points[0]
        crs = utm_crs(centre[0], centre[1])
    elif isinstance(crs, int):
        crs = f"EPSG:{crs}"
    if box.crs != crs:
        box = box.to_crs(crs, resolution=max(x1 - x0, y1 - y0) / 64)
    return GeoBox.from_bbox(box.boundingbox, resolution=resolution, anchor=anchor)  # type: ignore[arg-type]


# -------------------------------------------------------------------------------------------------- load


@dataclass
class _Plan:
    """One item ready for odc-stac: its canonical copy and the encoding of each band."""

    item: pystac.Item
    keys: dict[str, str]
    enc: dict[str, tuple[float, float, float | None]]
    dtypes: dict[str, str]


def _canonical_copy(item: pystac.Item, keys: Mapping[str, str], collection: str) -> pystac.Item:
    """A light copy of `item` whose assets are the bands to load, keyed by canonical name."""
    new = pystac.Item(
        id=item.id,
        geometry=item.geometry,
        bbox=item.bbox,
        datetime=item.datetime,
        properties=dict(item.properties),
        stac_extensions=list(item.stac_extensions),
        collection=collection,
    )
    for name, key in keys.items():
        src = item.assets[key]
        href = src.get_absolute_href() or src.href
        extra = {k: v for k, v in src.extra_fields.items() if k.startswith("proj:")}
        new.add_asset(
            name,
            pystac.Asset(
                href=href,
                media_type=src.media_type or pystac.MediaType.GEOTIFF,
                roles=["data"],
                extra_fields=extra,
            ),
        )
    return new


def solar_day(item: pystac.Item, lon: float) -> dt.date:
    """odc-stac's solar day of `item` at longitude `lon`: UTC time shifted by whole hours of `lon` / 15. The
    time steps of `load_optical` are the items' solar days at its `day_lon`, in order."""
    when = item.datetime or item.common_metadata.start_datetime
    assert when is not None
    return (when + dt.timedelta(hours=int(lon / 15))).date()


def _target_geobox(
    items: Sequence[pystac.Item],
    names: Sequence[str],
    crs: str | int | None,
    resolution: float | None,
    bbox: tuple[float, float, float, float] | GeoBox | None,
    anchor: str,
    stac_cfg: dict[str, Any],
) -> GeoBox:
    if isinstance(bbox, GeoBox):
        return bbox
    crs_ = f"EPSG:{crs}" if isinstance(crs, int) else crs
    if bbox is not None:
        return GeoBox.from_bbox(tuple(bbox), crs=crs_, resolution=resolution, anchor=anchor)  # type: ignore[arg-type]
    import odc.stac

    parsed = list(odc.stac.parse_items(items, cfg=stac_cfg))
    gbox = odc.stac.output_geobox(
        parsed,
        bands=list(names),
        crs=crs_,
        resolution=resolution,
        anchor=anchor,  # type: ignore[arg-type]
    )
    if gbox is None:
        raise SourceError("cannot work out the output grid of these items")
    return gbox


def _shift_dn(da: xr.DataArray, shift: int, nodata: float | None) -> xr.DataArray:
    """DN + shift, saturating at the dtype range, nodata pixels untouched (lazy)."""
    if np.issubdtype(da.dtype, np.integer):
        info = np.iinfo(da.dtype)
        shifted = (da.astype("int64") + shift).clip(info.min, info.max).astype(da.dtype)
    else:
        shifted = da + shift
    if nodata is not None:
        shifted = shifted.where(da != nodata, da)
    return shifted


def _fuse(first: xr.Dataset, other: xr.Dataset, nodata: Mapping[str, float | None]) -> xr.Dataset:
    """Pixels of `first`, with its nodata pixels filled from `other` (lazy)."""
    out = {}
    for name, da in first.data_vars.items():
        nd = nodata[str(name)]
        out[name] = da if nd is None else da.where(da != nd, other[name])
    return xr.Dataset(out, coords=first.coords)


def load_optical(
    items: Sequence[pystac.Item],
    *,
    sensor: str,
    crs: str | int | None = None,
    resolution: float | None = None,
    bbox: tuple[float, float, float, float] | GeoBox | None = None,
    geobox: GeoBox | None = None,
    chunks: int | None = None,
    bands: Sequence[str] | None = None,
    resampling: str = "nearest",
    anchor: str = "edge",
    patch_url: Callable[[str], str] | None = None,
    settings: Settings | None = None,
    day_lon: float | None = None,
) -> xr.Dataset:
    """Lazy cube (time, y, x) of `items` of `sensor` on a grid of `crs`/`resolution`, DN kept.

    `bbox` is in `crs` units (left, bottom, right, top), or a GeoBox (also accepted as `geobox=`; then
    `crs`/`resolution` are its own and may be omitted); None covers all items. `bands` are canonical
    names (plus "qa"); default: all canonical bands + "qa".
    `settings` give the S3 configuration of s3:// hrefs (None: none) and the default of `chunks`, the spatial
    chunk size in pixels (`settings.chunk_px`). `resampling` applies to the
    reflectance bands, "qa" is always nearest. `anchor` snaps a grid computed from `bbox`/the items: "edge"
    (pixel edges on multiples of `resolution`, the Sentinel-2 grid) or "center" (the Landsat WRS-2 grid).
    `patch_url` is applied to every href at load time; by default `sign_planetary_computer` (Planetary Computer's
    blob hrefs get their SAS token, others stay as they are). Items of one solar
    day (`solar_day` at `day_lon`, default: the grid's centre) are fused into one time step: a caller loading
    parts of a grid one by one gives them the grid's `day_lon`, so that they have the grid's time steps. See
    the module docstring for the conventions of the result.
    """
    import odc.stac

    spec = _spec(sensor)
    items = list(items)
    if not items:
        raise SourceError("no items to load")
    if geobox is not None:
        if bbox is not None:
            raise SourceError("give either bbox or geobox, not both")
        bbox = geobox
    if not isinstance(bbox, GeoBox) and (crs is None or resolution is None):
        raise SourceError("load_optical needs crs and resolution, or a geobox")
    names = list(bands) if bands is not None else [*spec.canonical, QA]
    if len(set(names)) != len(names):
        raise SourceError(f"duplicate band names in {names}")

    plans: list[_Plan] = []
    for item in items:
        got = sensor_of(item)
        if got is not spec:
            raise SourceError(f"item {item.id} is {got.name}, not {spec.name}")
        keys = band_assets(item, spec, names)
        enc = {n: scale_offset(item, k) for n, k in keys.items()}
        dtypes = {
            n: _data_type(item, k, spec.qa_dtype if n == QA else spec.band_dtype) for n, k in keys.items()
        }
        plans.append(_Plan(item, keys, enc, dtypes))

    # agree on scale and nodata; group on offsets
    scale: dict[str, float] = {}
    nodata: dict[str, float | None] = {}
    dtype: dict[str, str] = {}
    for n in names:
        scales = {p.enc[n][0] for p in plans}
        nodatas = {p.enc[n][2] for p in plans}
        if len(scales) > 1:
            raise SourceError(f"items disagree on the scale of {n}: {sorted(scales)}")
        if len(nodatas) > 1:
            raise SourceError(f"items disagree on the nodata of {n}: {sorted(map(str, nodatas))}")
        scale[n], nodata[n] = scales.pop(), nodatas.pop()
        dtype[n] = str(np.result_type(*{p.dtypes[n] for p in plans}))
    ref_offset = {n: min(p.enc[n][1] for p in plans) for n in names}

    def shifts_of(p: _Plan) -> tuple[int, ...]:
        out = []
        for n in names:
            d = (p.enc[n][1] - ref_offset[n]) / scale[n]
            k = round(d)
            if abs(d - k) > 1e-6:
                raise SourceError(f"cannot harmonise offsets of {n}: {p.enc[n][1]} vs {ref_offset[n]}")
            out.append(k)
        return tuple(out)

    groups: dict[tuple[int, ...], list[_Plan]] = {}
    for p in plans:
        groups.setdefault(shifts_of(p), []).append(p)

    stac_cfg = {"assets": {n: {"data_type": dtype[n], "nodata": nodata[n]} for n in names}}
    canon = [_canonical_copy(p.item, p.keys, f"hrlc-{spec.name}:{p.item.collection_id or ''}") for p in plans]
    copy_of = {id(p): c for p, c in zip(plans, canon, strict=True)}
    gbox = _target_geobox(canon, names, crs, resolution, bbox, anchor, stac_cfg)
    if day_lon is None:
        ((day_lon, _),) = gbox.extent.centroid.to_crs("epsg:4326").points
    lon = float(day_lon)
    c = int(chunks or (settings or _DEFAULTS).chunk_px)

    def group_key(item: pystac.Item, _parsed: Any, _idx: int) -> dt.date:
        return solar_day(item, lon)

    configure_odc_s3(settings)  # s3:// asset hrefs: /vsis3/ through the configured endpoint and credentials
    loaded: list[tuple[xr.Dataset, list[dt.date]]] = []
    for shift, group in groups.items():
        group_items = [copy_of[id(p)] for p in group]
        ds = odc.stac.load(
            group_items,
            bands=names,
            geobox=gbox,
            groupby=group_key,
            chunks={"time": 1, "y": c, "x": c},
            resampling={n: ("nearest" if n == QA else resampling) for n in names},
            stac_cfg=stac_cfg,
            patch_url=patch_url or sign_planetary_computer,
        )
        days = sorted({solar_day(it, lon) for it in group_items})
        if ds.sizes["time"] != len(days):  # pragma: no cover - odc-stac grouping changed under us
            raise SourceError(f"odc-stac made {ds.sizes['time']} time steps of {len(days)} solar days")
        for n, k in zip(names, shift, strict=True):
            if k:
                ds[n] = _shift_dn(ds[n], k, nodata[n])
        loaded.append((ds, days))

    if len(loaded) == 1:
        out = loaded[0][0]
    else:
        by_day: dict[dt.date, list[xr.Dataset]] = {}
        for ds, days in loaded:
            for i, day in enumerate(days):
                by_day.setdefault(day, []).append(ds.isel(time=i))
        steps = []
        for day in sorted(by_day):
            parts = sorted(by_day[day], key=lambda s: s.time.values)
            t = parts[0].time.values
            fused = parts[0].drop_vars("time")
            for other in parts[1:]:
                fused = _fuse(fused, other.drop_vars("time"), nodata)
            steps.append(fused.expand_dims(time=[t]))
        out = xr.concat(steps, dim="time")

    for n in names:
        assets = sorted({p.keys[n] for p in plans})
        out[n].attrs.update(
            scale=scale[n],
            offset=ref_offset[n],
            nodata=nodata[n],
            asset=",".join(assets),
        )
    out.attrs.update(sensor=spec.name, dn="stored digital numbers; reflectance = DN * scale + offset")
    return out


def to_reflectance(ds: xr.Dataset) -> xr.Dataset:
    """float32 reflectance (DN * scale + offset, NaN where DN == nodata) of the canonical band variables.

    "qa" and variables without a ``scale`` attribute are left as they are. Lazy when `ds` is.
    """
    out = ds.copy()
    for name, da in ds.data_vars.items():
        if name == QA or "scale" not in da.attrs:
            continue
        s, o, nd = da.attrs["scale"], da.attrs.get("offset", 0.0), da.attrs.get("nodata")
        refl = da.astype("float32") * np.float32(s) + np.float32(o)
        if nd is not None:
            refl = refl.where(da != nd)
        keep = {k: v for k, v in da.attrs.items() if k not in ("scale", "offset", "nodata", "units")}
        refl.attrs = {**keep, "nodata": float("nan"), "units": "1"}
        out[name] = refl.astype("float32")
    return out


__all__ = [
    "CANONICAL_LANDSAT",
    "CANONICAL_S2",
    "LANDSAT",
    "QA",
    "SENSORS",
    "SENTINEL2",
    "SensorSpec",
    "SourceError",
    "band_assets",
    "grid_for",
    "load_optical",
    "scale_offset",
    "search",
    "sensor_of",
    "to_reflectance",
    "utm_crs",
]

"""Find, retrieve, cache and upload ancillary layers: the API Data Access and PutData interfaces of spec §3.4.

`Ancillary.get(name, aoi=...)` returns a layer of the registry clipped and reprojected to a product grid
(`hrlc.catalog.sources.grid_for`: the UTM zone of the AOI, pixel edges on multiples of the resolution). The
first request retrieves it — from the dataset's STAC API (odc-stac mosaics the items over the grid), from its
S3/HTTP raster, or from the files put into the lake for a manual dataset — writes it to the lake as a COG
(vector layers: a GeoPackage) under `ancillary/{dataset}/{edition}/` with a STAC Item in the collection
`hrlc-ancillary`, and records it in `ancillary.cache`. The same request again reads the lake and makes no
request to the STAC API or the source.

Resampling: the dataset's method for continuous layers (bilinear for the DEM); nearest for categorical maps,
or the mode when the grid is coarser than 1.5x the map's native resolution.

`Ancillary.put(name, FILE)` uploads a manually retrieved file of a manual dataset to the lake
(`ancillary/{dataset}/source/{sha256[:16]}/{file}`), once: the same bytes again change nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import hashlib
import math
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import xarray as xr
from odc.geo.geobox import GeoBox

from hrlc import __version__, legend
from hrlc.ancillary import db
from hrlc.ancillary.agreement import Level, agreement_report
from hrlc.ancillary.errors import AncillaryError
from hrlc.ancillary.registry import DATASETS, Dataset, UnknownDataset
from hrlc.ancillary.registry import dataset as registry_dataset
from hrlc.catalog.items import file_item, raster_item
from hrlc.catalog.port import Catalog
from hrlc.catalog.sources import sign_planetary_computer
from hrlc.lake import layout
from hrlc.lake.store import Store, StoreError, configure_odc_s3
from hrlc.periods import period_range
from hrlc.settings import Settings

PROCESSOR = "ancillary"


# --------------------------------------------------------------------------------------------------- grid


def grid_id(gbox: GeoBox) -> str:
    """A short, stable id of a grid: `epsg32633-30m-<10 hex>` (CRS, resolution, hash of CRS+transform+shape)."""
    epsg = gbox.crs.epsg if gbox.crs is not None else None
    crs_text = f"epsg{epsg}" if epsg else "crs"
    a = gbox.affine
    res = abs(a.a)
    token = "|".join(
        [
            str(epsg) if epsg else (gbox.crs.to_wkt() if gbox.crs is not None else ""),
            ",".join(f"{v:.6f}" for v in (a.a, a.b, a.c, a.d, a.e, a.f)),
            f"{gbox.shape[0]}x{gbox.shape[1]}",
        ]
    )
    digest = hashlib.sha256(token.encode()).hexdigest()[:10]
    return f"{crs_text}-{res:g}m-{digest}"


def product_grid(
    aoi: Sequence[float],
    *,
    aoi_crs: str = "EPSG:4326",
    crs: str | None = None,
    resolution: float = 30.0,
) -> GeoBox:
    """The product grid of an AOI (left, bottom, right, top in `aoi_crs`): `crs` (default: the UTM zone of the
    AOI centre), square pixels of `resolution` metres, edges on multiples of it. AncillaryError if bad."""
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    from hrlc.catalog.sources import SourceError, grid_for

    if len(aoi) != 4:
        raise AncillaryError(f"an AOI is left,bottom,right,top; got {len(aoi)} numbers")
    left, bottom, right, top = (float(v) for v in aoi)
    if not all(np.isfinite([left, bottom, right, top])):
        raise AncillaryError(f"AOI {list(aoi)} has non-finite numbers")
    if not (left < right and bottom < top):
        raise AncillaryError(f"AOI {list(aoi)} is empty: it must be left,bottom,right,top")
    if not resolution > 0:
        raise AncillaryError(f"resolution must be positive, got {resolution}")
    try:
        src_crs = CRS.from_user_input(aoi_crs)
        out_crs = CRS.from_user_input(crs) if crs else None
    except CRSError as e:
        raise AncillaryError(f"unknown CRS: {e}") from None
    if src_crs.is_geographic and not (left >= -180 and right <= 180 and bottom >= -90 and top <= 90):
        raise AncillaryError(
            f"AOI {list(aoi)} is not lon/lat in {aoi_crs}: longitudes -180..180, latitudes -90..90"
        )
    if out_crs is not None and (
        not out_crs.is_projected or out_crs.axis_info[0].unit_name not in ("metre", "meter")
    ):
        raise AncillaryError(f"--crs {crs} is not a projected CRS in metres: product grids are in metres")
    try:
        return grid_for(
            (left, bottom, right, top), bbox_crs=aoi_crs, crs=crs, resolution=resolution, anchor="edge"
        )
    except SourceError as e:
        raise AncillaryError(str(e)) from None


def _lonlat_footprint(gbox: GeoBox) -> Any:
    return gbox.extent.to_crs("epsg:4326")


# ------------------------------------------------------------------------------------------------ results


@dataclass
class Layer:
    """An ancillary layer on a product grid, in the lake."""

    dataset: str
    edition: str
    kind: str
    grid: str
    key: str
    href: str
    item_id: str
    cached: bool  # True: read from the lake cache, no request to the source
    crs: str
    transform: tuple[float, ...]
    shape: tuple[int, int]
    access: str
    source: str
    source_ids: list[str]
    store: Store = field(repr=False)

    def read(self) -> Any:
        """Raster: an `xarray.DataArray` (y, x) with pixel-centre coordinates and `crs`, `transform`,
        `nodata` attributes. Vector: a `geopandas.GeoDataFrame`."""
        if self.kind == "vector":
            import geopandas as gpd

            with self.store.reading(self.key) as path:
                return gpd.read_file(path)
        import rasterio

        with self.store.reading(self.key) as path, rasterio.open(path) as src:
            data = src.read(1)
            nodata = src.nodata
            t = src.transform
        ny, nx = data.shape
        return xr.DataArray(
            data,
            dims=("y", "x"),
            coords={"y": t.f + t.e * (np.arange(ny) + 0.5), "x": t.c + t.a * (np.arange(nx) + 0.5)},
            name=self.dataset,
            attrs={"crs": self.crs, "transform": tuple(t)[:6], "nodata": nodata, "edition": self.edition},
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "edition": self.edition,
            "kind": self.kind,
            "cached": self.cached,
            "key": self.key,
            "href": self.href,
            "item": self.item_id,
            "grid": self.grid,
            "crs": self.crs,
            "resolution": abs(self.transform[0]),
            "shape": list(self.shape),
            "access": self.access,
            "source": self.source,
            "source_ids": self.source_ids,
        }


@dataclass(frozen=True)
class Upload:
    dataset: str
    edition: str
    filename: str
    key: str
    href: str
    sha256: str
    bytes: int
    created: bool  # False: the same bytes were already uploaded, nothing changed

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# ------------------------------------------------------------------------------------------------ service

_MEDIA = {
    ".tif": "image/tiff; application=geotiff",
    ".tiff": "image/tiff; application=geotiff",
    ".gpkg": "application/geopackage+sqlite3",
    ".geojson": "application/geo+json",
    ".json": "application/geo+json",
    ".fgb": "application/vnd.flatgeobuf",
    ".zip": "application/zip",
}
_INTERPOLATING = frozenset({"bilinear", "cubic", "cubic_spline", "lanczos"})
_VECTOR_SUFFIXES = frozenset({".gpkg", ".geojson", ".json", ".fgb", ".zip"})
_RASTER_SUFFIXES = frozenset({".tif", ".tiff"})


def _one_group(item: pystac.Item, parsed: Any, idx: int) -> int:
    """odc-stac groupby: every item in one layer (a mosaic; the first valid pixel wins)."""
    return 0


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:300]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _safe_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "file"
    return cleaned[:200]


def _is_nodata(data: np.ndarray, nodata: float | None) -> np.ndarray:
    if nodata is None:
        return np.zeros(data.shape, dtype=bool)
    if isinstance(nodata, float) and np.isnan(nodata):
        return np.isnan(data) if np.issubdtype(data.dtype, np.floating) else np.zeros(data.shape, dtype=bool)
    return np.asarray(data == nodata)


class Ancillary:
    """The ancillary data component over one lake, its catalogue and one database: the `AncillaryLayers` port
    (`hrlc.ancillary.port`: `get`) and the other interfaces of spec §3.4 (`put`, `status`, `agreement`).

    Everything comes as an argument; the composition root (`hrlc.backends`) builds it from `Settings`.
    `settings` give the STAC API that replaces the datasets' own (`HRLC_ANCILLARY_STAC_API`) and the S3 options
    of reads; `store` is the lake of the cached layers and uploads, `catalog` registers their items, `dsn` is the
    database (default: `settings.training_dsn`). Building it opens no connection; whoever opened `store` and
    `catalog` closes them.
    """

    def __init__(self, settings: Settings, *, store: Store, catalog: Catalog, dsn: str | None = None):
        self.settings = settings
        self.store = store
        self.catalog = catalog
        self.dsn = dsn or settings.training_dsn

    # -- registry
    def dataset(self, name: str) -> Dataset:
        try:
            return registry_dataset(name)
        except UnknownDataset as e:
            raise AncillaryError(str(e)) from None

    def datasets(self) -> list[Dataset]:
        return list(DATASETS.values())

    def status(self) -> list[dict[str, Any]]:
        """The registry with what the database knows: current uploads and cached layers per dataset."""
        with db.connect(self.dsn) as conn:
            rows = conn.execute(
                """
                select d.name,
                    (select count(*) from ancillary.uploads u where u.dataset = d.name and u.superseded is null)
                        as uploads,
                    (select count(*) from ancillary.cache c where c.dataset = d.name) as cached_layers
                from ancillary.datasets d
                """
            ).fetchall()
        counts = {r["name"]: r for r in rows}
        out = []
        for ds in self.datasets():
            c = counts.get(ds.name, {})
            out.append(
                {
                    "name": ds.name,
                    "title": ds.title,
                    "kind": ds.kind,
                    "roles": list(ds.roles),
                    "possible_roles": list(ds.possible_roles),
                    "licence": ds.licence,
                    "access": ds.access,
                    "stac_api": self._api(ds) if ds.stac else None,
                    "stac_collection": ds.stac.collection if ds.stac else None,
                    "editions": [str(y) for y in ds.years] or ["static"],
                    "uploads": int(c.get("uploads", 0)),
                    "cached_layers": int(c.get("cached_layers", 0)),
                }
            )
        return out

    def _api(self, ds: Dataset, api: str | None = None) -> str:
        assert ds.stac is not None
        return (api or self.settings.ancillary_stac_api or ds.stac.api).rstrip("/")

    def _edition(self, ds: Dataset, year: int | None) -> str:
        try:
            return ds.edition(year)
        except ValueError as e:
            raise AncillaryError(str(e)) from None

    # -- API Data Access
    def get(
        self,
        name: str,
        *,
        aoi: Sequence[float] | None = None,
        aoi_crs: str = "EPSG:4326",
        crs: str | None = None,
        resolution: float = 30.0,
        year: int | None = None,
        geobox: GeoBox | None = None,
        api: str | None = None,
        refresh: bool = False,
    ) -> Layer:
        """The layer `name` on the product grid of `aoi` (or on `geobox`), from the lake cache when it is there.

        `year` picks an edition of a multi-year dataset (default: the latest); `api` replaces the dataset's
        STAC API for this call; `refresh` retrieves again even if cached."""
        ds = self.dataset(name)
        edition = self._edition(ds, year)
        if geobox is None:
            if aoi is None:
                raise AncillaryError("give an AOI (or a grid)")
            geobox = product_grid(aoi, aoi_crs=aoi_crs, crs=crs, resolution=resolution)
        grid = grid_id(geobox)
        fmt = "gpkg" if ds.kind == "vector" else "tif"
        key = layout.key("ancillary-layer", dataset=ds.name, edition=edition, grid=grid, fmt=fmt)
        try:
            with db.connect(self.dsn) as conn:
                row = db.cached(conn, ds.name, edition, grid)
                if row is not None and not refresh and self.store.exists(row["key"]):
                    db.touch(conn, int(row["id"]))
                    return self._layer(ds, edition, grid, geobox, row["key"], row, cached=True)
            if ds.kind == "vector":
                access, source, source_ids = self._retrieve_vector(ds, edition, geobox, key)
            else:
                access, source, source_ids = self._retrieve_raster(ds, edition, geobox, key, api)
            item = self._item(ds, edition, geobox, key, source, source_ids)
            self.catalog.add(item)
            data = self.store.read_bytes(key)
            row = {
                "dataset": ds.name,
                "edition": edition,
                "grid": grid,
                "key": key,
                "href": self.store.href(key),
                "crs": str(geobox.crs),
                "resolution": abs(geobox.affine.a),
                "width": int(geobox.shape[1]),
                "height": int(geobox.shape[0]),
                "footprint_wkt": _lonlat_footprint(geobox).wkt,
                "access": access,
                "source": source,
                "source_ids": source_ids,
                "sha256": hashlib.sha256(data).hexdigest(),
                "bytes": len(data),
            }
            with db.connect(self.dsn) as conn:
                db.record_cache(conn, **row)
        except (db.DatabaseError, StoreError) as e:
            raise AncillaryError(str(e)) from None
        return self._layer(ds, edition, grid, geobox, key, row, cached=False)

    def _layer(
        self,
        ds: Dataset,
        edition: str,
        grid: str,
        gbox: GeoBox,
        key: str,
        row: dict[str, Any],
        *,
        cached: bool,
    ) -> Layer:
        return Layer(
            dataset=ds.name,
            edition=edition,
            kind=ds.kind,
            grid=grid,
            key=key,
            href=self.store.href(key),
            item_id=Path(key).stem,
            cached=cached,
            crs=str(gbox.crs),
            transform=tuple(gbox.affine)[:6],
            shape=(int(gbox.shape[0]), int(gbox.shape[1])),
            access=str(row["access"]),
            source=str(row["source"]),
            source_ids=list(row["source_ids"]),
            store=self.store,
        )

    def _retrieve_raster(
        self, ds: Dataset, edition: str, gbox: GeoBox, key: str, api: str | None
    ) -> tuple[str, str, list[str]]:
        from hrlc.products.cog import write_cog

        resampling = ds.resampling_for(abs(gbox.affine.a))
        patch: Callable[[str], str] | None = None
        if ds.stac is not None:
            url = self._api(ds, api)
            items = self._stac_items(ds, edition, gbox, url)
            asset = ds.stac.asset
            source = f"{url}/collections/{ds.stac.collection}"
            patch = _signer(ds)
        else:
            items, source = self._source_items(ds, edition, gbox)
            asset = "data"
        data = self._load(ds, items, asset, gbox, resampling, patch)
        if _is_nodata(data, ds.nodata).all():
            raise AncillaryError(
                f"the AOI is outside the {ds.name} data: no valid pixel on the grid ({len(items)} source file(s))"
            )
        write_cog(
            self.store,
            key,
            data,
            crs=str(gbox.crs),
            transform=gbox.affine,
            nodata=ds.nodata,
            band_names=[ds.name],
            categorical=ds.values == "categorical",
            tags={
                "hrlc_product": "ancillary-layer",
                "dataset": ds.name,
                "edition": edition,
                "units": ds.units,
                "resampling": resampling,
                "source": source,
                "licence": ds.licence,
            },
        )
        return ds.access, source, [it.id for it in items]

    def _stac_items(self, ds: Dataset, edition: str, gbox: GeoBox, api: str) -> list[pystac.Item]:
        import pystac_client

        assert ds.stac is not None
        bbox = tuple(_lonlat_footprint(gbox).boundingbox)
        try:
            client = pystac_client.Client.open(api)
            search = client.search(
                collections=[ds.stac.collection],
                bbox=bbox,
                datetime=None if edition == "static" else edition,
            )
            items = list(search.items())
        except Exception as e:  # noqa: BLE001 - network, HTTP and JSON errors of every kind
            raise AncillaryError(
                f"STAC search of {ds.stac.collection} on {api} failed: {_first_line(e)}"
            ) from None
        if not items:
            when = "" if edition == "static" else f" for {edition}"
            raise AncillaryError(
                f"the AOI is outside the {ds.name} data: collection {ds.stac.collection} on {api} has no "
                f"item there{when}"
            )
        lacking = [it.id for it in items if ds.stac.asset not in it.assets]
        if lacking:
            raise AncillaryError(
                f"item(s) {', '.join(lacking[:3])} of {ds.stac.collection} have no asset {ds.stac.asset!r}"
            )
        return items

    def _uploads_over(self, ds: Dataset, edition: str, gbox: GeoBox) -> list[Any]:
        """The current uploads of a manual dataset's edition that cover the grid; AncillaryError if none."""
        footprint = _lonlat_footprint(gbox).wkt
        with db.connect(self.dsn) as conn:
            everything = db.current_uploads(conn, ds.name, edition)
            over = db.current_uploads(conn, ds.name, edition, footprint)
        if not everything:
            raise AncillaryError(
                f"{ds.name} is a manual dataset and nothing is uploaded for edition {edition}: download it"
                f"{' from ' + ds.homepage if ds.homepage else ''} and run `hrlc ancillary put {ds.name} FILE"
                f"{'' if edition == 'static' else ' --year ' + edition}`"
            )
        if not over:
            raise AncillaryError(
                f"the AOI is outside the {ds.name} data: none of its {len(everything)} uploaded file(s) of "
                f"edition {edition} covers it"
            )
        return list(over)

    def _source_items(self, ds: Dataset, edition: str, gbox: GeoBox) -> tuple[list[pystac.Item], str]:
        """Items of the raster files of an S3/HTTP dataset or of the current uploads of a manual one."""
        if ds.s3_href is not None:
            href = ds.s3_href.format(year=edition)
            return [self._file_item(href, f"{ds.name}-{edition}")], href
        over = self._uploads_over(ds, edition, gbox)
        items = []
        for up in over:
            assert up.item is not None
            item = pystac.Item.from_dict(up.item)
            item.assets["data"].href = self.store.href(up.key)  # the lake may have moved (same keys)
            items.append(item)
        return items, "uploads"

    def _file_item(self, href: str, item_id: str, asset_href: str | None = None) -> pystac.Item:
        """A STAC Item (projection from the file) of one raster file, for odc-stac."""
        import rasterio
        from rio_stac import create_stac_item

        try:
            with self.store.raster_env(), rasterio.open(href) as src:
                return create_stac_item(
                    src,
                    input_datetime=dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
                    id=item_id,
                    asset_name="data",
                    asset_href=asset_href or href,
                    asset_roles=["data"],
                    asset_media_type=pystac.MediaType.GEOTIFF,
                    with_proj=True,
                )
        except Exception as e:  # noqa: BLE001 - GDAL/rasterio errors of every kind
            raise AncillaryError(f"cannot read {href} as a raster: {_first_line(e)}") from None

    def _load(
        self,
        ds: Dataset,
        items: list[pystac.Item],
        asset: str,
        gbox: GeoBox,
        resampling: str,
        patch: Callable[[str], str] | None,
    ) -> np.ndarray:
        import odc.stac

        if ds.values == "continuous":
            hrefs = [it.assets[asset].get_absolute_href() or it.assets[asset].href for it in items]
            mosaic = self._load_mosaic(ds, [patch(h) if patch else h for h in hrefs], gbox, resampling)
            if mosaic is not None:
                return mosaic
        configure_odc_s3(self.settings)
        try:
            with self.store.raster_env():
                cube = odc.stac.load(
                    items,
                    bands=[asset],
                    geobox=gbox,
                    groupby=_one_group,
                    resampling=resampling,
                    stac_cfg={"assets": {asset: {"data_type": ds.dtype, "nodata": ds.nodata}}},
                    patch_url=patch,
                    fail_on_error=True,
                    # overviews of categorical COGs may be averaged (GDAL's default is cubic): read full res
                    use_overviews=ds.values == "continuous",
                )
        except Exception as e:  # noqa: BLE001 - GDAL/HTTP errors of every kind
            raise AncillaryError(f"cannot read {ds.name}: {_first_line(e)}") from None
        return np.asarray(cube[asset].isel(time=0).values).astype(ds.dtype, copy=False)

    def _load_mosaic(self, ds: Dataset, hrefs: list[str], gbox: GeoBox, resampling: str) -> np.ndarray | None:
        """Continuous tiles (a DEM) mosaicked in their own CRS first, then warped once onto the grid, so that
        bilinear interpolation across tile edges sees both sides (odc-stac warps each tile alone, which leaves
        seams of up to half a source pixel times the gradient). None when the tiles differ in CRS."""
        import rasterio
        from rasterio.merge import merge
        from rasterio.warp import Resampling, reproject

        nodata = np.nan if ds.nodata is None else ds.nodata
        try:
            with self.store.raster_env(), contextlib.ExitStack() as stack:
                srcs = [stack.enter_context(rasterio.open(h)) for h in hrefs]
                crss = {s.crs.to_wkt() if s.crs else None for s in srcs}
                if len(crss) != 1 or None in crss:
                    return None
                src_crs = srcs[0].crs
                rx, ry = srcs[0].res
                left, bottom, right, top = gbox.extent.to_crs(src_crs.to_wkt()).boundingbox
                # on the first tile's pixel grid (merge does not snap), with a margin for the kernel
                x0, y0 = srcs[0].transform.c, srcs[0].transform.f
                bounds = (
                    x0 + (math.floor((left - x0) / rx) - 3) * rx,
                    y0 + (math.floor((bottom - y0) / ry) - 3) * ry,
                    x0 + (math.ceil((right - x0) / rx) + 3) * rx,
                    y0 + (math.ceil((top - y0) / ry) + 3) * ry,
                )
                data, transform = merge(srcs, bounds=bounds, nodata=nodata, dtype=ds.dtype)
        except Exception as e:  # noqa: BLE001 - GDAL/HTTP errors of every kind
            raise AncillaryError(f"cannot read {ds.name}: {_first_line(e)}") from None
        out = np.full(gbox.shape, nodata, dtype=ds.dtype)
        reproject(
            data[0],
            out,
            src_transform=transform,
            src_crs=src_crs,
            src_nodata=nodata,
            dst_transform=gbox.affine,
            dst_crs=gbox.crs.to_wkt() if gbox.crs is not None else None,
            dst_nodata=nodata,
            resampling=Resampling[resampling],
            # interpolate at the pixel centre: GDAL otherwise widens the kernel when it downsamples (16.6 m ->
            # 30 m across at 57 degrees), which is exact on a plane only to ~1 m of position and makes the
            # slope ripple by tenths of a degree
            **({"XSCALE": 1, "YSCALE": 1} if resampling in _INTERPOLATING else {}),
        )
        return out

    def _retrieve_vector(
        self, ds: Dataset, edition: str, gbox: GeoBox, key: str
    ) -> tuple[str, str, list[str]]:
        import geopandas as gpd
        import pandas as pd
        from shapely.geometry import shape

        over = self._uploads_over(ds, edition, gbox)
        extent = shape(gbox.extent.geom.__geo_interface__)
        region = gpd.GeoSeries([extent], crs=str(gbox.crs))
        frames = []
        for up in over:
            with self.store.reading(up.key) as path:
                try:
                    gdf = gpd.read_file(path, bbox=region)
                except Exception as e:  # noqa: BLE001 - any reader failure
                    raise AncillaryError(f"cannot read the upload {up.key}: {_first_line(e)}") from None
            if gdf.crs is None:
                raise AncillaryError(f"the upload {up.key} has no CRS")
            gdf = gdf.to_crs(str(gbox.crs))
            gdf = gdf[gdf.intersects(extent)].clip(extent)
            frames.append(gdf)
        out = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=str(gbox.crs))
        if out.empty:
            raise AncillaryError(f"the AOI is outside the {ds.name} data: no feature on the grid")
        if ds.label_field and ds.label_field in out.columns and ds.crosswalk:
            codes = pd.to_numeric(out[ds.label_field], errors="coerce")
            out["hrlc_code"] = codes.map(lambda v: ds.crosswalk.get(int(v), 0) if pd.notna(v) else 0).astype(
                "int32"
            )
        with self.store.writing(key) as tmp:
            tmp.unlink(missing_ok=True)
            out.to_file(tmp, driver="GPKG", layer=ds.name)
        return "manual", "uploads", [f"upload-{up.id}" for up in over]

    def _item(
        self, ds: Dataset, edition: str, gbox: GeoBox, key: str, source: str, source_ids: list[str]
    ) -> pystac.Item:
        if edition == "static":
            t0, t1 = ds.temporal
            start = _date(t0) if t0 else dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
            end = _date(t1) if t1 else start
        else:
            start, end = period_range(int(edition), "annual")
        props = {
            "hrlc:roles": list(ds.roles),
            "hrlc:access": ds.access,
            "hrlc:source": source,
            "hrlc:licence": ds.licence,
            "title": f"{ds.title}, {edition}, on grid {grid_id(gbox)}",
        }
        if ds.kind == "vector":
            fp = _lonlat_footprint(gbox)
            return file_item(
                self.store,
                key,
                geometry=fp.json,
                bbox=list(fp.boundingbox),
                media_type=_MEDIA[".gpkg"],
                start=start,
                end=end,
                processor=PROCESSOR,
                processor_version=__version__,
                inputs=source_ids,
                properties=props,
            )
        with self.store.raster_env():
            return raster_item(
                self.store,
                key,
                start=start,
                end=end,
                processor=PROCESSOR,
                processor_version=__version__,
                inputs=source_ids,
                properties=props,
            )

    # -- PutData
    def put(
        self, name: str, path: str | Path, *, year: int | None = None, source_url: str | None = None
    ) -> Upload:
        """Upload a manually retrieved file of a manual dataset to the lake and record it (idempotent)."""
        import psycopg

        ds = self.dataset(name)
        if ds.m2m:
            manual = ", ".join(d.name for d in self.datasets() if not d.m2m)
            raise AncillaryError(
                f"{ds.name} is retrieved machine-to-machine ({ds.access}); `put` is for the manual datasets: {manual}"
            )
        if year is None and not ds.static:
            raise AncillaryError(f"{ds.name} has yearly editions: say which one the file is (--year)")
        edition = self._edition(ds, year)
        path = Path(path)
        if not path.is_file():
            raise AncillaryError(f"{path} does not exist or is not a file")
        suffix = path.suffix.lower()
        allowed = _VECTOR_SUFFIXES if ds.kind == "vector" else _RASTER_SUFFIXES
        if suffix not in allowed:
            raise AncillaryError(
                f"{path.name}: a {ds.kind} dataset takes {', '.join(sorted(allowed))} files, "
                f"not {suffix or 'no suffix'}"
            )
        sha = _sha256(path)
        size = path.stat().st_size
        try:
            with db.connect(self.dsn) as conn:
                existing = db.upload_by_checksum(conn, ds.name, sha)
            if existing is not None:
                return self._existing(existing, edition, path)
            crs, footprint = _inspect(ds, path)
            key = layout.key(
                "ancillary-source", dataset=ds.name, checksum=sha[:16], name=_safe_name(path.name)
            )
            with self.store.writing(key) as tmp:
                shutil.copyfile(path, tmp)
            href = self.store.href(key)
            item = None
            if ds.kind == "raster":
                item = self._file_item(str(path), f"{ds.name}-{edition}-{sha[:16]}", asset_href=href)
                item.collection_id = None
            with db.connect(self.dsn) as conn:
                try:
                    db.insert_upload(
                        conn,
                        dataset=ds.name,
                        edition=edition,
                        filename=_safe_name(path.name),
                        key=key,
                        href=href,
                        sha256=sha,
                        size=size,
                        media_type=_MEDIA[suffix],
                        crs=crs,
                        footprint_wkt=footprint,
                        item=item.to_dict(include_self_link=False, transform_hrefs=False) if item else None,
                        source_url=source_url,
                        uploaded_by=getpass.getuser(),
                        hrlc_version=__version__,
                    )
                except psycopg.errors.UniqueViolation:  # the same bytes put concurrently: theirs counts
                    conn.rollback()
                    again = db.upload_by_checksum(conn, ds.name, sha)
                    assert again is not None
                    return self._existing(again, edition, path)
        except (db.DatabaseError, StoreError) as e:
            raise AncillaryError(str(e)) from None
        return Upload(ds.name, edition, _safe_name(path.name), key, href, sha, size, created=True)

    def _existing(self, up: db.UploadRow, edition: str, path: Path) -> Upload:
        if up.edition != edition:
            raise AncillaryError(
                f"{path.name} is already uploaded to {up.dataset} as edition {up.edition} (not {edition})"
            )
        if not self.store.exists(up.key):  # the object was lost: put it back under its key
            with self.store.writing(up.key) as tmp:
                shutil.copyfile(path, tmp)
        return Upload(
            up.dataset, up.edition, up.filename, up.key, up.href, up.sha256, up.bytes, created=False
        )

    def uploads(self, name: str | None = None) -> list[db.UploadRow]:
        with db.connect(self.dsn) as conn:
            return db.uploads(conn, name)

    def cache_entries(self, name: str | None = None) -> list[dict[str, Any]]:
        with db.connect(self.dsn) as conn:
            return db.cache_entries(conn, name)

    # -- agreement of a class map with a reference map
    def agreement(
        self,
        class_map: str | Path,
        *,
        reference: str = "esa-worldcover",
        year: int | None = None,
        level: Level = "group",
        api: str | None = None,
    ) -> dict[str, Any]:
        """Agreement report (JSON-ready dict, see `hrlc.ancillary.agreement`) of a class map (a GeoTIFF path,
        or a lake key/href) with a reference map of the registry retrieved on the class map's own grid."""
        import rasterio

        ds = self.dataset(reference)
        if ds.kind != "raster" or ds.values != "categorical" or not ds.crosswalk:
            raise AncillaryError(
                f"{ds.name} has no cross-walk to the HRLC legend: it cannot be a reference map"
            )
        try:
            with self._open_class_map(str(class_map)) as path, rasterio.open(path) as src:
                codes = src.read(1)
                if src.crs is None:
                    raise AncillaryError(f"{class_map} has no CRS")
                gbox = GeoBox(codes.shape, src.transform, src.crs)
        except rasterio.errors.RasterioIOError as e:
            raise AncillaryError(f"cannot read the class map {class_map}: {_first_line(e)}") from None
        layer = self.get(reference, geobox=gbox, year=year, api=api)
        raw = np.asarray(layer.read().values)
        ref = legend.crosswalk(raw, ds.crosswalk)
        try:
            report = agreement_report(codes, ref, level=level)
        except ValueError as e:
            raise AncillaryError(str(e)) from None
        return {
            "class_map": str(class_map),
            "reference": {
                "dataset": ds.name,
                "edition": layer.edition,
                "key": layer.key,
                "item": layer.item_id,
                "cached": layer.cached,
                "crosswalk": {str(k): v for k, v in sorted(ds.crosswalk.items())},
            },
            "grid": {"crs": layer.crs, "resolution": abs(layer.transform[0]), "shape": list(layer.shape)},
            **report,
        }

    def _open_class_map(self, ref: str) -> Any:
        """A path GDAL can open for a class map given as a file path, or a key/href of the lake."""

        if Path(ref).is_file():
            return contextlib.nullcontext(ref)
        try:
            key = layout.check_key(self.store.key_of(ref)) if "://" in ref or ref.startswith("/") else ref
            if self.store.exists(key):
                return self.store.reading(key)
        except (ValueError, layout.LayoutError, StoreError):
            pass
        raise AncillaryError(f"class map {ref} does not exist (a GeoTIFF path, or a key/href of the lake)")


def _date(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def _signer(ds: Dataset) -> Callable[[str], str] | None:
    """Planetary Computer blob hrefs need a SAS token: sign those (and only those) at read time."""
    if ds.stac is None or ds.stac.sign != "planetary-computer":
        return None

    return sign_planetary_computer


def _inspect(ds: Dataset, path: Path) -> tuple[str, str]:
    """(CRS, lon/lat footprint WKT) of a file to upload; AncillaryError if it cannot be read or has no CRS."""
    from pyproj import CRS
    from rasterio.warp import transform_bounds
    from shapely.geometry import box

    if ds.kind == "raster":
        import rasterio

        try:
            with rasterio.open(path) as src:
                if src.crs is None:
                    raise AncillaryError(f"{path.name} has no CRS")
                crs = src.crs.to_string()
                bounds = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
        except rasterio.errors.RasterioIOError as e:
            raise AncillaryError(f"cannot read {path.name} as a raster: {_first_line(e)}") from None
    else:
        import pyogrio

        try:
            info = pyogrio.read_info(path, force_total_bounds=True)
        except Exception as e:  # noqa: BLE001 - any reader failure
            raise AncillaryError(f"cannot read {path.name} as vector data: {_first_line(e)}") from None
        if not info.get("crs"):
            raise AncillaryError(f"{path.name} has no CRS")
        if not info.get("features"):
            raise AncillaryError(f"{path.name} has no features")
        crs = str(info["crs"])
        bounds = transform_bounds(
            CRS.from_user_input(crs).to_wkt(), "EPSG:4326", *info["total_bounds"], densify_pts=21
        )
    west, south, east, north = bounds
    if not all(np.isfinite(bounds)) or west > east or south > north:
        raise AncillaryError(f"{path.name}: cannot work out its footprint in lon/lat")
    return crs, box(west, south, east, north).wkt

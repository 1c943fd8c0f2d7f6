"""Optical preprocessing processor (spec §3.2.1): cloud-masked monthly (Sentinel-2) or seasonal (Landsat)
composites of one year over an AOI, from any STAC source.

For each period it writes `optical_{sensor}_{year}_{period}.tif` (surface reflectance ×10000, uint16,
nodata 0, canonical band names) and `optical_{sensor}_{year}_{period}_cloudmask.tif` (band 1: clear
observations used, band 2: observations seen; uint16), each with a STAC Item that carries the cloud ratio
and the compositing method. Periods without any clear observation are written all-nodata, so the year
always has its 12 (or 4) periods and the feature step can gap-fill.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pystac
import rasterio
import xarray as xr
from odc.geo.geobox import GeoBox
from pydantic import Field, field_validator
from rasterio.errors import RasterioError

from hrlc.catalog import sources
from hrlc.catalog.items import raster_item
from hrlc.chain import optical
from hrlc.lake import layout
from hrlc.lake.identity import ProductId, aoi_space, config_hash
from hrlc.periods import composite_kind, period_range, periods_of
from hrlc.processors.base import Context, Params, Processor, ProcessorError
from hrlc.products.cog import write_cog

REFLECTANCE_SCALE = 1e-4
HAZE_REFLECTANCE = 0.2  # blue surface reflectance taken as fully hazy by best-available-pixel scoring


class OpticalParams(Params):
    bbox: tuple[float, float, float, float] = Field(description="AOI [left, bottom, right, top] in bbox_crs")
    bbox_crs: str = "EPSG:4326"
    crs: str | None = Field(default=None, description="Output CRS; default: UTM zone of the AOI centre")
    resolution: float | None = Field(
        default=None, gt=0, description="Metres; default: 10 (S2) / 30 (Landsat)"
    )
    year: int = Field(ge=1982, le=2100)
    sensor: Literal["sentinel2", "landsat"]
    source: str = Field(description="STAC API URL, static catalog path or item collection file")
    method: Literal["median", "bap"] = "median"
    mask_snow: bool = False
    dilate_px: int = Field(default=0, ge=0, le=50, description="Grow clouds and shadows by this many pixels")
    max_cloud: float | None = Field(
        default=None, ge=0, le=100, description="Skip scenes above this eo:cloud_cover"
    )

    @field_validator("bbox")
    @classmethod
    def _bbox_not_empty(cls, v: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        if not (v[0] < v[2] and v[1] < v[3]):
            raise ValueError(f"bbox {list(v)} is empty: it must be [left, bottom, right, top]")
        return v


def target_grid(params: OpticalParams) -> GeoBox:
    """The grid the composites are made on (the AOI snapped to the sensor's resolution); ProcessorError if
    the AOI or CRS cannot make one."""
    resolution = params.resolution or sources.SENSORS[params.sensor].resolution
    try:
        return sources.grid_for(params.bbox, bbox_crs=params.bbox_crs, crs=params.crs, resolution=resolution)
    except Exception as e:  # noqa: BLE001 - pyproj/odc-geo raise many kinds for a bad CRS
        raise ProcessorError(f"cannot make the target grid: {e}") from e


class OpticalPreprocessing(Processor[OpticalParams]):
    name = "optical-preprocessing"
    version = "0.1.0"
    Params = OpticalParams

    def identity(self, params: OpticalParams, grid: GeoBox | None = None) -> ProductId:
        """The composites' identity: the target grid (`grid`, made from `params` if not given), and every
        parameter that changes their pixels."""
        grid = grid or target_grid(params)
        pixels = params.model_dump(mode="json", exclude={"bbox", "bbox_crs", "crs", "resolution"})
        return ProductId(
            aoi_space(str(grid.crs), tuple(grid.transform)[:6], (grid.height, grid.width)),
            config_hash(self.name, self.version, pixels),
        )

    def outputs(self, params: OpticalParams) -> list[str]:
        ident = self.identity(params).fields()
        keys = []
        for period in periods_of(params.sensor):
            f = {"sensor": params.sensor, "year": params.year, "period": period, **ident}
            keys += [layout.key("optical-composite", **f), layout.key("optical-cloudmask", **f)]
        return keys

    def run(self, params: OpticalParams, ctx: Context) -> list[str]:
        grid = target_grid(params)
        aoi_ll = tuple(grid.extent.to_crs("EPSG:4326").boundingbox)
        try:
            items = sources.search(
                params.source,
                sensor=params.sensor,
                bbox=aoi_ll,  # type: ignore[arg-type]
                datetime=f"{params.year}-01-01T00:00:00Z/{params.year}-12-31T23:59:59Z",
                max_cloud=params.max_cloud,
            )
        except sources.SourceError as e:
            raise ProcessorError(str(e)) from e
        if not items:
            raise ProcessorError(self._why_empty(params, aoi_ll))
        ctx.log.info("%d %s scenes for %s over %s", len(items), params.sensor, params.year, aoi_ll)
        try:
            cube = sources.load_optical(items, sensor=params.sensor, geobox=grid, settings=ctx.store.settings)
        except sources.SourceError as e:
            raise ProcessorError(str(e)) from e
        bands = [str(b) for b in cube.data_vars if b != "qa"]
        scales = np.array([cube[b].attrs.get("scale", 1.0) for b in bands], dtype=np.float64)
        offsets = np.array([cube[b].attrs.get("offset", 0.0) for b in bands], dtype=np.float64)
        nodata = cube[bands[0]].attrs.get("nodata", 0) or 0
        times = cube.time.values
        period_of = optical.period_index(times, params.year, composite_kind(params.sensor))
        hrefs: list[str] = []
        periods = periods_of(params.sensor)
        for p, period in enumerate(periods):
            ctx.check_cancelled()
            sel = np.flatnonzero(period_of == p)
            comp_key, mask_key = self._keys(params, grid, period)
            if ctx.store.exists(comp_key) and ctx.store.exists(mask_key):
                # written whole (atomic writes) by an attempt killed before it registered them; the keys say what
                # made them (processor, parameters, grid), so they hold what this attempt would write
                ctx.progress(p / len(periods), f"{period}: composite of an earlier attempt reused")
                with ctx.store.reading(mask_key) as path, rasterio.open(path) as src:
                    valid_count, seen = src.read()
                hrefs += self._register(
                    ctx,
                    params,
                    period,
                    grid,
                    (comp_key, mask_key),
                    valid_count,
                    seen,
                    [items[i] for i in sel],
                )
                continue
            ctx.progress(p / len(periods), f"{period}: reading")
            data, invalid, seen = self._load_period(
                cube, bands, sel, params, nodata, (grid.height, grid.width)
            )
            if sel.size:
                if params.method == "median":
                    comp, count = optical.composite_median(
                        data, invalid, np.zeros(sel.size, np.int64), 1, nodata=nodata
                    )
                else:
                    doy = cube.time.dt.dayofyear.values[sel]
                    start, end = period_range(params.year, period)
                    target = (start.timetuple().tm_yday + end.timetuple().tm_yday) // 2
                    blue = bands.index("blue")
                    comp, count, _score = optical.composite_bap(
                        data,
                        invalid,
                        np.zeros(sel.size, np.int64),
                        1,
                        doy,
                        np.array([target]),
                        nodata=nodata,
                        blue_band=blue,
                        haze_dn=(HAZE_REFLECTANCE - offsets[blue]) / scales[blue],
                    )
                refl = _to_reflectance_dn(comp[0], scales, offsets, nodata)
                valid_count = count[0]
            else:
                refl = np.zeros((len(bands), grid.height, grid.width), np.uint16)
                valid_count = np.zeros((grid.height, grid.width), np.uint16)
            hrefs += self._write(
                ctx, params, period, grid, bands, refl, valid_count, seen, [items[i] for i in sel]
            )
            ctx.progress((p + 1) / len(periods), f"{period}: {sel.size} scenes")
        return hrefs

    def _why_empty(self, params: OpticalParams, aoi_ll: tuple[float, ...]) -> str:
        try:
            any_year = sources.search(
                params.source,
                sensor=params.sensor,
                bbox=aoi_ll,  # type: ignore[arg-type]
                datetime="1970-01-01T00:00:00Z/2100-12-31T23:59:59Z",
            )
        except sources.SourceError:
            any_year = []
        if any_year:
            years = sorted({i.datetime.year for i in any_year if i.datetime})
            return (
                f"no {params.sensor} scenes in {params.source} for {params.year} (years with scenes: {years})"
            )
        return f"the AOI {[round(v, 5) for v in aoi_ll]} is outside every {params.sensor} scene of {params.source}"

    @staticmethod
    def _load_period(
        cube: xr.Dataset,
        bands: list[str],
        sel: np.ndarray,
        params: OpticalParams,
        nodata: int,
        shape: tuple[int, int],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The scenes of one period: data (t, band, y, x) DN, invalid (t, y, x), seen (y, x) = dates with data."""
        if sel.size == 0:
            return (
                np.empty((0, len(bands), *shape), np.uint16),
                np.empty((0, *shape), bool),
                np.zeros(shape, np.uint16),
            )
        try:
            part = cube.isel(time=sel).compute()
        except RasterioError as e:
            raise ProcessorError(f"unreadable input raster: {e}") from e
        data = np.stack([part[b].values for b in bands], axis=1)
        qa = part["qa"].values
        if params.sensor == "landsat":
            invalid = optical.qa_pixel_mask(qa, snow=params.mask_snow, dilate_px=params.dilate_px)
        else:
            invalid = optical.scl_mask(qa, snow=params.mask_snow, dilate_px=params.dilate_px)
        no_data = data[:, 0] == nodata
        invalid |= no_data
        seen = (~no_data).sum(axis=0, dtype=np.uint16)
        return data, invalid, seen

    def _write(
        self,
        ctx: Context,
        params: OpticalParams,
        period: str,
        grid: GeoBox,
        bands: list[str],
        refl: np.ndarray,
        valid_count: np.ndarray,
        seen: np.ndarray,
        scenes: list[pystac.Item],
    ) -> list[str]:
        comp_key, mask_key = self._keys(params, grid, period)
        write_cog(
            ctx.store,
            comp_key,
            refl,
            crs=str(grid.crs),
            transform=grid.transform,
            nodata=0,
            band_names=bands,
            scales=[REFLECTANCE_SCALE] * len(bands),
            offsets=[0.0] * len(bands),
            tags={"hrlc_product": "optical-composite", "method": params.method},
        )
        write_cog(
            ctx.store,
            mask_key,
            np.stack([valid_count, seen]).astype(np.uint16),
            crs=str(grid.crs),
            transform=grid.transform,
            nodata=None,
            band_names=["clear_observations", "observations"],
            tags={"hrlc_product": "optical-cloudmask"},
        )
        return self._register(ctx, params, period, grid, (comp_key, mask_key), valid_count, seen, scenes)

    def _keys(self, params: OpticalParams, grid: GeoBox, period: str) -> tuple[str, str]:
        """The lake keys of a period's composite and cloud mask."""
        f = {
            "sensor": params.sensor,
            "year": params.year,
            "period": period,
            **self.identity(params, grid).fields(),
        }
        return layout.key("optical-composite", **f), layout.key("optical-cloudmask", **f)

    def _register(
        self,
        ctx: Context,
        params: OpticalParams,
        period: str,
        grid: GeoBox,
        keys: tuple[str, str],
        valid_count: np.ndarray,
        seen: np.ndarray,
        scenes: list[pystac.Item],
    ) -> list[str]:
        """The STAC items of a period's composite and cloud mask (both written) from its `scenes`, registered."""
        comp_key, mask_key = keys
        total_obs = int(seen.sum())
        cloud_ratio = 1.0 - (float(valid_count.sum()) / total_obs) if total_obs else 1.0
        no_clear = float((valid_count == 0).mean())
        period_items = [i.id for i in scenes]
        scene_cc = [float(c) for i in scenes if (c := i.properties.get("eo:cloud_cover")) is not None]
        common = {
            "hrlc:composite_method": params.method,
            "hrlc:cloud_ratio": round(cloud_ratio, 4),
            "hrlc:no_clear_ratio": round(no_clear, 4),
            "hrlc:scenes": len(scenes),
            "hrlc:cloud_mask": ("QA_PIXEL" if params.sensor == "landsat" else "SCL")
            + (f" dilated {params.dilate_px} px" if params.dilate_px else "")
            + (" with snow" if params.mask_snow else ""),
            "hrlc:atmospheric_correction": "L2A (Sen2Cor)"
            if params.sensor == "sentinel2"
            else "C2 L2 (LaSRC)",
            "eo:cloud_cover": round(100 * cloud_ratio, 2),
            "platform": "sentinel-2" if params.sensor == "sentinel2" else "landsat",
        }
        if scene_cc:
            common["hrlc:scene_cloud_cover_mean"] = round(float(np.mean(scene_cc)), 2)
        start, end = period_range(params.year, period)
        hrefs = []
        comp_item = raster_item(
            ctx.store,
            comp_key,
            start=start,
            end=end,
            processor=self.name,
            processor_version=self.version,
            inputs=period_items,
            properties=common,
            roles=("data", "reflectance"),
        )
        mask_item = raster_item(
            ctx.store,
            mask_key,
            start=start,
            end=end,
            processor=self.name,
            processor_version=self.version,
            inputs=period_items,
            properties=common,
            roles=("data", "cloud", "metadata"),
        )
        comp_item.add_link(_related(ctx, mask_item))
        mask_item.add_link(_related(ctx, comp_item))
        hrefs.append(ctx.register(comp_item))
        hrefs.append(ctx.register(mask_item))
        return hrefs


def _related(ctx: Context, item: pystac.Item) -> pystac.Link:
    return pystac.Link("related", ctx.catalog.href(item), media_type="application/geo+json", title=item.id)


def _to_reflectance_dn(
    comp: np.ndarray, scales: np.ndarray, offsets: np.ndarray, nodata: float
) -> np.ndarray:
    """Composite DN (bands, y, x) of the source scaling -> surface reflectance ×10000 as uint16, 0 = nodata."""
    out = np.zeros(comp.shape, np.uint16)
    valid = comp[0] != nodata
    for b in range(comp.shape[0]):
        refl = comp[b].astype(np.float32) * np.float32(scales[b]) + np.float32(offsets[b])
        out[b] = np.where(valid, np.clip(np.rint(refl / REFLECTANCE_SCALE), 1, 65535), 0).astype(np.uint16)
    return out

"""Optical preprocessing processor (spec §3.2.1): cloud-masked monthly (Sentinel-2) or seasonal (Landsat)
composites of one year over an AOI, from any STAC source.

For each period it writes `optical_{sensor}_{year}_{period}.tif` (surface reflectance ×10000, uint16,
nodata 0, canonical band names) and `optical_{sensor}_{year}_{period}_cloudmask.tif` (band 1: clear
observations used, band 2: observations seen; uint16), each with a STAC Item that carries the cloud ratio
and the compositing method. Periods without any clear observation are written all-nodata, so the year
always has its 12 (or 4) periods and the feature step can gap-fill.

Memory: a period is composited block by block, each block (`settings.chunk_px`) read on its own with all the
period's dates and the margin of its neighbours that cloud dilation and best-available-pixel scoring look at
(`_Blocks`), and its blocks are written into the COGs as they come (`products.cog.cog_blocks`), a few blocks at a
time (`products.cog.chunk_regions`: dask's threaded scheduler would read every block's dates before the first
composites are done): peak memory grows with the chunk size, the number of dates and of threads, not with the
AOI. The cloud ratios of the items are sums of per-block counts.
"""

from __future__ import annotations

import itertools
import math
import uuid
from collections.abc import Callable
from dataclasses import astuple, dataclass
from typing import Any, Literal

import dask
import dask.array as da
import numpy as np
import pystac
import rasterio
import xarray as xr
from odc.geo.geobox import GeoBox
from pydantic import Field, field_validator, model_validator
from rasterio.errors import RasterioError

from hrlc.catalog import sources
from hrlc.catalog.items import raster_item
from hrlc.chain import optical
from hrlc.lake import layout
from hrlc.lake.grid import TILE_PATTERN, parse_tile
from hrlc.lake.identity import ProductId, aoi_space, config_hash
from hrlc.periods import composite_kind, period_range, periods_of
from hrlc.processors.base import Context, Params, Processor, ProcessorError
from hrlc.products.cog import chunk_regions, cog_blocks, provenance_tags
from hrlc.settings import Settings, defaults

REFLECTANCE_SCALE = 1e-4
HAZE_REFLECTANCE = 0.2  # blue surface reflectance taken as fully hazy by best-available-pixel scoring
CLOUD_DISTANCE_PX = 10.0  # best-available-pixel scoring: the distance to a cloud at which its penalty ends


class OpticalParams(Params):
    bbox: tuple[float, float, float, float] | None = Field(
        default=None, description="AOI [left, bottom, right, top] in bbox_crs; or `tile`"
    )
    bbox_crs: str = "EPSG:4326"
    tile: str | None = Field(
        default=None,
        pattern=TILE_PATTERN,
        description="A tile of the product grid (hrlc.lake.grid), e.g. utm33n-109800-4-46, instead of `bbox`: "
        "the composites cover the whole tile",
    )
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
    def _bbox_not_empty(
        cls, v: tuple[float, float, float, float] | None
    ) -> tuple[float, float, float, float] | None:
        if v is not None and not (v[0] < v[2] and v[1] < v[3]):
            raise ValueError(f"bbox {list(v)} is empty: it must be [left, bottom, right, top]")
        return v

    @model_validator(mode="after")
    def _bbox_or_tile(self) -> OpticalParams:
        if (self.bbox is None) == (self.tile is None):
            raise ValueError("give exactly one of bbox (an AOI) and tile (a tile of the product grid)")
        if self.tile is not None and self.crs is not None:
            raise ValueError("a tile has its zone's CRS: give no crs with a tile")
        return self

    @property
    def pixel_size(self) -> float:
        """The resolution, metres (the sensor's by default)."""
        return self.resolution or sources.SENSORS[self.sensor].resolution


def target_grid(params: OpticalParams) -> GeoBox:
    """The grid the composites are made on: the tile's grid at the resolution, or the AOI snapped to it;
    ProcessorError if the AOI, tile or CRS cannot make one."""
    try:
        if params.tile is not None:
            return parse_tile(params.tile).geobox(params.pixel_size)
        assert params.bbox is not None
        return sources.grid_for(
            params.bbox, bbox_crs=params.bbox_crs, crs=params.crs, resolution=params.pixel_size
        )
    except Exception as e:  # noqa: BLE001 - pyproj/odc-geo raise many kinds for a bad CRS
        raise ProcessorError(f"cannot make the target grid: {e}") from e


class OpticalPreprocessing(Processor[OpticalParams]):
    name = "optical-preprocessing"
    version = "0.1.0"
    Params = OpticalParams

    def identity(self, params: OpticalParams, grid: GeoBox | None = None) -> ProductId:
        """The composites' identity: where (the tile, or the AOI's target grid: `grid`, made from `params` if
        not given), and every parameter that changes their pixels (the resolution too, for a tile)."""
        pixels = params.model_dump(mode="json", exclude={"bbox", "bbox_crs", "crs", "resolution", "tile"})
        if params.tile is not None:  # a tile id says where, not at which resolution
            return ProductId(
                params.tile, config_hash(self.name, self.version, {**pixels, "resolution": params.pixel_size})
            )
        grid = grid or target_grid(params)
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

    @staticmethod
    def margin(params: OpticalParams) -> int:
        """The pixels around a block (or a tile) that its composite depends on: clouds grown by `dilate_px`,
        then (BAP) scored by their distance, which saturates at `CLOUD_DISTANCE_PX`."""
        return params.dilate_px + (math.ceil(CLOUD_DISTANCE_PX) if params.method == "bap" else 0)

    @classmethod
    def halo(cls, params: OpticalParams) -> int:
        """Pixels around a tile that its composites depend on (`margin`). A tile is composited with that much of
        its neighbours and cropped, so tiles join into the composite of one grid holding them all (no seams);
        an AOI grid is composited as it is."""
        return cls.margin(params) if params.tile is not None else 0

    def run(self, params: OpticalParams, ctx: Context) -> list[str]:
        grid = target_grid(params)
        halo = self.halo(params)
        read_grid = grid.pad(halo) if halo else grid
        aoi_ll = tuple(read_grid.extent.to_crs("EPSG:4326").boundingbox)
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
        ((day_lon, _),) = read_grid.extent.centroid.to_crs("EPSG:4326").points
        try:
            # the dates, bands and encodings only: the blocks are read one by one (`_composite`)
            cube = sources.load_optical(
                items,
                sensor=params.sensor,
                geobox=read_grid,
                chunks=max(read_grid.shape),
                day_lon=day_lon,
                settings=ctx.store.settings,
            )
        except sources.SourceError as e:
            raise ProcessorError(str(e)) from e
        bands = [str(b) for b in cube.data_vars if b != "qa"]
        # the cube's time steps are the items' solar days (items of one day fused), in order
        item_days = [sources.solar_day(i, day_lon) for i in items]
        step_of_day = {day: step for step, day in enumerate(sorted(set(item_days)))}
        period_of = optical.period_index(cube.time.values, params.year, composite_kind(params.sensor))
        hrefs: list[str] = []
        periods = periods_of(params.sensor)
        for p, period in enumerate(periods):
            ctx.check_cancelled()
            sel = np.flatnonzero(period_of == p)
            keys = self._keys(params, grid, period)
            scenes = [i for i, day in zip(items, item_days, strict=True) if period_of[step_of_day[day]] == p]
            if ctx.store.exists(keys[0]) and ctx.store.exists(keys[1]):
                # written whole (atomic writes) by an attempt killed before it registered them; the keys say what
                # made them (processor, parameters, grid), so they hold what this attempt would write
                ctx.progress(p / len(periods), f"{period}: composite of an earlier attempt reused")
                hrefs += self._register(ctx, params, period, keys, _read_observations(ctx, keys[1]), scenes)
                continue
            ctx.progress(p / len(periods), f"{period}: reading")
            blocks = _Blocks(scenes, params.sensor, read_grid, halo, day_lon, ctx.store.settings)
            stack = self._composite(cube, bands, sel, params, period, blocks)
            observations = self._write(ctx, params, grid, bands, keys, stack)
            hrefs += self._register(ctx, params, period, keys, observations, scenes)
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
    def _composite(
        cube: xr.Dataset,
        bands: list[str],
        sel: np.ndarray,
        params: OpticalParams,
        period: str,
        blocks: _Blocks,
    ) -> da.Array:
        """The composite of the dates `sel` of `cube` over the grid of `blocks`, lazy, one block per chunk: a
        (bands + 2, y, x) uint16 stack of the reflectance ×10000 bands, the clear observations used and the
        observations seen (dates with data)."""
        first = cube[bands[0]]
        nodata = first.attrs.get("nodata", 0) or 0
        if sel.size == 0:
            return da.zeros((len(bands) + 2, *blocks.shape), np.uint16, chunks=(-1, *blocks.chunks))
        scales = np.array([cube[b].attrs.get("scale", 1.0) for b in bands], dtype=np.float64)
        offsets = np.array([cube[b].attrs.get("offset", 0.0) for b in bands], dtype=np.float64)
        start, end = period_range(params.year, period)
        compositor = _Compositor(
            method=params.method,
            nodata=nodata,
            scales=scales,
            offsets=offsets,
            doy=cube.time.dt.dayofyear.values[sel],
            target_doy=(start.timetuple().tm_yday + end.timetuple().tm_yday) // 2,
            blue=bands.index("blue") if params.method == "bap" else 0,
            bands=tuple(bands),
            sensor=params.sensor,
            snow=params.mask_snow,
            dilate_px=params.dilate_px,
        )
        return blocks.map(compositor, len(bands) + 2, margin=OpticalPreprocessing.margin(params))

    def _write(
        self,
        ctx: Context,
        params: OpticalParams,
        grid: GeoBox,
        bands: list[str],
        keys: tuple[str, str],
        stack: da.Array,
    ) -> _Observations:
        """Write a period's `stack` (see `_composite`) into its composite and cloud mask COGs, a few blocks at a
        time; returns the period's observation counts, summed over the blocks."""
        comp_key, mask_key = keys
        nb = len(bands)
        geo: dict[str, Any] = {"height": grid.height, "width": grid.width, "crs": str(grid.crs)}
        observations = _Observations(0, 0, 0, 0)
        with (
            cog_blocks(
                ctx.store,
                comp_key,
                count=nb,
                dtype=np.uint16,
                transform=grid.transform,
                nodata=0,
                band_names=bands,
                scales=[REFLECTANCE_SCALE] * nb,
                offsets=[0.0] * nb,
                tags={
                    "hrlc_product": "optical-composite",
                    "method": params.method,
                    **provenance_tags(f"{self.name} {self.version}"),
                },
                **geo,
            ) as comp_cog,
            cog_blocks(
                ctx.store,
                mask_key,
                count=2,
                dtype=np.uint16,
                transform=grid.transform,
                nodata=None,
                band_names=["clear_observations", "observations"],
                tags={"hrlc_product": "optical-cloudmask", **provenance_tags(f"{self.name} {self.version}")},
                **geo,
            ) as mask_cog,
        ):
            (stack,) = dask.optimize(stack)  # the period's tasks only: each region's graph is cut from these
            for rows, cols in chunk_regions(stack):
                try:
                    part = stack[:, rows, cols].compute()
                except RasterioError as e:
                    raise ProcessorError(f"unreadable input raster: {e}") from e
                comp_cog[:, rows, cols] = part[:nb]
                mask_cog[:, rows, cols] = part[nb:]
                observations += _Observations.of(part[nb], part[nb + 1])
        return observations

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
        keys: tuple[str, str],
        observations: _Observations,
        scenes: list[pystac.Item],
    ) -> list[str]:
        """The STAC items of a period's composite and cloud mask (both written) from its `scenes`, registered."""
        comp_key, mask_key = keys
        cloud_ratio = observations.cloud_ratio
        no_clear = observations.no_clear_ratio
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


@dataclass(frozen=True)
class _Observations:
    """A period's observation counts over its grid, the statistics of its STAC items; the counts of parts of
    the grid add up to the grid's."""

    clear: int  # clear observations the composite used
    seen: int  # observations with data
    no_clear: int  # pixels without any clear observation
    pixels: int

    @classmethod
    def of(cls, clear: np.ndarray, seen: np.ndarray) -> _Observations:
        """The counts of (a block of) a cloud mask's bands: clear observations used, observations seen."""
        return cls(int(clear.sum()), int(seen.sum()), int((clear == 0).sum()), int(clear.size))

    def __add__(self, other: _Observations) -> _Observations:
        return _Observations(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    @property
    def cloud_ratio(self) -> float:
        """The share of the observations seen that the cloud mask left out (1 if none was seen)."""
        return 1.0 - (float(self.clear) / self.seen) if self.seen else 1.0

    @property
    def no_clear_ratio(self) -> float:
        """The share of the pixels without any clear observation."""
        return self.no_clear / self.pixels


def _read_observations(ctx: Context, mask_key: str) -> _Observations:
    """The observation counts of a period's cloud mask in the lake, read block by block."""
    with ctx.store.reading(mask_key) as path, rasterio.open(path) as src:
        parts = [_Observations.of(*src.read(window=w)) for _, w in src.block_windows(1)]
    return sum(parts, _Observations(0, 0, 0, 0))


def _invalid(
    qa: np.ndarray, first_band: np.ndarray, *, sensor: str, snow: bool, dilate_px: int, nodata: float
) -> np.ndarray:
    """Invalid observations (t, y, x): the sensor's quality flags (clouds and shadows grown by `dilate_px`,
    snow if `snow`) and no data in the first band."""
    mask = optical.qa_pixel_mask if sensor == "landsat" else optical.scl_mask
    return mask(qa, snow=snow, dilate_px=dilate_px) | (first_band == nodata)


@dataclass(frozen=True)
class _Blocks:
    """The blocks of a period's composite, each read from the period's `scenes` on its own: the composite's
    grid (`read_grid` less `halo` pixels each side) in `settings.chunk_px` chunks.

    A block is read with `margin` pixels of its neighbours (as far as the read grid goes: none past a grid's
    edge), for the kernels that look past its edges (grown clouds, distance to clouds), and cropped. Read so,
    a pixel is read (1 + 2 margin / chunk)² times; overlapping the chunks of one lazy cube instead
    (`dask.array.map_overlap`) reads each neighbouring chunk whole, every time a block is computed.
    """

    scenes: list[pystac.Item]
    sensor: str
    read_grid: GeoBox
    halo: int
    day_lon: float  # the solar days of the whole grid (`sources.load_optical`)
    settings: Settings | None  # the lake's: S3 configuration of s3:// scenes, chunk size (None: defaults)

    @property
    def shape(self) -> tuple[int, int]:
        return self.read_grid.height - 2 * self.halo, self.read_grid.width - 2 * self.halo

    @property
    def chunks(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        ys, xs = da.core.normalize_chunks((self.settings or defaults()).chunk_px, self.shape)
        return ys, xs

    def map(self, kernel: Callable[[xr.Dataset], np.ndarray], bands: int, margin: int) -> da.Array:
        """The lazy (bands, y, x) array whose block (rows, cols) is `kernel` of the scenes read over the
        block grown by `margin`, cropped to the block."""
        name = f"optical-composite-{uuid.uuid4().hex}"
        ys, xs = self.chunks
        y_edges, x_edges = np.cumsum((0, *ys)).tolist(), np.cumsum((0, *xs)).tolist()
        graph = {
            (name, 0, i, j): (self._block, kernel, slice(y0, y1), slice(x0, x1), margin)
            for i, (y0, y1) in enumerate(itertools.pairwise(y_edges))
            for j, (x0, x1) in enumerate(itertools.pairwise(x_edges))
        }
        return da.Array(graph, name, chunks=((bands,), ys, xs), dtype=np.uint16)

    def _block(
        self, kernel: Callable[[xr.Dataset], np.ndarray], rows: slice, cols: slice, margin: int
    ) -> np.ndarray:
        h, grid = self.halo, self.read_grid
        y0, y1 = max(rows.start + h - margin, 0), min(rows.stop + h + margin, grid.height)
        x0, x1 = max(cols.start + h - margin, 0), min(cols.stop + h + margin, grid.width)
        scenes = sources.load_optical(
            self.scenes,
            sensor=self.sensor,
            geobox=grid[y0:y1, x0:x1],
            chunks=max(y1 - y0, x1 - x0),
            day_lon=self.day_lon,
            settings=self.settings,
        ).compute(scheduler="synchronous")  # this block's reads, one after the other, on this thread
        out = kernel(scenes)
        return out[:, rows.start + h - y0 : rows.stop + h - y0, cols.start + h - x0 : cols.stop + h - x0]


@dataclass(frozen=True)
class _Compositor:
    """Composites one block of a period's scenes (loaded, `margin` pixels of its neighbours around it) into the
    (bands + 2, y, x) uint16 stack of `OpticalPreprocessing._composite`."""

    method: str
    nodata: int
    scales: np.ndarray  # of the source DN, per band
    offsets: np.ndarray
    doy: np.ndarray  # BAP: day of year of each date
    target_doy: int  # BAP: the period's middle day
    blue: int  # BAP: index of the blue band (haze)
    bands: tuple[str, ...]
    sensor: str
    snow: bool
    dilate_px: int

    def __call__(self, scenes: xr.Dataset) -> np.ndarray:
        data = np.stack([scenes[b].values for b in self.bands], axis=1)  # (t, band, y, x)
        if data.shape[0] != self.doy.size:  # pragma: no cover - the grid's solar days, see `_Blocks`
            raise ProcessorError(f"a block has {data.shape[0]} dates, its period {self.doy.size}")
        invalid = _invalid(
            scenes["qa"].values,
            data[:, 0],
            sensor=self.sensor,
            snow=self.snow,
            dilate_px=self.dilate_px,
            nodata=self.nodata,
        )
        one_period = np.zeros(data.shape[0], np.int64)
        if self.method == "median":
            comp, count = optical.composite_median(data, invalid, one_period, 1, nodata=self.nodata)
        else:
            comp, count, _score = optical.composite_bap(
                data,
                invalid,
                one_period,
                1,
                self.doy,
                np.array([self.target_doy]),
                nodata=self.nodata,
                blue_band=self.blue,
                haze_dn=(HAZE_REFLECTANCE - self.offsets[self.blue]) / self.scales[self.blue],
                cloud_distance_px=CLOUD_DISTANCE_PX,
                cloud_score=optical.cloud_distance_score(invalid, CLOUD_DISTANCE_PX),
            )
        refl = _to_reflectance_dn(comp[0], self.scales, self.offsets, self.nodata)
        seen = (data[:, 0] != self.nodata).sum(axis=0, dtype=np.uint16)
        return np.concatenate([refl, count, seen[np.newaxis]])


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

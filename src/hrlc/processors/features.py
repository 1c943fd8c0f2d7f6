"""Features processor (spec §3.2.1 "Feature Stacks"): the year's optical composites -> one NetCDF feature stack.

Reads the 12 monthly (Sentinel-2) or 4 seasonal (Landsat) composites of a year through their STAC items,
adds spectral indices (NDVI, NDWI, MNDWI, NDBI, NBR...), gap-fills periods without a clear observation by
interpolation along the year, and writes `features/{year}/features_optical_{sensor}_{year}.nc` (CF-1.8).

Memory (issue 13): the stack is made block by block, square blocks of the lake's `settings.chunk_px` (a multiple
of the NetCDF chunk, `block_px`): each block of every composite is read (rasterio windows), its features made one
variable at a time (`chain.features.feature_variables`) and written into the NetCDF as they come
(`products.netcdf.feature_stack_writer`: whole chunks compressed on all cores, written directly). Peak memory
grows with the block size and the number of periods (one block of the composites, float32, plus a few
variables), not with the grid.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import pystac
import rasterio
import xarray as xr
from affine import Affine
from pydantic import Field, model_validator
from rasterio.windows import Window
from shapely.geometry import mapping
from shapely.geometry import shape as shape_of

from hrlc.catalog.items import PROJECTION_EXT, file_item
from hrlc.chain import features as chain_features
from hrlc.lake import layout
from hrlc.lake.identity import ProductId, config_hash
from hrlc.periods import period_range, periods_of
from hrlc.processors.base import Context, Params, Processor, ProcessorError, config_param, space_param
from hrlc.products.netcdf import CHUNK_PX, feature_stack_writer

if TYPE_CHECKING:
    from hrlc.ancillary.service import Layer

_ALL = slice(None)


class FeaturesParams(Params):
    year: int = Field(ge=1982, le=2100)
    sensor: Literal["sentinel2", "landsat"]
    ancillary: list[Literal["dem"]] = Field(
        default_factory=list,
        description="Ancillary layers added to the stack on its grid: 'dem' -> `elevation` (m) and `slope` "
        "(degrees) from the Copernicus DEM (hrlc.ancillary). Default none.",
    )
    space: str | None = space_param("the composites and of the stack")
    composites: str | None = config_param("the composites (optical-preprocessing's identity)")

    @model_validator(mode="after")
    def _both_or_neither(self) -> FeaturesParams:
        if (self.space is None) != (self.composites is None):
            raise ValueError("give both space and composites (the composites' identity) or neither")
        return self

    def inputs_id(self) -> ProductId | None:
        return (
            None if self.space is None or self.composites is None else ProductId(self.space, self.composites)
        )


def composite_items(
    ctx: Context, sensor: str, year: int, ident: ProductId | None = None
) -> list[pystac.Item]:
    """The optical composite items of a year (of identity `ident`), in period order; ProcessorError naming
    what is missing."""
    found, missing = [], []
    for period in periods_of(sensor):
        fields = ident.fields() if ident is not None else {}
        key = layout.key("optical-composite", sensor=sensor, year=year, period=period, **fields)
        item_key = layout.item_key(key)
        if not ctx.store.exists(item_key):
            missing.append(period)
            continue
        found.append(ctx.catalog.get_href(ctx.store.href(item_key)))
    if missing:
        raise ProcessorError(
            f"optical composites of {sensor} {year} missing for periods {missing}: run optical-preprocessing first"
        )
    return found


DEFAULT_BLOCK_PX = 1024  # blocks of a lake opened without settings: the default of `Settings.chunk_px`
WRITER_PENDING = 2  # variables whose chunks are being compressed: compression overlaps the next variables


def block_px(chunk_px: int) -> int:
    """The side of the square blocks the stack is computed and written in: `chunk_px` (the lake's
    `settings.chunk_px`) rounded down to a multiple of the NetCDF chunk (`netcdf.CHUNK_PX`, 512 px), so every
    block writes whole chunks; a smaller `chunk_px` as it is (chunks then take several blocks: correct, slower)."""
    if chunk_px < 1:
        raise ValueError(f"chunk_px must be positive, got {chunk_px}")
    return chunk_px if chunk_px < CHUNK_PX else chunk_px // CHUNK_PX * CHUNK_PX


def blocks(height: int, width: int, size: int) -> list[tuple[slice, slice]]:
    """The (rows, cols) windows of side `size` that tile a `height` x `width` grid, row by row."""
    return [
        (slice(r, min(r + size, height)), slice(c, min(c + size, width)))
        for r in range(0, height, size)
        for c in range(0, width, size)
    ]


class Composites:
    """The composite COGs of a year: their common grid, and any window of them as a Dataset.

    Used inside the store's `raster_env` (hrefs may be s3://). Each read opens the COGs again, so GDAL's block
    cache never holds more than the window of one COG (it would otherwise keep every tile read, up to
    GDAL_CACHEMAX: 5 % of the machine's memory, more than the composites of a small AOI)."""

    def __init__(self, items: Sequence[pystac.Item]):
        self._hrefs = [it.assets["data"].href for it in items]
        self.periods = [str(it.properties["hrlc:period"]) for it in items]
        grids = []
        for href in self._hrefs:
            with rasterio.open(href) as src:
                grids.append((src.crs, src.transform, src.shape))
        crs, transform, shape = grids[0]
        for it, grid in zip(items, grids, strict=True):
            if grid != grids[0]:
                raise ProcessorError(
                    f"composite {it.id} is not on the grid of {items[0].id}: {grid[2]} px, {grid[1]}"
                )
        self.crs = str(crs)
        self.geographic = bool(crs is not None and crs.is_geographic)
        self.transform: Affine = transform
        self.height, self.width = int(shape[0]), int(shape[1])

    def read(self, rows: slice = _ALL, cols: slice = _ALL) -> xr.Dataset:
        """The window `rows`, `cols` as float32 reflectance ``(period, y, x)`` per band (named by the COG's
        band descriptions; the bands of the first composite), NaN = no clear observation; pixel-centre
        ``y``/``x`` coordinates. Memory: the window's Dataset and one composite's window of uint16."""
        r = range(*rows.indices(self.height))
        c = range(*cols.indices(self.width))
        window = Window(c.start, r.start, len(c), len(r))
        layers: dict[str, np.ndarray] = {}
        for p, href in enumerate(self._hrefs):
            with rasterio.open(href) as src:
                data = src.read(window=window)
                names, scales, nodata = src.descriptions, src.scales, src.nodata
            for b, name in enumerate(names):
                if p == 0:
                    layers[str(name)] = np.empty((len(self._hrefs), len(r), len(c)), np.float32)
                arr = layers[str(name)][p]
                np.multiply(data[b], np.float32(scales[b]), out=arr, dtype=np.float32)
                arr[data[b] == nodata] = np.nan
        t = self.transform
        return xr.Dataset(
            {name: (("period", "y", "x"), arr) for name, arr in layers.items()},
            coords={
                "period": self.periods,
                "y": t.f + t.e * (np.arange(r.start, r.stop) + 0.5),
                "x": t.c + t.a * (np.arange(c.start, c.stop) + 0.5),
            },
        )


class DemFeatures:
    """`elevation` (m) and `slope` (degrees, Horn's 3x3 method) of a DEM raster on the stack's grid, by window;
    both ``(y, x)`` float32. A window's slope is computed with one pixel of its neighbours, so the windows join
    into the slope of the whole grid. Each read opens the raster again (see `Composites`)."""

    def __init__(self, path: str, grid: Composites):
        self._path = path
        self._transform = grid.transform
        self._geographic = grid.geographic
        self.height, self.width = grid.height, grid.width

    @staticmethod
    def attrs() -> dict[str, dict[str, str]]:
        return {
            "elevation": {
                "long_name": "surface altitude above the EGM2008 geoid (Copernicus DEM GLO-30, bilinear)",
                "standard_name": "surface_altitude",
                "units": "m",
                "grid_mapping": chain_features.GRID_MAPPING,
            },
            "slope": {
                "long_name": "terrain slope (Horn 3x3, from the elevation)",
                "units": "degree",
                "grid_mapping": chain_features.GRID_MAPPING,
            },
        }

    def read(self, rows: slice = _ALL, cols: slice = _ALL) -> dict[str, xr.DataArray]:
        from hrlc.chain.terrain import pixel_size_m, slope_degrees

        r = range(*rows.indices(self.height))
        c = range(*cols.indices(self.width))
        r0, r1 = (
            max(r.start - 1, 0),
            min(r.stop + 1, self.height),
        )  # one pixel of the neighbours for the slope
        c0, c1 = max(c.start - 1, 0), min(c.stop + 1, self.width)
        with rasterio.open(self._path) as src:
            elev = src.read(1, window=Window(c0, r0, c1 - c0, r1 - r0)).astype(np.float32)
        a = self._transform
        lat = a.f + a.e * (np.arange(r0, r1) + 0.5) if self._geographic else None
        dx, dy = pixel_size_m(a.a, a.e, geographic=self._geographic, lat=lat)
        slope = slope_degrees(elev, dx, dy)
        inner = (slice(r.start - r0, r.stop - r0), slice(c.start - c0, c.stop - c0))
        attrs = self.attrs()
        return {
            "elevation": xr.DataArray(elev[inner], dims=("y", "x"), attrs=attrs["elevation"]),
            "slope": xr.DataArray(slope[inner], dims=("y", "x"), attrs=attrs["slope"]),
        }


def ancillary_layers(names: Sequence[str], grid: Composites, ctx: Context) -> list[Layer]:
    """The ancillary layers of `names` on the composites' grid, retrieved (or found in the lake cache) through
    `ctx.ancillary`; ProcessorError in one line when they cannot be had. "dem": the Copernicus DEM, bilinear."""
    from odc.geo.geobox import GeoBox

    from hrlc.ancillary.errors import AncillaryError

    gbox = GeoBox((grid.height, grid.width), grid.transform, grid.crs)
    layers = []
    for name in names:
        if name != "dem":  # pragma: no cover - Params allow only "dem"
            raise ProcessorError(f"unknown ancillary feature {name!r}")
        if ctx.ancillary is None:
            raise ProcessorError(
                "ancillary DEM: no ancillary data where this task runs (it needs the platform extra and the "
                "ancillary database)"
            )
        try:
            layer = ctx.ancillary.get("copernicus-dem", geobox=gbox)
        except AncillaryError as e:
            raise ProcessorError(f"ancillary DEM: {e}") from None
        if tuple(layer.shape) != (grid.height, grid.width):
            raise ProcessorError(f"ancillary DEM: {layer.shape} px, not on the stack's grid")
        layers.append(layer)
    return layers


@contextlib.contextmanager
def open_dem(layer: Layer, grid: Composites) -> Iterator[DemFeatures]:
    """The DEM features of an ancillary DEM `layer` on `grid` (from :func:`ancillary_layers`), readable until
    the block ends."""
    with layer.store.reading(layer.key) as path:
        yield DemFeatures(path, grid)


class Features(Processor[FeaturesParams]):
    name = "features"
    version = "0.2.0"  # 0.2: float features kept to 12 significant bits (products.netcdf.KEEP_BITS)
    Params = FeaturesParams

    def identity(self, params: FeaturesParams) -> ProductId | None:
        """The stack's identity: the composites' space, and a config over its own parameters and the
        composites' config. None when the composites have none (the spec's exact keys)."""
        inputs = params.inputs_id()
        if inputs is None:
            return None
        pixels = params.model_dump(mode="json", exclude={"space"})
        return ProductId(inputs.space, config_hash(self.name, self.version, pixels))

    def outputs(self, params: FeaturesParams) -> list[str]:
        ident = self.identity(params)
        fields = ident.fields() if ident is not None else {}
        return [layout.key("features", stack=f"optical_{params.sensor}", year=params.year, **fields)]

    def run(self, params: FeaturesParams, ctx: Context) -> list[str]:
        """Block by block (`block_px` of the lake's `chunk_px`): each block of every composite is read, its
        features made (`chain.features.feature_variables`) and written into the NetCDF one variable at a time,
        so memory holds one block of the composites and a few of its variables whatever the grid's size."""
        items = composite_items(ctx, params.sensor, params.year, params.inputs_id())
        settings = ctx.store.settings
        size = block_px(settings.chunk_px if settings is not None else DEFAULT_BLOCK_PX)
        key = self.outputs(params)[0]
        ctx.progress(0.05, "opening composites")
        with contextlib.ExitStack() as stack:
            # composites may be s3:// hrefs: /vsis3/ with the lake's settings
            stack.enter_context(ctx.store.raster_env())
            composites = Composites(items)
            crs, transform = composites.crs, composites.transform
            ancillary_inputs: list[str] = []
            dems: list[DemFeatures] = []
            if params.ancillary:
                ctx.progress(0.1, "ancillary layers")
                for layer in ancillary_layers(params.ancillary, composites, ctx):
                    dems.append(stack.enter_context(open_dem(layer, composites)))
                    ancillary_inputs.append(layer.item_id)
            # the stack of one pixel: the variables, their order and attributes, before any block is made
            like = chain_features.feature_stack(composites.read(slice(0, 1), slice(0, 1)))
            for dem in dems:
                for name, attrs in dem.attrs().items():
                    like[name] = xr.DataArray(np.zeros((1, 1), np.float32), dims=("y", "x"), attrs=attrs)
            tmp = stack.enter_context(ctx.store.writing(key))
            writer = stack.enter_context(
                feature_stack_writer(
                    tmp,
                    like,
                    height=composites.height,
                    width=composites.width,
                    crs=crs,
                    transform=transform,
                    year=params.year,
                    pending=WRITER_PENDING,
                    attrs={
                        "title": f"hrlc optical feature stack, {params.sensor} {params.year}",
                        "source": ", ".join(it.id for it in items),
                        "hrlc_processor": f"{self.name} {self.version}",
                    },
                )
            )
            windows = blocks(composites.height, composites.width, size)
            for i, (rows, cols) in enumerate(windows):
                ctx.check_cancelled()
                ctx.progress(0.1 + 0.9 * i / len(windows), f"block {i + 1}/{len(windows)} ({size} px)")
                for name, da in chain_features.feature_variables(composites.read(rows, cols)):
                    writer.write_variable(name, da, rows, cols)
                for dem in dems:
                    for name, da in dem.read(rows, cols).items():
                        writer.write_variable(name, da, rows, cols)
            shape = [composites.height, composites.width]
            periods = composites.periods
        start, end = period_range(params.year, "annual")
        geom = shape_of(items[0].geometry)
        item = file_item(
            ctx.store,
            key,
            geometry=mapping(geom),
            bbox=list(geom.bounds),
            start=start,
            end=end,
            processor=self.name,
            processor_version=self.version,
            media_type="application/netcdf",
            inputs=[it.id for it in items] + ancillary_inputs,
            properties={
                "hrlc:features": sorted(str(v) for v in like.data_vars),
                "hrlc:periods": periods,
                "proj:code": crs if crs.startswith("EPSG:") else None,
                "proj:shape": shape,
                "proj:transform": list(transform)[:6],
            },
        )
        item.stac_extensions.append(PROJECTION_EXT)
        ctx.progress(1.0, "done")
        return [ctx.register(item)]

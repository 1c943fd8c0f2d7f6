"""Features processor (spec §3.2.1 "Feature Stacks"): the year's optical composites -> one NetCDF feature stack.

Reads the 12 monthly (Sentinel-2) or 4 seasonal (Landsat) composites of a year through their STAC items,
adds spectral indices (NDVI, NDWI, MNDWI, NDBI, NBR...), gap-fills periods without a clear observation by
interpolation along the year, and writes `features/{year}/features_optical_{sensor}_{year}.nc` (CF-1.8).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pystac
import rasterio
import xarray as xr
from pydantic import Field, model_validator
from shapely.geometry import mapping, shape

from hrlc.catalog.items import file_item
from hrlc.chain import features as chain_features
from hrlc.lake import layout
from hrlc.lake.identity import ProductId, config_hash
from hrlc.periods import period_range, periods_of
from hrlc.processors.base import Context, Params, Processor, ProcessorError, config_param, space_param
from hrlc.products.netcdf import write_feature_stack


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


def read_composites(items: list[pystac.Item]) -> tuple[xr.Dataset, str, object]:
    """Composite COGs -> Dataset of float32 reflectance (period, y, x) per band, NaN = no clear observation."""
    layers: dict[str, list[np.ndarray]] = {}
    crs = transform = None
    for it in items:
        with rasterio.open(it.assets["data"].href) as src:
            data = src.read()
            names = list(src.descriptions)
            scales = src.scales
            nodata = src.nodata
            crs, transform = src.crs, src.transform
            height, width = src.height, src.width
        for b, name in enumerate(names):
            arr = data[b].astype(np.float32) * np.float32(scales[b])
            arr[data[b] == nodata] = np.nan
            layers.setdefault(name, []).append(arr)
    periods = [it.properties["hrlc:period"] for it in items]
    assert transform is not None
    xs = transform.c + transform.a * (np.arange(width) + 0.5)
    ys = transform.f + transform.e * (np.arange(height) + 0.5)
    ds = xr.Dataset(
        {name: (("period", "y", "x"), np.stack(arrs)) for name, arrs in layers.items()},
        coords={"period": periods, "y": ys, "x": xs},
    )
    return ds, str(crs), transform


def add_ancillary(
    stack: xr.Dataset, names: Sequence[str], crs: str, transform: object, ctx: Context
) -> tuple[xr.Dataset, list[str]]:
    """The stack with the ancillary features of `names` on its own grid, and the ids of the layers' items.

    "dem": the Copernicus DEM retrieved (or read from the lake cache) through `ctx.ancillary` on the stack's
    grid, bilinear, as `elevation` (m) and its `slope` (degrees, Horn's 3x3 method), both ``(y, x)`` float32."""
    from odc.geo.geobox import GeoBox

    from hrlc.ancillary.errors import AncillaryError
    from hrlc.chain.terrain import pixel_size_m, slope_degrees

    out = stack.copy()
    inputs: list[str] = []
    gbox = GeoBox((int(stack.sizes["y"]), int(stack.sizes["x"])), transform, crs)  # type: ignore[arg-type]
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
        elev = layer.read().values.astype(np.float32)
        a = gbox.affine
        geographic = gbox.crs is not None and gbox.crs.geographic
        lat = a.f + a.e * (np.arange(elev.shape[0]) + 0.5) if geographic else None
        dx, dy = pixel_size_m(a.a, a.e, geographic=bool(geographic), lat=lat)
        dims, coords = ("y", "x"), {"y": stack["y"], "x": stack["x"]}
        out["elevation"] = xr.DataArray(
            elev,
            dims=dims,
            coords=coords,
            attrs={
                "long_name": "surface altitude above the EGM2008 geoid (Copernicus DEM GLO-30, bilinear)",
                "standard_name": "surface_altitude",
                "units": "m",
                "grid_mapping": chain_features.GRID_MAPPING,
            },
        )
        out["slope"] = xr.DataArray(
            slope_degrees(elev, dx, dy),
            dims=dims,
            coords=coords,
            attrs={
                "long_name": "terrain slope (Horn 3x3, from the elevation)",
                "units": "degree",
                "grid_mapping": chain_features.GRID_MAPPING,
            },
        )
        inputs.append(layer.item_id)
    return out, inputs


class Features(Processor[FeaturesParams]):
    name = "features"
    version = "0.1.0"
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
        items = composite_items(ctx, params.sensor, params.year, params.inputs_id())
        ctx.progress(0.1, "reading composites")
        with ctx.store.raster_env():  # composites may be s3:// hrefs: /vsis3/ with the lake's settings
            composite, crs, transform = read_composites(items)
        ctx.check_cancelled()
        ctx.progress(0.4, "indices and gap filling")
        stack = chain_features.feature_stack(composite)
        ancillary_inputs: list[str] = []
        if params.ancillary:
            ctx.progress(0.6, "ancillary layers")
            stack, ancillary_inputs = add_ancillary(stack, params.ancillary, crs, transform, ctx)
        key = self.outputs(params)[0]
        ctx.progress(0.7, "writing NetCDF")
        with ctx.store.writing(key) as tmp:
            write_feature_stack(
                stack,
                tmp,
                crs=crs,
                transform=transform,  # type: ignore[arg-type]
                year=params.year,
                attrs={
                    "title": f"hrlc optical feature stack, {params.sensor} {params.year}",
                    "source": ", ".join(it.id for it in items),
                    "hrlc_processor": f"{self.name} {self.version}",
                },
            )
        start, end = period_range(params.year, "annual")
        geom = shape(items[0].geometry)
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
                "hrlc:features": sorted(stack.data_vars),
                "hrlc:periods": [str(p) for p in composite.period.values],
                "proj:code": crs if crs.startswith("EPSG:") else None,
                "proj:shape": [int(composite.sizes["y"]), int(composite.sizes["x"])],
                "proj:transform": list(transform)[:6],  # type: ignore[call-overload]
            },
        )
        item.stac_extensions.append("https://stac-extensions.github.io/projection/v2.0.0/schema.json")
        ctx.progress(1.0, "done")
        return [ctx.register(item)]

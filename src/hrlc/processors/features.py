"""Features processor (spec §3.2.1 "Feature Stacks"): the year's optical composites -> one NetCDF feature stack.

Reads the 12 monthly (Sentinel-2) or 4 seasonal (Landsat) composites of a year through their STAC items,
adds spectral indices (NDVI, NDWI, MNDWI, NDBI, NBR...), gap-fills periods without a clear observation by
interpolation along the year, and writes `features/{year}/features_optical_{sensor}_{year}.nc` (CF-1.8).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pystac
import rasterio
import xarray as xr
from pydantic import Field
from shapely.geometry import mapping, shape

from hrlc.catalog.items import COLLECTIONS, file_item, item_id, period_range
from hrlc.chain import features as chain_features
from hrlc.lake import layout
from hrlc.processors.base import Context, Params, Processor, ProcessorError
from hrlc.products.netcdf import write_feature_stack


class FeaturesParams(Params):
    year: int = Field(ge=1982, le=2100)
    sensor: Literal["sentinel2", "landsat"]


def composite_items(ctx: Context, sensor: str, year: int) -> list[pystac.Item]:
    """The optical composite items of a year, in period order; ProcessorError naming what is missing."""
    found, missing = [], []
    for period in layout.periods_of(sensor):
        key = layout.key("optical-composite", sensor=sensor, year=year, period=period)
        item_key = layout.key("stac-item", collection=COLLECTIONS["optical-composite"], item_id=item_id(key))
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


class Features(Processor[FeaturesParams]):
    name = "features"
    version = "0.1.0"
    Params = FeaturesParams

    def outputs(self, params: FeaturesParams) -> list[str]:
        return [layout.key("features", stack=f"optical_{params.sensor}", year=params.year)]

    def run(self, params: FeaturesParams, ctx: Context) -> list[str]:
        items = composite_items(ctx, params.sensor, params.year)
        ctx.progress(0.1, "reading composites")
        with ctx.store.raster_env():  # composites may be s3:// hrefs: /vsis3/ with the lake's settings
            composite, crs, transform = read_composites(items)
        ctx.check_cancelled()
        ctx.progress(0.4, "indices and gap filling")
        stack = chain_features.feature_stack(composite)
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
            inputs=[it.id for it in items],
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

"""STAC metadata of the synthetic repository, shaped like real Earth Search v1 and Planetary Computer items.

Why: the chain discovers its inputs through STAC. Items here carry the fields real consumers read
(datetime, platform, eo:cloud_cover, proj:epsg/shape/transform, eo:bands, raster:bands with scale,
offset and nodata, classification:bitfields of QA_PIXEL) with the extension URLs of the real items, so
code written against the synthetic catalogue works on Earth Search / Planetary Computer and back.

Differences from the real items: only the assets that are generated; every Sentinel-2 asset is on the
10 m grid (`gsd` keeps the native 10/20 m, `raster:bands.spatial_resolution` says 10); the USGS
`landsat` extension URL is not declared (its schema is not available offline) although `landsat:*`
properties are kept; a `hrlc:synthetic` flag marks every item.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pystac

from hrlc.sample.grid import Grid
from hrlc.sample.sensors import (
    LANDSAT_BAND_NUMBER,
    LANDSAT_OFFSET,
    LANDSAT_SCALE,
    LANDSAT_SPECS,
    MGRS_TILE,
    S2_SCALE,
    S2_SPECS,
    WRS_PATH,
    WRS_ROW,
    Acquisition,
    sun_angles,
)

COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"

S2_EXTENSIONS = [
    "https://stac-extensions.github.io/processing/v1.1.0/schema.json",
    "https://stac-extensions.github.io/grid/v1.0.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "https://stac-extensions.github.io/view/v1.0.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/mgrs/v1.0.0/schema.json",
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
]
LANDSAT_EXTENSIONS = [
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "https://stac-extensions.github.io/eo/v1.0.0/schema.json",
    "https://stac-extensions.github.io/view/v1.0.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/classification/v1.0.0/schema.json",
    "https://stac-extensions.github.io/scientific/v1.0.0/schema.json",
]
S2_LICENSE = "https://sentinel.esa.int/documents/247904/690755/Sentinel_Data_Legal_Notice"
LANDSAT_DOI = "10.5066/P9OGBGM6"


def _ts(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _transform_list(grid: Grid, landsat: bool = False) -> list[float]:
    t = grid.landsat_transform if landsat else grid.transform
    return [t.a, t.b, t.c, t.d, t.e, t.f]


def s2_item(acq: Acquisition, stats: dict[str, float], grid: Grid, folder: Path, version: str) -> pystac.Item:
    """The STAC item of a Sentinel-2 L2A acquisition whose COGs (B02.tif ... SCL.tif) are in `folder`."""
    az, el = sun_angles(acq)
    gen_time = acq.datetime + dt.timedelta(hours=2, minutes=17)
    sat = acq.platform[-1].upper()
    stamp = f"{acq.datetime:%Y%m%dT%H%M%S}"
    props: dict[str, object] = {
        "created": _ts(acq.datetime + dt.timedelta(days=1)),
        "platform": acq.platform,
        "constellation": "sentinel-2",
        "instruments": ["msi"],
        "eo:cloud_cover": stats["eo:cloud_cover"],
        "proj:epsg": grid.epsg,
        "mgrs:utm_zone": int(MGRS_TILE[:2]),
        "mgrs:latitude_band": MGRS_TILE[2],
        "mgrs:grid_square": MGRS_TILE[3:],
        "grid:code": f"MGRS-{MGRS_TILE}",
        "view:sun_azimuth": round(az, 6),
        "view:sun_elevation": round(el, 6),
        **{k: v for k, v in stats.items() if k.startswith("s2:")},
        "s2:degraded_msi_data_percentage": 0.0,
        "s2:product_type": "S2MSI2A",
        "s2:processing_baseline": "03.00",
        "s2:product_uri": f"S2{sat}_MSIL2A_{stamp}_N0300_R122_T{MGRS_TILE}_{gen_time:%Y%m%dT%H%M%S}.SAFE",
        "s2:generation_time": _ts(gen_time),
        "s2:datatake_id": f"GS2{sat}_{stamp}_{acq.index:06d}_N03.00",
        "s2:datatake_type": "INS-NOBS",
        "s2:reflectance_conversion_factor": 1.0,
        "s2:sequence": "0",
        "earthsearch:boa_offset_applied": False,
        "processing:software": {"hrlc.sample": version},
        "updated": _ts(acq.datetime + dt.timedelta(days=1)),
        "hrlc:synthetic": True,
    }
    item = pystac.Item(
        id=acq.item_id,
        geometry=grid.footprint(),
        bbox=list(grid.bbox()),
        datetime=acq.datetime,
        properties=props,
        stac_extensions=list(S2_EXTENSIONS),
        collection="sentinel-2-l2a",
    )
    item.add_link(pystac.Link("license", S2_LICENSE))
    shape = [grid.size, grid.size]
    transform = _transform_list(grid)
    for spec in S2_SPECS:
        item.add_asset(
            spec.key,
            pystac.Asset(
                href=str(folder / spec.file),
                media_type=COG_TYPE,
                title=f"{spec.title} - {spec.native_gsd}m"
                + (" (on the 10m grid)" if spec.native_gsd != 10 else ""),
                roles=["data", "reflectance"],
                extra_fields={
                    "eo:bands": [
                        {
                            "name": spec.key,
                            "common_name": spec.common_name,
                            "description": spec.title,
                            "center_wavelength": spec.wavelength,
                            "full_width_half_max": spec.fwhm,
                        }
                    ],
                    "gsd": spec.native_gsd,
                    "proj:shape": shape,
                    "proj:transform": transform,
                    "raster:bands": [
                        {
                            "nodata": 0,
                            "data_type": "uint16",
                            "bits_per_sample": 15,
                            "spatial_resolution": grid.pixel,
                            "scale": S2_SCALE,
                            "offset": 0,
                        }
                    ],
                },
            ),
        )
    item.add_asset(
        "scl",
        pystac.Asset(
            href=str(folder / "SCL.tif"),
            media_type=COG_TYPE,
            title="Scene classification map (SCL)",
            roles=["data", "reflectance"],
            extra_fields={
                "proj:shape": shape,
                "proj:transform": transform,
                "raster:bands": [{"nodata": 0, "data_type": "uint8", "spatial_resolution": grid.pixel}],
            },
        ),
    )
    return item


def landsat_file(acq: Acquisition, band: str) -> str:
    """File name of a Landsat asset, as USGS names them (processing date 1 day after acquisition)."""
    processed = acq.datetime + dt.timedelta(days=1)
    parts = acq.item_id.split("_")
    stem = "_".join([*parts[:4], f"{processed:%Y%m%d}", *parts[4:]])
    return f"{stem}_{band}.TIF"


def landsat_band_file(acq: Acquisition, key: str) -> str:
    if key == "qa_pixel":
        return landsat_file(acq, "QA_PIXEL")
    return landsat_file(acq, f"SR_B{LANDSAT_BAND_NUMBER[acq.instrument][key]}")


def _qa_bitfields(oli: bool) -> list[dict[str, object]]:
    def flag(
        name: str, offset: int, desc: str, no: tuple[str, str], yes: tuple[str, str]
    ) -> dict[str, object]:
        return {
            "name": name,
            "length": 1,
            "offset": offset,
            "classes": [
                {"name": no[0], "value": 0, "description": no[1]},
                {"name": yes[0], "value": 1, "description": yes[1]},
            ],
            "description": desc,
        }

    def conf(name: str, offset: int, what: str) -> dict[str, object]:
        return {
            "name": f"{name}_confidence",
            "length": 2,
            "offset": offset,
            "classes": [
                {"name": "not_set", "value": 0, "description": "No confidence level set"},
                {"name": "low", "value": 1, "description": f"Low confidence {what}"},
                {"name": "medium" if name == "cloud" else "reserved", "value": 2,
                 "description": f"Medium confidence {what}" if name == "cloud"
                 else "Reserved - value not used"},
                {"name": "high", "value": 3, "description": f"High confidence {what}"},
            ],
            "description": f"{what.capitalize()} confidence levels",
        }  # fmt: skip

    fields = [
        flag("fill", 0, "Image or fill data", ("not_fill", "Image data"), ("fill", "Fill data")),
        flag("dilated_cloud", 1, "Dilated cloud", ("not_dilated", "Cloud is not dilated or no cloud"),
             ("dilated", "Cloud dilation")),
        flag("cirrus", 2, "Cirrus mask", ("not_cirrus", "Cirrus confidence is not high"),
             ("cirrus", "High confidence cirrus")),
        flag("cloud", 3, "Cloud mask", ("not_cloud", "Cloud confidence is not high"),
             ("cloud", "High confidence cloud")),
        flag("cloud_shadow", 4, "Cloud shadow mask", ("not_shadow", "Cloud shadow confidence is not high"),
             ("shadow", "High confidence cloud shadow")),
        flag("snow", 5, "Snow/Ice mask", ("not_snow", "Snow/Ice confidence is not high"),
             ("snow", "High confidence snow cover")),
        flag("clear", 6, "Clear mask", ("not_clear", "Cloud or dilated cloud bits are set"),
             ("clear", "Cloud and dilated cloud bits are not set")),
        flag("water", 7, "Water mask", ("not_water", "Land or cloud"), ("water", "Water")),
        conf("cloud", 8, "cloud"),
        conf("cloud_shadow", 10, "cloud shadow"),
        conf("snow", 12, "snow/ice"),
        conf("cirrus", 14, "cirrus"),
    ]  # fmt: skip
    if not oli:  # ETM+ has no cirrus band
        fields = [f for f in fields if not str(f["name"]).startswith("cirrus")]
    return fields


def landsat_item(acq: Acquisition, stats: dict[str, float], grid: Grid, folder: Path) -> pystac.Item:
    """The STAC item of a Landsat C2 L2 acquisition whose COGs are in `folder`."""
    az, el = sun_angles(acq)
    oli = acq.instrument == "oli"
    m = grid.landsat_size
    sensor = "C" if oli else "E"
    props: dict[str, object] = {
        "gsd": 30,
        "created": _ts(acq.datetime + dt.timedelta(days=2)),
        "sci:doi": LANDSAT_DOI,
        "platform": acq.platform,
        "proj:epsg": grid.epsg,
        "proj:shape": [m, m],
        "description": "Landsat Collection 2 Level-2",
        "instruments": ["oli", "tirs"] if oli else ["etm+"],
        "eo:cloud_cover": stats["eo:cloud_cover"],
        "proj:transform": _transform_list(grid, landsat=True),
        "view:off_nadir": 0,
        "landsat:wrs_row": f"{WRS_ROW:03d}",
        "landsat:scene_id": f"L{sensor}{8 if oli else 7}{WRS_PATH:03d}{WRS_ROW:03d}{acq.datetime:%Y}"
        f"{acq.doy:03d}LGN00",
        "landsat:wrs_path": f"{WRS_PATH:03d}",
        "landsat:wrs_type": "2",
        "view:sun_azimuth": round(az, 8),
        "landsat:correction": "L2SP",
        "view:sun_elevation": round(el, 8),
        "landsat:cloud_cover_land": stats["landsat:cloud_cover_land"],
        "landsat:collection_number": "02",
        "landsat:collection_category": "T1",
        "hrlc:synthetic": True,
    }
    item = pystac.Item(
        id=acq.item_id,
        geometry=grid.footprint(landsat=True),
        bbox=list(grid.bbox(landsat=True)),
        datetime=acq.datetime,
        properties=props,
        stac_extensions=list(LANDSAT_EXTENSIONS),
        collection="landsat-c2-l2",
    )
    item.add_link(
        pystac.Link("cite-as", f"https://doi.org/{LANDSAT_DOI}", title="Landsat Collection 2 Level-2")
    )
    instrument = acq.instrument
    for spec in LANDSAT_SPECS:
        number = LANDSAT_BAND_NUMBER[instrument][spec.key]
        item.add_asset(
            spec.key,
            pystac.Asset(
                href=str(folder / landsat_band_file(acq, spec.key)),
                media_type=COG_TYPE,
                title=spec.title,
                description=f"Collection 2 Level-2 {spec.title} (SR_B{number}) Surface Reflectance",
                roles=["data", "reflectance"],
                extra_fields={
                    "eo:bands": [
                        {
                            "name": spec.name[instrument],
                            "center_wavelength": spec.wavelength[instrument],
                            "full_width_half_max": spec.fwhm[instrument],
                            "common_name": spec.key,
                            "description": spec.description,
                        }
                    ],
                    "raster:bands": [
                        {
                            "scale": LANDSAT_SCALE,
                            "nodata": 0,
                            "offset": LANDSAT_OFFSET,
                            "data_type": "uint16",
                            "spatial_resolution": 30,
                        }
                    ],
                },
            ),
        )
    item.add_asset(
        "qa_pixel",
        pystac.Asset(
            href=str(folder / landsat_band_file(acq, "qa_pixel")),
            media_type=COG_TYPE,
            title="Pixel Quality Assessment Band",
            description="Collection 2 Level-1 Pixel Quality Assessment Band (QA_PIXEL)",
            roles=["cloud", "cloud-shadow", "snow-ice", "water-mask"],
            extra_fields={
                "classification:bitfields": _qa_bitfields(oli),
                "raster:bands": [
                    {"unit": "bit index", "nodata": 1, "data_type": "uint16", "spatial_resolution": 30}
                ],
            },
        ),
    )
    return item


def collection(collection_id: str, items: list[pystac.Item], grid: Grid) -> pystac.Collection:
    """A collection whose extent covers `items` (added to it)."""
    times = sorted(i.datetime for i in items if i.datetime is not None)
    s2 = collection_id == "sentinel-2-l2a"
    bbox = list(grid.bbox(landsat=not s2))
    coll = pystac.Collection(
        id=collection_id,
        title="Sentinel-2 Level-2A (synthetic)" if s2 else "Landsat Collection 2 Level-2 (synthetic)",
        description=(
            "Synthetic Sentinel-2 L2A scenes generated by hrlc.sample, shaped like Earth Search v1 "
            "sentinel-2-l2a (one COG per band, SCL scene classification)."
            if s2
            else "Synthetic Landsat 7 ETM+ / 8 OLI Collection 2 Level-2 scenes generated by hrlc.sample, "
            "shaped like the Planetary Computer landsat-c2-l2 collection (SR bands, QA_PIXEL)."
        ),
        extent=pystac.Extent(
            pystac.SpatialExtent([bbox]),
            pystac.TemporalExtent([[times[0] if times else None, times[-1] if times else None]]),
        ),
        license="proprietary",
        keywords=["synthetic", "hrlc", "sentinel-2" if s2 else "landsat"],
        providers=[pystac.Provider("hrlc.sample", roles=[pystac.ProviderRole.PRODUCER])],
        summaries=pystac.Summaries(
            {
                "platform": sorted({str(i.properties["platform"]) for i in items}),
                "constellation": ["sentinel-2"] if s2 else ["landsat"],
                "gsd": [10] if s2 else [30],
            }
        ),
    )
    coll.add_items(items)
    return coll


def catalog(root: Path, collections: list[pystac.Collection]) -> pystac.Catalog:
    """Assemble, normalise and save the self-contained catalogue root/catalog.json (relative asset hrefs)."""
    cat = pystac.Catalog(
        id="hrlc-sample",
        description="Synthetic external repository of hrlc: Sentinel-2 L2A and Landsat C2 L2 scenes over a "
        "seeded landscape with a known truth map.",
        title="hrlc synthetic sample repository",
    )
    for c in collections:
        cat.add_child(c)
    cat.normalize_hrefs(str(root))
    cat.make_all_asset_hrefs_relative()
    cat.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return cat

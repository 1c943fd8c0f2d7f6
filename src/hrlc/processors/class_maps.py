"""The map products of a trained classifier, shared by the processors that make them: the class probabilities
(one band per class, uint8 percent, `PROB_NODATA` = 255 where no feature is valid) and the class map (uint8
HRLC codes, the legend's colour table, nodata 0), both COGs written block by block (`products.cog.cog_blocks`),
and their STAC Items.

The class map's accuracy (`map_accuracy`): the model's validation report (`hrlc.processors.classification`:
held-out samples, spatially blocked or grouped) gives the error matrix, the map's class histogram (counted while
the map is written) the weight of each class, and Olofsson et al. 2014's estimators (`hrlc.chain.accuracy`) the
area-weighted overall, user's and producer's accuracies and class areas with 95 % confidence intervals. They are
written beside the map (`map-accuracy` JSON and `map-accuracy-plot` PNG), in its GeoTIFF tags and its STAC Item
(`map_accuracy_properties`); the model's own figures count samples and are labelled `hrlc:heldout_*`.

Three processors write them, all through `write_maps` and `map_items`, so their bytes agree wherever their
pixels do: the classification (an untiled AOI, predicted from its one feature stack), the prediction (one tile
of the product grid, predicted from the tile's stack) and the mosaic (the AOI, copied from the tiles' maps).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pystac
from odc.geo.geobox import GeoBox

from hrlc import legend
from hrlc.catalog.items import raster_item
from hrlc.chain import accuracy
from hrlc.chain import classification as clf
from hrlc.lake import layout
from hrlc.periods import period_range
from hrlc.processors.base import Context
from hrlc.products import quicklook, styles
from hrlc.products.cog import cog_blocks, provenance_tags

PROB_NODATA = 255

#: side (px) of the blocks read, predicted and written at once: the feature stack's NetCDF chunks (at most
#: 512 px) and the COG tiles, so a block decompresses each chunk it touches once and writes whole tiles
BLOCK_PX = 512


@dataclass(frozen=True)
class MapBlock:
    """One block of both maps: the output grid's `rows` and `cols`, the ``(n_classes, h, w)`` percent
    probabilities and the ``(h, w)`` class codes."""

    rows: slice
    cols: slice
    percent: np.ndarray
    codes: np.ndarray


def predicted(model: Any, classes: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(percent probabilities, class codes) of a ``(n_features, h, w)`` feature matrix; pixels without a
    valid feature get `PROB_NODATA` and code 0."""
    probs, _ = clf.predict_proba(model, matrix)
    percent = np.where(probs.sum(axis=0) > 0, np.rint(probs * 100), PROB_NODATA).astype(np.uint8)
    return percent, clf.class_map(probs, classes)


def blocks_of(rows: slice, cols: slice, block: int = BLOCK_PX) -> list[tuple[slice, slice]]:
    """(rows, cols) of the square blocks of side `block` covering a window, row by row from its corner."""
    return [
        (slice(r, min(rows.stop, r + block)), slice(c, min(cols.stop, c + block)))
        for r in range(rows.start, rows.stop, block)
        for c in range(cols.start, cols.stop, block)
    ]


#: the longer side of a class map's thumbnail, pixels
THUMBNAIL_PX = 512


def sidecar_keys(prob_key: str, map_key: str) -> tuple[str, str, str, str, str]:
    """The keys of what goes with a class map: its confidence COG (beside the probabilities), its category names
    (GDAL's `.tif.aux.xml`), its QGIS style (`.qml`), its SLD and its thumbnail (PNG)."""
    prob, cmap = layout.parse(prob_key).fields, layout.parse(map_key).fields
    return (
        layout.key("class-confidence", **prob),
        layout.key("class-map-categories", **cmap),
        layout.key("class-map-qml", **cmap),
        layout.key("class-map-sld", **cmap),
        layout.key("class-map-thumbnail", **cmap),
    )


def write_thumbnail(ctx: Context, map_key: str, thumbnail_key: str) -> None:
    """The class map's thumbnail: its overviews read at most `THUMBNAIL_PX` on the longer side (nearest)."""
    import rasterio
    from rasterio.enums import Resampling

    with ctx.store.reading(map_key) as path, rasterio.open(path) as src:
        scale = max(1.0, max(src.height, src.width) / THUMBNAIL_PX)
        shape = (max(1, round(src.height / scale)), max(1, round(src.width / scale)))
        codes = src.read(1, out_shape=shape, resampling=Resampling.nearest)
    with ctx.store.writing(thumbnail_key) as tmp:
        quicklook.write_thumbnail(Path(tmp), codes)


def write_maps(
    ctx: Context,
    prob_key: str,
    map_key: str,
    *,
    classes: np.ndarray,
    grid: GeoBox,
    blocks: Iterable[MapBlock],
    n_blocks: int,
    processor: str,
    validation: Mapping[str, Any] | None = None,
    progress: tuple[float, float] = (0.45, 0.95),
) -> dict[str, Any] | None:
    """Write the probabilities at `prob_key` and the class map at `map_key` on `grid` from `blocks` (which
    together cover the grid), and what goes with the map (`sidecar_keys`: the confidence, the probability of the
    mapped class in percent, nodata `PROB_NODATA`; category names; QGIS and SLD styles; a thumbnail), reporting
    progress from
    `progress[0]` to `progress[1]`. Every COG is tagged with its provenance (`processor`: name and version).

    With `validation` (the model's validation report), returns the map's accuracy (`map_accuracy`, weighted by
    the class histogram of the pixels written) and writes its headline figures into the class map's tags."""
    geo: dict[str, Any] = {
        "height": grid.height,
        "width": grid.width,
        "dtype": np.uint8,
        "crs": str(grid.crs),
        "transform": grid.transform,
    }
    first, last = progress
    conf_key, categories_key, qml_key, sld_key, thumbnail_key = sidecar_keys(prob_key, map_key)
    provenance = provenance_tags(processor)
    with (
        cog_blocks(
            ctx.store,
            prob_key,
            count=len(classes),
            **geo,
            nodata=PROB_NODATA,
            band_names=[f"p_{int(c)}" for c in classes],
            scales=[0.01] * len(classes),
            tags={
                "hrlc_product": "class-probabilities",
                "classes": ",".join(str(int(c)) for c in classes),
                **provenance,
            },
        ) as prob_out,
        cog_blocks(
            ctx.store,
            conf_key,
            count=1,
            **geo,
            nodata=PROB_NODATA,
            band_names=["confidence"],
            scales=[0.01],
            tags={
                "hrlc_product": "class-confidence",
                "hrlc_definition": "probability of the mapped class",
                **provenance,
            },
        ) as conf_out,
        cog_blocks(
            ctx.store,
            map_key,
            count=1,
            **geo,
            nodata=legend.NODATA,
            band_names=["land_cover_class"],
            colormap=legend.colormap(),
            categorical=True,
            tags={"hrlc_product": "class-map", "legend": "CCI HRLC v1.2", **provenance},
        ) as map_out,
    ):
        histogram = np.zeros(256, dtype=np.int64)
        for i, b in enumerate(blocks):
            prob_out[:, b.rows, b.cols] = b.percent
            map_out[b.rows, b.cols] = b.codes
            conf_out[b.rows, b.cols] = confidence(b.percent, b.codes)
            histogram += np.bincount(b.codes.reshape(-1), minlength=256)
            ctx.check_cancelled()
            ctx.progress(first + (last - first) * (i + 1) / n_blocks, f"mapped block {i + 1}/{n_blocks}")
        ctx.store.write_bytes(categories_key, styles.category_names_aux_xml().encode())
        ctx.store.write_bytes(qml_key, styles.qgis_style().encode())
        ctx.store.write_bytes(sld_key, styles.sld_style().encode())
        if validation is None:
            assessed = None
        else:
            pixel_area = abs(grid.transform.a * grid.transform.e - grid.transform.b * grid.transform.d)
            assessed = map_accuracy(validation, histogram, pixel_area_m2=pixel_area)
            map_out.update_tags(**accuracy_tags(assessed))
    write_thumbnail(ctx, map_key, thumbnail_key)  # from the committed COG's overviews
    return assessed


def confidence(percent: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """The confidence of a block of the class map: the probability (percent) of the class each pixel is mapped
    as, the largest of its `percent` probabilities; `PROB_NODATA` where the map has no class."""
    out = percent.max(axis=0) if percent.shape[0] else np.zeros(codes.shape, np.uint8)
    return np.where(codes == legend.NODATA, PROB_NODATA, out).astype(np.uint8)


#: how the map's accuracy is estimated, said in its report, tags and item
ESTIMATOR = (
    "Olofsson et al. 2014 (Remote Sensing of Environment 148, 42-57): error matrix rows stratified by mapped "
    "class, weighted by each class's share of the map; 95 % confidence intervals = estimate +- 1.96 SE"
)


def map_accuracy(
    validation: Mapping[str, Any], histogram: np.ndarray, *, pixel_area_m2: float
) -> dict[str, Any]:
    """The class map's area-weighted accuracy and class areas (`hrlc.chain.accuracy.stratified_estimates`) from
    the model's validation report (its ``error_matrix``, rows mapped class, of the held-out samples) and the
    map's class `histogram` (pixels per code, nodata's included and ignored), with the validation design and
    what it means. Map classes without a held-out sample are in the estimates (with a warning: their area is
    left out)."""
    labels = [int(c) for c in validation["error_matrix_labels"]]
    mapped_codes = [int(c) for c in np.flatnonzero(histogram) if c != legend.NODATA]
    labels += [c for c in mapped_codes if c not in labels]
    k, kv = len(labels), len(validation["error_matrix_labels"])
    n = np.zeros((k, k), dtype=np.int64)
    n[:kv, :kv] = np.asarray(validation["error_matrix"], dtype=np.int64)
    out = accuracy.stratified_estimates(n, histogram[labels], labels, pixel_area_m2=pixel_area_m2)
    design = dict(validation["validation"])
    out["validation"] = design
    out["design"] = {
        "estimator": ESTIMATOR,
        "reference": "held-out training samples",
        "text": (
            f"Area-weighted estimates from {out['n_samples']} held-out training samples ({design['summary']}), "
            "stratified by the class they are mapped as and weighted by each class's share of the map. The "
            "held-out samples come from the training data, not from a probability sample of the map: the "
            "estimates assume they represent the pixels of each mapped class (training samples placed away "
            "from class edges make them optimistic). For a figure to publish, assess the map against an "
            "independent probability sample (`hrlc assess`)."
        ),
    }
    out["sample_overall_accuracy"] = validation["overall_accuracy"]
    out["map_pixels"] = {str(c): int(histogram[c]) for c in mapped_codes}
    out["pixel_area_m2"] = pixel_area_m2
    return out


def accuracy_tags(assessed: Mapping[str, Any]) -> dict[str, str]:
    """The GeoTIFF tags of a class map's accuracy: the area-weighted overall accuracy, its 95 % interval, the
    number of samples and the design."""
    oa = assessed["overall_accuracy"]
    return {
        "hrlc_overall_accuracy": f"{oa['estimate']:.4f}",
        "hrlc_overall_accuracy_ci95": f"{oa['ci95'][0]:.4f} {oa['ci95'][1]:.4f}",
        "hrlc_accuracy_samples": str(assessed["n_samples"]),
        "hrlc_accuracy_design": f"{assessed['validation']['summary']}; area-weighted (Olofsson et al. 2014)",
    }


def _design(validation: Mapping[str, Any]) -> Mapping[str, Any]:
    design = validation.get("validation")
    return design if isinstance(design, Mapping) else {}


def map_accuracy_properties(assessed: Mapping[str, Any]) -> dict[str, Any]:
    """The STAC properties of a class map's accuracy (`hrlc:overall_accuracy` is the area-weighted estimate)."""
    oa = assessed["overall_accuracy"]
    return {
        "hrlc:overall_accuracy": round(oa["estimate"], 4),
        "hrlc:overall_accuracy_ci95": [round(v, 4) for v in oa["ci95"]],
        "hrlc:accuracy_samples": assessed["n_samples"],
        "hrlc:accuracy_design": f"{assessed['validation']['summary']}; area-weighted (Olofsson et al. 2014)",
    }


def write_map_accuracy(
    ctx: Context, json_key: str, png_key: str, assessed: Mapping[str, Any], title: str
) -> None:
    """The map's accuracy report (JSON) and its plot (error matrix and per-class accuracies, PNG)."""
    from hrlc.products.accuracy_plot import write_accuracy_plot  # matplotlib: only where a map is assessed

    ctx.store.write_bytes(json_key, json.dumps(assessed, indent=1).encode())
    with ctx.store.writing(png_key) as tmp:
        write_accuracy_plot(Path(tmp), assessed, title=title)


def map_items(
    ctx: Context,
    prob_key: str,
    map_key: str,
    *,
    year: int,
    processor: str,
    processor_version: str,
    inputs: Sequence[str],
    properties: Mapping[str, Any],
    classes: np.ndarray,
    validation_href: str | None,
    assessed: Mapping[str, Any] | None = None,
    accuracy_hrefs: tuple[str, str] | None = None,
) -> list[pystac.Item]:
    """The STAC Items of the probabilities and the class map (annual), derived from `inputs` (item ids), with
    the model's `properties`. The class map's links the model's validation report (`validation_href`) and, with
    its accuracy (`assessed`, `map_accuracy`), carries its figures and links its report and plot
    (`accuracy_hrefs`: JSON, PNG)."""
    start, end = period_range(year, "annual")
    common: dict[str, Any] = {
        "start": start,
        "end": end,
        "processor": processor,
        "processor_version": processor_version,
        "inputs": list(inputs),
    }
    prob_item = raster_item(
        ctx.store, prob_key, **common, properties={**properties, "hrlc:classes": [int(c) for c in classes]}
    )
    extra: dict[str, pystac.Asset] = {}
    if validation_href is not None:
        extra["validation"] = pystac.Asset(
            validation_href,
            title="Validation of the model on held-out training samples",
            media_type="application/json",
            roles=["metadata"],
        )
    conf_key, categories_key, qml_key, sld_key, thumbnail_key = sidecar_keys(prob_key, map_key)
    extra["thumbnail"] = pystac.Asset(
        ctx.store.href(thumbnail_key),
        title="Thumbnail in the legend's colours",
        media_type=pystac.MediaType.PNG,
        roles=["thumbnail"],
    )
    extra["confidence"] = pystac.Asset(
        ctx.store.href(conf_key),
        title="Confidence: the probability of the mapped class, percent (scale 0.01, nodata 255)",
        media_type=pystac.MediaType.COG,
        roles=["data", "confidence"],
    )
    for name, key, media, title in (
        ("categories", categories_key, "application/xml", "Category names and attribute table (GDAL PAM)"),
        ("style-qgis", qml_key, "application/xml", "QGIS style (.qml)"),
        ("style-sld", sld_key, "application/vnd.ogc.sld+xml", "OGC SLD 1.0 style"),
    ):
        extra[name] = pystac.Asset(
            ctx.store.href(key), title=title, media_type=media, roles=["metadata", "style"]
        )
    map_properties = dict(properties)
    if assessed is not None and accuracy_hrefs is not None:
        map_properties.update(map_accuracy_properties(assessed))
        extra["accuracy"] = pystac.Asset(
            accuracy_hrefs[0],
            title="Area-weighted accuracy and class areas with 95 % confidence intervals",
            media_type="application/json",
            roles=["metadata"],
        )
        extra["accuracy-plot"] = pystac.Asset(
            accuracy_hrefs[1],
            title="Error matrix and per-class accuracy",
            media_type=pystac.MediaType.PNG,
            roles=["overview"],
        )
    map_item = raster_item(
        ctx.store,
        map_key,
        **common,
        properties=map_properties,
        classes=legend.stac_classes(),
        extra_assets=extra,
    )
    return [prob_item, map_item]


def model_properties(model_id: str, validation: Mapping[str, Any]) -> dict[str, Any]:
    """The item properties of a model, its validation report and the maps it made: the model's id and its
    accuracy on the held-out samples (`overall_accuracy` and `kappa` of its validation report, counts of samples,
    not of the map's area: `hrlc:heldout_*`) and how they were held out."""
    return {
        "hrlc:heldout_overall_accuracy": round(validation["overall_accuracy"], 4),
        "hrlc:heldout_kappa": round(validation["kappa"], 4),
        # models made before issue 14 held out random sample geometries, and said so as a string
        "hrlc:validation": _design(validation).get("summary", "held-out sample geometries"),
        "hrlc:model_id": model_id,
    }

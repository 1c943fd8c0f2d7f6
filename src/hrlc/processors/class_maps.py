"""The map products of a trained classifier, shared by the processors that make them: the class probabilities
(one band per class, uint8 percent, `PROB_NODATA` = 255 where no feature is valid) and the class map (uint8
HRLC codes, the legend's colour table, nodata 0), both COGs written block by block (`products.cog.cog_blocks`),
and their STAC Items.

Three processors write them, all through `write_maps` and `map_items`, so their bytes agree wherever their
pixels do: the classification (an untiled AOI, predicted from its one feature stack), the prediction (one tile
of the product grid, predicted from the tile's stack) and the mosaic (the AOI, copied from the tiles' maps).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pystac
from odc.geo.geobox import GeoBox

from hrlc import legend
from hrlc.catalog.items import raster_item
from hrlc.chain import classification as clf
from hrlc.periods import period_range
from hrlc.processors.base import Context
from hrlc.products.cog import cog_blocks

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


def write_maps(
    ctx: Context,
    prob_key: str,
    map_key: str,
    *,
    classes: np.ndarray,
    grid: GeoBox,
    blocks: Iterable[MapBlock],
    n_blocks: int,
    progress: tuple[float, float] = (0.45, 0.95),
) -> None:
    """Write the probabilities at `prob_key` and the class map at `map_key` on `grid` from `blocks` (which
    together cover the grid), reporting progress from `progress[0]` to `progress[1]`."""
    geo: dict[str, Any] = {
        "height": grid.height,
        "width": grid.width,
        "dtype": np.uint8,
        "crs": str(grid.crs),
        "transform": grid.transform,
    }
    first, last = progress
    with (
        cog_blocks(
            ctx.store,
            prob_key,
            count=len(classes),
            **geo,
            nodata=PROB_NODATA,
            band_names=[f"p_{int(c)}" for c in classes],
            scales=[0.01] * len(classes),
            tags={"hrlc_product": "class-probabilities", "classes": ",".join(str(int(c)) for c in classes)},
        ) as prob_out,
        cog_blocks(
            ctx.store,
            map_key,
            count=1,
            **geo,
            nodata=legend.NODATA,
            band_names=["land_cover_class"],
            colormap=legend.colormap(),
            categorical=True,
            tags={"hrlc_product": "class-map", "legend": "CCI HRLC v1.2"},
        ) as map_out,
    ):
        for i, b in enumerate(blocks):
            prob_out[:, b.rows, b.cols] = b.percent
            map_out[b.rows, b.cols] = b.codes
            ctx.check_cancelled()
            ctx.progress(first + (last - first) * (i + 1) / n_blocks, f"mapped block {i + 1}/{n_blocks}")


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
    accuracy_href: str | None,
) -> list[pystac.Item]:
    """The STAC Items of the probabilities and the class map (annual), derived from `inputs` (item ids);
    the class map's links the accuracy report (`accuracy_href`) as an asset."""
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
    extra = (
        {"accuracy": pystac.Asset(accuracy_href, media_type="application/json", roles=["metadata"])}
        if accuracy_href is not None
        else None
    )
    map_item = raster_item(
        ctx.store,
        map_key,
        **common,
        properties=dict(properties),
        classes=legend.stac_classes(),
        extra_assets=extra,
    )
    return [prob_item, map_item]


def model_properties(model_id: str, accuracy: Mapping[str, Any]) -> dict[str, Any]:
    """The item properties of a model, its accuracy report and the maps it made: the model's id and its held-out
    accuracy (`overall_accuracy` and `kappa` of its report)."""
    return {
        "hrlc:overall_accuracy": round(accuracy["overall_accuracy"], 4),
        "hrlc:kappa": round(accuracy["kappa"], 4),
        "hrlc:model_id": model_id,
    }

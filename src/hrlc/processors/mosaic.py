"""Mosaic processor: the AOI's class map and probabilities copied out of its tiles' maps (the fan-in of a tiled
job, issue 13).

The tiles of the product grid the AOI touches (`grid`, `tile_size`: `hrlc.lake.grid.windows`) were mapped by
the prediction processor (`predictions`: the config of their maps); the mosaic reads, for each tile, the part
inside the AOI, block by block, and writes the AOI's COGs (`hrlc.processors.class_maps`) under the keys of the
job's classification (its space and `classification` config) — the keys and bytes an untiled classification of
the same AOI and model writes, with the map's area-weighted accuracy (`class_maps.map_accuracy`, weighted by the
AOI's class histogram). Its items are derived from the tiles' maps and the model, and link the classification's
validation report.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Literal

import numpy as np
import rasterio
from pydantic import Field

from hrlc.lake import layout
from hrlc.lake.grid import TileWindow, windows
from hrlc.lake.identity import ProductId
from hrlc.processors import class_maps
from hrlc.processors.base import Context, Params, Processor, ProcessorError, config_param
from hrlc.processors.classification import AoiGrid, accuracy_keys, map_keys, report_key
from hrlc.processors.prediction import MODEL_ID_PATTERN


class MosaicParams(Params):
    year: int = Field(ge=1982, le=2100)
    sensor: Literal["sentinel2", "landsat"]
    grid: AoiGrid = Field(description="The AOI's grid")
    tile_size: int = Field(gt=0, description="Side of the tiles, metres")
    predictions: str = config_param("the tiles' maps (the prediction's)")
    classification: str = config_param("the classification (the model and its accuracy report)")
    model_id: str = Field(pattern=MODEL_ID_PATTERN, description="The model the tiles were mapped with")


class Mosaic(Processor[MosaicParams]):
    name = "mosaic"
    version = "0.1.0"
    Params = MosaicParams
    block_px = class_maps.BLOCK_PX

    def identity(self, params: MosaicParams) -> ProductId:
        """The classification's: the AOI's space and the classification's config."""
        return ProductId(params.grid.space(), params.classification)

    def outputs(self, params: MosaicParams) -> list[str]:
        fields = self.identity(params).fields()
        maps = map_keys(params.year, fields)
        return [*maps, *accuracy_keys(params.year, fields), *class_maps.sidecar_keys(*maps)]

    def run(self, params: MosaicParams, ctx: Context) -> list[str]:
        grid = params.grid.geobox()
        try:
            found = windows(grid, params.tile_size)
        except ValueError as e:
            raise ProcessorError(f"the AOI grid cannot be cut into tiles: {e}") from None
        meta_key = layout.key("model-metadata", model_id=params.model_id)
        acc_key = report_key(params.year, self.identity(params).fields())
        tiles = [map_keys(params.year, {"space": w.tile.id, "config": params.predictions}) for w in found]
        for key in (meta_key, acc_key, *(k for pair in tiles for k in pair)):
            if not ctx.store.exists(key):
                raise ProcessorError(
                    f"{key} missing: run the classification and the tiles' predictions first"
                )
        meta = json.loads(ctx.store.read_bytes(meta_key))
        classes = np.asarray(meta["classes"], dtype=np.int64)
        prob_key, map_key, json_key, png_key, *_ = self.outputs(params)
        validation = json.loads(ctx.store.read_bytes(acc_key))
        with contextlib.ExitStack() as opened:
            sources = []
            for w, (tile_prob, tile_map) in zip(found, tiles, strict=True):
                prob = opened.enter_context(rasterio.open(opened.enter_context(ctx.store.reading(tile_prob))))
                codes = opened.enter_context(rasterio.open(opened.enter_context(ctx.store.reading(tile_map))))
                if prob.count != len(classes):
                    raise ProcessorError(
                        f"{tile_prob} has {prob.count} bands, the model {len(classes)} classes"
                    )
                sources.append((w, prob, codes))
            n_blocks = sum(len(class_maps.blocks_of(*w.tile_roi, self.block_px)) for w, _, _ in sources)
            assessed = class_maps.write_maps(
                ctx,
                prob_key,
                map_key,
                classes=classes,
                grid=grid,
                blocks=self._blocks(sources),
                n_blocks=n_blocks,
                processor=f"{self.name} {self.version}",
                validation=validation,
                progress=(0.05, 0.95),
            )
        assert assessed is not None
        class_maps.write_map_accuracy(
            ctx, json_key, png_key, assessed, title=f"{params.sensor} {params.year} class map"
        )
        items = class_maps.map_items(
            ctx,
            prob_key,
            map_key,
            year=params.year,
            processor=self.name,
            processor_version=self.version,
            inputs=[
                *(layout.item_id(m) for _, m in tiles),
                layout.item_id(layout.key("model-checkpoint", model_id=params.model_id, ext="joblib")),
            ],
            properties=class_maps.model_properties(meta["model_id"], meta["heldout_accuracy"]),
            classes=classes,
            validation_href=ctx.store.href(acc_key),
            assessed=assessed,
            accuracy_hrefs=(ctx.store.href(json_key), ctx.store.href(png_key)),
        )
        return [ctx.register(i) for i in items]

    def _blocks(
        self, sources: list[tuple[TileWindow, rasterio.DatasetReader, rasterio.DatasetReader]]
    ) -> Iterator[class_maps.MapBlock]:
        """Each tile's part inside the AOI, block by block, placed on the AOI's grid."""
        for w, prob, codes in sources:
            for rows, cols in class_maps.blocks_of(*w.tile_roi, self.block_px):
                window = ((rows.start, rows.stop), (cols.start, cols.stop))
                yield class_maps.MapBlock(
                    *w.to_aoi(rows, cols), prob.read(window=window), codes.read(1, window=window)
                )

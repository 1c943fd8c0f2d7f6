"""Prediction processor: one tile of the product grid mapped with a trained model (the fan-out half of a tiled
job's classification, issue 13).

A tiled job trains one model from the samples of all its tiles (the classification with ``predict: false``),
then maps every tile with it in a task of its own, so the tiles are predicted in parallel over workers; the
mosaic (`hrlc.processors.mosaic`) then copies the AOI out of the tiles' maps. A tile's maps cover the whole
tile (its feature stack's grid): they are the maps of that tile for anyone who reads tiles.

Reads the tile's feature stack (`features` config) and the model (`models/checkpoints/{model_id}.joblib` and its
metadata), block by block as the classification does (`hrlc.processors.class_maps`). Writes the tile's
`class_probs_{year}_annual.tif` and `classified_map_optical_{year}_annual.tif` under the tile's space and a
config over the model and the stack, each with its STAC Item (derived from the stack's and the model's).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Literal

import joblib
import numpy as np
from affine import Affine
from odc.geo.geobox import GeoBox
from pydantic import Field

from hrlc.lake import layout
from hrlc.lake.grid import TILE_PATTERN
from hrlc.lake.identity import ProductId, config_hash
from hrlc.processors import class_maps
from hrlc.processors.base import Context, Params, Processor, ProcessorError, config_param
from hrlc.processors.classification import Piece, map_keys, open_stack, predicted_blocks
from hrlc.products.netcdf import grid_of

MODEL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"


class PredictionParams(Params):
    year: int = Field(ge=1982, le=2100)
    sensor: Literal["sentinel2", "landsat"]
    tile: str = Field(pattern=TILE_PATTERN, description="The tile of the product grid (hrlc.lake.grid)")
    features: str = config_param("the tile's feature stack")
    model_id: str = Field(pattern=MODEL_ID_PATTERN, description="The model (the classification's `model_id`)")


class Prediction(Processor[PredictionParams]):
    name = "prediction"
    version = "0.1.0"
    Params = PredictionParams
    block_px = class_maps.BLOCK_PX

    def identity(self, params: PredictionParams) -> ProductId:
        """The tile, and a config over the model and the stack's config."""
        return ProductId(
            params.tile,
            config_hash(self.name, self.version, params.model_dump(mode="json", exclude={"tile"})),
        )

    def outputs(self, params: PredictionParams) -> list[str]:
        maps = map_keys(params.year, self.identity(params).fields())
        return [*maps, *class_maps.sidecar_keys(*maps)]

    def run(self, params: PredictionParams, ctx: Context) -> list[str]:
        ckpt_key = layout.key("model-checkpoint", model_id=params.model_id, ext="joblib")
        meta_key = layout.key("model-metadata", model_id=params.model_id)
        stack_key = layout.key(
            "features",
            stack=f"optical_{params.sensor}",
            year=params.year,
            space=params.tile,
            config=params.features,
        )
        for key, what in ((ckpt_key, "model"), (meta_key, "model metadata"), (stack_key, "feature stack")):
            if not ctx.store.exists(key):
                raise ProcessorError(f"{what} {key} missing: run the classification and features steps first")
        meta = json.loads(ctx.store.read_bytes(meta_key))
        classes = np.asarray(meta["classes"], dtype=np.int64)
        ctx.progress(0.05, f"reading model {params.model_id}")
        with ctx.store.reading(ckpt_key) as path:
            model = joblib.load(path)
        stack_item = ctx.catalog.get_href(ctx.store.href(layout.item_key(stack_key)))
        prob_key, map_key, *_ = self.outputs(params)
        with contextlib.ExitStack() as opened:
            stack = opened.enter_context(open_stack(Path(opened.enter_context(ctx.store.reading(stack_key)))))
            names = stack.names
            if names != meta["features"]:
                raise ProcessorError(
                    f"the feature stack {stack_key} holds other features than model {params.model_id} was "
                    "trained on"
                )
            crs, transform = grid_of(stack.ds)
            shape = stack.shape
            whole = (slice(0, shape[0]), slice(0, shape[1]))
            piece = Piece(stack, stack_item, whole, whole)
            blocks = [(piece, r, c) for r, c in class_maps.blocks_of(*whole, self.block_px)]
            class_maps.write_maps(
                ctx,
                prob_key,
                map_key,
                classes=classes,
                grid=GeoBox(shape, Affine(*list(transform)[:6]), crs),
                blocks=predicted_blocks(blocks, model, classes),
                n_blocks=len(blocks),
                processor=f"{self.name} {self.version}",
                progress=(0.1, 0.95),
            )
        items = class_maps.map_items(
            ctx,
            prob_key,
            map_key,
            year=params.year,
            processor=self.name,
            processor_version=self.version,
            inputs=[stack_item.id, layout.item_id(ckpt_key)],
            properties=class_maps.model_properties(meta["model_id"], meta["heldout_accuracy"]),
            classes=classes,
            validation_href=None,
        )
        return [ctx.register(i) for i in items]

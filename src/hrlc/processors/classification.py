"""Classification processor (spec §3.2.1): train a classifier on the training samples and the year's feature
stack, then map the whole AOI.

It works in square blocks of `BLOCK_PX` (the feature stack's NetCDF chunks and the COG tiles): the training
samples are read from the blocks that hold them only, and the map is predicted and written block by block
(`hrlc.products.cog.cog_blocks`), so its peak memory is about one block's feature matrix (``BLOCK_PX² x
n_features x 4`` bytes) plus the model and the samples, whatever the size of the AOI. The products are those
of mapping the whole stack at once, byte for byte.

The samples come from a file (`training`) or from the training-set database (`training_query`: area, year,
type, source, provider, ROI, bbox), read through the `TrainingSamples` port `ctx.training`
(`hrlc.training.port`). A database selection gets its own model id
(`..._db<hash of the selection>`), and its model metadata lists the training sets used (name, version,
checksum).

Writes, under the spec's folders:
- `models/checkpoints/{model_id}.joblib` and `models/metadata/{model_id}.json` (version, features, classes,
  training source, held-out accuracy);
- `classification/{year}/probabilities/class_probs_{year}_annual.tif` and
  `classification/{year}/final/classified_map_optical_{year}_annual.tif` (`hrlc.processors.class_maps`),
  unless `predict` is false: a tiled job maps each tile with the prediction processor
  (`hrlc.processors.prediction`, in parallel over workers) and the AOI with the mosaic (`hrlc.processors.mosaic`),
  which writes these two keys with the same bytes;
- `classification/{year}/accuracy_optical_{year}_annual.json`, the model's validation: overall accuracy, kappa,
  per-class F1 and the confusion and error matrices of held-out samples, counted as samples. Held out are whole
  spatial blocks (`validation_block_m`, `training_samples.validation_groups`) or groups of the training file's
  `group_column` (e.g. parcels), about `holdout` of each class's, so neighbouring, alike pixels are never on
  both sides; the report says how (``validation``);
- with the maps, `classification/{year}/final/map_accuracy_optical_{year}_annual.json` and `.png`: the map's
  area-weighted accuracy and class areas with 95 % confidence intervals (`class_maps.map_accuracy`), in the class
  map's tags and STAC Item too.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import joblib
import netCDF4
import numpy as np
import pystac
import xarray as xr
from affine import Affine
from odc.geo.geobox import GeoBox
from pydantic import Field, field_validator, model_validator
from shapely.geometry import mapping, shape

from hrlc import __version__, legend
from hrlc.catalog.items import file_item
from hrlc.chain import accuracy
from hrlc.chain import classification as clf
from hrlc.chain import features as chain_features
from hrlc.lake import layout
from hrlc.lake.grid import TileWindow, shifted, windows
from hrlc.lake.identity import ProductId, aoi_space, config_hash
from hrlc.periods import period_range
from hrlc.processors import class_maps
from hrlc.processors.base import Context, Params, Processor, ProcessorError, config_param, space_param
from hrlc.products.netcdf import FeatureStackReader, grid_of, read_feature_stack
from hrlc.training import samples as training_samples
from hrlc.training.query import TrainingQuery

PROB_NODATA = class_maps.PROB_NODATA
BLOCK_PX = class_maps.BLOCK_PX


class AoiGrid(Params):
    """A north-up pixel grid: CRS, affine transform (a, b, c, d, e, f) and shape (rows, cols)."""

    crs: str
    transform: tuple[float, float, float, float, float, float]
    shape: tuple[int, int]

    @field_validator("shape")
    @classmethod
    def _positive(cls, v: tuple[int, int]) -> tuple[int, int]:
        if min(v) < 1:
            raise ValueError(f"shape {list(v)} is empty")
        return v

    def geobox(self) -> GeoBox:
        return GeoBox(self.shape, Affine(*self.transform), self.crs)

    def space(self) -> str:
        return aoi_space(self.crs, self.transform, self.shape)


class ClassificationParams(Params):
    year: int = Field(ge=1982, le=2100)
    sensor: Literal["sentinel2", "landsat"]
    training: str | None = Field(
        default=None, description="Training samples file (GeoPackage, GeoJSON, Shapefile) with HRLC codes"
    )
    training_query: TrainingQuery | None = Field(
        default=None,
        description="Training samples selected from the training-set database (HRLC_TRAINING_DSN) by area, "
        "year, type, source, provider, ROI, bbox; instead of `training`",
    )
    method: Literal["rf", "lightgbm"] = "lightgbm"
    holdout: float = Field(
        default=0.3, gt=0, lt=1, description="Fraction of the validation groups of each class held out"
    )
    validation_block_m: float = Field(
        default=1000.0,
        gt=0,
        description="Side of the square blocks held out whole for validation, metres (made smaller, down to 3 "
        "pixels, until the samples span 20 blocks)",
    )
    group_column: str | None = Field(
        default=None,
        description="Column of the training file whose values are held out together for validation (e.g. a "
        "parcel id), instead of spatial blocks",
    )
    seed: int = 0
    max_pixels_per_polygon: int = Field(default=200, ge=1)
    space: str | None = space_param("the feature stack")
    features: str | None = config_param("the feature stack (of every tile, with `grid`)")
    grid: AoiGrid | None = Field(
        default=None,
        description="The AOI's grid, mapped from the feature stacks of the tiles of `tile_size` metres it "
        "touches (hrlc.lake.grid), instead of one stack of `space`",
    )
    tile_size: int | None = Field(default=None, gt=0, description="Side of the tiles, metres (with `grid`)")
    predict: bool = Field(
        default=True,
        description="Map the AOI in this task; false: the model and its accuracy report only (a tiled job maps "
        "each tile with the prediction processor and the AOI with the mosaic)",
    )

    @model_validator(mode="after")
    def _one_training_source(self) -> ClassificationParams:
        if (self.training is None) == (self.training_query is None):
            raise ValueError(
                "give exactly one of training (a file) and training_query (the training database)"
            )
        if self.group_column is not None and self.training is None:
            raise ValueError("group_column goes with a training file")
        if self.grid is not None:
            if self.space is not None or self.tile_size is None or self.features is None:
                raise ValueError("with grid, give tile_size and features (the tiles' stacks), not space")
        elif self.tile_size is not None:
            raise ValueError("tile_size goes with grid")
        elif (self.space is None) != (self.features is None):
            raise ValueError("give both space and features (the feature stack's identity) or neither")
        return self

    def inputs_id(self) -> ProductId | None:
        return None if self.space is None or self.features is None else ProductId(self.space, self.features)

    @property
    def training_source(self) -> str:
        """The training file, or `training-db:<selection>`."""
        return self.training_query.describe() if self.training_query is not None else str(self.training)


def identity(params: ClassificationParams) -> ProductId | None:
    """The identity of a classification's products: the stack's space, and a config over the training input,
    the classifier's parameters and the stack's config. None when the stack has none (the spec's exact keys)."""
    pixels = params.model_dump(mode="json", exclude={"space", "grid", "predict"})
    if params.grid is not None:
        return ProductId(
            params.grid.space(), config_hash(Classification.name, Classification.version, pixels)
        )
    inputs = params.inputs_id()
    if inputs is None:
        return None
    pixels = {k: v for k, v in pixels.items() if k != "tile_size"}  # the configs of untiled maps as they were
    return ProductId(inputs.space, config_hash(Classification.name, Classification.version, pixels))


def _fields(params: ClassificationParams) -> dict[str, str]:
    ident = identity(params)
    return ident.fields() if ident is not None else {}


def map_keys(year: int, fields: dict[str, str]) -> tuple[str, str]:
    """The keys of the (annual) class probabilities and class map of a year and identity `fields`."""
    return (
        layout.key("class-probabilities", year=year, period="annual", **fields),
        layout.key("class-map", kind="optical", year=year, period="annual", **fields),
    )


def report_key(year: int, fields: dict[str, str]) -> str:
    """The key of the model's validation report (the `accuracy-report` of the spec's folders)."""
    return layout.key("accuracy-report", kind="optical", year=year, period="annual", **fields)


def accuracy_keys(year: int, fields: dict[str, str]) -> tuple[str, str]:
    """The keys of the (annual) class map's accuracy report and plot."""
    return (
        layout.key("map-accuracy", kind="optical", year=year, period="annual", **fields),
        layout.key("map-accuracy-plot", kind="optical", year=year, period="annual", **fields),
    )


def model_id(params: ClassificationParams) -> str:
    """`lc_optical_{sensor}_{year}_{method}`, then `_{space}_{config}` of the products' identity (without one:
    `_db{hash}` of the selection for database training sets), so two jobs never overwrite each other's model."""
    base = f"lc_optical_{params.sensor}_{params.year}_{params.method}"
    ident = identity(params)
    if ident is not None:
        return f"{base}_{ident.space}_{ident.config}"
    return base if params.training_query is None else f"{base}_db{params.training_query.key()}"


class Classification(Processor[ClassificationParams]):
    name = "classification"
    version = "0.1.0"
    Params = ClassificationParams
    block_px = BLOCK_PX  # side of the blocks sampled, predicted and written at once

    def outputs(self, params: ClassificationParams) -> list[str]:
        y, mid, f = params.year, model_id(params), _fields(params)
        return [
            layout.key("model-checkpoint", model_id=mid, ext="joblib"),
            layout.key("model-metadata", model_id=mid),
            *(map_keys(y, f) if params.predict else ()),
            report_key(y, f),
            *(accuracy_keys(y, f) if params.predict else ()),
            *(class_maps.sidecar_keys(*map_keys(y, f)) if params.predict else ()),
        ]

    def _training(self, params: ClassificationParams, ctx: Context) -> tuple[Any, list[dict[str, Any]]]:
        """The training samples (a file, or the database through `ctx.training`) and, for the database, the
        training sets used."""
        if params.training_query is not None:
            if ctx.training is None:
                raise ProcessorError(
                    f"{params.training_source}: no training-set database where this task runs (it needs the "
                    "platform extra and HRLC_TRAINING_DSN)"
                )
            try:
                gdf = ctx.training.select(params.training_query)
            except training_samples.TrainingDataError as e:
                raise ProcessorError(str(e)) from e
            return gdf, list(gdf.attrs.get("datasets", []))
        try:
            return training_samples.read_training(str(params.training), group_column=params.group_column), []
        except training_samples.TrainingDataError as e:
            raise ProcessorError(str(e)) from e
        except OSError as e:
            raise ProcessorError(f"cannot read training file {params.training}: {e}") from e

    def run(self, params: ClassificationParams, ctx: Context) -> list[str]:
        training, training_sets = self._training(params, ctx)
        ctx.progress(0.05, "opening features")
        with contextlib.ExitStack() as opened:
            grid, pieces = self._pieces(params, ctx, opened)
            return self._classify(params, ctx, grid, pieces, training, training_sets)

    def _pieces(
        self, params: ClassificationParams, ctx: Context, opened: contextlib.ExitStack
    ) -> tuple[GeoBox, list[Piece]]:
        """The AOI grid and the feature stacks that cover it, opened in `opened`: the stack of each tile the
        grid touches (`params.grid`), or the one stack of `params.space` (its grid is the AOI's)."""
        stack_id = params.inputs_id()
        fields = stack_id.fields() if stack_id is not None else {}
        where: list[tuple[dict[str, str], TileWindow | None]]
        if params.grid is None:
            where = [(fields, None)]
        else:
            assert params.tile_size is not None and params.features is not None
            try:
                found = windows(params.grid.geobox(), params.tile_size)
            except ValueError as e:
                raise ProcessorError(f"the AOI grid cannot be cut into tiles: {e}") from None
            where = [({"space": w.tile.id, "config": params.features}, w) for w in found]
        pieces: list[Piece] = []
        for f, window in where:
            key = layout.key("features", stack=f"optical_{params.sensor}", year=params.year, **f)
            item_key = layout.item_key(key)
            if not ctx.store.exists(item_key):
                raise ProcessorError(f"feature stack {key} missing: run the features step first")
            item = ctx.catalog.get_href(ctx.store.href(item_key))
            stack = opened.enter_context(open_stack(Path(opened.enter_context(ctx.store.reading(key)))))
            if window is None:
                crs, transform = grid_of(stack.ds)
                shape = stack.shape
                roi = (slice(0, shape[0]), slice(0, shape[1]))
                return GeoBox(shape, Affine(*list(transform)[:6]), crs), [Piece(stack, item, roi, roi)]
            pieces.append(Piece(stack, item, window.tile_roi, window.aoi_roi))
        names = {tuple(p.stack.names) for p in pieces}
        if len(names) != 1:
            raise ProcessorError(
                "the tiles' feature stacks hold different features: made by different configs"
            )
        assert params.grid is not None
        return params.grid.geobox(), pieces

    def _classify(
        self,
        params: ClassificationParams,
        ctx: Context,
        grid: GeoBox,
        pieces: list[Piece],
        training: Any,
        training_sets: list[dict[str, Any]],
    ) -> list[str]:
        crs, transform = str(grid.crs), grid.transform
        names = pieces[0].stack.names

        ctx.progress(0.1, "sampling training data")
        X, y, groups, rowcol = sample_pieces(
            pieces,
            training,
            crs=crs,
            transform=transform,
            shape=(grid.height, grid.width),
            max_pixels_per_polygon=params.max_pixels_per_polygon,
            seed=params.seed,
            block=self.block_px,
        )
        classes_present = np.unique(y)
        if len(y) == 0:
            raise ProcessorError(f"no training sample of {params.training_source} falls inside the AOI grid")
        if len(classes_present) < 2:
            raise ProcessorError(
                f"training samples inside the AOI hold only class {classes_present.tolist()}"
            )
        validation, held_out = self._validation(params, training, groups, rowcol, y, abs(transform.a))
        ctx.check_cancelled()

        ctx.progress(0.25, f"training {params.method} on {int((~held_out).sum())} samples")
        model = clf.train(X[~held_out], y[~held_out], method=params.method, seed=params.seed)
        predicted = model.predict(X[held_out])
        report = clf.accuracy_report(y[held_out], predicted, labels=classes_present)
        errors, labels = accuracy.error_matrix(y[held_out], predicted, labels=report["labels"])
        report.update(
            {
                "method": params.method,
                "validation": validation,
                "holdout_fraction": params.holdout,
                "n_train": int((~held_out).sum()),
                "n_test": int(held_out.sum()),
                "error_matrix": errors.tolist(),
                "error_matrix_axes": {"rows": "class map", "columns": "reference"},
                "error_matrix_labels": labels,
                "note": "Counts of held-out samples, not area-weighted: the model's accuracy on samples like its "
                "training data. The map's accuracy, weighted by the classes' areas, with confidence intervals, "
                "is the map accuracy report beside the class map (map_accuracy_*.json).",
                "training_source": params.training_source,
            }
        )
        if training_sets:
            report["training_sets"] = training_sets
        ctx.check_cancelled()

        ctx.progress(0.4, "writing the model")
        classes = np.asarray(model.classes_).astype(np.int64)
        items = [p.item for p in pieces]
        self._write_model(ctx, params, model, report, names, classes, items)
        assessed = (
            self._write_maps(ctx, params, model, classes, pieces, grid, report) if params.predict else None
        )
        return self._register(ctx, params, report, names, classes, items, grid, assessed)

    def _validation(
        self,
        params: ClassificationParams,
        training: Any,
        geometry: np.ndarray,
        rowcol: np.ndarray,
        y: np.ndarray,
        pixel_m: float,
    ) -> tuple[dict[str, Any], np.ndarray]:
        """The validation design (a dict the report holds) and the mask of the held-out samples: whole groups of
        `group_column`, or whole spatial blocks (`training_samples.validation_groups`), about `holdout` of each
        class's groups."""
        labels = training["group"].to_numpy() if params.group_column is not None else None
        requested_px = max(1, round(params.validation_block_m / pixel_m))
        groups, block_px = training_samples.validation_groups(
            geometry, rowcol, block_px=requested_px, labels=labels
        )
        held_out = training_samples.split_holdout(groups, y, fraction=params.holdout, seed=params.seed)
        n_groups, n_held = int(np.unique(groups).size), int(np.unique(groups[held_out]).size)
        if block_px is None:
            summary = f"held-out groups of column {params.group_column!r}"
            unit = f"groups of column {params.group_column!r}"
        else:
            summary = f"held-out spatial blocks of {block_px * pixel_m:g} m"
            unit = f"spatial blocks of {block_px * pixel_m:g} m"
        if not held_out.any():
            raise ProcessorError(
                f"no sample can be held out for validation: the training samples fall in {n_groups} {unit}, "
                "no class in 2 or more; add samples, or give a smaller validation_block_m"
            )
        text = (
            f"{n_held} of {n_groups} {unit}, about {params.holdout:.0%} of each class's (drawn at random, "
            f"seed {params.seed}), held out whole from training: no training geometry and no "
            f"{'group' if block_px is None else 'block'} lies on both sides."
        )
        if block_px is not None and block_px < requested_px:
            text += (
                f" The blocks are smaller than the {params.validation_block_m:g} m asked for: the samples spanned "
                f"fewer than {training_samples.MIN_VALIDATION_BLOCKS} blocks of it."
            )
        design: dict[str, Any] = {
            "split": "groups" if block_px is None else "spatial blocks",
            "summary": summary,
            "block_m": None if block_px is None else block_px * pixel_m,
            "requested_block_m": None if block_px is None else params.validation_block_m,
            "group_column": params.group_column,
            "groups": n_groups,
            "heldout_groups": n_held,
            "holdout_fraction": params.holdout,
            "seed": params.seed,
            "text": text,
        }
        return design, held_out

    def _write_maps(
        self,
        ctx: Context,
        params: ClassificationParams,
        model: Any,
        classes: np.ndarray,
        pieces: list[Piece],
        grid: GeoBox,
        report: dict[str, Any],
    ) -> dict[str, Any]:
        """Predict the stacks block by block into the AOI's probability COG and class map COG; write and return
        the map's accuracy."""
        fields = _fields(params)
        prob_key, map_key = map_keys(params.year, fields)
        blocks = [
            (p, rows, cols) for p in pieces for rows, cols in class_maps.blocks_of(*p.tile_roi, self.block_px)
        ]
        assessed = class_maps.write_maps(
            ctx,
            prob_key,
            map_key,
            classes=classes,
            grid=grid,
            blocks=predicted_blocks(blocks, model, classes),
            n_blocks=len(blocks),
            processor=f"{self.name} {self.version}",
            validation=report,
        )
        assert assessed is not None
        class_maps.write_map_accuracy(
            ctx,
            *accuracy_keys(params.year, fields),
            assessed,
            title=f"{params.sensor} {params.year} class map",
        )
        return assessed

    def _write_model(
        self,
        ctx: Context,
        params: ClassificationParams,
        model: Any,
        report: dict[str, Any],
        names: list[str],
        classes: np.ndarray,
        stacks: list[pystac.Item],
    ) -> None:
        """The checkpoint, its metadata and the accuracy report."""
        ckpt_key, meta_key, *_ = self.outputs(params)
        acc_key = report_key(params.year, _fields(params))
        mid = model_id(params)
        with ctx.store.writing(ckpt_key) as tmp:
            joblib.dump(model, tmp, compress=3)
        checksum = hashlib.sha256(ctx.store.read_bytes(ckpt_key)).hexdigest()
        metadata = {
            "model_id": mid,
            "model_version": f"{self.version}+{checksum[:12]}",
            "hrlc_version": __version__,
            "processor": f"{self.name} {self.version}",
            "method": params.method,
            "framework": type(model).__module__.split(".")[0],
            "estimator": type(model).__name__,
            "created": dt.datetime.now(dt.UTC).isoformat(),
            "features": names,
            "classes": [int(c) for c in classes],
            "class_names": {int(c): legend.name(int(c)) for c in classes},
            "training_source": params.training_source,
            **({"training_sets": report["training_sets"]} if "training_sets" in report else {}),
            "training_samples": report["n_train"],
            "seed": params.seed,
            "heldout_accuracy": {
                k: report[k] for k in ("overall_accuracy", "kappa", "per_class_f1", "n_test", "validation")
            },
            "checkpoint": ctx.store.href(ckpt_key),
            "checkpoint_sha256": checksum,
            "feature_stacks": [item.id for item in stacks],
        }
        ctx.store.write_bytes(meta_key, json.dumps(metadata, indent=1).encode())
        ctx.store.write_bytes(acc_key, json.dumps(report, indent=1).encode())

    def _register(
        self,
        ctx: Context,
        params: ClassificationParams,
        report: dict[str, Any],
        names: list[str],
        classes: np.ndarray,
        stacks: list[pystac.Item],
        grid: GeoBox,
        assessed: dict[str, Any] | None,
    ) -> list[str]:
        """One STAC Item per product (model, validation report, probabilities, class map with its accuracy)."""
        ckpt_key, meta_key, *_ = self.outputs(params)
        acc_key = report_key(params.year, _fields(params))
        prob_key, map_key = map_keys(params.year, _fields(params))
        mid = model_id(params)
        start, end = period_range(params.year, "annual")
        inputs = [item.id for item in stacks]
        acc_props = class_maps.model_properties(mid, report)
        geom = shape(grid.extent.to_crs("EPSG:4326").geom.__geo_interface__)
        common = {
            "geometry": mapping(geom),
            "bbox": list(geom.bounds),
            "start": start,
            "end": end,
            "processor": self.name,
            "processor_version": self.version,
        }
        model_item = file_item(
            ctx.store,
            ckpt_key,
            media_type="application/octet-stream",
            inputs=inputs,
            properties={**acc_props, "hrlc:method": params.method, "hrlc:features": len(names)},
            roles=("data", "ml-model:checkpoint"),
            extra_assets={
                "metadata": pystac.Asset(
                    ctx.store.href(meta_key), media_type="application/json", roles=["metadata"]
                )
            },
            **common,
        )
        acc_item = file_item(
            ctx.store,
            acc_key,
            media_type="application/json",
            inputs=[model_item.id],
            properties=acc_props,
            roles=("metadata",),
            **common,
        )
        made = [model_item, acc_item]
        if params.predict:
            made += class_maps.map_items(
                ctx,
                prob_key,
                map_key,
                year=params.year,
                processor=self.name,
                processor_version=self.version,
                inputs=[*inputs, model_item.id],
                properties=acc_props,
                classes=classes,
                validation_href=ctx.store.href(acc_key),
                assessed=assessed,
                accuracy_hrefs=_hrefs(ctx, accuracy_keys(params.year, _fields(params))),
            )
        return [ctx.register(i) for i in made]


def _hrefs(ctx: Context, keys: tuple[str, str]) -> tuple[str, str]:
    return ctx.store.href(keys[0]), ctx.store.href(keys[1])


@dataclass(frozen=True)
class FeatureStack:
    """A feature stack as the classifier reads it: `ds`, the Dataset (lazy: sizes, grid, feature names), and,
    for a file, `chunks`, which reads windows decompressing their chunks on all cores; without it windows come
    through xarray (a stack in memory)."""

    ds: xr.Dataset
    chunks: FeatureStackReader | None = None

    @property
    def names(self) -> list[str]:
        return chain_features.feature_names(self.ds)

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.ds.sizes["y"]), int(self.ds.sizes["x"])

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        """The ``(n_features, h, w)`` matrix of a window (`chain.features.to_matrix`): only its chunks are read."""
        if self.chunks is None:
            matrix, _ = chain_features.to_matrix(self.ds.isel(y=rows, x=cols))
            return matrix
        return self.chunks.read(*_bounded(rows, cols, self.shape))


def _bounded(rows: slice, cols: slice, shape: tuple[int, int]) -> tuple[slice, slice]:
    r, c = range(*rows.indices(shape[0])), range(*cols.indices(shape[1]))
    return slice(r.start, r.stop), slice(c.start, c.stop)


@contextlib.contextmanager
def open_stack(path: Path) -> Iterator[FeatureStack]:
    """The feature stack at `path`: its Dataset opened lazily (without HDF5's chunk cache, which would only
    grow with the stack: each block reads every chunk it needs once; the size is netCDF's global default for
    files being opened, restored once the file is open), and its chunk reader."""
    size, nelems, preemption = netCDF4.get_chunk_cache()
    netCDF4.set_chunk_cache(0, 1, preemption)
    try:
        ds = read_feature_stack(path)
    finally:
        netCDF4.set_chunk_cache(size, nelems, preemption)
    with ds, FeatureStackReader(path, chain_features.matrix_variables(ds)) as chunks:
        yield FeatureStack(ds, chunks)


@dataclass(frozen=True)
class Piece:
    """A feature stack and where it maps into the AOI grid: ``stack[tile_roi]`` is ``aoi[aoi_roi]``."""

    stack: FeatureStack
    item: pystac.Item
    tile_roi: tuple[slice, slice]
    aoi_roi: tuple[slice, slice]

    def to_aoi(self, rows: slice, cols: slice) -> tuple[slice, slice]:
        """The AOI's rows and columns of the stack's `rows` and `cols` (inside `tile_roi`)."""
        return shifted(rows, cols, self.tile_roi, self.aoi_roi)


def predicted_blocks(
    blocks: Iterable[tuple[Piece, slice, slice]], model: Any, classes: np.ndarray
) -> Iterator[class_maps.MapBlock]:
    """The maps of each (piece, rows, cols) block of the pieces' stacks, placed on the AOI grid."""
    for piece, rows, cols in blocks:
        percent, codes = class_maps.predicted(model, classes, piece.stack.read(rows, cols))
        yield class_maps.MapBlock(*piece.to_aoi(rows, cols), percent, codes)


def pixel_values(
    stack: FeatureStack, rows: np.ndarray, cols: np.ndarray, block: int = BLOCK_PX
) -> np.ndarray:
    """The ``(n, n_features)`` features of the stack's pixels at `rows`, `cols`, reading only the blocks (of
    side `block`) that hold them: in each block, the smallest window around its pixels."""
    nx = stack.shape[1]
    X = np.empty((rows.size, len(stack.names)), dtype=np.float32)
    which = (rows // block) * (-(-nx // block)) + cols // block
    order = np.argsort(which, kind="stable")
    for sel in np.split(order, np.flatnonzero(np.diff(which[order])) + 1):
        if sel.size == 0:
            continue
        r, c = rows[sel], cols[sel]
        r0, c0 = int(r.min()), int(c.min())
        window = stack.read(slice(r0, int(r.max()) + 1), slice(c0, int(c.max()) + 1))
        X[sel] = window[:, r - r0, c - c0].T
        del window  # before the next block is read: one block in memory at a time
    return X


def sample_pieces(
    pieces: list[Piece],
    training: Any,
    *,
    crs: str,
    transform: Any,
    shape: tuple[int, int],
    max_pixels_per_polygon: int,
    seed: int,
    block: int = BLOCK_PX,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`hrlc.training.samples.extract_samples` on the AOI grid (``X``, ``y``, ``group``, ``rowcol``; same
    samples, same order), the features read from the stacks that cover it (`pieces`): a tiled AOI samples what the AOI's
    own stack would give."""
    y, group, rowcol = training_samples.sample_pixels(
        training,
        shape=shape,
        crs=crs,
        transform=transform,
        max_pixels_per_polygon=max_pixels_per_polygon,
        seed=seed,
    )
    X = np.full((y.size, len(pieces[0].stack.names)), np.nan, dtype=np.float32)
    rows, cols = rowcol[:, 0], rowcol[:, 1]
    for piece in pieces:
        (ar, ac), (tr, tc) = piece.aoi_roi, piece.tile_roi
        inside = np.flatnonzero((rows >= ar.start) & (rows < ar.stop) & (cols >= ac.start) & (cols < ac.stop))
        if inside.size:
            X[inside] = pixel_values(
                piece.stack, rows[inside] - ar.start + tr.start, cols[inside] - ac.start + tc.start, block
            )
    ok = ~np.all(np.isnan(X), axis=1) if X.shape[1] else np.ones(y.size, dtype=bool)
    return np.ascontiguousarray(X[ok]), y[ok], group[ok], rowcol[ok]

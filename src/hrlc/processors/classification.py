"""Classification processor (spec §3.2.1): train a classifier on the training samples and the year's feature
stack, then map the whole AOI.

The samples come from a file (`training`) or from the training-set database (`training_query`: area, year,
type, source, provider, ROI, bbox), read through the `TrainingSamples` port `ctx.training`
(`hrlc.training.port`). A database selection gets its own model id
(`..._db<hash of the selection>`), and its model metadata lists the training sets used (name, version,
checksum).

Writes, under the spec's folders:
- `models/checkpoints/{model_id}.joblib` and `models/metadata/{model_id}.json` (version, features, classes,
  training source, held-out accuracy);
- `classification/{year}/probabilities/class_probs_{year}_annual.tif` (one band per class, uint8 percent,
  255 = nodata);
- `classification/{year}/final/classified_map_optical_{year}_annual.tif` (uint8 HRLC codes, legend colour
  table, nodata 0);
- `classification/{year}/accuracy_optical_{year}_annual.json` (overall accuracy, kappa, per-class F1,
  confusion matrix on held-out samples, split by sample geometry so no polygon is on both sides).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import joblib
import numpy as np
import pystac
from pydantic import Field, model_validator
from shapely.geometry import mapping, shape

from hrlc import __version__, legend
from hrlc.catalog.items import file_item, raster_item
from hrlc.chain import classification as clf
from hrlc.chain import features as chain_features
from hrlc.lake import layout
from hrlc.lake.identity import ProductId, config_hash
from hrlc.periods import period_range
from hrlc.processors.base import Context, Params, Processor, ProcessorError, config_param, space_param
from hrlc.products.cog import write_cog
from hrlc.products.netcdf import grid_of, read_feature_stack
from hrlc.training import samples as training_samples
from hrlc.training.query import TrainingQuery

PROB_NODATA = 255


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
    holdout: float = Field(default=0.3, gt=0, lt=1, description="Fraction of sample geometries held out")
    seed: int = 0
    max_pixels_per_polygon: int = Field(default=200, ge=1)
    space: str | None = space_param("the feature stack")
    features: str | None = config_param("the feature stack")

    @model_validator(mode="after")
    def _one_training_source(self) -> ClassificationParams:
        if (self.training is None) == (self.training_query is None):
            raise ValueError(
                "give exactly one of training (a file) and training_query (the training database)"
            )
        if (self.space is None) != (self.features is None):
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
    inputs = params.inputs_id()
    if inputs is None:
        return None
    pixels = params.model_dump(mode="json", exclude={"space"})
    return ProductId(inputs.space, config_hash(Classification.name, Classification.version, pixels))


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

    def outputs(self, params: ClassificationParams) -> list[str]:
        y, mid = params.year, model_id(params)
        ident = identity(params)
        f = ident.fields() if ident is not None else {}
        return [
            layout.key("model-checkpoint", model_id=mid, ext="joblib"),
            layout.key("model-metadata", model_id=mid),
            layout.key("class-probabilities", year=y, period="annual", **f),
            layout.key("class-map", kind="optical", year=y, period="annual", **f),
            layout.key("accuracy-report", kind="optical", year=y, period="annual", **f),
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
            return training_samples.read_training(str(params.training)), []
        except training_samples.TrainingDataError as e:
            raise ProcessorError(str(e)) from e
        except OSError as e:
            raise ProcessorError(f"cannot read training file {params.training}: {e}") from e

    def run(self, params: ClassificationParams, ctx: Context) -> list[str]:
        training, training_sets = self._training(params, ctx)
        stack_id = params.inputs_id()
        feat_key = layout.key(
            "features",
            stack=f"optical_{params.sensor}",
            year=params.year,
            **(stack_id.fields() if stack_id is not None else {}),
        )
        feat_item_key = layout.item_key(feat_key)
        if not ctx.store.exists(feat_item_key):
            raise ProcessorError(f"feature stack {feat_key} missing: run the features step first")
        feat_item = ctx.catalog.get_href(ctx.store.href(feat_item_key))
        ctx.progress(0.05, "reading features")
        with ctx.store.reading(feat_key) as path:
            stack = read_feature_stack(Path(path)).load()
        crs, transform = grid_of(stack)
        matrix, names = chain_features.to_matrix(stack)
        valid = ~np.all(np.isnan(matrix), axis=0)

        ctx.progress(0.15, "sampling training data")
        X, y, groups, _rowcol = training_samples.extract_samples(
            training,
            matrix,
            crs=crs,
            transform=transform,
            max_pixels_per_polygon=params.max_pixels_per_polygon,
            seed=params.seed,
        )
        classes_present = np.unique(y)
        if len(y) == 0:
            raise ProcessorError(f"no training sample of {params.training_source} falls inside the AOI grid")
        if len(classes_present) < 2:
            raise ProcessorError(
                f"training samples inside the AOI hold only class {classes_present.tolist()}"
            )
        held_out = training_samples.split_holdout(groups, y, fraction=params.holdout, seed=params.seed)
        ctx.check_cancelled()

        ctx.progress(0.25, f"training {params.method} on {int((~held_out).sum())} samples")
        model = clf.train(X[~held_out], y[~held_out], method=params.method, seed=params.seed)
        report = clf.accuracy_report(y[held_out], model.predict(X[held_out]), labels=classes_present)
        report.update(
            {
                "method": params.method,
                "validation": "held-out sample geometries",
                "holdout_fraction": params.holdout,
                "n_train": int((~held_out).sum()),
                "n_test": int(held_out.sum()),
                "training_source": params.training_source,
            }
        )
        if training_sets:
            report["training_sets"] = training_sets
        ctx.check_cancelled()

        ctx.progress(0.45, "predicting")
        probs, classes = clf.predict_proba(model, matrix, valid=valid)
        cmap = clf.class_map(probs, classes)
        ctx.check_cancelled()

        ctx.progress(0.8, "writing products")
        return self._write(ctx, params, model, report, names, probs, classes, cmap, crs, transform, feat_item)

    def _write(
        self,
        ctx: Context,
        params: ClassificationParams,
        model: Any,
        report: dict[str, Any],
        names: list[str],
        probs: np.ndarray,
        classes: np.ndarray,
        cmap: np.ndarray,
        crs: str,
        transform: Any,
        feat_item: pystac.Item,
    ) -> list[str]:
        ckpt_key, meta_key, prob_key, map_key, acc_key = self.outputs(params)
        mid = model_id(params)
        start, end = period_range(params.year, "annual")
        inputs = [feat_item.id]

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
                k: report[k] for k in ("overall_accuracy", "kappa", "per_class_f1", "n_test")
            },
            "checkpoint": ctx.store.href(ckpt_key),
            "checkpoint_sha256": checksum,
            "feature_stack": feat_item.id,
        }
        ctx.store.write_bytes(meta_key, json.dumps(metadata, indent=1).encode())
        ctx.store.write_bytes(acc_key, json.dumps(report, indent=1).encode())

        prob_u8 = np.where(probs.sum(axis=0) > 0, np.rint(probs * 100), PROB_NODATA).astype(np.uint8)
        write_cog(
            ctx.store,
            prob_key,
            prob_u8,
            crs=crs,
            transform=transform,
            nodata=PROB_NODATA,
            band_names=[f"p_{int(c)}" for c in classes],
            scales=[0.01] * len(classes),
            tags={"hrlc_product": "class-probabilities", "classes": ",".join(str(int(c)) for c in classes)},
        )
        write_cog(
            ctx.store,
            map_key,
            cmap,
            crs=crs,
            transform=transform,
            nodata=legend.NODATA,
            band_names=["land_cover_class"],
            colormap=legend.colormap(),
            categorical=True,
            tags={"hrlc_product": "class-map", "legend": "CCI HRLC v1.2"},
        )

        acc_props = {
            "hrlc:overall_accuracy": round(report["overall_accuracy"], 4),
            "hrlc:kappa": round(report["kappa"], 4),
            "hrlc:model_id": mid,
        }
        geom = shape(feat_item.geometry)
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
        prob_item = raster_item(
            ctx.store,
            prob_key,
            start=start,
            end=end,
            processor=self.name,
            processor_version=self.version,
            inputs=[*inputs, model_item.id],
            properties={**acc_props, "hrlc:classes": [int(c) for c in classes]},
        )
        map_item = raster_item(
            ctx.store,
            map_key,
            start=start,
            end=end,
            processor=self.name,
            processor_version=self.version,
            inputs=[*inputs, model_item.id],
            properties=acc_props,
            classes=legend.stac_classes(),
            extra_assets={
                "accuracy": pystac.Asset(
                    ctx.store.href(acc_key), media_type="application/json", roles=["metadata"]
                )
            },
        )
        return [ctx.register(i) for i in (model_item, acc_item, prob_item, map_item)]

"""The land-cover request: what a user asks of the optical land-cover chain, defined once.

`LandCoverRequest` is the one definition of the request's fields (name, type, limits, default, description).
Everything else follows from it: the `hrlc run` options (`hrlc.cli`), the openEO process `hrlc_land_cover`
(`hrlc.api.openeo.processes`: its parameters and their JSON Schemas), the planner's validation
(`hrlc.jobs.planner`) and the DAG (`hrlc.jobs.dag.land_cover_dag`). The field names are the openEO parameter
names, which the CLI options spell with dashes (`mask_snow` → `--mask-snow`); the processors' own params keep
their names (`composite` is the optical processor's `method`), as they travel in task messages.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PlainValidator,
    Tag,
    model_validator,
)
from pydantic.json_schema import JsonDict

from hrlc.lake.grid import TILE_M
from hrlc.training.query import TrainingQuery

__all__ = ["BoundingBox", "LandCoverRequest"]

URI: JsonDict = {"subtype": "uri"}
EPSG_MIN = 1000  # the smallest EPSG code of a coordinate reference system
MIN_TILE_M = 300  # metres: 30 px of 10 m (smaller tiles make more tasks than pixels worth a task)


def _crs_name(value: object) -> str:
    """An EPSG code (3035 or "3035") as 'EPSG:3035'; any other CRS text ('EPSG:3035', WKT) as given, stripped."""
    text = value.strip() if isinstance(value, str) else None
    code = int(text) if text is not None and text.isdigit() else value
    if isinstance(code, int) and not isinstance(code, bool) and code >= EPSG_MIN:
        return f"EPSG:{code}"
    if text and not text.isdigit():
        return text
    raise ValueError(f"use an EPSG code (from {EPSG_MIN}) or 'EPSG:nnnn'")


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("must be a non-empty string")
    return value.strip()


EpsgCode = Annotated[int, Field(ge=EPSG_MIN, json_schema_extra={"subtype": "epsg-code"})]
Crs = Annotated[EpsgCode | str, PlainValidator(_crs_name, json_schema_input_type=EpsgCode | str)]
"""A coordinate reference system: an EPSG code, or a CRS string ('EPSG:nnnn', WKT); validated into a string."""

Text = Annotated[str, AfterValidator(_non_empty)]


def _training_kind(value: object) -> str | None:
    """Which kind of training input a value is: a samples `file`, a database `selection`, or neither."""
    if isinstance(value, str):
        return "file"
    if isinstance(value, dict | TrainingQuery):
        return "selection"
    return None


Training = Annotated[
    Annotated[Text, Tag("file"), Field(json_schema_extra=URI)]
    | Annotated[TrainingQuery, Tag("selection"), Field(title="Training-set database selection")],
    Discriminator(
        _training_kind,
        custom_error_type="training_kind",
        custom_error_message="give a samples file (URL or path) or a selection of the training-set database "
        "{area, year, type, source, provider, roi, bbox}",
    ),
]


class BoundingBox(BaseModel):
    """An area of interest as openEO writes it: west, south, east, north in `crs`."""

    model_config = ConfigDict(title="Bounding Box", json_schema_extra={"subtype": "bounding-box"})

    west: float = Field(description="West (lower left corner, coordinate axis 1).")
    south: float = Field(description="South (lower left corner, coordinate axis 2).")
    east: float = Field(description="East (upper right corner, coordinate axis 1).")
    north: float = Field(description="North (upper right corner, coordinate axis 2).")
    crs: Crs = Field(
        default=4326,
        validate_default=True,
        description="Coordinate reference system of the extent, an EPSG code. Defaults to 4326.",
    )

    @model_validator(mode="after")
    def _not_empty(self) -> BoundingBox:
        w, s, e, n = self.bounds
        if not (w < e and s < n):
            raise ValueError(f"bbox is empty: west {w} < east {e} and south {s} < north {n} are required")
        return self

    @classmethod
    def of(cls, bounds: tuple[float, float, float, float], crs: int | str = 4326) -> BoundingBox:
        """The box of `(west, south, east, north)` in `crs`."""
        w, s, e, n = bounds
        return cls(west=w, south=s, east=e, north=n, crs=crs)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north)."""
        return (self.west, self.south, self.east, self.north)


class LandCoverRequest(BaseModel):
    """A land-cover map of an area and year: the request of the optical land-cover chain (spec §3.2.1)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    spatial_extent: BoundingBox = Field(
        validation_alias=AliasChoices("spatial_extent", "bbox"),  # `bbox`: an older spelling, still accepted
        description="The area of interest, a bounding box (in `crs`, EPSG:4326 by default).",
    )
    year: int = Field(ge=1984, le=2100, strict=True, description="The year of the map.")
    sensor: Literal["sentinel2", "landsat"] | None = Field(
        default=None,
        description="Optical sensor of the composites: `sentinel2` or `landsat`. By default the one the source "
        "holds scenes of over the AOI in the year, Landsat first before 2020 and Sentinel-2 first from 2020.",
    )
    source: Text = Field(
        json_schema_extra=URI,
        description="The STAC catalogue the input scenes come from: URL of a STAC API, or path of a static "
        "catalog.json or item collection. On the platform, one of the sources the deployment allows "
        "(HRLC_JOB_SOURCES; see docs/security.md).",
    )
    training: Training = Field(
        description="The training samples: URL or path of a vector file with a class-code column (under your "
        "own prefix users/<user>/ of the lake, or where the deployment allows: HRLC_JOB_TRAINING), or a "
        "selection of training sets in the training-set database (every field optional, all given must match).",
    )
    classifier: Literal["lightgbm", "rf"] = Field(
        default="lightgbm",
        description="The classifier: `lightgbm` (gradient-boosted trees) or `rf` (random forest).",
    )
    composite: Literal["median", "bap"] = Field(
        default="median",
        description="Compositing method of the optical scenes: `median` or `bap` (best available pixel).",
    )
    crs: Crs | None = Field(
        default=None,
        description="CRS of the output grid (EPSG code or 'EPSG:nnnn'); by default the UTM zone of the AOI.",
    )
    resolution: float | None = Field(
        default=None,
        gt=0,
        strict=True,
        description="Pixel size of the output grid, metres; by default the sensor's (10 m for Sentinel-2).",
    )
    dilate: int = Field(
        default=0, ge=0, le=50, description="Grow the cloud and shadow masks by this many pixels."
    )
    mask_snow: bool = Field(
        default=False, description="Mask snow as well as clouds in the composites (SCL 11 / QA_PIXEL bit 5)."
    )
    seed: int = Field(
        default=0, description="Random seed of the classifier (same inputs and seed → the same map)."
    )
    holdout: float = Field(
        default=0.3,
        gt=0,
        lt=1,
        description="Share of the validation groups of each class held out from training: they validate the "
        "model and give the map's area-weighted accuracy estimate (docs/accuracy.md).",
    )
    validation_block_m: float = Field(
        default=1000.0,
        gt=0,
        description="Side of the square blocks held out whole for validation, metres (smaller, down to 3 "
        "pixels, until the training samples span 20 blocks).",
    )
    group_column: Text | None = Field(
        default=None,
        description="Column of the training file whose values are held out together for validation (e.g. a "
        "parcel id), instead of spatial blocks.",
    )
    tile_size: int = Field(
        default=TILE_M,
        ge=MIN_TILE_M,
        strict=True,
        description="Side of the tiles of the product grid, metres (a multiple of the resolution): the "
        "composites and features are made per tile, shared by every job whose area touches it, and the map "
        "is their mosaic. By default 109 800 m, the size of a Sentinel-2 tile; smaller for tests and demos.",
    )

    @model_validator(mode="after")
    def _group_column_of_a_file(self) -> LandCoverRequest:
        if self.group_column is not None and not isinstance(self.training, str):
            raise ValueError("group_column goes with a training file, not a training-set selection")
        return self

    @classmethod
    def argument_names(cls) -> set[str]:
        """Every name an argument of the request may have: the fields and their older spellings."""
        names = set(cls.model_fields)
        for field in cls.model_fields.values():
            if isinstance(field.validation_alias, AliasChoices):
                names |= {c for c in field.validation_alias.choices if isinstance(c, str)}
        return names

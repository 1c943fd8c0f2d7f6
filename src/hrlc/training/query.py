"""A selection of training sets in the training-set database: the classification processor's `training_query`.

Kept apart from :mod:`hrlc.training.select` so that processors can validate it without the database driver.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["TrainingQuery", "parse_query"]


class TrainingQuery(BaseModel):
    """A selection of training sets (every field optional; all given must match)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    area: str | None = Field(default=None, description="area_name of the sets (e.g. amazonia)")
    year: int | None = Field(default=None, ge=1900, le=2100, description="year of the sets")
    type: Literal["historic", "static"] | None = None
    source: Literal["photo-interpreted", "map-agreement"] | None = None
    provider: str | None = Field(default=None, description="provider code (e.g. UniTN)")
    roi: str | None = Field(default=None, description="ROI of the sets")
    bbox: tuple[float, float, float, float] | None = Field(
        default=None, description="lon/lat west,south,east,north: samples intersecting it"
    )

    @field_validator("bbox")
    @classmethod
    def _bbox(cls, v: tuple[float, float, float, float] | None) -> tuple[float, float, float, float] | None:
        if v is not None and not (v[0] < v[2] and v[1] < v[3]):
            raise ValueError("bbox must be west,south,east,north with west < east and south < north")
        return v

    def filters(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)

    def describe(self) -> str:
        """`training-db:area=...,year=...` (the training source recorded with a model)."""
        parts = [
            f"{k}={','.join(str(x) for x in v) if isinstance(v, tuple) else v}"
            for k, v in self.filters().items()
        ]
        return "training-db:" + (";".join(parts) or "all")

    def key(self) -> str:
        """A short stable hash of the selection (part of the model id)."""
        return hashlib.sha256(json.dumps(self.filters(), sort_keys=True).encode()).hexdigest()[:10]


def parse_query(text: str) -> TrainingQuery:
    """`area=amazonia,year=2019,bbox=-60,-10,-59,-9` (or JSON) -> TrainingQuery; ValueError if malformed.

    Pairs are `key=value` separated by commas; a comma-separated part without `=` continues the previous
    value (so a bbox is written as four comma-separated numbers)."""
    text = text.strip()
    if text.startswith("{"):
        return TrainingQuery.model_validate_json(text)
    values: dict[str, list[str]] = {}
    last: str | None = None
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if "=" in part:
            key, _, value = part.partition("=")
            last = key.strip().lower()
            if last in values:
                raise ValueError(f"{last} given twice in {text!r}")
            values[last] = [value.strip()]
        elif last is None:
            raise ValueError(f"{part!r} in {text!r} is not key=value")
        else:
            values[last].append(part)
    fields: dict[str, Any] = {k: (v if k == "bbox" else ",".join(v)) for k, v in values.items()}
    return TrainingQuery.model_validate(fields)

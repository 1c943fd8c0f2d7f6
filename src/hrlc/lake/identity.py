"""Product identity (DESIGN.md §7): what made a product is part of its name, so products never collide.

A chain product is named by its spec file name plus two folder levels under the spec's folder:
- **space**: the grid it was made on: the id of a tile of the product grid (`hrlc.lake.grid`, e.g.
  `utm33n-109800-4-46`) for the products made per tile (composites, feature stacks); `aoi-<12 hex>`, a hash of
  the target grid (CRS, transform, shape) of a job's AOI, for the products of an AOI (its class map), so two
  AOIs that snap to the same grid share them.
- **config**: 16 hex of a SHA-256 over the processor, its major version and every parameter that changes the
  product's pixels, the config of its inputs included (a Merkle chain: a class map's config changes when any
  upstream composite parameter does).

Identical requests get identical keys (a rerun, or another user's job, skips finished work and reads the same
product); any pixel-changing difference gets another key, so no job can overwrite or read another's product by
accident. 64 bits of config make a deliberate collision with a given product impractical.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

SPACE_REGEX = r"[A-Za-z0-9][A-Za-z0-9-]*"
CONFIG_REGEX = r"[0-9a-f]{16}"


@dataclass(frozen=True)
class ProductId:
    """Where (`space`) and how (`config`) a product was made: the identity fields of its lake key."""

    space: str
    config: str

    def fields(self) -> dict[str, str]:
        return {"space": self.space, "config": self.config}


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def config_hash(processor: str, version: str, params: dict[str, Any]) -> str:
    """The config of a product: processor name, its major version and the pixel-changing `params` (JSON values,
    upstream configs included), hashed. Key order does not matter; values do (1 and 1.0 differ: normalise
    before)."""
    major = version.split(".")[0]
    payload = _canonical({"processor": processor, "major": major, "params": params})
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def aoi_space(crs: str, transform: Sequence[float], shape: tuple[int, int]) -> str:
    """The space of a product made on an AOI grid: `aoi-` + 12 hex of its CRS, affine transform and shape."""
    values = [round(float(v), 9) for v in list(transform)[:6]]
    payload = _canonical({"crs": str(crs), "transform": values, "shape": [int(shape[0]), int(shape[1])]})
    return "aoi-" + hashlib.sha256(payload.encode()).hexdigest()[:12]

"""The land-cover chain over the synthetic repository, set up once for every suite that runs it.

`chain_dag(repo)` is the DAG the suites run (Sentinel-2, 10 m, in the repository's UTM zone, over the whole
repository, as one tile of the product grid: `one_tile`); `land_cover_args(repo)` the `hrlc_land_cover`
arguments of an openEO process that plans into the same DAG; `run_chain` runs a DAG in process; `class_map_of`
reads the class map among a run's item hrefs. The session fixture `land_cover_reference` (tests/conftest.py)
is the 96 px repository with the class map the in-process runner makes from it, shared by the suites that
compare a platform run with it. (Imported as `landcover`: tests/ is on sys.path as the root conftest's folder.)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rich.console import Console

from hrlc import sample
from hrlc.catalog.static import StaticCatalog
from hrlc.jobs.dag import Dag, land_cover_dag, output_keys, product_key
from hrlc.jobs.request import BoundingBox, LandCoverRequest
from hrlc.jobs.runner import InProcessRunner, RunResult
from hrlc.lake import layout
from hrlc.lake.store import LocalStore, Store

YEAR = 2021
REFERENCE_SIZE = 96  # pixels of the reference repository
REFERENCE_LANDSAT_YEAR = 2018
ORIGIN_STEP_M = 61_440  # the synthetic grid's origin is a multiple of it (hrlc.sample.grid)

BBox = tuple[float, float, float, float]


def utm_bbox(repo: sample.SampleRepository) -> BBox:
    """The repository's extent in its UTM zone (EPSG:`repo.epsg`)."""
    t = repo.transform
    return (t.c, t.f + t.e * repo.size, t.c + t.a * repo.size, t.f)


def one_tile(repo: sample.SampleRepository, resolution: float = 10) -> int:
    """The smallest tile size (metres) whose one tile holds the whole repository: the repository's side made a
    multiple of `resolution` and of a divisor of the grid origin's 61 440 m (`hrlc.sample.grid`), so the tile's
    edges are the repository's (one product per period, as on the repository's own grid)."""
    side = int(repo.size * repo.transform.a)
    for tile in range(side, ORIGIN_STEP_M + 1, side):
        if ORIGIN_STEP_M % tile == 0 and tile % resolution == 0:
            return tile
    raise ValueError(f"no tile of {side} x k metres fits the grid origin at {resolution} m")


def chain_dag(
    repo: sample.SampleRepository,
    *,
    year: int = YEAR,
    source: str | Path | None = None,
    training: str | Path | dict[str, Any] | None = None,
    sensor: str = "sentinel2",
    resolution: float = 10,
    tiled: bool = True,
    bbox: BBox | None = None,
    **options: Any,
) -> Dag:
    """The land-cover DAG over the whole repository, or `bbox` (the repository's UTM coordinates), in one tile
    of the repository's size (`source`/`training` default to the repository's catalogue and training points;
    `options` are more fields of the `LandCoverRequest`, e.g. composite, classifier; a dict `training` is a
    selection of the training-set database)."""
    request = {
        "spatial_extent": BoundingBox.of(bbox or utm_bbox(repo), f"EPSG:{repo.epsg}"),
        "crs": f"EPSG:{repo.epsg}",
        "resolution": resolution,
        "year": year,
        "source": str(source or repo.catalog),
        "training": training if isinstance(training, dict) else str(training or repo.training_points),
        "sensor": sensor,
        "tile_size": one_tile(repo, resolution),
        **options,
    }
    return land_cover_dag(LandCoverRequest.model_validate(request), tiled=tiled)


def west_half(repo: sample.SampleRepository) -> BBox:
    """The western half of the repository (UTM): an AOI inside the repository's tile."""
    w, s, e, n = utm_bbox(repo)
    return (w, s, w + (e - w) / 2, n)


def chain_key(repo: sample.SampleRepository, family: str, period: str | None = None, **options: Any) -> str:
    """The lake key of the product of `family` (and `period`) that `chain_dag(repo, **options)` writes."""
    return dag_key(chain_dag(repo, **options), family, period)


def dag_item_id(dag: Dag, family: str, period: str | None = None) -> str:
    """The STAC item id of the product of `family` (and `period`) that `dag` writes."""
    from hrlc.catalog.items import item_id

    return item_id(dag_key(dag, family, period))


def dag_key(dag: Dag, family: str, period: str | None = None) -> str:
    """The lake key of the product of `family` (and `period`) that `dag` writes; of a family the tiles and the
    AOI both have (class maps), the AOI's (`product_key`: the mosaic's)."""
    if period is None and family in ("class-map", "class-probabilities"):
        return product_key(dag, family)
    found = []
    for k in output_keys(dag):
        parsed = layout.parse(k)
        if parsed.family == family and (period is None or parsed.fields.get("period") == period):
            found.append(k)
    assert len(found) == 1, (family, period, found)
    return found[0]


def run_chain(
    repo: sample.SampleRepository,
    store: Store,
    catalog: Any = None,
    *,
    resume: bool = True,
    dag: Dag | None = None,
    **options: Any,
) -> RunResult:
    """Run `dag` (default `chain_dag(repo, **options)`) in process, quietly, into `store` and `catalog`
    (default the static catalogue of the store)."""
    runner = InProcessRunner(
        store, catalog or StaticCatalog(store), resume=resume, console=Console(quiet=True)
    )
    return runner.run(dag or chain_dag(repo, **options))


def land_cover_args(repo: sample.SampleRepository, year: int = YEAR) -> dict[str, Any]:
    """`hrlc_land_cover` arguments that the planner turns into `chain_dag(repo, year=year)`."""
    w, s, e, n = utm_bbox(repo)
    return {
        "spatial_extent": {"west": w, "south": s, "east": e, "north": n, "crs": repo.epsg},
        "crs": repo.epsg,
        "resolution": 10,
        "year": year,
        "sensor": "sentinel2",
        "source": str(repo.catalog),
        "training": str(repo.training_points),
        "tile_size": one_tile(repo),
    }


def read_class_map(path: Path | str) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


def is_aoi_map(name: str) -> bool:
    """Whether an item id, asset key or downloaded file name is of the AOI's class map (a job's result; the
    tiles' maps carry tile ids, `hrlc.lake.grid`, where the AOI's carry its `aoi-` space)."""
    return name.startswith("classified_map_") and "_aoi-" in name


def is_aoi_map_file(name: str) -> bool:
    """Whether a file downloaded from a job's results is the AOI's class map itself: its item's `data` asset (the
    map's confidence COG, styles, thumbnail and accuracy files are downloaded beside it, named after its item)."""
    return is_aoi_map(name) and re.search(r"data-classified_map_\w+_\d{4}_annual\.tif$", name) is not None


def class_map_of(hrefs: list[str]) -> np.ndarray:
    """The AOI's class map among the item hrefs of a run on a local lake."""
    [href] = [h for h in hrefs if is_aoi_map(Path(h).name)]
    item = json.loads(Path(href).read_text())
    return read_class_map(item["assets"]["data"]["href"])


@dataclass
class Reference:
    """A synthetic repository and the class map the in-process runner makes from it (`chain_dag`)."""

    repo: sample.SampleRepository
    bbox: BBox  # in EPSG:repo.epsg
    class_map: np.ndarray
    lake: Path  # the local lake of that run


def make_reference(folder: Path) -> Reference:
    """Generate the 96 px repository under `folder` and run the chain on it in process."""
    repo = sample.generate(
        folder / "external", size=REFERENCE_SIZE, year=YEAR, landsat_year=REFERENCE_LANDSAT_YEAR
    )
    result = run_chain(repo, LocalStore(folder / "reference-lake"))
    return Reference(repo, utm_bbox(repo), class_map_of(result.items), folder / "reference-lake")

"""What a land-cover run will meet and cost, found in seconds before anything heavy (`hrlc run --dry-run`).

Why: a run's expensive steps (compositing, features) come before the ones that find most mistakes (no training
sample in the AOI, one class only, a month without scenes). The preview does the cheap checks first: the
scenes the source holds over the AOI in the year, per period, with their cloud cover; the training samples that
fall inside the AOI, per class; the tiles and pixels the chain will compute; and an estimate of the time and
memory from the figures measured on the benchmark machine (docs/performance.md, "Scale": a 10 980 px tile of 25
dates in 3 600 s on 2 cores, 1.6 GB peak whatever the size, since every step works in blocks).

`training_in_aoi` is also what `hrlc run` checks before it starts.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from hrlc import legend
from hrlc.errors import InputError
from hrlc.jobs.dag import Dag, target_pixels
from hrlc.jobs.request import LandCoverRequest
from hrlc.periods import optical_period, periods_of

__all__ = ["preview", "training_in_aoi"]

#: seconds per pixel of a tile and scene (optical preprocessing) and per pixel (features, classification,
#: prediction, mosaic), measured on the full-tile benchmark (2 cores, docs/performance.md "Scale")
S_PER_PIXEL_SCENE = 1244 / (10980**2 * 25)
S_PER_PIXEL = (971 + 478 + 829 + 71) / 10980**2
S_PER_TASK = 2.0  # starting a task: opening its inputs, writing its items (small AOIs are mostly this)
PEAK_GB = 1.6  # peak RSS of a whole tile-year, blocks: it does not grow with the AOI


def _aoi_lonlat(request: LandCoverRequest) -> tuple[float, float, float, float]:
    from pyproj import Transformer

    to_ll = Transformer.from_crs(request.spatial_extent.crs, "EPSG:4326", always_xy=True)
    lon0, lat0, lon1, lat1 = to_ll.transform_bounds(*request.spatial_extent.bounds, densify_pts=21)
    return (lon0, lat0, lon1, lat1)


def training_in_aoi(
    training: str, request: LandCoverRequest, group_column: str | None = None
) -> dict[str, int]:
    """Training geometries of the file `training` that touch the AOI, per class code (as text): `InputError` when
    none does, or when they hold one class only."""
    from shapely.geometry import box

    from hrlc.training.samples import read_training

    gdf = read_training(training, group_column=group_column)
    aoi = box(*request.spatial_extent.bounds)
    aoi_crs = request.spatial_extent.crs
    inside = (
        gdf[gdf.to_crs(aoi_crs).intersects(aoi)] if str(gdf.crs) != str(aoi_crs) else gdf[gdf.intersects(aoi)]
    )
    if len(inside) == 0:
        w, s, e, n = gdf.to_crs("EPSG:4326").total_bounds
        raise InputError(
            f"no training sample of {training} lies inside the AOI (the file's samples span lon {w:.4f}..{e:.4f}, "
            f"lat {s:.4f}..{n:.4f})"
        )
    counts = Counter(int(c) for c in inside["class_code"])
    if len(counts) < 2:
        raise InputError(
            f"the training samples of {training} inside the AOI hold only class {next(iter(counts))}: a classifier "
            "needs 2 classes or more"
        )
    return {str(c): n for c, n in sorted(counts.items())}


def preview(request: LandCoverRequest, dag: Dag) -> dict[str, Any]:
    """The scenes per period (count, mean cloud cover), the training samples in the AOI per class, the tiles and
    pixels to compute, and the estimated time and memory of `request` (its sensor chosen) planned as `dag`."""
    from hrlc.catalog.sources import search

    assert request.sensor is not None, "choose the sensor first (hrlc.jobs.dag.choose_sensor)"
    year = request.year
    items = search(
        request.source,
        sensor=request.sensor,
        bbox=_aoi_lonlat(request),
        datetime=f"{year}-01-01/{year}-12-31",
    )
    per_period: dict[str, list[float | None]] = {p: [] for p in periods_of(request.sensor)}
    for item in items:
        if item.datetime is None:
            continue
        cc = item.properties.get("eo:cloud_cover")
        per_period[optical_period(request.sensor, item.datetime.month)].append(
            None if cc is None else float(cc)
        )
    scenes = {
        p: {
            "scenes": len(v),
            "mean_cloud_cover": None
            if not [c for c in v if c is not None]
            else round(float(np.mean([c for c in v if c is not None])), 1),
        }
        for p, v in per_period.items()
    }
    training = request.training
    if isinstance(training, str):
        samples: dict[str, Any] = training_in_aoi(training, request, request.group_column)
    else:
        samples = {"selection": training.model_dump(mode="json", exclude_unset=True)}
    tiles = sum(t.processor == "optical-preprocessing" for t in dag.tasks)
    pixels = target_pixels(dag)
    seconds = len(dag.tasks) * S_PER_TASK + pixels * (S_PER_PIXEL_SCENE * len(items) + S_PER_PIXEL)
    return {
        "sensor": request.sensor,
        "source": request.source,
        "year": year,
        "scenes": len(items),
        "periods": scenes,
        "empty_periods": [p for p, v in scenes.items() if v["scenes"] == 0],
        "training_samples": samples,
        "class_names": {c: legend.name(int(c)) for c in samples if c.isdigit()},
        "tiles": tiles,
        "pixels": int(pixels),
        "estimated_seconds": round(seconds),
        "estimated_peak_gb": PEAK_GB,
        "estimate_basis": "measured on 2 cores (docs/performance.md, Scale); fewer scenes or more cores: less",
        "training_file": str(Path(training)) if isinstance(training, str) else None,
    }

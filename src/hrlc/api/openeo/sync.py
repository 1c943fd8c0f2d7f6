"""`POST /validation` and synchronous processing `POST /result` (small requests only).

`/result` validates the graph, then estimates its size: the pixels of the spatial extents of its
`load_collection` nodes at hrlc's 10 m grid. Graphs with `hrlc_land_cover` (a whole chain), without a
spatial extent, or above `HRLC_SYNC_MAX_PIXELS` are refused with `ProcessGraphComplexity` and a link to
batch jobs. Small requests run if they are `load_collection` → `save_result` (GTiff, one time step; see
`execute`), anything else is refused the same way.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Body, Depends, Request, Response

from hrlc.api.openeo.auth import current_user, optional_user
from hrlc.api.openeo.context import OpenEOContext, base_url, context
from hrlc.api.openeo.errors import OpenEOError
from hrlc.api.openeo.process_graphs import raise_first
from hrlc.api.openeo.processes import process_ids, validate_process

router = APIRouter()

GRID_M = 10.0  # hrlc's product grid, metres
_M_PER_DEG = 111_320.0


@router.post("/validation")
def validation(
    body: dict[str, Any] = Body(...),
    user: str | None = Depends(optional_user),
    ctx: OpenEOContext = Depends(context),
) -> dict[str, Any]:
    if "process_graph" not in body:
        raise OpenEOError(
            "ProcessGraphMissing", "Invalid process specified. It doesn't contain a process graph."
        )
    errors = validate_process(
        body, user_processes=ctx.user_process(user), collection_exists=ctx.collection_exists
    )
    return {"errors": errors}


def bbox_pixels(extent: Any, grid_m: float = GRID_M) -> float | None:
    """Pixels of a bounding-box extent at `grid_m`; None when it is not a bounding box."""
    if not isinstance(extent, dict) or not all(
        isinstance(extent.get(k), int | float) for k in ("west", "south", "east", "north")
    ):
        return None
    w, s, e, n = (float(extent[k]) for k in ("west", "south", "east", "north"))
    width, height = abs(e - w), abs(n - s)
    if extent.get("crs", 4326) in (4326, "EPSG:4326", None):
        lat = math.radians((s + n) / 2)
        width, height = width * _M_PER_DEG * max(math.cos(lat), 1e-6), height * _M_PER_DEG
    return (width / grid_m) * (height / grid_m)


def estimate_pixels(graph: dict[str, Any]) -> float | None:
    """Spatial pixels a graph loads (sum over its `load_collection` nodes); None when unbounded."""
    total = 0.0
    for node in graph.values():
        if isinstance(node, dict) and node.get("process_id") == "load_collection":
            px = bbox_pixels((node.get("arguments") or {}).get("spatial_extent"))
            if px is None:
                return None
            total += px
    return total


@router.post("/result")
def result(
    request: Request,
    body: dict[str, Any] = Body(...),
    user: str = Depends(current_user),
    ctx: OpenEOContext = Depends(context),
) -> Response:
    process = body.get("process")
    raise_first(
        validate_process(
            process, user_processes=ctx.user_process(user), collection_exists=ctx.collection_exists
        )
    )
    assert isinstance(process, dict)
    jobs = [{"rel": "related", "href": f"{base_url(request)}/jobs", "title": "Batch jobs (POST /jobs)"}]
    budget = ctx.settings.sync_max_pixels
    if "hrlc_land_cover" in process_ids(process["process_graph"]):
        raise OpenEOError(
            "ProcessGraphComplexity",
            "hrlc_land_cover runs the whole land-cover chain and is too large for synchronous processing. "
            "Please use a batch job instead (POST /jobs).",
            links=jobs,
        )
    px = estimate_pixels(process["process_graph"])
    if px is None or px > budget:
        size = "an unbounded spatial extent" if px is None else f"about {px:,.0f} pixels"
        raise OpenEOError(
            "ProcessGraphComplexity",
            f"The process is too complex for synchronous processing ({size}; the limit is {budget:,} pixels at "
            f"{GRID_M:g} m). Please use a batch job instead (POST /jobs).",
            links=jobs,
        )
    from hrlc.api.openeo.execute import run

    try:
        data, media_type = run(process, ctx, budget, user)
    except OpenEOError as e:
        e.links = e.links or jobs
        raise
    return Response(data, media_type=media_type)

"""Synchronous evaluation for `POST /result`: the graph runs in the API process through `hrlc.graph`.

Reads go to the context's catalogue and lake; `save_result` writes into a temporary folder, whose one file
is the response. The pixel budget (`HRLC_SYNC_MAX_PIXELS`) is checked again by `load_collection` on the real
grid before anything is read. Graph errors become openEO errors with their codes.
"""

from __future__ import annotations

import tempfile
from typing import Any

from hrlc.api.openeo.context import OpenEOContext
from hrlc.api.openeo.errors import OpenEOError
from hrlc.catalog.visibility import Viewer


def viewer(ctx: OpenEOContext, user: str | None) -> Viewer:
    """What `user` may read of the catalogue (`hrlc.catalog.visibility`)."""
    if user is None:
        return Viewer(None, public=tuple(ctx.settings.stac_public_collections))
    return Viewer(user, ctx.authenticator.roles(user), tuple(ctx.settings.stac_public_collections))


def check_data_available(graph: dict[str, Any], ctx: OpenEOContext, user: str | None = None) -> None:
    """400 `NoDataAvailable` before anything is queued when a `load_collection` of the graph has literal
    extents in which its collection has no item that `user` may see (`Catalog.has_items`)."""
    from hrlc.graph import GraphError
    from hrlc.graph.load import extent_box, time_range

    for node in graph.values():
        if not isinstance(node, dict) or node.get("process_id") != "load_collection":
            continue
        args = node.get("arguments") or {}
        spatial, temporal = args.get("spatial_extent"), args.get("temporal_extent")
        if any(
            isinstance(v, dict) and ({"from_parameter", "from_node"} & set(v)) for v in (spatial, temporal)
        ):
            continue  # known only when the graph runs
        try:
            area, (start, end) = extent_box(spatial), time_range(temporal)
        except GraphError as e:
            raise OpenEOError(e.code, e.message, e.status) from None
        bbox = None
        if area is not None:
            west, south, east, north = area.to_crs("EPSG:4326").boundingbox
            bbox = (west, south, east, north)
        if not ctx.catalog.has_items(str(args.get("id")), bbox, start, end, viewer(ctx, user)):
            raise OpenEOError(
                "NoDataAvailable",
                f"Collection '{args.get('id')}' has no data in the requested spatial and temporal extent.",
                400,
            )


def run(
    process: dict[str, Any], ctx: OpenEOContext, max_pixels: int, user: str | None = None
) -> tuple[bytes, str]:
    """(file bytes, media type) of a small process graph (the user's own processes may be used)."""
    from hrlc.graph import GraphEnv, GraphError, evaluate
    from hrlc.graph.evaluate import graph_id
    from hrlc.jobs.planner import user_processes_of
    from hrlc.lake.store import LocalStore

    graph = process["process_graph"]
    check_data_available(graph, ctx, user)
    with tempfile.TemporaryDirectory(prefix="hrlc-sync-") as tmp:
        out = LocalStore(tmp)
        env = GraphEnv(ctx.catalog, out, graph_id(graph), lake=ctx.lake, max_pixels=max_pixels)
        env.user_processes = user_processes_of(graph, ctx.user_process(user))
        env.viewer = viewer(ctx, user)
        try:
            results = evaluate(graph, env)
        except GraphError as e:
            raise OpenEOError(e.code, e.message, e.status) from None
        if len(results) != 1:
            raise OpenEOError(
                "ProcessGraphComplexity",
                f"The process wrote {len(results)} files (GTiff writes one per time step): synchronous "
                "processing returns one. Save as netCDF, reduce the time dimension, or use a batch job.",
            )
        return out.read_bytes(results[0].key), results[0].media_type

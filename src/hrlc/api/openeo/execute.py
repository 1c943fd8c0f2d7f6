"""Synchronous evaluation for `POST /result`: the graph runs in the API process through `hrlc.graph`.

Reads go to the catalogue (pgstac) and the lake; `save_result` writes into a temporary folder, whose one file
is the response. The pixel budget (`HRLC_SYNC_MAX_PIXELS`) is checked again by `load_collection` on the real
grid before anything is read. Graph errors become openEO errors with their codes.
"""

from __future__ import annotations

import tempfile
from typing import Any

from hrlc.api.openeo.context import OpenEOContext
from hrlc.api.openeo.errors import OpenEOError
from hrlc.catalog.visibility import Viewer, restrict


def viewer(ctx: OpenEOContext, user: str | None) -> Viewer:
    """What `user` may read of the catalogue (`hrlc.catalog.visibility`)."""
    if user is None:
        return Viewer(None, public=tuple(ctx.settings.stac_public_collections))
    return Viewer(user, ctx.authenticator.roles(user), tuple(ctx.settings.stac_public_collections))


def check_data_available(graph: dict[str, Any], ctx: OpenEOContext, user: str | None = None) -> None:
    """400 `NoDataAvailable` before anything is queued when a `load_collection` of the graph has literal
    extents in which its collection has no item that `user` may see (pgstac search; without pgstac nothing
    is checked)."""
    import json

    from hrlc.graph import GraphError
    from hrlc.graph.load import extent_box, time_range

    if ctx.collections.dsn is None:
        return
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
        search: dict[str, Any] = {"collections": [args.get("id")], "limit": 1}
        if area is not None:
            search["bbox"] = list(area.to_crs("EPSG:4326").boundingbox)
        if start or end:
            search["datetime"] = "/".join(t.isoformat() if t else ".." for t in (start, end))
        visible = restrict(None, viewer(ctx, user))
        if visible is not None:
            search["filter"], search["filter-lang"] = visible, "cql2-json"
        rows = ctx.collections._query("SELECT search(%s::jsonb)", [json.dumps(search)])
        page = rows[0][0] if rows else {}
        if not (json.loads(page) if isinstance(page, str) else page).get("features"):
            raise OpenEOError(
                "NoDataAvailable",
                f"Collection '{args.get('id')}' has no data in the requested spatial and temporal extent.",
                400,
            )


def run(
    process: dict[str, Any], ctx: OpenEOContext, max_pixels: int, user: str | None = None
) -> tuple[bytes, str]:
    """(file bytes, media type) of a small process graph (the user's own processes may be used)."""
    from hrlc.catalog.factory import open_catalog
    from hrlc.graph import GraphEnv, GraphError, evaluate
    from hrlc.graph.evaluate import graph_id
    from hrlc.jobs.planner import user_processes_of
    from hrlc.lake.store import LocalStore, open_store

    graph = process["process_graph"]
    check_data_available(graph, ctx, user)
    lake = open_store(ctx.settings.store, ctx.settings)
    catalog = open_catalog(lake, ctx.settings)
    try:
        with tempfile.TemporaryDirectory(prefix="hrlc-sync-") as tmp:
            out = LocalStore(tmp)
            env = GraphEnv(catalog, out, graph_id(graph), lake=lake, max_pixels=max_pixels)
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
    finally:
        close = getattr(catalog, "close", None)
        if close is not None:
            close()

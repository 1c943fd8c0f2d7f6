"""The `process-graph` processor: an openEO process graph of standard processes, evaluated by `hrlc.graph`.

Batch jobs whose graph is not the land-cover chain (`hrlc_land_cover`) become one task of this processor.
`load_collection` reads the worker's catalogue; `save_result` writes `results/{graph_id}/` in the lake and
registers a STAC Item per file in `hrlc-results`. The files a graph writes are known only once it has run
(one per time step for GTiff), so `outputs()` is empty and a redelivered task evaluates again, writing the
same keys (the graph id is a hash of the graph).
"""

from __future__ import annotations

from typing import Any

from hrlc.catalog.visibility import Viewer
from hrlc.graph import GraphEnv, GraphError, evaluate
from hrlc.graph.evaluate import graph_id
from hrlc.processors.base import Context, Params, Processor, ProcessorError


class ProcessGraphParams(Params):
    process_graph: dict[str, Any]
    user_processes: dict[str, dict[str, Any]] = {}  # the job owner's processes the graph uses (id -> process)


class ProcessGraph(Processor[ProcessGraphParams]):
    name = "process-graph"
    version = "0.1.0"
    Params = ProcessGraphParams

    def outputs(self, params: ProcessGraphParams) -> list[str]:
        return []

    def run(self, params: ProcessGraphParams, ctx: Context) -> list[str]:
        gid = graph_id(params.process_graph)
        ctx.progress(0.05, f"evaluating process graph {gid}")
        env = GraphEnv(
            catalog=ctx.catalog,
            store=ctx.store,
            graph_id=gid,
            register=ctx.register,
            cancelled=ctx.cancelled,
            user_processes=dict(params.user_processes),
            viewer=None if ctx.owner is None else Viewer(ctx.owner),
        )
        try:
            results = evaluate(params.process_graph, env)
        except GraphError as e:
            raise ProcessorError(f"{e.code}: {e.message}") from None
        ctx.progress(1.0, f"{len(results)} file(s) written")
        return [r.item_href for r in results if r.item_href]

"""Evaluate an openEO process graph: parse it with openeo-pg-parser-networkx, run it on the registry.

`evaluate(graph, env)` returns the files `save_result` wrote (a graph without `save_result` saves its result
as GTiff if it is a raster cube, else as JSON). Failures become `GraphError`s with openEO error codes:
openeo-processes-dask's own exceptions keep their names (e.g. `DimensionNotAvailable`), bad arguments are
`ProcessParameterInvalid`, anything else is `Internal` (500).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hrlc.errors import Cancelled
from hrlc.graph.env import GraphEnv, Result, graph_id
from hrlc.graph.errors import GraphError

__all__ = ["GraphEnv", "GraphError", "Result", "evaluate", "graph_id"]


def _own_processes(env: GraphEnv) -> dict[str, tuple[dict[str, Any], Callable[..., Any]]]:
    """hrlc's `load_collection` and `save_result`, bound to `env` (their full descriptions are the API's)."""
    from hrlc.graph import load, save

    def load_collection(**kwargs: Any) -> Any:
        cube = load.load_collection(env, **_known(kwargs, load.load_collection))
        env.crs = env.crs or cube.attrs.get("crs")
        return cube

    def save_result(**kwargs: Any) -> bool:
        return save.save_result(env, **_known(kwargs, save.save_result))

    return {
        "load_collection": ({"id": "load_collection"}, load_collection),
        "save_result": ({"id": "save_result"}, save_result),
    }


def _known(kwargs: dict[str, Any], func: Callable[..., Any]) -> dict[str, Any]:
    import inspect

    params = inspect.signature(func).parameters
    return {k: v for k, v in kwargs.items() if k in params and k != "env"}


def _openeo_error(e: Exception) -> GraphError:
    from openeo_processes_dask.process_implementations.exceptions import OpenEOException

    if isinstance(e, GraphError):
        return e
    if isinstance(e, MemoryError):
        return GraphError("ProcessGraphComplexity", f"the process graph needs more memory than there is: {e}")
    if isinstance(e, OpenEOException):
        return GraphError(type(e).__name__, str(e) or type(e).__name__)
    if isinstance(e, KeyError | ValueError | TypeError):
        return GraphError("ProcessParameterInvalid", f"{type(e).__name__}: {e}")
    return GraphError("Internal", f"{type(e).__name__}: {e}", 500)


def _user_process(pid: str, udp: dict[str, Any], registry: Any) -> Any:
    """A user-defined process as a registry entry: its graph, evaluated with the arguments as parameters
    (the parameters' defaults fill the ones not given)."""
    from openeo_pg_parser_networkx import OpenEOProcessGraph
    from openeo_pg_parser_networkx.process_registry import Process

    graph = OpenEOProcessGraph(pg_data={"process_graph": udp["process_graph"]})
    defaults = {p["name"]: p.get("default") for p in udp.get("parameters") or [] if "name" in p}

    def run_udp(**kwargs: Any) -> Any:
        parameters = {**defaults, **{k: v for k, v in kwargs.items() if k in defaults or not defaults}}
        return graph.to_callable(process_registry=registry)(named_parameters=parameters)

    run_udp.__name__ = pid
    spec = {"id": pid, **{k: v for k, v in udp.items() if k != "process_graph"}}
    return Process(spec=spec, implementation=run_udp)  # the registry wraps it (parameter references)


def _returns_boolean(process_graph: dict[str, Any]) -> bool:
    """Whether the result node's process returns booleans (openeo-processes-dask gives them as 1.0 / 0.0)."""
    from hrlc.graph.registry import _types, standard

    node = next((n for n in process_graph.values() if isinstance(n, dict) and n.get("result")), None)
    spec = standard().get(str((node or {}).get("process_id")), ({}, None))[0]
    types = _types((spec.get("returns") or {}).get("schema"))
    return "boolean" in types and not types & {"number", "integer", "string"}


def _as_boolean(value: Any) -> Any:
    import numpy as np

    if isinstance(value, list | tuple):
        return [_as_boolean(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_as_boolean(v) for v in value.tolist()] if value.ndim else _as_boolean(value.item())
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | float | np.number):
        return None if value != value else bool(value)  # NaN: no data
    return value


def evaluate(process_graph: dict[str, Any], env: GraphEnv) -> list[Result]:
    """Run a process graph (`{node id: node}`) in `env`; returns the files written (see the module doc)."""
    from openeo_pg_parser_networkx import OpenEOProcessGraph

    from hrlc.graph import save
    from hrlc.graph.complexity import check_complexity
    from hrlc.graph.registry import build

    check_complexity(process_graph, env.user_processes.get)
    try:
        parsed = OpenEOProcessGraph(pg_data={"process_graph": process_graph})
    except Exception as e:  # noqa: BLE001 - pydantic and networkx report malformed graphs in many ways
        raise GraphError("ProcessGraphInvalid", f"The process graph is invalid: {e}") from None
    registry = build(_own_processes(env))
    for pid, udp in env.user_processes.items():
        registry[pid] = _user_process(pid, udp, registry)
    try:
        with env.source.raster_env():  # the threaded dask reads of odc-stac have their own (configure_rio)
            value = parsed.to_callable(process_registry=registry)()
            if not env.results:
                if not save.is_raster(value) and _returns_boolean(process_graph):
                    value = _as_boolean(value)
                save.write(env, value, "GTiff" if save.is_raster(value) else "JSON")
    except Cancelled:
        raise
    except Exception as e:  # noqa: BLE001 - every failure leaves as an openEO error
        raise _openeo_error(e) from e
    return env.results


__all__ = ["GraphEnv", "GraphError", "Result", "evaluate", "graph_id"]

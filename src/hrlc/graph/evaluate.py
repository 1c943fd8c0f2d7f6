"""Evaluate an openEO process graph: parse it with openeo-pg-parser-networkx, run it on the registry.

`evaluate(graph, env)` returns the files `save_result` wrote (a graph without `save_result` saves its result
as GTiff if it is a raster cube, else as JSON). Failures become `GraphError`s with openEO error codes:
openeo-processes-dask's own exceptions keep their names (e.g. `DimensionNotAvailable`), bad arguments are
`ProcessParameterInvalid`, anything else is `Internal` (500).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import pystac

from hrlc import __version__
from hrlc.graph.errors import GraphError
from hrlc.lake.store import Store


class Searchable(Protocol):
    def collection_ids(self) -> list[str]: ...
    def search(
        self,
        collection: str,
        bbox: tuple[float, float, float, float] | None = None,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
    ) -> list[pystac.Item]: ...


@dataclass(frozen=True)
class Result:
    """A file `save_result` wrote: its key in the store, media type, and STAC Item href when registered."""

    key: str
    media_type: str
    item_href: str | None = None


def graph_id(process_graph: dict[str, Any]) -> str:
    """16 hex digits of the graph's canonical JSON: the same graph writes the same keys (idempotent)."""
    canonical = json.dumps(process_graph, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass
class GraphEnv:
    """What a graph evaluation reads from (`catalog`, the products in `lake`) and writes to (`store`)."""

    catalog: Searchable
    store: Store
    graph_id: str
    lake: Store | None = None  # where the catalogue's products live (default: `store`)
    max_pixels: int | None = None
    register: Callable[[pystac.Item], str] | None = None  # set: every result file gets a STAC Item
    cancelled: Callable[[], bool] = lambda: False
    user_processes: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> process (with graph)
    results: list[Result] = field(default_factory=list)
    loaded: list[pystac.Item] = field(default_factory=list)
    crs: str | None = None

    @property
    def source(self) -> Store:
        return self.lake or self.store

    def check_cancelled(self) -> None:
        if self.cancelled():
            from hrlc.processors.base import Cancelled

            raise Cancelled("task cancelled")

    def record(self, key: str, media_type: str, start: dt.datetime, end: dt.datetime, raster: bool) -> None:
        href = None
        if self.register is not None:
            href = self.register(self._item(key, media_type, start, end, raster))
        self.results.append(Result(key, media_type, href))

    def _item(self, key: str, media_type: str, start: dt.datetime, end: dt.datetime, raster: bool) -> Any:
        from hrlc.catalog.items import file_item, raster_item
        from hrlc.graph.save import PROCESSOR

        common: dict[str, Any] = {
            "start": start,
            "end": end,
            "processor": PROCESSOR,
            "processor_version": __version__,
            "inputs": list(dict.fromkeys(i.id for i in self.loaded)),
            "properties": {"hrlc:graph_id": self.graph_id},
        }
        if raster:
            return raster_item(self.store, key, **common)
        bboxes = [i.bbox for i in self.loaded if i.bbox] or [[-180.0, -90.0, 180.0, 90.0]]
        w, s = min(b[0] for b in bboxes), min(b[1] for b in bboxes)
        e, n = max(b[2] for b in bboxes), max(b[3] for b in bboxes)
        geometry = {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}
        return file_item(
            self.store, key, geometry=geometry, bbox=[w, s, e, n], media_type=media_type, **common
        )


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
    from hrlc.graph.registry import build
    from hrlc.processors.base import Cancelled

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

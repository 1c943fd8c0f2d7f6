"""The process registry: openeo-processes-dask's standard processes plus hrlc's own.

openeo-processes-dask implements the math, logic, array and cube processes on xarray/dask; it has no
`load_collection` or `save_result` (a back end must provide them) and its `load_stac` validates URLs over the
internet, so it is left out. Every implementation is wrapped by its `process` decorator, which resolves the
parameter references openeo-pg-parser-networkx hands in.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

OWN = frozenset({"load_collection", "save_result"})  # hrlc's, bound to a graph's environment
LEFT_OUT = frozenset({"load_stac", "load_url", "load_geojson", "save_result", "load_collection"})


@lru_cache(maxsize=1)
def standard() -> dict[str, tuple[dict[str, Any], Callable[..., Any]]]:
    """{process id: (spec, implementation)} of the openeo-processes-dask processes hrlc offers."""
    quiet = logging.getLogger("openeo_processes_dask.process_implementations")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # it warns on import that its optional ML processes are missing
    try:
        impls = importlib.import_module("openeo_processes_dask.process_implementations")
    finally:
        quiet.setLevel(level)
    specs = importlib.import_module("openeo_processes_dask.specs")
    found: dict[str, tuple[dict[str, Any], Callable[..., Any]]] = {}
    for name, func in inspect.getmembers(impls, inspect.isfunction):
        spec = getattr(specs, name, None)
        if name in LEFT_OUT or not isinstance(spec, dict):
            continue
        found[name.removeprefix("_")] = (spec, func)  # `_sum` implements `sum` (a Python builtin name)
    math = importlib.import_module("openeo_processes_dask.process_implementations.math")
    found.setdefault("e", (specs.e, math.e))  # a constant, not picked up as a function member
    return found


def build(own: Mapping[str, tuple[dict[str, Any], Callable[..., Any]]]) -> Any:
    """A pg-parser `ProcessRegistry` with the standard processes and `own` ({id: (spec, function)})."""
    from openeo_pg_parser_networkx import ProcessRegistry
    from openeo_pg_parser_networkx.process_registry import Process
    from openeo_processes_dask.process_implementations.core import process

    reg = ProcessRegistry(wrap_funcs=[process])
    for name, (spec, func) in {**standard(), **own}.items():
        reg[name] = Process(spec=spec, implementation=func)
    return reg

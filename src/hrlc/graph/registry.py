"""The process registry: openeo-processes-dask's standard processes plus hrlc's own.

openeo-processes-dask implements the math, logic, array and cube processes on xarray/dask; it has no
`load_collection` or `save_result` (a back end must provide them) and its `load_stac` validates URLs over the
internet, so it is left out. Every implementation is wrapped by its `process` decorator, which resolves the
parameter references openeo-pg-parser-networkx hands in.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import logging
import math
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
    for name, (spec, func) in standard().items():
        reg[name] = Process(spec=spec, implementation=nulls_as_nan(func, spec))
    for name, (spec, func) in own.items():
        reg[name] = Process(spec=spec, implementation=func)
    return reg


def _types(schema: Any) -> set[str]:
    """The JSON types a parameter schema (or a list of alternatives) allows."""
    found: set[str] = set()
    for alt in schema if isinstance(schema, list) else [schema]:
        if isinstance(alt, dict):
            t = alt.get("type")
            found |= set(t) if isinstance(t, list) else {t} if isinstance(t, str) else set()
    return found


def _item_types(schema: Any) -> set[str]:
    found: set[str] = set()
    for alt in schema if isinstance(schema, list) else [schema]:
        if isinstance(alt, dict) and isinstance(alt.get("items"), dict):
            found |= _types(alt["items"])
    return found


def _plain(value: Any) -> Any:
    """pg-parser reads `[]` as an empty `TemporalIntervals`: give arrays back as lists."""
    from openeo_pg_parser_networkx.pg_schema import TemporalIntervals

    return [] if isinstance(value, TemporalIntervals) and not value.root else value


def nulls_as_nan(func: Callable[..., Any], spec: dict[str, Any]) -> Callable[..., Any]:
    """Give openeo-processes-dask's numeric implementations openEO's no-data as NaN: a `null` argument of a
    number parameter, and `null` elements of a number array, become NaN (results of NaN become `null` again
    in JSON). Empty arrays stay arrays; the spec's defaults fill parameters the implementation requires."""
    number = {
        p["name"]
        for p in spec.get("parameters", [])
        if {"number", "null"} <= _types(p.get("schema")) and "boolean" not in _types(p.get("schema"))
    }
    number_arrays = {
        p["name"]
        for p in spec.get("parameters", [])
        if "array" in _types(p.get("schema")) and "number" in _item_types(p.get("schema"))
        and not _item_types(p.get("schema")) - {"number", "null"}
    }  # fmt: skip

    names = list(inspect.signature(func).parameters)
    required = {
        n for n, prm in inspect.signature(func).parameters.items() if prm.default is inspect.Parameter.empty
    }
    defaults = {
        p["name"]: p["default"]
        for p in spec.get("parameters", [])
        if p.get("optional") and "default" in p and p["name"] in required
    }  # the spec's defaults of parameters the implementation requires (e.g. text_concat's separator)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        given = set(kwargs) | set(names[: len(args)])
        kwargs = {**{k: v for k, v in defaults.items() if k not in given}, **kwargs}
        for name, value in kwargs.items():
            value = _plain(value)
            if value is None and name in number:
                value = math.nan
            elif name in number_arrays and isinstance(value, list) and any(v is None for v in value):
                value = [math.nan if v is None else v for v in value]
            kwargs[name] = value
        return func(*args, **kwargs)

    return wrapper

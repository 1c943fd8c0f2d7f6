"""The examples of the openEO process descriptions (arguments → returns) through `hrlc.graph.evaluate`.

openeo-processes-dask does not pass all of them (null handling of comparisons and logic, dates as strings,
empty arrays, `quantiles`, `extrema`...); hrlc gives its numeric processes no-data as NaN, fills the spec's
defaults and returns booleans as booleans. The share that passes is a floor that must not drop."""

from __future__ import annotations

import json
import math
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest

from hrlc.catalog.static import StaticCatalog
from hrlc.graph import GraphEnv, GraphError, evaluate
from hrlc.graph.evaluate import graph_id
from hrlc.graph.registry import standard
from hrlc.lake.store import LocalStore

FLOOR = 0.78  # 255 of 317 examples passed when this was written


def _same(got: Any, want: Any) -> bool:
    if isinstance(got, bool) or isinstance(want, bool):
        return type(got) is type(want) and got == want
    if got is None or want is None:
        return got is None and want is None
    if isinstance(got, int | float) and isinstance(want, int | float):
        return math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9)
    if isinstance(got, list) and isinstance(want, list):
        return len(got) == len(want) and all(_same(a, b) for a, b in zip(got, want, strict=True))
    return bool(got == want)


def _examples() -> list[tuple[str, dict[str, Any], Any]]:
    specs = json.loads((files("hrlc.api.openeo") / "specs" / "standard-processes.json").read_text())
    offered = standard()
    return [
        (p["id"], ex["arguments"], ex["returns"])
        for p in specs["processes"]
        if p["id"] in offered
        for ex in p.get("examples", [])
        if "arguments" in ex and "returns" in ex
    ]


def _run(store: LocalStore, pid: str, arguments: dict[str, Any]) -> Any:
    graph = {"a": {"process_id": pid, "arguments": arguments, "result": True}}
    (result,) = evaluate(graph, GraphEnv(StaticCatalog(store), store, graph_id(graph)))
    return json.loads(store.read_bytes(result.key))


@pytest.mark.filterwarnings("ignore")
def test_process_examples_pass_above_the_floor(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    examples = _examples()
    passed, failed = 0, []
    for pid, arguments, want in examples:
        try:
            got = _run(store, pid, arguments)
        except GraphError as e:
            got = f"{e.code}: {e.message}"
        if _same(got, want):
            passed += 1
        else:
            failed.append(pid)
    assert len(examples) > 300
    assert passed / len(examples) >= FLOOR, sorted(set(failed))


@pytest.mark.parametrize(
    ("pid", "arguments", "want"),
    [
        ("eq", {"x": 1, "y": 1}, True),  # a boolean, not 1.0
        ("between", {"x": 1, "min": 0, "max": 1, "exclude_max": True}, False),
        ("add", {"x": 1, "y": None}, None),  # no-data propagates
        ("mean", {"data": [1, None, 3]}, 2),  # and is ignored by reducers
        ("text_concat", {"data": ["a", "b"]}, "ab"),  # the spec's default separator
        ("count", {"data": []}, 0),
    ],
)
def test_openeo_semantics(tmp_path: Path, pid: str, arguments: dict[str, Any], want: Any) -> None:
    assert _same(_run(LocalStore(tmp_path), pid, arguments), want)

"""How large and how deep an openEO process graph may be: checked before a graph is stored, planned or
evaluated, so that a small request cannot cost unbounded work and never fails deep inside the evaluator.

- `max_nodes`: nodes of the graph, its callbacks and every use of a user-defined process (each use counts:
  a process used twice is evaluated twice);
- `max_chain`: the longest chain of `from_node` references in one graph (openeo-pg-parser-networkx resolves
  them recursively and fails with a misleading `TypeError` from 128 on);
- `max_nesting`: callbacks and user-defined processes inside each other;
- user-defined processes that call each other in a cycle are invalid (they recursed until Python gave up);
- `array_create` with literal arguments may make at most `max_array_elements` elements.

`resolve(id)` returns the user-defined process of that id (a dict with `process_graph`) or None for
everything else (standard processes, hrlc's own, unknown ids: other checks report those).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hrlc.graph.errors import GraphError

Resolve = Callable[[str], dict[str, Any] | None]


@dataclass(frozen=True)
class GraphLimits:
    max_nodes: int = 2000
    max_chain: int = 100
    max_nesting: int = 16
    max_array_elements: int = 10_000_000


def check_complexity(graph: Any, resolve: Resolve | None = None, limits: GraphLimits | None = None) -> None:
    """Raise `GraphError` (ProcessGraphComplexity, ProcessGraphInvalid) for a graph over the limits."""
    _Walk(resolve or (lambda pid: None), limits or GraphLimits()).graph(graph, [], 0)


class _Walk:
    def __init__(self, resolve: Resolve, limits: GraphLimits):
        self.resolve = resolve
        self.limits = limits
        self.nodes = 0

    def graph(self, graph: Any, calls: list[str], nesting: int) -> None:
        if not isinstance(graph, dict):
            return  # not a graph: the validation reports it
        if nesting > self.limits.max_nesting:
            raise GraphError(
                "ProcessGraphComplexity",
                f"callbacks and user-defined processes nest more than {self.limits.max_nesting} levels deep",
            )
        self.nodes += len(graph)
        if self.nodes > self.limits.max_nodes:
            raise GraphError(
                "ProcessGraphComplexity",
                f"the process graph has more than {self.limits.max_nodes} nodes (callbacks and uses of "
                "user-defined processes included); split it or make it smaller",
            )
        chain = longest_chain(graph)
        if chain > self.limits.max_chain:
            raise GraphError(
                "ProcessGraphComplexity",
                f"the process graph has a chain of {chain} nodes, each using the one before; at most "
                f"{self.limits.max_chain} are supported",
            )
        for node in graph.values():
            if not isinstance(node, dict):
                continue
            pid = node.get("process_id")
            arguments: dict[str, Any] = node["arguments"] if isinstance(node.get("arguments"), dict) else {}
            if pid == "array_create":
                self._array_create(arguments)
            for value in arguments.values():
                if isinstance(value, dict) and "process_graph" in value:
                    self.graph(value["process_graph"], calls, nesting + 1)
            if not isinstance(pid, str):
                continue
            udp = self.resolve(pid)
            if udp is not None:
                if pid in calls:
                    cycle = " → ".join([*calls[calls.index(pid) :], pid])
                    raise GraphError(
                        "ProcessGraphInvalid", f"user-defined processes call each other in a cycle: {cycle}"
                    )
                self.graph(udp.get("process_graph"), [*calls, pid], nesting + 1)

    def _array_create(self, arguments: dict[str, Any]) -> None:
        data, repeat = arguments.get("data", []), arguments.get("repeat", 1)
        if isinstance(data, list) and isinstance(repeat, int | float) and not isinstance(repeat, bool):
            size = len(data) * repeat
            if size > self.limits.max_array_elements:
                raise GraphError(
                    "ProcessGraphComplexity",
                    f"array_create would make {size:.0f} elements; at most {self.limits.max_array_elements}",
                )


def longest_chain(graph: dict[str, Any]) -> int:
    """Nodes on the longest path of `from_node` references in one graph (callbacks not entered); a cycle of
    references is `ProcessGraphInvalid`."""
    uses = {node_id: _from_nodes(node) & graph.keys() for node_id, node in graph.items()}
    length: dict[str, int] = {}
    for start in graph:
        if start in length:
            continue
        stack: list[tuple[str, bool]] = [(start, False)]
        on_path: set[str] = set()
        while stack:
            node_id, done = stack.pop()
            if done:
                on_path.discard(node_id)
                length[node_id] = 1 + max((length[u] for u in uses[node_id]), default=0)
                continue
            if node_id in length:
                continue
            if node_id in on_path:
                raise GraphError("ProcessGraphInvalid", f"node '{node_id}' depends on itself (a cycle)")
            on_path.add(node_id)
            stack.append((node_id, True))
            for used in uses[node_id]:
                if used in on_path:
                    raise GraphError("ProcessGraphInvalid", f"node '{used}' depends on itself (a cycle)")
                if used not in length:
                    stack.append((used, False))
    return max(length.values(), default=0)


def _from_nodes(node: Any) -> set[str]:
    """The node ids a node's arguments refer to (`{"from_node": id}`), callbacks not entered."""
    found: set[str] = set()
    stack: list[Any] = [node.get("arguments")] if isinstance(node, dict) else []
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            if "process_graph" in value:
                continue
            if isinstance(value.get("from_node"), str) and len(value) == 1:
                found.add(value["from_node"])
                continue
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return found

"""What one evaluation of a process graph works with: where it reads (the catalogue and the lake), where it
writes (a store, with a STAC Item per file when registering), its cancel check and what it has produced.
`graph_id` names the evaluation by its graph, so the same graph writes the same keys."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pystac

from hrlc import __version__
from hrlc.catalog.port import Catalog
from hrlc.catalog.visibility import Viewer
from hrlc.errors import Cancelled
from hrlc.lake.store import Store

PROCESSOR = "process-graph"  # the processor named in the STAC Items of results


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

    catalog: Catalog
    store: Store
    graph_id: str
    lake: Store | None = None  # where the catalogue's products live (default: `store`)
    max_pixels: int | None = None
    register: Callable[[pystac.Item], str] | None = None  # set: every result file gets a STAC Item
    cancelled: Callable[[], bool] = lambda: False
    user_processes: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> process (with graph)
    viewer: Viewer | None = None  # on whose behalf `load_collection` reads (None: everything, embedded)
    results: list[Result] = field(default_factory=list)
    loaded: list[pystac.Item] = field(default_factory=list)
    crs: str | None = None

    @property
    def source(self) -> Store:
        return self.lake or self.store

    def check_cancelled(self) -> None:
        if self.cancelled():
            raise Cancelled("task cancelled")

    def record(self, key: str, media_type: str, start: dt.datetime, end: dt.datetime, raster: bool) -> None:
        href = None
        if self.register is not None:
            href = self.register(self._item(key, media_type, start, end, raster))
        self.results.append(Result(key, media_type, href))

    def _item(self, key: str, media_type: str, start: dt.datetime, end: dt.datetime, raster: bool) -> Any:
        from hrlc.catalog.items import file_item, raster_item

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

"""The processes of the openEO API: what `/processes` lists and what `/validation` checks graphs against.

- the openEO standard processes that openeo-processes-dask implements (specs of openeo-processes
  2.0.0-rc.1, bundled in `specs/standard-processes.json`: math, logic, comparison, arrays, text and cube
  processes; not `run_udf`, `anomaly`, `climatological_normal`, `resample_cube_temporal`, nor the ML and
  proposal processes), with `load_collection` and `save_result` described for our collections and formats;
- hrlc's own processes, which expand into the chain's DAG: `hrlc_land_cover` (AOI, year, sensor, source,
  training set, classifier, composite → class map).

`validate_process` walks a process (and its callbacks): node structure, `from_node` references, one result
node, known process ids (predefined or the user's own), required and unknown arguments, and the collection
ids of `load_collection`. It returns openEO error objects; nothing is executed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

SPECS = Path(__file__).with_name("specs") / "standard-processes.json"

OUTPUT_FORMATS: dict[str, dict[str, Any]] = {
    "GTiff": {
        "title": "GeoTIFF (Cloud Optimized GeoTIFF)",
        "description": "Cloud Optimized GeoTIFF, one file per product, deflate-compressed, with overviews.",
        "gis_data_types": ["raster"],
        "parameters": {},
    },
    "netCDF": {
        "title": "Network Common Data Form (CF-1.8)",
        "description": "netCDF-4 with CF-1.8 metadata (the feature stacks and cubes of hrlc).",
        "gis_data_types": ["raster"],
        "parameters": {},
    },
}

_BBOX_SCHEMA: dict[str, Any] = {
    "title": "Bounding Box",
    "type": "object",
    "subtype": "bounding-box",
    "required": ["west", "south", "east", "north"],
    "properties": {
        "west": {"type": "number", "description": "West (lower left corner, coordinate axis 1)."},
        "south": {"type": "number", "description": "South (lower left corner, coordinate axis 2)."},
        "east": {"type": "number", "description": "East (upper right corner, coordinate axis 1)."},
        "north": {"type": "number", "description": "North (upper right corner, coordinate axis 2)."},
        "crs": {
            "description": "Coordinate reference system of the extent, an EPSG code. Defaults to 4326.",
            "anyOf": [{"type": "integer", "subtype": "epsg-code", "minimum": 1000}],
            "default": 4326,
        },
    },
}

HRLC_LAND_COVER: dict[str, Any] = {
    "id": "hrlc_land_cover",
    "summary": "Land-cover map of an area and year (the HRLC processing chain)",
    "description": (
        "Runs the ESA CCI High Resolution Land Cover chain for one area of interest and one year: optical "
        "pre-processing and compositing of the `sensor`'s scenes from `source`, per-year features, training "
        "of the `classifier` on the `training` samples and classification. Returns the class map (one band "
        "`class`, the HRLC legend codes, 0 = no data) as a raster data cube with the dimensions `x`, `y` and "
        "`bands`. The chain runs as a batch job on the platform's workers; products are registered in the "
        "catalogue as STAC items."
    ),
    "categories": ["cubes", "machine learning", "hrlc"],
    "parameters": [
        {
            "name": "spatial_extent",
            "description": "The area of interest, a bounding box (in `crs`, EPSG:4326 by default).",
            "schema": _BBOX_SCHEMA,
        },
        {
            "name": "year",
            "description": "The year of the map.",
            "schema": {"type": "integer", "minimum": 1984, "maximum": 2100},
        },
        {
            "name": "sensor",
            "description": (
                "Optical sensor of the composites: `sentinel2` or `landsat`. By default Landsat before "
                "2020 and Sentinel-2 from 2020."
            ),
            "schema": [{"type": "string", "enum": ["sentinel2", "landsat"]}, {"type": "null"}],
            "optional": True,
            "default": None,
        },
        {
            "name": "source",
            "description": "The STAC catalogue (URL or path of a STAC catalog/API) the input scenes come from: "
            "one of the sources this deployment allows (HRLC_JOB_SOURCES; see docs/security.md).",
            "schema": {"type": "string", "subtype": "uri"},
        },
        {
            "name": "training",
            "description": "The training samples: URL or path of a vector file with a class-code column (under "
            "your own prefix users/<user>/ of the lake, or where the deployment allows: HRLC_JOB_TRAINING), or a "
            "selection of training sets in the training-set database (every field optional, all given must "
            "match).",
            "schema": [
                {"type": "string", "subtype": "uri"},
                {
                    "type": "object",
                    "title": "Training-set database selection",
                    "properties": {
                        "area": {"type": "string"},
                        "year": {"type": "integer"},
                        "type": {"type": "string", "enum": ["historic", "static"]},
                        "source": {"type": "string", "enum": ["photo-interpreted", "map-agreement"]},
                        "provider": {"type": "string"},
                        "roi": {"type": "string"},
                        "bbox": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
                    },
                    "additionalProperties": False,
                },
            ],
        },
        {
            "name": "classifier",
            "description": "The classifier: `lightgbm` (gradient-boosted trees) or `rf` (random forest).",
            "schema": {"type": "string", "enum": ["lightgbm", "rf"]},
            "optional": True,
            "default": "lightgbm",
        },
        {
            "name": "composite",
            "description": "Compositing method of the optical scenes: `median` or `bap` (best available pixel).",
            "schema": {"type": "string", "enum": ["median", "bap"]},
            "optional": True,
            "default": "median",
        },
        {
            "name": "crs",
            "description": "CRS of the output grid (EPSG code or 'EPSG:nnnn'); by default the UTM zone of the AOI.",
            "schema": [
                {"type": "integer", "subtype": "epsg-code", "minimum": 1000},
                {"type": "string"},
                {"type": "null"},
            ],
            "optional": True,
            "default": None,
        },
        {
            "name": "resolution",
            "description": "Pixel size of the output grid, metres; by default the sensor's (10 m for Sentinel-2).",
            "schema": [{"type": "number", "exclusiveMinimum": 0}, {"type": "null"}],
            "optional": True,
            "default": None,
        },
        {
            "name": "dilate",
            "description": "Dilation of the cloud mask, pixels.",
            "schema": {"type": "integer", "minimum": 0},
            "optional": True,
            "default": 0,
        },
        {
            "name": "mask_snow",
            "description": "Mask snow as well as clouds in the composites.",
            "schema": {"type": "boolean"},
            "optional": True,
            "default": False,
        },
        {
            "name": "seed",
            "description": "Random seed of the classifier (same inputs and seed → the same map).",
            "schema": {"type": "integer"},
            "optional": True,
            "default": 0,
        },
    ],
    "returns": {
        "description": "The land-cover class map, a raster data cube (x, y, bands=[class]).",
        "schema": {
            "type": "object",
            "subtype": "datacube",
            "dimensions": [{"type": "spatial", "axis": ["x", "y"]}, {"type": "bands"}],
        },
    },
    "exceptions": {
        "NoDataInExtent": {"message": "The catalogue has no scenes of the sensor in the extent and year."},
        "TrainingSamplesMissing": {"message": "No training sample falls inside the extent."},
    },
    "links": [
        {
            "rel": "about",
            "href": "https://climate.esa.int/en/projects/high-resolution-land-cover/",
            "title": "ESA CCI High Resolution Land Cover",
        }
    ],
}

_LOAD_COLLECTION_NOTE = (
    "\n\nOn this back-end the collections are hrlc's product collections (see `/collections`); cubes are "
    "loaded from the catalogue with odc-stac."
)
_SAVE_RESULT_NOTE = (
    "\n\nOn this back-end results are written to the Data Lake and registered as STAC items; formats: "
    + ", ".join(OUTPUT_FORMATS)
    + "."
)


@lru_cache(maxsize=1)
def predefined() -> dict[str, dict[str, Any]]:
    """Every predefined process by id (standard processes and hrlc's)."""
    specs = json.loads(SPECS.read_text())["processes"]
    out: dict[str, dict[str, Any]] = {p["id"]: p for p in specs}
    out["load_collection"] = {**out["load_collection"]}
    out["load_collection"]["description"] += _LOAD_COLLECTION_NOTE
    out["save_result"] = {**out["save_result"]}
    out["save_result"]["description"] += _SAVE_RESULT_NOTE
    out[HRLC_LAND_COVER["id"]] = HRLC_LAND_COVER
    return dict(sorted(out.items()))


# ------------------------------------------------------------------------------------------ validation
def _error(code: str, message: str) -> dict[str, Any]:
    return {"code": code, "message": message}


def _required(spec: dict[str, Any]) -> list[str]:
    return [p["name"] for p in spec.get("parameters", []) if not p.get("optional") and "default" not in p]


def validate_process(
    process: Any,
    *,
    user_processes: Callable[[str], dict[str, Any] | None] | None = None,
    collection_exists: Callable[[str], bool] | None = None,
) -> list[dict[str, Any]]:
    """The openEO errors of a process (`{"process_graph": ...}` with optional metadata); [] when valid.

    `user_processes(id)` resolves the user's own processes, `collection_exists(id)` checks
    `load_collection` ids (skipped when None)."""
    if not isinstance(process, dict) or "process_graph" not in process:
        return [
            _error("ProcessGraphMissing", "Invalid process specified. It doesn't contain a process graph.")
        ]
    errors: list[dict[str, Any]] = []
    _walk(process["process_graph"], "", errors, user_processes, collection_exists)
    if not errors:
        errors += _complexity(process["process_graph"], user_processes)
    if not errors:
        errors += _parse(process)
    return errors


def _complexity(
    graph: Any, user_processes: Callable[[str], dict[str, Any] | None] | None
) -> list[dict[str, Any]]:
    """Size, depth and cycles of user-defined processes (`hrlc.graph.complexity`), before any parser runs."""
    from hrlc.graph.complexity import check_complexity
    from hrlc.graph.errors import GraphError

    procs = predefined()
    seen: dict[str, dict[str, Any] | None] = {}  # one database read per process, however often it is used

    def resolve(pid: str) -> dict[str, Any] | None:
        if pid in procs or user_processes is None:
            return None
        if pid not in seen:
            seen[pid] = user_processes(pid)
        return seen[pid]

    try:
        check_complexity(graph, resolve)
    except GraphError as e:
        return [_error(e.code, e.message)]
    return []


def _parse(process: dict[str, Any]) -> list[dict[str, Any]]:
    """A second opinion from openeo-pg-parser-networkx, the parser the evaluation uses."""
    try:
        from openeo_pg_parser_networkx import OpenEOProcessGraph
    except ImportError:  # pragma: no cover - optional
        return []
    try:
        OpenEOProcessGraph(pg_data={"process_graph": process["process_graph"]})
    except Exception as e:  # the parser raises bare Exceptions
        return [_error("ProcessGraphInvalid", f"Invalid process graph specified: {e}")]
    return []


def _walk(
    graph: Any,
    where: str,
    errors: list[dict[str, Any]],
    user_processes: Callable[[str], dict[str, Any] | None] | None,
    collection_exists: Callable[[str], bool] | None,
) -> None:
    if not isinstance(graph, dict) or not graph:
        errors.append(
            _error("ProcessGraphInvalid", f"Invalid process graph{where}: an object of nodes is needed.")
        )
        return
    results = [k for k, n in graph.items() if isinstance(n, dict) and n.get("result") is True]
    if len(results) != 1:
        errors.append(
            _error(
                "ProcessGraphInvalid", f"Invalid process graph{where}: {len(results)} result nodes, 1 needed."
            )
        )
    procs = predefined()
    for node_id, node in graph.items():
        at = f"node '{node_id}'{where}"
        if not isinstance(node, dict) or not isinstance(node.get("process_id"), str):
            errors.append(_error("ProcessGraphInvalid", f"Invalid process graph: {at} has no process_id."))
            continue
        args = node.get("arguments", {})
        if not isinstance(args, dict):
            errors.append(
                _error("ProcessGraphInvalid", f"Invalid process graph: {at} has no arguments object.")
            )
            continue
        pid = node["process_id"]
        namespace = node.get("namespace")
        spec = None
        if namespace in (None, "backend"):
            spec = procs.get(pid)
        if spec is None and namespace in (None, "user") and user_processes is not None:
            spec = user_processes(pid)
        if spec is None:
            ns = namespace or "backend"
            errors.append(
                _error(
                    "ProcessUnsupported",
                    f"Process with identifier '{pid}' is not available in namespace '{ns}'.",
                )
            )
        else:
            for name in _required(spec):
                if name not in args:
                    errors.append(
                        _error(
                            "ProcessParameterRequired",
                            f"Process '{pid}' parameter '{name}' is required ({at}).",
                        )
                    )
            known = {p["name"] for p in spec.get("parameters", [])}
            for name in args:
                if name not in known:
                    errors.append(
                        _error(
                            "ProcessParameterUnsupported",
                            f"Process '{pid}' does not support parameter '{name}' ({at}).",
                        )
                    )
            cid = args.get("id")
            if (
                pid == "load_collection"
                and isinstance(cid, str)
                and collection_exists
                and not collection_exists(cid)
            ):
                errors.append(_error("CollectionNotFound", f"Collection '{cid}' does not exist."))
        _refs(args, graph, at, errors)
        for name, value in args.items():
            if isinstance(value, dict) and "process_graph" in value:
                _walk(
                    value["process_graph"], f" in '{name}' of {at}", errors, user_processes, collection_exists
                )


def _refs(value: Any, graph: dict[str, Any], at: str, errors: list[dict[str, Any]]) -> None:
    """Check `from_node` references of an argument value (not descending into callbacks)."""
    if isinstance(value, dict):
        if "process_graph" in value:
            return
        if "from_node" in value and len(value) == 1:
            if not isinstance(value["from_node"], str):
                errors.append(
                    _error(
                        "ProcessGraphInvalid",
                        f"Invalid process graph: {at} has a from_node that is not a node id.",
                    )
                )
            elif value["from_node"] not in graph:
                errors.append(
                    _error("ProcessGraphInvalid", f"Invalid process graph: {at} refers to unknown node "
                           f"'{value['from_node']}'.")
                )  # fmt: skip
            return
        for v in value.values():
            _refs(v, graph, at, errors)
    elif isinstance(value, list):
        for v in value:
            _refs(v, graph, at, errors)


def process_ids(graph: Any) -> set[str]:
    """Every process id used in a process graph, callbacks included."""
    out: set[str] = set()
    if isinstance(graph, dict):
        for node in graph.values():
            if isinstance(node, dict):
                if isinstance(node.get("process_id"), str):
                    out.add(node["process_id"])
                for v in (node.get("arguments") or {}).values():
                    if isinstance(v, dict) and "process_graph" in v:
                        out |= process_ids(v["process_graph"])
    return out

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

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from hrlc.jobs.request import LandCoverRequest

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


class _OpenEOSchema(GenerateJsonSchema):
    """JSON Schemas as openEO process descriptions write them (draft-07): no titles made up from field names,
    a tuple of one type as an array of `items` of that type."""

    def field_title_should_be_set(self, schema: object) -> bool:
        return False

    def tuple_schema(self, schema: core_schema.TupleSchema) -> JsonSchemaValue:
        out = super().tuple_schema(schema)
        items = out.pop("prefixItems", None)
        if items is not None and "items" not in out:
            out["items"] = items[0] if all(item == items[0] for item in items) else items
        return out


def parameters_of(request: type[BaseModel]) -> list[dict[str, Any]]:
    """The openEO process parameters of a request model: one per field, in order, with its description, its
    JSON Schema (openEO's list of alternatives where the field takes several types; openEO subtypes come from
    the fields' `json_schema_extra`) and, for an optional field, `optional` and its default."""
    document = request.model_json_schema(by_alias=False, schema_generator=_OpenEOSchema)
    definitions = {name: _optional_properties(d) for name, d in document.get("$defs", {}).items()}
    parameters = []
    for name, field in request.model_fields.items():
        schema = _inline(document["properties"][name], definitions)
        schema.pop("description", None)
        schema.pop("default", None)
        if len(schema) == 1 and ("anyOf" in schema or "oneOf" in schema):
            (schema,) = schema.values()
        parameter: dict[str, Any] = {"name": name, "description": field.description, "schema": schema}
        if not field.is_required():
            parameter |= {"optional": True, "default": field.default}
        parameters.append(parameter)
    return parameters


def _optional_properties(definition: dict[str, Any]) -> dict[str, Any]:
    """An object's properties that default to null as openEO writes them: just their type (an object's
    property is optional by being left out of `required`)."""
    properties = {}
    for name, prop in definition.get("properties", {}).items():
        alternatives = [a for a in prop.get("anyOf", []) if a != {"type": "null"}]
        if prop.get("default", ...) is None and len(alternatives) == 1:
            rest = {k: v for k, v in prop.items() if k not in ("anyOf", "default")}
            prop = {**alternatives[0], **rest}
        properties[name] = prop
    return {**definition, "properties": properties} if properties else definition


def _inline(schema: Any, definitions: dict[str, Any]) -> Any:
    """`schema` with every `$ref` to `definitions` replaced by the definition (openEO clients resolve none)."""
    if isinstance(schema, list):
        return [_inline(s, definitions) for s in schema]
    if not isinstance(schema, dict):
        return schema
    ref = schema.get("$ref", "")
    if ref.startswith("#/$defs/"):
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        return _inline({**definitions[ref.removeprefix("#/$defs/")], **rest}, definitions)
    return {k: _inline(v, definitions) for k, v in schema.items()}


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
    "parameters": parameters_of(LandCoverRequest),
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

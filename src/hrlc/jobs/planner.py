"""The planner: an openEO process graph -> a DAG of tasks; ready tasks -> task messages on RabbitMQ.

A graph with the HRLC process `hrlc_land_cover` (its arguments: a `LandCoverRequest`, `hrlc.jobs.request`),
optionally wrapped by `save_result`, expands into `land_cover_dag` (composites -> features -> class map); a
graph of standard processes (`load_collection`, openeo-processes-dask's, `save_result`) becomes one
`process-graph` task. Anything else raises `PlanError` with a message a user can act on. `publish_ready` publishes the
tasks of a job whose dependencies have finished and marks them queued, in one database transaction (a
publish that fails rolls the marking back; a crash after publishing only re-publishes, which is harmless).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import psycopg
from pydantic import ValidationError

from hrlc.jobs import jobstore
from hrlc.jobs.allowlist import InputAllowlist, InputRefused
from hrlc.jobs.broker import Publisher
from hrlc.jobs.dag import Dag, Task, land_cover_dag, sensor_for
from hrlc.jobs.dag import target_pixels as dag_pixels
from hrlc.jobs.jobstore import SCHEMA
from hrlc.jobs.messages import TaskMessage
from hrlc.jobs.request import LandCoverRequest
from hrlc.processors.base import ProcessorError

LAND_COVER = "hrlc_land_cover"
UserProcesses = Callable[[str], "dict[str, Any] | None"]
PASS_THROUGH = {"save_result"}
ARGUMENTS = LandCoverRequest.argument_names()


class PlanError(ValueError):
    """A process graph that cannot become a batch job (the message says why)."""


@lru_cache(maxsize=1)
def processor_versions() -> dict[str, str]:
    from hrlc.processors.base import registry

    return {name: cls.version for name, cls in registry().items()}


def _graph(process: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(process, dict):
        raise PlanError("a process must be a JSON object with a process_graph")
    graph = process.get("process_graph", process if "process_graph" not in process else None)
    if not isinstance(graph, dict) or not graph:
        raise PlanError("the process has no process_graph")
    for node_id, node in graph.items():
        if not isinstance(node, dict) or not isinstance(node.get("process_id"), str):
            raise PlanError(f"process graph node {node_id!r} has no process_id")
    return graph


def user_processes_of(graph: dict[str, Any], resolve: UserProcesses | None) -> dict[str, dict[str, Any]]:
    """The user-defined processes a graph uses, also through other user-defined processes ({id: process});
    `resolve(id)` gives the user's process or None."""
    from hrlc.graph.registry import OWN, standard

    known = set(standard()) | OWN
    found: dict[str, dict[str, Any]] = {}
    todo = sorted(_all_process_ids(graph) - known)
    while todo and resolve is not None:
        pid = todo.pop()
        udp = None if pid in found else resolve(pid)
        if udp is not None:
            found[pid] = udp
            todo += sorted(_all_process_ids(udp.get("process_graph") or {}) - known - set(found))
    return found


def _graph_dag(graph: dict[str, Any], resolve: UserProcesses | None) -> Dag:
    """One `process-graph` task for a graph of standard (and the user's own) processes."""
    from hrlc.graph.evaluate import graph_id
    from hrlc.graph.registry import OWN, standard

    udps = user_processes_of(graph, resolve)
    known = set(standard()) | OWN | set(udps)
    unknown = sorted(_all_process_ids(graph) - known)
    if unknown:
        raise PlanError(f"process {unknown[0]!r} is not supported in batch jobs")
    params: dict[str, Any] = {"process_graph": graph}
    if udps:  # the definitions as they are when the job is planned
        params["user_processes"] = udps
    dag = Dag()
    dag.add(Task(f"process-graph:{graph_id(graph)}", "process-graph", params))
    return dag


def _all_process_ids(graph: Any) -> set[str]:
    """Process ids of a graph and of the graphs in its callbacks."""
    found: set[str] = set()
    if isinstance(graph, dict):
        for node in graph.values():
            if isinstance(node, dict) and isinstance(node.get("process_id"), str):
                found.add(node["process_id"])
            for value in (node.get("arguments") or {}).values() if isinstance(node, dict) else ():
                found |= _nested(value)
    return found


def _nested(value: Any) -> set[str]:
    if isinstance(value, dict):
        if isinstance(value.get("process_graph"), dict):
            return _all_process_ids(value["process_graph"])
        return set().union(*(_nested(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_nested(v) for v in value)) if value else set()
    return set()


class TooLarge(PlanError):
    """The job needs more than its pixel budget."""


def target_pixels(dag: Dag) -> float:
    """`hrlc.jobs.dag.target_pixels`, PlanError if a grid cannot be made."""
    try:
        return dag_pixels(dag)
    except ProcessorError as e:
        raise PlanError(f"the AOI cannot be put on a grid: {e}") from None


class InputNotAllowed(PlanError):
    """The job names a source or training input the deployment does not allow."""


@dataclass(frozen=True)
class Admission:
    """What a job of `user` may ask for through the platform: its pixel budget and the inputs it may name."""

    user: str
    max_pixels: int | None = None
    inputs: InputAllowlist | None = None


def plan(
    process: dict[str, Any], resolve: UserProcesses | None = None, admit: Admission | None = None
) -> Dag:
    """The DAG of a batch job's process (`{"process_graph": {...}}`); `PlanError` if it cannot run.

    A graph with `hrlc_land_cover` expands into the land-cover chain; any other graph of standard processes
    becomes one `process-graph` task; `resolve(id)` gives the user's own processes it may use. With `admit`,
    a land-cover job naming a source or training input outside its allowlist is `InputNotAllowed`, one whose
    target grid has more pixels than its budget `TooLarge`."""
    graph = _graph(process)
    nodes = [(nid, n) for nid, n in graph.items() if n["process_id"] == LAND_COVER]
    if not nodes:
        dag = _graph_dag(graph, resolve)
        check(dag)
        return dag
    others = sorted({n["process_id"] for n in graph.values()} - {LAND_COVER} - PASS_THROUGH)
    if others:
        raise PlanError(
            f"process {others[0]!r} is not supported in batch jobs: use {LAND_COVER} "
            "(optionally followed by save_result)"
        )
    if len(nodes) != 1:
        raise PlanError(f"a batch job needs exactly one {LAND_COVER} node, found {len(nodes)}")
    _, node = nodes[0]
    args = node.get("arguments") or {}
    if not isinstance(args, dict):
        raise PlanError(f"{LAND_COVER} arguments must be an object")
    unknown = sorted(set(args) - ARGUMENTS)
    if unknown:
        raise PlanError(f"unknown {LAND_COVER} arguments {unknown}; known: {sorted(ARGUMENTS)}")
    for name, value in args.items():
        if isinstance(value, dict) and ({"from_parameter", "from_node", "process_graph"} & set(value)):
            raise PlanError(f"{LAND_COVER} argument {name!r} must be a value, not a reference")
    try:
        request = LandCoverRequest.model_validate(args)
    except ValidationError as e:
        raise PlanError(_invalid_request(e)) from None
    if admit is not None and admit.inputs is not None:
        try:  # before anything opens them
            training = request.training
            admit.inputs.check_source(request.source)
            admit.inputs.check_training(
                training if isinstance(training, str) else training.filters(), admit.user
            )
        except InputRefused as e:
            raise InputNotAllowed(str(e)) from None
    try:
        dag = land_cover_dag(sensor_for(request))  # a search of one item per sensor when none is named
    except ValidationError as e:
        raise PlanError(_invalid(e)) from None
    except (TypeError, ValueError, ProcessorError) as e:
        raise PlanError(f"invalid {LAND_COVER} arguments: {e}") from None
    check(dag)
    if admit is not None and admit.max_pixels is not None:
        pixels = target_pixels(dag)
        if pixels > admit.max_pixels:
            raise TooLarge(
                f"the job's grid has {pixels:.3g} pixels, more than the {admit.max_pixels:.3g} of your budget: "
                "split the area, or ask an operator for a larger budget"
            )
    return dag


def check(dag: Dag) -> None:
    """Every task's params valid for its processor (before anything is stored or queued)."""
    from hrlc.processors.base import registry

    procs = registry()
    for task in dag.order():
        cls = procs.get(task.processor)
        if cls is None:
            raise PlanError(f"no processor {task.processor!r} is registered")
        try:
            cls().parse_params(task.params)
        except ValidationError as e:
            raise PlanError(_invalid(e, task.processor)) from None


def _invalid_request(e: ValidationError) -> str:
    """One line for the first error of `hrlc_land_cover`'s arguments: what is wrong, or what a missing one is."""
    first = e.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    field = LandCoverRequest.model_fields.get(where)
    if first["type"] == "missing":
        return f"{LAND_COVER} needs {where}" + (f": {field.description}" if field else "")
    return f"invalid {LAND_COVER} argument {where}: {first['msg'].removeprefix('Value error, ')}"


def _invalid(e: ValidationError, processor: str | None = None) -> str:
    """One line for the first error of a processor's params (`processor` found by the model's name if None)."""
    if processor is None:
        from hrlc.processors.base import registry

        names = [name for name, cls in registry().items() if cls.Params.__name__ == e.title]
        processor = names[0] if names else LAND_COVER
    first = e.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"invalid {processor} parameter {where}: {first['msg']}"


@contextlib.contextmanager
def _conn(conn: psycopg.Connection[Any] | None) -> Iterator[psycopg.Connection[Any]]:
    if conn is not None:
        yield conn
        return
    with jobstore.connect() as own:
        yield own


def publish_ready(
    job_id: str,
    *,
    conn: psycopg.Connection[Any] | None = None,
    publisher: Publisher | None = None,
) -> list[str]:
    """Publish the job's created tasks whose dependencies have all finished; mark them queued.

    Returns the ids of the tasks published. Uses the caller's connection (and its transaction) if given."""
    own_pub = publisher is None
    pub = publisher or Publisher()
    try:
        with _conn(conn) as c, c.transaction():
            rows = c.execute(
                f"select id, run, processor, processor_version, params, status, attempts, depends_on, outputs "
                f"from {SCHEMA}.tasks where job_id = %s order by seq for update",
                (job_id,),
            ).fetchall()
            status = {r["id"]: r["status"] for r in rows}
            outputs = {r["id"]: r["outputs"] for r in rows}
            published = []
            for r in rows:
                if r["status"] != "created" or any(status.get(d) != "finished" for d in r["depends_on"]):
                    continue
                msg = TaskMessage(
                    job_id=job_id,
                    run=r["run"],
                    task_id=r["id"],
                    processor=r["processor"],
                    processor_version=r["processor_version"],
                    params=r["params"],
                    inputs=[h for d in r["depends_on"] for h in outputs.get(d) or []],
                    attempt=int(r["attempts"]) + 1,
                )
                pub.publish_task(msg)
                c.execute(
                    f"update {SCHEMA}.tasks set status = 'queued', updated = now() "
                    "where job_id = %s and id = %s",
                    (job_id, r["id"]),
                )
                jobstore.add_log(c, job_id, "info", f"task queued for {r['processor']}", r["id"])
                if not jobstore.live_workers(c, r["processor"]):
                    jobstore.add_log(
                        c,
                        job_id,
                        "warning",
                        f"no live worker for processor {r['processor']} {r['processor_version']}: "
                        "the task stays queued until one starts",
                        r["id"],
                    )
                published.append(r["id"])
            return published
    finally:
        if own_pub:
            pub.close()

"""A job as a DAG of tasks: each task names a processor and its params; edges say what must finish first.

The same DAG is run by the in-process runner (embedded default) or, later, by the planner that publishes
ready tasks to RabbitMQ. `land_cover_dag` builds the optical land-cover chain of spec §3.2.1 from a
`LandCoverRequest` (`hrlc.jobs.request`): optical preprocessing -> features -> classification.
"""

from __future__ import annotations

import graphlib
from dataclasses import dataclass, field
from typing import Any

from hrlc.jobs.request import LandCoverRequest
from hrlc.lake.identity import ProductId


@dataclass(frozen=True)
class Task:
    id: str
    processor: str
    params: dict[str, Any]
    depends_on: tuple[str, ...] = ()


@dataclass
class Dag:
    tasks: list[Task] = field(default_factory=list)

    def add(self, task: Task) -> Task:
        if any(t.id == task.id for t in self.tasks):
            raise ValueError(f"duplicate task id {task.id}")
        self.tasks.append(task)
        return task

    def order(self) -> list[Task]:
        """Tasks in an order where every task comes after the tasks it depends on."""
        by_id = {t.id: t for t in self.tasks}
        for t in self.tasks:
            missing = set(t.depends_on) - set(by_id)
            if missing:
                raise ValueError(f"task {t.id} depends on unknown tasks {sorted(missing)}")
        sorter = graphlib.TopologicalSorter({t.id: set(t.depends_on) for t in self.tasks})
        return [by_id[i] for i in sorter.static_order()]


def default_sensor(year: int) -> str:
    """The optical sensor of a year in the spec's chain: Landsat before 2020, Sentinel-2 from 2020."""
    return "sentinel2" if year >= 2020 else "landsat"


def land_cover_dag(request: LandCoverRequest) -> Dag:
    """The optical land-cover chain of a request (one AOI and year): each of its fields goes to the params of
    the processors that use it (`composite` is the optical processor's `method`, `dilate` its `dilate_px`,
    `classifier` the classification's `method`; a training-set selection its `training_query`).

    Each task's params name the identity (`hrlc.lake.identity`) of the products it reads, computed here by the
    processor that makes them, so every key of the chain says where and how its product was made; task ids
    carry the product's space and config too (a job's tasks stay distinct when the fan-out adds tiles).
    Raises ProcessorError (a ValueError's sibling) for an AOI that makes no grid, ValidationError for bad
    params."""
    from hrlc.processors.classification import Classification
    from hrlc.processors.classification import identity as classification_identity
    from hrlc.processors.features import Features
    from hrlc.processors.optical_preprocessing import OpticalPreprocessing

    year, training = request.year, request.training
    sensor = request.sensor or default_sensor(year)
    dag = Dag()
    pre_params = {
        "bbox": list(request.spatial_extent.bounds),
        "bbox_crs": request.spatial_extent.crs,
        "crs": request.crs,
        "resolution": request.resolution,
        "year": year,
        "sensor": sensor,
        "source": request.source,
        "method": request.composite,
        "dilate_px": request.dilate,
        "mask_snow": request.mask_snow,
    }
    pre_proc = OpticalPreprocessing()
    composites = pre_proc.identity(pre_proc.parse_params(pre_params))
    pre = dag.add(Task(_task_id(pre_proc.name, sensor, year, composites), pre_proc.name, pre_params))
    feat_proc = Features()
    feat_params = {"year": year, "sensor": sensor, "space": composites.space, "composites": composites.config}
    stack = feat_proc.identity(feat_proc.parse_params(feat_params))
    assert stack is not None
    feat = dag.add(
        Task(_task_id(feat_proc.name, sensor, year, stack), feat_proc.name, feat_params, (pre.id,))
    )
    cls_params = {
        "year": year,
        "sensor": sensor,
        **(
            {"training": training}
            if isinstance(training, str)
            else {"training_query": training.model_dump(mode="json", exclude_unset=True)}
        ),
        "method": request.classifier,
        "seed": request.seed,
        "space": stack.space,
        "features": stack.config,
    }
    cls_proc = Classification()
    products = classification_identity(cls_proc.parse_params(cls_params))
    assert products is not None
    dag.add(Task(_task_id(cls_proc.name, sensor, year, products), cls_proc.name, cls_params, (feat.id,)))
    return dag


def _task_id(processor: str, sensor: str, year: int, ident: ProductId) -> str:
    return f"{processor}:{sensor}:{year}:{ident.space}:{ident.config[:8]}"


def output_keys(dag: Dag) -> list[str]:
    """Every lake key the DAG's tasks write, in task order (each processor's `outputs`)."""
    from hrlc.processors.base import registry

    procs = registry()
    keys: list[str] = []
    for task in dag.order():
        proc = procs[task.processor]()
        keys += proc.outputs(proc.parse_params(task.params))
    return keys


def product_key(dag: Dag, family: str) -> str:
    """The key of the one product of `family` (`hrlc.lake.layout`) the DAG writes, e.g. its class map."""
    from hrlc.lake import layout

    found = [k for k in output_keys(dag) if layout.parse(k).family == family]
    if len(found) != 1:
        raise KeyError(f"the DAG writes {len(found)} products of {family!r}, not one")
    return found[0]

"""A job as a DAG of tasks: each task names a processor and its params; edges say what must finish first.

The same DAG is run by the in-process runner (embedded default) or, later, by the planner that publishes
ready tasks to RabbitMQ. `land_cover_dag` builds the optical land-cover chain of spec §3.2.1:
optical preprocessing -> features -> classification.
"""

from __future__ import annotations

import graphlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


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


def land_cover_dag(
    *,
    bbox: tuple[float, float, float, float],
    year: int,
    source: str,
    training: str | Mapping[str, Any],
    sensor: str | None = None,
    bbox_crs: str = "EPSG:4326",
    crs: str | None = None,
    resolution: float | None = None,
    composite_method: str = "median",
    dilate_px: int = 0,
    mask_snow: bool = False,
    classifier: str = "lightgbm",
    seed: int = 0,
) -> Dag:
    """The optical land-cover chain for one AOI and year. `training` is a samples file, or a selection of the
    training-set database (`hrlc.training.query.TrainingQuery` fields: area, year, type, source, provider,
    roi, bbox)."""
    sensor = sensor or default_sensor(year)
    dag = Dag()
    pre = dag.add(
        Task(
            f"optical-preprocessing:{sensor}:{year}",
            "optical-preprocessing",
            {
                "bbox": list(bbox),
                "bbox_crs": bbox_crs,
                "crs": crs,
                "resolution": resolution,
                "year": year,
                "sensor": sensor,
                "source": source,
                "method": composite_method,
                "dilate_px": dilate_px,
                "mask_snow": mask_snow,
            },
        )
    )
    feat = dag.add(Task(f"features:{sensor}:{year}", "features", {"year": year, "sensor": sensor}, (pre.id,)))
    dag.add(
        Task(
            f"classification:{sensor}:{year}",
            "classification",
            {
                "year": year,
                "sensor": sensor,
                **({"training": training} if isinstance(training, str) else {"training_query": dict(training)}),
                "method": classifier,
                "seed": seed,
            },
            (feat.id,),
        )
    )
    return dag

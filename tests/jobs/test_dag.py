import graphlib

import pytest

from hrlc.jobs.dag import Dag, Task, default_sensor, land_cover_dag
from hrlc.jobs.request import BoundingBox, LandCoverRequest
from hrlc.processors.base import registry


def test_land_cover_dag_order_and_processors() -> None:
    extent = BoundingBox.of((14.5, 45.8, 14.6, 45.9))
    dag = land_cover_dag(
        LandCoverRequest(spatial_extent=extent, year=2021, source="cat.json", training="t.gpkg")
    )
    order = [t.processor for t in dag.order()]
    assert order == ["optical-preprocessing", "features", "classification", "prediction", "mosaic"]
    procs = registry()
    for task in dag.tasks:  # every task's params are valid for its processor
        proc = procs[task.processor]()
        params = proc.parse_params(task.params)
        assert proc.outputs(params)
    assert dag.tasks[0].params["sensor"] == "sentinel2"


def test_default_sensor_follows_the_spec() -> None:
    assert default_sensor(2018) == "landsat" and default_sensor(2020) == "sentinel2"


def test_bad_dags_are_refused() -> None:
    dag = Dag()
    dag.add(Task("a", "features", {}, ("b",)))
    with pytest.raises(ValueError, match="unknown tasks"):
        dag.order()
    dag.add(Task("b", "features", {}, ("a",)))
    with pytest.raises(graphlib.CycleError):
        dag.order()
    with pytest.raises(ValueError, match="duplicate"):
        dag.add(Task("a", "features", {}))


def test_params_are_validated() -> None:
    proc = registry()["optical-preprocessing"]()
    with pytest.raises(ValueError, match="bbox"):
        proc.parse_params({"bbox": [1, 1, 0, 0], "year": 2021, "sensor": "sentinel2", "source": "x"})
    with pytest.raises(ValueError):
        proc.parse_params({"bbox": [0, 0, 1, 1], "year": 2021, "sensor": "modis", "source": "x"})

"""A batch job of standard processes: one `process-graph` task on a worker process through RabbitMQ, its
results are STAC items of files equal to numpy on the same pixels; a graph that fails makes the job `error`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio

from graph.conftest import BANDS, Lake, make_lake
from hrlc.jobs.broker import Topology
from hrlc.jobs.service import JobService

from .conftest import cluster, wait_job

USER = "alice"
WINDOW = (8, 4, 40, 30)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    return make_lake(tmp_path_factory.mktemp("graph-job-lake"))


@pytest.fixture
def jobs(jobs_dsn: str, topo: Topology, lake: Lake, tmp_path: Path) -> Iterator[JobService]:
    with cluster(jobs_dsn, topo, lake.root, [["--processor", "process-graph"]], tmp_path / "log") as service:
        yield service


def graph(lake: Lake, bands: list[str]) -> dict:
    return {"process_graph": {
        "load": {"process_id": "load_collection", "arguments": {
            "id": "hrlc-optical-composites", "spatial_extent": lake.bbox(*WINDOW), "bands": bands}},
        "max": {"process_id": "reduce_dimension", "arguments": {"data": {"from_node": "load"}, "dimension": "t",
                "reducer": {"process_graph": {"m": {"process_id": "max", "arguments": {
                    "data": {"from_parameter": "data"}}, "result": True}}}}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "max"}, "format": "GTiff"},
                 "result": True},
    }}  # fmt: skip


def test_graph_job_runs_on_a_worker_and_registers_its_results(jobs: JobService, lake: Lake) -> None:
    job = jobs.create_job(USER, graph(lake, ["nir"]), title="max nir")
    jobs.start_job(USER, job.id)
    assert wait_job(jobs, USER, job.id) == "finished", jobs.logs(USER, job.id)
    assert [t["processor"] for t in jobs.tasks(USER, job.id)] == ["process-graph"]
    [href] = jobs.results(USER, job.id)
    item = json.loads(Path(href).read_text())
    assert item["collection"] == "hrlc-results" and item["properties"]["hrlc:processor"] == "process-graph"
    x0, y0, x1, y1 = WINDOW
    stack = np.stack([lake.data[m][BANDS.index("nir"), y0:y1, x0:x1] for m in sorted(lake.data)]).astype(
        float
    )
    stack[stack == 0] = np.nan
    with rasterio.open(item["assets"]["data"]["href"]) as src:
        np.testing.assert_array_equal(src.read(1), np.nanmax(stack, axis=0))


def test_graph_job_with_a_bad_band_ends_in_error(jobs: JobService, lake: Lake) -> None:
    job = jobs.create_job(USER, graph(lake, ["thermal"]))
    jobs.start_job(USER, job.id)
    assert wait_job(jobs, USER, job.id) == "error"
    messages = " ".join(e.message for e in jobs.logs(USER, job.id))
    assert "ProcessParameterInvalid" in messages and "thermal" in messages
    assert jobs.results(USER, job.id, partial=True) == []


def test_graph_job_with_a_user_defined_process(jobs: JobService, lake: Lake) -> None:
    """The owner's own process travels with the task: the worker evaluates it without the API's store."""
    doubled = {
        "parameters": [{"name": "data"}],
        "process_graph": {"a": {"process_id": "apply", "arguments": {"data": {"from_parameter": "data"},
            "process": {"process_graph": {"m": {"process_id": "multiply", "arguments": {
                "x": {"from_parameter": "x"}, "y": 2}, "result": True}}}}, "result": True}},
    }  # fmt: skip
    process = graph(lake, ["nir"])
    process["process_graph"]["double"] = {
        "process_id": "doubled",
        "arguments": {"data": {"from_node": "max"}},
    }
    process["process_graph"]["save"]["arguments"]["data"] = {"from_node": "double"}
    udps = {"doubled": doubled}
    job = jobs.create_job(USER, process, resolve=udps.get)
    jobs.start_job(USER, job.id, resolve=udps.get)
    assert wait_job(jobs, USER, job.id) == "finished", jobs.logs(USER, job.id)
    [href] = jobs.results(USER, job.id)
    item = json.loads(Path(href).read_text())
    x0, y0, x1, y1 = WINDOW
    stack = np.stack([lake.data[m][BANDS.index("nir"), y0:y1, x0:x1] for m in sorted(lake.data)]).astype(
        float
    )
    stack[stack == 0] = np.nan
    with rasterio.open(item["assets"]["data"]["href"]) as src:
        np.testing.assert_array_equal(src.read(1), 2 * np.nanmax(stack, axis=0))

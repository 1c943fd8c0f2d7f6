"""End to end through RabbitMQ and PostgreSQL with worker processes and a status consumer process:
a land-cover job equals the in-process run pixel for pixel, also when a worker is killed mid-task."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rich.console import Console

from hrlc import sample
from hrlc.catalog.static import StaticCatalog
from hrlc.jobs.broker import Topology
from hrlc.jobs.dag import land_cover_dag
from hrlc.jobs.runner import InProcessRunner
from hrlc.jobs.service import JobService
from hrlc.lake.store import LocalStore

from .conftest import spawn, stop

pytestmark = pytest.mark.slow
YEAR = 2021
USER = "alice"


@dataclass
class Reference:
    repo: sample.SampleRepository
    bbox: tuple[float, float, float, float]
    class_map: np.ndarray


def class_map_of(hrefs: list[str]) -> np.ndarray:
    [href] = [h for h in hrefs if Path(h).name.startswith("classified_map_")]
    item = json.loads(Path(href).read_text())
    with rasterio.open(item["assets"]["data"]["href"]) as src:
        return src.read(1)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    repo = sample.generate(tmp_path_factory.mktemp("external"), size=96, year=YEAR, landsat_year=2018)
    t = repo.transform
    bbox = (t.c, t.f + t.e * repo.size, t.c + t.a * repo.size, t.f)
    store = LocalStore(tmp_path_factory.mktemp("reference-lake"))
    dag = land_cover_dag(
        bbox=bbox,
        bbox_crs=f"EPSG:{repo.epsg}",
        crs=f"EPSG:{repo.epsg}",
        resolution=10,
        year=YEAR,
        source=str(repo.catalog),
        training=str(repo.training_points),
        sensor="sentinel2",
    )
    result = InProcessRunner(store, StaticCatalog(store), console=Console(quiet=True)).run(dag)
    return Reference(repo, bbox, class_map_of(result.items))


def process(ref: Reference) -> dict:
    w, s, e, n = ref.bbox
    args = {
        "spatial_extent": {"west": w, "south": s, "east": e, "north": n, "crs": ref.repo.epsg},
        "crs": ref.repo.epsg,
        "resolution": 10,
        "year": YEAR,
        "sensor": "sentinel2",
        "source": str(ref.repo.catalog),
        "training": str(ref.repo.training_points),
    }
    return {"process_graph": {"lc": {"process_id": "hrlc_land_cover", "arguments": args, "result": True}}}


@pytest.fixture
def cluster(jobs_dsn: str, topo: Topology, tmp_path: Path) -> Iterator[JobService]:
    """A status consumer and worker processes (classification: 2) on a fresh lake."""
    env = {
        **os.environ,
        "HRLC_STORE": str(tmp_path / "lake"),
        "HRLC_CATALOG": "static",
        "HRLC_JOBS_DSN": jobs_dsn,
        "HRLC_BROKER_PREFIX": topo.prefix,
        "HRLC_LOG_LEVEL": "INFO",
    }
    log = tmp_path / "processes.log"
    service = JobService(jobs_dsn, topology=topo)
    procs = [
        spawn(["hrlc.jobs.status_consumer"], env, log),
        spawn(["hrlc.jobs.worker", "--processor", "optical-preprocessing"], env, log),
        spawn(["hrlc.jobs.worker", "--processor", "features"], env, log),
        spawn(["hrlc.jobs.worker", "--processor", "classification", "--concurrency", "2"], env, log),
    ]
    try:
        yield service
    finally:
        stop(procs)
        service.close()
        print(log.read_text()[-5000:])


def wait(service: JobService, job_id: str, timeout: float = 100.0) -> str:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        status = service.get_job(USER, job_id).status
        if status in ("finished", "error", "canceled"):
            return status
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {status} after {timeout} s")


def test_land_cover_job_through_rabbitmq_equals_in_process_run(
    cluster: JobService, reference: Reference
) -> None:
    job = cluster.create_job(USER, process(reference), title="lc")
    assert job.status == "created" and cluster.list_jobs(USER)[1] >= 1
    assert cluster.list_jobs("mallory") == ([], 0)
    assert cluster.start_job(USER, job.id).status == "queued"
    assert wait(cluster, job.id) == "finished", cluster.logs(USER, job.id)
    done = cluster.get_job(USER, job.id)
    assert done.progress == 1.0 and done.started and done.finished
    assert np.array_equal(class_map_of(cluster.results(USER, job.id)), reference.class_map)
    assert [t["status"] for t in cluster.tasks(USER, job.id)] == ["finished"] * 3
    assert any("finished" in e.message for e in cluster.logs(USER, job.id, level="info"))


def test_killed_worker_task_is_redelivered(cluster: JobService, reference: Reference) -> None:
    job = cluster.create_job(USER, process(reference))
    cluster.start_job(USER, job.id)
    killed = None
    t0 = time.monotonic()
    while killed is None and time.monotonic() - t0 < 80:
        task = cluster.tasks(USER, job.id)[2]
        if task["status"] == "running" and task["worker"]:
            time.sleep(1.0)  # in the middle of the classification
            killed = int(task["worker"].split(":")[1])
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.1)
    assert killed is not None, "classification never ran"
    assert wait(cluster, job.id) == "finished", cluster.logs(USER, job.id)
    task = cluster.tasks(USER, job.id)[2]
    assert task["attempts"] >= 2 and int(task["worker"].split(":")[1]) != killed
    assert np.array_equal(class_map_of(cluster.results(USER, job.id)), reference.class_map)

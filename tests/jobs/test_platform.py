"""End to end through RabbitMQ and PostgreSQL with worker processes and a status consumer process:
a land-cover job equals the in-process run pixel for pixel, also when a worker is killed mid-task."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from hrlc.jobs.broker import Topology
from hrlc.jobs.dag import LAND_COVER_PROCESSORS
from hrlc.jobs.service import JobService
from landcover import Reference, class_map_of, land_cover_args

from .conftest import cluster as platform_cluster
from .conftest import wait_job

pytestmark = pytest.mark.slow
USER = "alice"


def process(ref: Reference) -> dict:
    args = land_cover_args(ref.repo)
    return {"process_graph": {"lc": {"process_id": "hrlc_land_cover", "arguments": args, "result": True}}}


WORKERS = [
    ["--processor", "optical-preprocessing"],
    ["--processor", "features"],
    ["--processor", "classification", "--concurrency", "2"],  # two: one is killed below
    ["--processor", "prediction"],
    ["--processor", "mosaic"],
]


@pytest.fixture
def cluster(jobs_dsn: str, topo: Topology, tmp_path: Path) -> Iterator[JobService]:
    """A status consumer and worker processes (classification: 2) on a fresh lake."""
    with platform_cluster(jobs_dsn, topo, tmp_path / "lake", WORKERS, tmp_path / "processes.log") as service:
        yield service


def test_land_cover_job_through_rabbitmq_equals_in_process_run(
    cluster: JobService, land_cover_reference: Reference
) -> None:
    job = cluster.create_job(USER, process(land_cover_reference), title="lc")
    assert job.status == "created" and cluster.list_jobs(USER)[1] >= 1
    assert cluster.list_jobs("mallory") == ([], 0)
    assert cluster.start_job(USER, job.id).status == "queued"
    assert wait_job(cluster, USER, job.id, 100) == "finished", cluster.logs(USER, job.id)
    done = cluster.get_job(USER, job.id)
    assert done.progress == 1.0 and done.started and done.finished
    assert np.array_equal(class_map_of(cluster.results(USER, job.id)), land_cover_reference.class_map)
    assert [t["status"] for t in cluster.tasks(USER, job.id)] == ["finished"] * len(
        LAND_COVER_PROCESSORS
    )  # one tile
    assert any("finished" in e.message for e in cluster.logs(USER, job.id, level="info"))
    owners = {h: _owners(h) for h in cluster.results(USER, job.id)}
    assert len(owners) == 31 and set(map(tuple, owners.values())) == {(USER,)}  # the job's user owns them

    # another user's identical job computes nothing and co-owns the products (read-only to both)
    again = cluster.create_job("zoe", process(land_cover_reference))
    cluster.start_job("zoe", again.id)
    assert wait_job(cluster, "zoe", again.id, 100) == "finished", cluster.logs("zoe", again.id)
    assert all("not recomputed" in t["message"] for t in cluster.tasks("zoe", again.id))
    assert sorted(cluster.results("zoe", again.id)) == sorted(owners)
    assert {tuple(_owners(h)) for h in owners} == {tuple(sorted([USER, "zoe"]))}


def _owners(item_href: str) -> list[str]:
    return list(json.loads(Path(item_href).read_text())["properties"]["hrlc:owners"])


def test_killed_worker_task_is_redelivered(cluster: JobService, land_cover_reference: Reference) -> None:
    job = cluster.create_job(USER, process(land_cover_reference))
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
    assert wait_job(cluster, USER, job.id, 100) == "finished", cluster.logs(USER, job.id)
    task = cluster.tasks(USER, job.id)[2]
    assert task["attempts"] >= 2 and int(task["worker"].split(":")[1]) != killed
    assert np.array_equal(class_map_of(cluster.results(USER, job.id)), land_cover_reference.class_map)

"""A job of many tiles on the platform (issue 13): its tasks fan out over the workers (RabbitMQ, PostgreSQL,
worker processes), workers killed with kill -9 while it runs, and its map equals the undisturbed in-process run.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from hrlc import sample
from hrlc.jobs.broker import Topology, delete
from hrlc.jobs.dag import LAND_COVER_PROCESSORS
from hrlc.jobs.planner import plan
from hrlc.jobs.service import JobService
from hrlc.lake.store import LocalStore
from landcover import YEAR, class_map_of, land_cover_args, run_chain
from subprocesses import spawn, stop

pytestmark = pytest.mark.slow
USER = "tiles"
PROCESSORS = list(LAND_COVER_PROCESSORS)
SIZE, TILE_M = 192, 480  # 4 x 4 tiles of 48 px (the synthetic grid's origin is on the tiles' corners)


def test_a_sixteen_tile_job_finishes_through_kill_9_with_the_undisturbed_map(
    jobs_dsn: str, tmp_path: Path
) -> None:
    repo = sample.generate(tmp_path / "external", size=SIZE, year=YEAR)
    args = {**land_cover_args(repo), "tile_size": TILE_M}
    process = {"process_graph": {"lc": {"process_id": "hrlc_land_cover", "arguments": args, "result": True}}}
    dag = plan(process)
    per_processor = {p: sum(t.processor == p for t in dag.tasks) for p in PROCESSORS}
    assert per_processor == {
        "optical-preprocessing": 16,
        "features": 16,
        "classification": 1,
        "prediction": 16,
        "mosaic": 1,
    }
    expected = class_map_of(run_chain(repo, LocalStore(tmp_path / "reference"), dag=dag).items)

    topo = Topology(f"hrlctiles{os.getpid()}")
    env = {**os.environ, "HRLC_STORE": str(tmp_path / "lake"), "HRLC_CATALOG": "static", "HRLC_JOBS_DSN": jobs_dsn,
           "HRLC_BROKER_PREFIX": topo.prefix, "HRLC_RETRY_BACKOFF_S": "0.5"}  # fmt: skip
    log = tmp_path / "processes.log"
    workers = {
        f"{p}-{i}": spawn(["hrlc.cli", "worker", "--processor", p], env, log)
        for p in PROCESSORS
        for i in (0, 1)
    }
    consumer = spawn(["hrlc.cli", "status-consumer"], env, log)
    service = JobService(jobs_dsn, topology=topo)
    rng = random.Random(13)
    kills: list[str] = []
    try:
        job = service.create_job(USER, process).id
        service.start_job(USER, job)
        t0 = time.monotonic()
        while (status := service.get_job(USER, job).status) not in ("finished", "error", "canceled"):
            assert time.monotonic() - t0 < 600, f"job still {status} after 600 s; kills: {kills}"
            running = [t for t in service.tasks(USER, job) if t["status"] == "running"]
            if running and len(kills) < 4 and time.monotonic() - t0 > 2 * (len(kills) + 1):
                processor = rng.choice(running)["processor"]  # a worker of a processor with a task running
                name = f"{processor}-{rng.choice((0, 1))}"
                workers[name].send_signal(signal.SIGKILL)
                workers[name].wait()
                workers[name] = spawn(["hrlc.cli", "worker", "--processor", processor], env, log)
                kills.append(f"{time.monotonic() - t0:.1f}s kill -9 {name}")
            time.sleep(0.3)
        assert status == "finished", (kills, service.logs(USER, job))
        assert len(kills) >= 2, f"too few kills while the job ran: {kills}"
        tasks = service.tasks(USER, job)
        assert len(tasks) == len(dag.tasks) == 50 and {t["status"] for t in tasks} == {"finished"}
        np.testing.assert_array_equal(class_map_of(service.results(USER, job)), expected)
    finally:
        stop([*workers.values(), consumer])
        service.close()
        delete(topo, PROCESSORS)

"""The whole platform, for the openEO client: pgstac (`e2e_pgstac`) as catalogue and job store, moto S3
(`s3_server`) as Data Lake, RabbitMQ, a status consumer and worker processes (optical-preprocessing,
features, classification with concurrency 2), and `hrlc.api.app` served by uvicorn on a free 127.0.0.1 port.
The PostgreSQL database, the S3 server, the synthetic inputs and the reference class map (what the in-process
runner makes from them: `land_cover_reference` of tests/conftest.py, shared with tests/jobs) are per session;
the lake, queues, processes and API server are per test."""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uvicorn

from hrlc import sample
from hrlc.api.openeo.auth import hash_password
from hrlc.jobs.broker import Topology, delete
from hrlc.jobs.dag import LAND_COVER_PROCESSORS
from hrlc.settings import Settings
from landcover import Reference, land_cover_args
from subprocesses import spawn, stop

USER, PASSWORD = "alice", "alice-password"
OTHER, OTHER_PASSWORD = "bob", "bob-password"
SECRET = "e2e-token-secret-of-at-least-32-bytes!"
PROCESSORS = [*LAND_COVER_PROCESSORS, "process-graph"]
_COUNTER = itertools.count()


@dataclass
class Stack:
    root: str  # http://127.0.0.1:port
    url: str  # the openEO API: root + /openeo
    repo: sample.SampleRepository
    bbox: tuple[float, float, float, float]  # in EPSG:repo.epsg
    reference: np.ndarray  # class map of the in-process run
    log: Path  # output of the worker and status-consumer processes

    def land_cover_args(self) -> dict[str, Any]:
        return land_cover_args(self.repo)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_workers(log: Path, topo: Topology, n: int, procs: list[subprocess.Popen[bytes]]) -> None:
    """Until `n` worker processes consume this test's task queues (a worker registers itself and its
    processor in the job store before it logs that), so that no task meets "no live worker"."""
    deadline = time.monotonic() + 60
    mark = f"consuming {topo.prefix}.tasks."
    while (seen := log.read_text(errors="replace").count(mark)) < n:
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            pytest.fail(f"{seen} of {n} workers started:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)


@pytest.fixture(scope="session")
def e2e_pgstac(pgstac_db_factory: Any) -> str:
    """A pgstac database of these tests (their result items must not meet the counts of other suites)."""
    return str(pgstac_db_factory("e2e"))


@pytest.fixture
def stack(
    e2e_pgstac: str, s3_server: Any, land_cover_reference: Reference, tmp_path: Path
) -> Iterator[Stack]:
    """Per test a fresh lake (bucket) and queue prefix, so that no job finds the outputs of another one
    (a worker finishes a task whose outputs exist without recomputing it)."""
    tmp, ref, pgstac_dsn = tmp_path, land_cover_reference, e2e_pgstac
    users = tmp / "users.json"
    users.write_text(json.dumps({USER: hash_password(PASSWORD), OTHER: hash_password(OTHER_PASSWORD)}))
    bucket = s3_server.new_bucket(f"hrlc-e2e-{os.getpid()}-{next(_COUNTER)}")
    store = f"s3://{bucket}/lake"
    topo = Topology(f"hrlce2e{os.getpid()}x{next(_COUNTER)}")
    env = {
        "HRLC_STORE": store,
        "HRLC_CATALOG": pgstac_dsn,
        "HRLC_JOBS_DSN": pgstac_dsn,
        "HRLC_BROKER_PREFIX": topo.prefix,
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the API's JobService reads HRLC_JOBS_DSN and HRLC_BROKER_PREFIX
    log = tmp / "processes.log"
    penv = {**os.environ, "HRLC_LOG_LEVEL": "INFO"}  # with the S3 variables of s3_server
    procs = [
        spawn(["hrlc.cli", "status-consumer"], penv, log),
        *(spawn(["hrlc.cli", "worker", "--processor", p], penv, log) for p in PROCESSORS),
    ]
    uv: uvicorn.Server | None = None
    thread: threading.Thread | None = None
    try:
        from hrlc.api.app import create_app

        settings = Settings(
            catalog=pgstac_dsn,
            store=store,
            s3_endpoint=s3_server.endpoint,
            s3_region=s3_server.region,
            s3_access_key_id=s3_server.access_key,
            s3_secret_access_key=s3_server.secret_key,
            users_file=str(users),
            token_secret=SECRET,
            # the deployment allows the synthetic repository's catalogue and training files (issue 10: SSRF)
            job_sources=[str(Path(ref.repo.catalog).parent)],
            job_training=[str(Path(ref.repo.training_points).parent)],
        )
        port = _free_port()
        config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
        uv = uvicorn.Server(config)
        thread = threading.Thread(target=uv.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not uv.started:
            if time.monotonic() > deadline or not thread.is_alive():
                pytest.fail("uvicorn did not start")
            time.sleep(0.05)
        _wait_for_workers(log, topo, 5, procs)  # classification: 2 processes
        root = f"http://127.0.0.1:{port}"
        yield Stack(root, f"{root}/openeo", ref.repo, ref.bbox, ref.class_map, log)
    finally:
        if uv is not None and thread is not None:
            uv.should_exit = True
            thread.join(10)
        stop(procs)
        delete(topo, PROCESSORS)
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

"""Faults of the job platform, with real RabbitMQ and PostgreSQL and worker/status-consumer processes.

The jobs here are small DAGs of the test processor `sleepy` (tests/jobs/jobprocs.py) planned straight into the
job store (the planner only knows `hrlc_land_cover`), so each fault is deterministic and takes seconds:
- the status consumer killed (-9) and restarted: task and job states catch up from the status queue;
- a job canceled while a task runs: the worker stops the task, nothing after it is published, the job ends
  canceled with no result; canceled after the processor's last check: nothing registered, its product removed
  (a product another finished task registered before is kept);
- a job started, canceled and started again: a new run, and statuses and dead letters of the old run change
  nothing (version-1 statuses, without a run, are still applied);
- RabbitMQ restarted while tasks are queued (no worker yet): quorum queues and persistent messages survive;
- a task dead-lettered by the broker's delivery limit: its job ends `error` (status consumer's dead watch);
- a processor written without hrlc (tests/jobs/foreign_processor.py: pika + JSON) finishes a job;
- the registry through the API (`GET /openeo/processors`, an hrlc extension).
"""

from __future__ import annotations

import ast
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from hrlc.jobs import jobstore
from hrlc.jobs import service as service_module
from hrlc.jobs.broker import Publisher, Topology, connect, properties
from hrlc.jobs.dag import Dag
from hrlc.jobs.dag import Task as DagTask
from hrlc.jobs.jobstore import SCHEMA
from hrlc.jobs.messages import StatusMessage, TaskMessage
from hrlc.jobs.planner import publish_ready
from hrlc.jobs.service import JobService
from hrlc.jobs.status_consumer import apply_status

from .conftest import spawn, stop, wait_job
from .jobprocs import LateWriter

ROOT = Path(__file__).resolve().parents[2]
USER = "faults"
CONSUMER = ["hrlc.cli", "status-consumer"]
SLEEPY = ["hrlc.cli", "worker", "--processor", "sleepy", "--entry-point", "tests.jobs.jobprocs:Sleepy"]
LATE = ["hrlc.cli", "worker", "--processor", "late-writer", "--entry-point", "tests.jobs.jobprocs:LateWriter"]

Task = tuple[str, str, dict[str, Any], list[str]]  # id, processor, params, depends_on


@pytest.fixture
def env(jobs_dsn: str, topo: Topology, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "HRLC_STORE": str(tmp_path / "lake"),
        "HRLC_CATALOG": "static",
        "HRLC_JOBS_DSN": jobs_dsn,
        "HRLC_BROKER_PREFIX": topo.prefix,
        "HRLC_LOG_LEVEL": "INFO",
        "PYTHONPATH": str(ROOT),
    }


@pytest.fixture
def service(jobs_dsn: str, topo: Topology) -> Iterator[JobService]:
    s = JobService(jobs_dsn, topology=topo)
    yield s
    s.close()


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts (stopped after it; their output printed)."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    stop(started)
    log = tmp_path / "processes.log"
    if log.exists():
        print(log.read_text()[-4000:])


def plan_job(service: JobService, tasks: list[Task], version: str = "1.0.0") -> str:
    """A queued job (run 1) of these tasks in the job store, its ready tasks published (what `start_job` does)."""
    job_id = uuid.uuid4().hex
    with service.pool.connection() as conn, conn.transaction():
        conn.execute(
            f"insert into {SCHEMA}.jobs (id, user_id, process, status, queued, run) "
            "values (%s, %s, %s, 'queued', now(), 1)",
            (job_id, USER, jobstore.jsonb({"process_graph": {}})),
        )
        for seq, (task_id, processor, params, deps) in enumerate(tasks):
            conn.execute(
                f"insert into {SCHEMA}.tasks (job_id, id, run, seq, processor, processor_version, params, "
                "depends_on) values (%s, %s, 1, %s, %s, %s, %s, %s)",
                (job_id, task_id, seq, processor, version, jobstore.jsonb(params), deps),
            )
        publish_ready(job_id, conn=conn, publisher=service.publisher)
    return job_id


def sleepy(name: str, steps: int = 3, step_s: float = 0.2) -> dict[str, Any]:
    return {"name": name, "steps": steps, "step_s": step_s}


def wait_for(check: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached after {timeout} s")


def states(service: JobService, job_id: str) -> dict[str, str]:
    return {t["id"]: t["status"] for t in service.tasks(USER, job_id)}


def logged(service: JobService, job_id: str, text: str) -> int:
    """How many log entries of the job (debug included) contain `text`."""
    return sum(text in e.message for e in service.logs(USER, job_id, limit=1000))


def test_status_consumer_restart_catches_up(
    service: JobService, env: dict[str, str], tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    log = tmp_path / "processes.log"
    lake = Path(env["HRLC_STORE"])
    consumer = spawn(CONSUMER, env, log)
    procs += [consumer, spawn(SLEEPY, env, log)]
    uid = uuid.uuid4().hex[:8]
    job_id = plan_job(
        service,
        [("a", "sleepy", sleepy(f"{uid}-a", 4, 0.25), []), ("b", "sleepy", sleepy(f"{uid}-b"), ["a"])],
    )
    wait_for(lambda: states(service, job_id)["a"] == "running", what="task a running")
    consumer.send_signal(signal.SIGKILL)
    consumer.wait(10)
    # task a finishes on the worker while nobody applies its statuses: the job store lags behind
    wait_for(lambda: (lake / f"test/{uid}-a.json").exists(), what="task a's output")
    time.sleep(0.5)
    assert states(service, job_id) == {"a": "running", "b": "created"}
    assert service.get_job(USER, job_id).status == "running"
    procs.append(spawn(CONSUMER, env, log))
    assert wait_job(service, USER, job_id) == "finished", service.logs(USER, job_id)
    assert states(service, job_id) == {"a": "finished", "b": "finished"}
    assert service.get_job(USER, job_id).progress == 1.0
    assert (lake / f"test/{uid}-b.json").exists()


def test_canceled_job_stops_its_running_task(
    service: JobService, env: dict[str, str], tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    """What the code guarantees on cancel: the tasks not finished are marked canceled at once (so tasks after
    the running one are never published and never write anything: with the land-cover DAG, no class map and
    no class-map item when composites or features are being computed); the running task stops at its next
    `ctx.check_cancelled()` and its late `canceled`/`finished` status never overwrites the task's state nor
    adds outputs to the job's results. Products of tasks finished *before* the cancel stay in the lake and
    the catalogue (the composites of a finished optical-preprocessing task), not in the job's results.
    What a task writes after its last cancellation check (classification's final write) is never registered:
    see `test_cancel_after_the_last_check_registers_nothing`."""
    log = tmp_path / "processes.log"
    lake = Path(env["HRLC_STORE"])
    procs += [spawn(CONSUMER, env, log), spawn(SLEEPY, env, log)]
    uid = uuid.uuid4().hex[:8]
    job_id = plan_job(
        service,
        [("a", "sleepy", sleepy(f"{uid}-a", 200, 0.1), []), ("b", "sleepy", sleepy(f"{uid}-b"), ["a"])],
    )
    wait_for(lambda: states(service, job_id)["a"] == "running", what="task a running")
    t0 = time.monotonic()
    assert service.cancel_job(USER, job_id).status == "canceled"

    def stopped() -> bool:
        return any("task canceled while running" in e.message for e in service.logs(USER, job_id))

    wait_for(stopped, 15, "the worker's canceled status")
    assert time.monotonic() - t0 < 10  # the task would have run 20 s
    job = service.get_job(USER, job_id)
    assert job.status == "canceled" and job.finished is not None
    assert states(service, job_id) == {"a": "canceled", "b": "canceled"}
    assert service.results(USER, job_id, partial=True) == []
    assert not (lake / f"test/{uid}-a.json").exists() and not (lake / f"test/{uid}-b.json").exists()


def _pgstac_items(dsn: str, item_id: str) -> int:
    import psycopg

    with psycopg.connect(dsn) as conn:
        row = conn.execute("select count(*) from pgstac.items where id = %s", (item_id,)).fetchone()
    return int(row[0]) if row else 0


def test_cancel_after_the_last_check_registers_nothing(
    service: JobService,
    env: dict[str, str],
    tmp_path: Path,
    procs: list[subprocess.Popen[bytes]],
    pgstac_db_factory: Callable[[str], str],
) -> None:
    """The worker checks the task's state once more when the processor returns, holding a share lock on the task
    row (a cancel waits for it): a task canceled after its processor's last check (`late-writer`, the shape of
    classification's final write) registers nothing, neither in the lake's STAC JSON nor in pgstac, and the
    product it created is removed. The same key written by a canceled task after a finished task of another job
    registered it (same inputs, same keys) is kept, with its item."""
    catalog_dsn = pgstac_db_factory("faults")
    env = {**env, "HRLC_CATALOG": catalog_dsn}
    log = tmp_path / "processes.log"
    lake = Path(env["HRLC_STORE"])
    procs += [spawn(CONSUMER, env, log), spawn(LATE, env, log)]
    name = f"late-{uuid.uuid4().hex[:8]}"
    product, item = lake / LateWriter.key(name), lake / f"metadata/stac/hrlc-models/{name}.json"

    def canceled_late(wait_s: float) -> str:
        job_id = plan_job(service, [("w", "late-writer", {"name": name, "wait_s": wait_s}, [])])
        wait_for(
            lambda: service.tasks(USER, job_id)[0]["message"] == LateWriter.PAST_CHECK, what="last check"
        )
        assert service.cancel_job(USER, job_id).status == "canceled"
        wait_for(
            lambda: logged(service, job_id, "after its processor returned"), 20, "the worker's late cancel"
        )
        assert states(service, job_id) == {"w": "canceled"}
        assert service.results(USER, job_id, partial=True) == []
        return job_id

    # 1. a product only the canceled task wrote: never registered, removed from the lake
    canceled_late(2.0)
    assert not product.exists() and not item.exists() and _pgstac_items(catalog_dsn, name) == 0
    collection = lake / "metadata/stac/hrlc-models/collection.json"
    assert not collection.exists() or f"./{name}.json" not in collection.read_text()
    # 2. a finished task of another job registered it before: the canceled task's rewrite removes nothing
    done = plan_job(service, [("w", "late-writer", {"name": name, "wait_s": 0.0}, [])])
    assert wait_job(service, USER, done) == "finished", service.logs(USER, done)
    assert product.exists() and item.exists() and _pgstac_items(catalog_dsn, name) == 1
    registered = item.read_bytes()
    canceled_late(2.0)
    assert product.exists() and item.read_bytes() == registered and _pgstac_items(catalog_dsn, name) == 1


def test_restart_after_cancel_is_a_new_run(
    service: JobService,
    env: dict[str, str],
    topo: Topology,
    tmp_path: Path,
    procs: list[subprocess.Popen[bytes]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """start -> cancel -> start: the second start is run 2 of the job. Run 1's task still running on the worker
    stops, and what run 1 still sends (the worker's canceled status, an error status, a redelivered dead letter
    of its task) is ignored by the status consumer: run 2 finishes."""
    uid = uuid.uuid4().hex[:8]
    a = sleepy(f"{uid}-a", 30, 0.1)
    dag = Dag([DagTask("a", "sleepy", a), DagTask("b", "sleepy", sleepy(f"{uid}-b"), ("a",))])
    # the planner does not know the test processors
    monkeypatch.setattr(service_module, "plan", lambda process, resolve=None, admit=None: dag)
    monkeypatch.setattr(service_module, "processor_versions", lambda: {"sleepy": "1.0.0"})
    log = tmp_path / "processes.log"
    procs += [spawn(CONSUMER, env, log), spawn(SLEEPY, env, log)]
    job_id = service.create_job(USER, {"process_graph": {}}).id
    assert service.start_job(USER, job_id).run == 1
    wait_for(lambda: states(service, job_id)["a"] == "running", what="task a of run 1 running")
    service.cancel_job(USER, job_id)
    restarted = service.start_job(USER, job_id)  # at once: run 1's task a is still running on the worker
    assert (restarted.status, restarted.run) == ("queued", 2)
    # stale messages of run 1: an error status of task a and a dead letter of its task message
    stale = TaskMessage(
        job_id=job_id, run=1, task_id="a", processor="sleepy", processor_version="1.0.0", params=a
    )
    service.publisher.publish_status(
        stale.status(state="error", progress=0.0, message="stale", worker="test")
    )
    conn = connect()
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        reason = properties({"x-hrlc-reason": "a dead letter of run 1"})
        ch.basic_publish(topo.dead_exchange, topo.dead_queue, stale.to_json(), reason, mandatory=True)
    finally:
        conn.close()
    wait_for(lambda: logged(service, job_id, "error of run 1 ignored") == 2, 15, "stale run-1 errors ignored")
    assert wait_job(service, USER, job_id) == "finished", service.logs(USER, job_id)
    job = service.get_job(USER, job_id)
    assert job.error is None and job.run == 2 and job.progress == 1.0
    assert states(service, job_id) == {"a": "finished", "b": "finished"}
    # the worker stopped run 1's task a (canceled, or superseded by run 2): its status was not applied
    assert logged(service, job_id, "while running")
    assert all(t["run"] == 2 for t in service.tasks(USER, job_id))


def test_status_versions_and_runs(service: JobService) -> None:
    """The status consumer applies version-1 statuses (no run: a processor written against version 1) and
    version-2 statuses of the job's run, and ignores version-2 statuses of another run."""
    job_id = plan_job(service, [("a", "sleepy", sleepy("never-run"), [])])
    with Publisher(topo=Topology(f"unused{os.getpid()}")) as publisher, jobstore.connect(service.dsn) as conn:

        def apply(**fields: Any) -> str:
            base = {"job_id": job_id, "task_id": "a", "worker": "test"}
            return apply_status(conn, StatusMessage(**(base | fields)), publisher)

        assert apply(message_version=2, run=2, state="error", progress=0.0).startswith("ignored: run 2")
        assert apply(message_version=1, state="running", progress=0.25) == "task running"
        assert states(service, job_id) == {"a": "running"}
        assert apply(message_version=2, run=1, state="running", progress=0.5) == "task running"
        assert service.get_job(USER, job_id).progress == 0.5


def _port_open(port: int = 5672) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _rabbitmqctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, timeout=90)


def test_rabbitmq_restart_loses_no_queued_job(
    service: JobService, env: dict[str, str], tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    if os.environ.get("HRLC_TEST_NO_BROKER_RESTART"):
        pytest.skip("HRLC_TEST_NO_BROKER_RESTART set: the shared RabbitMQ is not restarted")
    try:
        if _rabbitmqctl("status").returncode != 0:
            pytest.skip("rabbitmqctl cannot reach the local RabbitMQ node")
    except (OSError, subprocess.TimeoutExpired):
        pytest.skip("no rabbitmqctl")
    log = tmp_path / "processes.log"
    uid = uuid.uuid4().hex[:8]
    jobs = [
        plan_job(
            service,
            [
                ("a", "sleepy", sleepy(f"{uid}-{i}a", 1, 0.05), []),
                ("b", "sleepy", sleepy(f"{uid}-{i}b", 1, 0.05), ["a"]),
            ],
        )
        for i in range(3)
    ]
    assert _rabbitmqctl("stop_app").returncode == 0
    try:
        assert not _port_open()
    finally:
        assert _rabbitmqctl("start_app").returncode == 0, "RabbitMQ did not restart"
        _rabbitmqctl("await_startup")
        wait_for(_port_open, 60, "RabbitMQ port 5672")
    procs += [spawn(CONSUMER, env, log), spawn(SLEEPY, env, log)]
    for job_id in jobs:
        assert wait_job(service, USER, job_id) == "finished", service.logs(USER, job_id)
        assert states(service, job_id) == {"a": "finished", "b": "finished"}


def test_dead_lettered_task_fails_its_job(
    service: JobService,
    env: dict[str, str],
    topo: Topology,
    tmp_path: Path,
    procs: list[subprocess.Popen[bytes]],
) -> None:
    procs.append(spawn(CONSUMER, env, tmp_path / "processes.log"))
    job_id = plan_job(service, [("a", "sleepy", sleepy("poison"), [])])
    # a consumer that never completes the task (as a worker killed again and again would): the quorum queue
    # dead-letters the message once its delivery limit is reached
    conn = connect()
    try:
        ch = conn.channel()
        queue = topo.task_queue("sleepy")
        deliveries, last = 0, time.monotonic()
        while time.monotonic() - last < 2.0:
            method, _props, body = ch.basic_get(queue, auto_ack=False)
            if method is None:
                time.sleep(0.05)
                continue
            last = time.monotonic()
            if json.loads(body)["job_id"] != job_id:
                ch.basic_ack(method.delivery_tag)  # a leftover of another test
                continue
            deliveries += 1
            ch.basic_nack(method.delivery_tag, requeue=True)
    finally:
        conn.close()
    assert deliveries > 1
    assert wait_job(service, USER, job_id) == "error", service.logs(USER, job_id)
    job = service.get_job(USER, job_id)
    assert job.error and "delivery limit" in job.error
    assert states(service, job_id) == {"a": "error"}


def test_foreign_processor_joins(
    service: JobService, env: dict[str, str], tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    script = ROOT / "tests" / "jobs" / "foreign_processor.py"
    imported = {
        (a.name if isinstance(n, ast.Import) else n.module or "").split(".")[0]
        for n in ast.walk(ast.parse(script.read_text()))
        if isinstance(n, ast.Import | ast.ImportFrom)
        for a in (n.names if isinstance(n, ast.Import) else [n])  # type: ignore[attr-defined]
    }
    assert "hrlc" not in imported and "pika" in imported
    with service.pool.connection() as conn:
        jobstore.register_processor(conn, "foreign-echo", "1.0.0", "tests/jobs/foreign_processor.py")
    trace = tmp_path / "trace.jsonl"
    lake = Path(env["HRLC_STORE"])
    log = tmp_path / "processes.log"
    procs.append(spawn(CONSUMER, env, log))
    key = f"foreign/{uuid.uuid4().hex[:8]}.json"
    job_id = plan_job(service, [("echo", "foreign-echo", {"text": "hello", "key": key}, [])])
    foreign_env = {k: v for k, v in env.items() if k != "PYTHONPATH"} | {"FOREIGN_TRACE": str(trace)}
    with open(log, "ab") as out:
        procs.append(
            subprocess.Popen([sys.executable, str(script), "1"], env=foreign_env, stdout=out, stderr=out)
        )
    assert wait_job(service, USER, job_id) == "finished", service.logs(USER, job_id)
    assert json.loads((lake / key).read_text()) == {"text": "hello", "inputs": []}
    [task] = service.tasks(USER, job_id)
    assert task["outputs"] == [str(lake / key)] and task["worker"].endswith(":foreign-echo")
    validators = {
        kind: jsonschema.Draft202012Validator(
            json.loads((ROOT / "docs" / "messages" / f"{kind}.schema.json").read_text()),
            format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
        )
        for kind in ("task", "status")
    }
    lines = [json.loads(line) for line in trace.read_text().splitlines()]
    assert [(r["kind"], r["message"].get("state")) for r in lines] == [
        ("task", None),
        ("status", "running"),
        ("status", "finished"),
    ]
    for r in lines:
        validators[r["kind"]].validate(r["message"])


def test_registry_through_the_api(
    jobs_dsn: str, topo: Topology, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from hrlc.api.openeo.app import create_openeo_app
    from hrlc.api.openeo.auth import hash_password
    from hrlc.backends import Backends
    from hrlc.settings import Settings

    monkeypatch.setenv("HRLC_JOBS_DSN", jobs_dsn)
    monkeypatch.setenv("HRLC_BROKER_PREFIX", topo.prefix)
    users = tmp_path / "users.json"
    users.write_text(json.dumps({
        "carol": {"hash": hash_password("carol-password"), "roles": ["operator"]},
        "dave": hash_password("dave-password"),  # a user: no hosts, pids or entry points (issue 10, finding 9)
    }))  # fmt: skip
    settings = Settings(
        catalog="static",
        store=str(tmp_path / "lake"),
        users_file=str(users),
        token_secret="test-token-secret-of-at-least-32-bytes",
        token_ttl_s=300,
    )
    worker_id = f"registry-test:{os.getpid()}:sleepy"
    with jobstore.connect(jobs_dsn, autocommit=True) as conn:
        jobstore.register_processor(conn, "sleepy", "1.0.0", "tests.jobs.jobprocs:Sleepy")
        jobstore.heartbeat(conn, worker_id, "sleepy", "1.0.0", host="registry-test", pid=4242, capacity=3)
    app = create_openeo_app(settings, Backends.from_settings(settings))
    try:
        client = TestClient(app)
        assert "/processors" in {e["path"] for e in client.get("/").json()["endpoints"]}
        assert client.get("/processors").status_code == 401
        token = client.get("/credentials/basic", auth=("carol", "carol-password")).json()["access_token"]
        r = client.get("/processors", headers={"Authorization": f"Bearer basic//{token}"})
        assert r.status_code == 200, r.text
        [entry] = [p for p in r.json()["processors"] if (p["name"], p["version"]) == ("sleepy", "1.0.0")]
        assert entry["entry_point"] == "tests.jobs.jobprocs:Sleepy"
        [worker] = [w for w in entry["workers"] if w["id"] == worker_id]
        assert worker["capacity"] == 3 and worker["pid"] == 4242 and worker["heartbeat"].endswith("Z")
        assert entry["live_workers"] >= 1 and entry["capacity"] >= 3
        token = client.get("/credentials/basic", auth=("dave", "dave-password")).json()["access_token"]
        r = client.get("/processors", headers={"Authorization": f"Bearer basic//{token}"})
        [entry] = [p for p in r.json()["processors"] if (p["name"], p["version"]) == ("sleepy", "1.0.0")]
        assert entry["live_workers"] >= 1 and entry["capacity"] >= 3
        assert not {"workers", "entry_point", "image"} & set(entry) and "registry-test" not in r.text
    finally:
        with jobstore.connect(jobs_dsn, autocommit=True) as conn:
            jobstore.remove_worker(conn, worker_id)
        app.state.openeo.backends.close()

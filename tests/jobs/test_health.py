"""Health of workers and the status consumer (issue 11): /health/live says the loop turns, /health/ready names the
connection that is down, in the API's shape; probes answer on the process's --health-port."""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psycopg

from hrlc.jobs.broker import Topology, delete
from hrlc.jobs.health import Health
from subprocesses import spawn, stop


def _get(port: int, path: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(port: int, proc: Any, log: Path, want: int = 200, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            status, body = _get(port, "/health/ready")
            if status == want:
                return body
            last = body
        except (urllib.error.URLError, ConnectionError):  # not listening yet
            pass
        time.sleep(0.2)
    raise AssertionError(f"not {want} within {timeout} s: {last}\n{log.read_text()}")


def test_readiness_names_what_is_down_and_liveness_sees_a_stalled_loop() -> None:
    health = Health("worker x", ["broker", "job store"], stall_s=0.3)
    port = health.serve(0)
    try:
        status, body = _get(port, "/health/ready")
        assert status == 503 and body["code"] == "ServiceUnavailable"
        assert body["down"] == ["broker", "job store"]
        assert body["checks"]["broker"].endswith("not connected yet")
        health.up("broker")
        health.up("job store")
        assert _get(port, "/health/ready") == (
            200,
            {"status": "ok", "component": "worker x", "checks": {"broker": "ok", "job store": "ok"}},
        )
        health.down("job store", ConnectionRefusedError("connection refused\nsecond line"))
        status, body = _get(port, "/health/ready")
        assert status == 503 and body["down"] == ["job store"]
        assert body["checks"]["job store"].startswith("down since 0 s: connection refused")
        assert body["checks"]["broker"] == "ok"
        health.tick()
        assert _get(port, "/health/live")[0] == 200
        time.sleep(0.5)  # the loop does not turn
        status, body = _get(port, "/health/live")
        assert status == 503 and body["status"] == "stalled" and body["loop_idle_s"] >= 0.3
        assert _get(port, "/health/other")[0] == 404
        assert _get(port, "/health/live?x=1")[0] == 503
    finally:
        health.close()


def test_worker_and_status_consumer_answer_probes(jobs_dsn: str, tmp_path: Path) -> None:
    topo = Topology(f"hrlchealth{os.getpid()}")
    env = {**os.environ, "HRLC_JOBS_DSN": jobs_dsn, "HRLC_BROKER_PREFIX": topo.prefix, "HRLC_CATALOG": "static",
           "HRLC_STORE": str(tmp_path / "lake")}  # fmt: skip
    log = tmp_path / "processes.log"
    ports = [_free_port() for _ in range(3)]
    nobroker = {**env, "HRLC_BROKER_URL": f"amqp://guest:guest@127.0.0.1:{_free_port()}/%2F"}
    procs = [
        spawn(["hrlc.cli", "worker", "--processor", "features", "--health-port", str(ports[0])], env, log),
        spawn(["hrlc.cli", "status-consumer", "--health-port", str(ports[1])], env, log),
        spawn(
            ["hrlc.cli", "worker", "--processor", "features", "--health-port", str(ports[2])], nobroker, log
        ),
    ]
    try:
        body = _wait_ready(ports[0], procs[0], log)
        assert body["component"] == "worker features"
        assert body["checks"] == {"broker": "ok", "job store": "ok"}
        body = _wait_ready(ports[1], procs[1], log)
        assert body["component"] == "status consumer"
        assert body["checks"] == {"broker": "ok", "job store": "ok"}
        # no broker: alive (it retries with back-off), not ready, and says why
        body = _wait_ready(ports[2], procs[2], log, want=503)
        assert body["down"] == ["broker"] and body["checks"]["job store"] == "ok", body
        assert _get(ports[2], "/health/live")[0] == 200
        # the status consumer loses its idle database session: it notices within seconds (no message needed),
        # reconnects and is ready again
        with psycopg.connect(jobs_dsn, autocommit=True) as conn:
            conn.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity "
                "where application_name = 'hrlc-status-consumer' and datname = current_database()"
            )
        deadline = time.monotonic() + 20
        while "job store or broker back after" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        _wait_ready(ports[1], procs[1], log)
        assert _get(ports[1], "/health/live")[0] == 200
    finally:
        stop(procs)
        delete(topo, ["features"])


def test_a_health_port_that_is_taken_is_one_line_and_exit_2(jobs_dsn: str, tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {
        **os.environ,
        "HRLC_JOBS_DSN": jobs_dsn,
        "HRLC_CATALOG": "static",
        "HRLC_STORE": str(tmp_path / "lake"),
    }
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        for module in (["hrlc.cli", "worker", "--processor", "features"], ["hrlc.cli", "status-consumer"]):
            done = subprocess.run([sys.executable, "-m", *module, "--health-port", port], env=env,
                                  capture_output=True, text=True, timeout=120)  # fmt: skip
            errors = [ln for ln in done.stderr.splitlines() if ln.startswith("error:")]
            assert done.returncode == 2, done.stderr
            assert len(errors) == 1 and f"cannot serve health on 127.0.0.1:{port}" in errors[0], done.stderr
            assert "Traceback" not in done.stderr

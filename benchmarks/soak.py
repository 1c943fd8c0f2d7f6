"""Soak benchmark (issue 11): an operator's worst day, measured against an undisturbed twin.

The same N land-cover jobs run twice through a real stack: `hrlc serve` (openEO API, called over HTTP as a
client would), two workers per processor, the status consumer, RabbitMQ and PostgreSQL + pgstac, each run on a
fresh lake, database and queue prefix, the jobs submitted evenly over WINDOW seconds. The first run is left
alone (the twin). During the second, K workers are killed with `kill -9` (and started again, as an orchestrator
would), the status consumer is killed and started again, RabbitMQ is stopped and started (`rabbitmqctl
stop_app` / `start_app`) and PostgreSQL is restarted (`pg_ctlcluster <version> <cluster> restart`; where that
cannot be done here, every connection to the run's database is terminated instead, and the report says so).

Prints one line per run (jobs/min, longest stall, the API's answers by status code) and per disturbance (its
recovery time: until the processes it hit answer 200 on /health/ready again, the API included for the broker
and the database), then the checks of issue 11: 0 jobs lost, 0 failed, class maps byte-identical to the twin's,
0 API 500s (503s are allowed during an outage: the client retries them), never more than one consumer on the
status queue, the longest job of the day at most 20 s longer than the twin run's longest (the issue's measure:
"jobs waited up to 77 s (15 s undisturbed)") and, stricter, no job more than 20 s slower than its own twin.
Exit 1 when a check fails; the last line is JSON.

    .venv/bin/python benchmarks/soak.py [--jobs 20] [--kills 20] [--window 90] [--size 96]

Needs the platform extra and the services of scripts/services.sh; restarting PostgreSQL needs root (or the
postgres user). About 8 minutes on 2 cores with the defaults. It restarts the machine's RabbitMQ and
PostgreSQL: do not run it beside anything else that uses them.
"""

from __future__ import annotations

import argparse
import base64
import collections
import datetime as dt
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
import rasterio

from hrlc import sample
from hrlc.api.openeo.auth import hash_password
from hrlc.jobs.broker import Topology, connect, declare_common, delete
from hrlc.jobs.dag import LAND_COVER_PROCESSORS

ADMIN_DSN = os.environ.get("HRLC_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
PROCESSORS = list(LAND_COVER_PROCESSORS)
USER, PASSWORD = "soak", "soak-password-of-the-benchmark"
YEAR, LANDSAT_YEAR = 2021, 2018
SLOWDOWN_BOUND_S = 20.0
TERMINAL = ("finished", "error", "canceled")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ts(value: str | None) -> float | None:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None


# ------------------------------------------------------------------------------------------------ the jobs


def processes(repo: sample.SampleRepository, n: int, shared: bool = True) -> list[dict[str, Any]]:
    """N distinct land-cover jobs. `shared`: four AOIs (the repository, its western, eastern and southern half) x
    seeds, so jobs of one AOI share their composites and features (made once, reused: a later job inherits the
    delays of the earlier one); else N AOIs (the repository less 0..N-1 pixel columns on its east), each job
    computing its own products."""
    t = repo.transform
    w, s, e, north = t.c, t.f + t.e * repo.size, t.c + t.a * repo.size, t.f
    mid_x, mid_y = (w + e) / 2, (s + north) / 2
    aois = [(w, s, e, north), (w, s, mid_x, north), (mid_x, s, e, north), (w, s, e, mid_y)]
    if not shared:
        aois = [(w, s, e - k * t.a, north) for k in range(n)]
    out = []
    for i in range(n):
        west, south, east, top = aois[i % len(aois)]
        arguments = {
            "spatial_extent": {"west": west, "south": south, "east": east, "north": top, "crs": repo.epsg},
            "crs": repo.epsg,
            "resolution": 10,
            "year": YEAR,
            "sensor": "sentinel2",
            "source": str(repo.catalog),
            "training": str(repo.training_points),
            "seed": i // len(aois),
        }
        graph = {"lc": {"process_id": "hrlc_land_cover", "arguments": arguments, "result": True}}
        out.append({"process_graph": graph})
    return out


# ------------------------------------------------------------------------------------------------ the stack


class Client:
    """The openEO API over HTTP, as a patient user: 503 and refused connections are retried (counted)."""

    def __init__(self, root: str):
        self.http = httpx.Client(base_url=f"{root}/openeo", timeout=30)
        self.codes: collections.Counter[int] = collections.Counter()
        basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        token = self.call("GET", "/credentials/basic", headers={"Authorization": f"Basic {basic}"}).json()
        self.http.headers["Authorization"] = f"Bearer basic//{token['access_token']}"

    def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        deadline = time.monotonic() + 180
        while True:
            try:
                r = self.http.request(method, path, **kw)
                self.codes[r.status_code] += 1
                if r.status_code < 500:
                    return r
            except httpx.TransportError:
                self.codes[0] += 1  # no answer at all
            if time.monotonic() > deadline:
                raise RuntimeError(f"{method} {path}: no answer but 5xx for 180 s")
            time.sleep(0.5)

    def submit(self, process: dict[str, Any]) -> str:
        r = self.call("POST", "/jobs", json={"process": process})
        if r.status_code != 201:
            raise RuntimeError(f"POST /jobs: {r.status_code} {r.text}")
        job = r.headers["OpenEO-Identifier"]
        r = self.call("POST", f"/jobs/{job}/results")
        if r.status_code != 202:
            raise RuntimeError(f"POST /jobs/{job}/results: {r.status_code} {r.text}")
        return job

    def jobs(self) -> dict[str, dict[str, Any]]:
        return {j["id"]: j for j in self.call("GET", "/jobs", params={"limit": 1000}).json()["jobs"]}


@dataclass
class Stack:
    """One run's stack: database, lake, queue prefix, API, workers and status consumer (with health ports)."""

    name: str
    workdir: Path
    repo: sample.SampleRepository
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.db = f"hrlc_soak_{os.getpid()}_{self.name}"
        self.dsn = ADMIN_DSN.rsplit("/", 1)[0] + f"/{self.db}"
        self.topo = Topology(f"hrlcsoak{os.getpid()}{self.name}")
        self.log = self.workdir / f"{self.name}-processes.log"
        self.lake = self.workdir / f"{self.name}-lake"
        users = self.workdir / "users.json"
        users.write_text(json.dumps({USER: hash_password(PASSWORD)}))
        self.env = {
            **os.environ,
            "HRLC_STORE": self.lake.as_uri(),
            "HRLC_CATALOG": self.dsn,
            "HRLC_JOBS_DSN": self.dsn,
            "HRLC_BROKER_PREFIX": self.topo.prefix,
            "HRLC_USERS_FILE": str(users),
            "HRLC_TOKEN_SECRET": "soak-benchmark-secret-of-at-least-32-bytes",
            "HRLC_JOB_SOURCES": json.dumps([str(Path(self.repo.catalog).parent)]),
            "HRLC_JOB_TRAINING": json.dumps([str(Path(self.repo.training_points).parent)]),
            "HRLC_LOG_LEVEL": "INFO",
            "HRLC_RETRY_BACKOFF_S": "0.5",
        }

    def hrlc(self) -> list[str]:
        return [sys.executable, "-m", "hrlc.cli"]

    def start(self) -> None:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{self.db}" with (force)')
            conn.execute(f'create database "{self.db}"')
        only = [a for c in ("pgstac", "api", "ingest", "jobs") for a in ("--only", c)]
        subprocess.run(
            [*self.hrlc(), "migrate", "--catalog", self.dsn, "--jobs-dsn", self.dsn, *only],
            env=self.env,
            check=True,
            capture_output=True,
        )
        self.ports["api"] = _free_port()
        self.procs["api"] = self._spawn([*self.hrlc(), "serve", "--port", str(self.ports["api"])])
        for p in PROCESSORS:
            for i in (0, 1):
                self.ports[f"{p}-{i}"] = _free_port()
                self.restart(f"{p}-{i}")
        self.ports["status-consumer"] = _free_port()
        self.restart("status-consumer")
        self.wait_ready(list(self.ports), 120)

    def _spawn(self, cmd: list[str]) -> subprocess.Popen[bytes]:
        out = open(self.log, "ab")  # noqa: SIM115 - closed with the process
        return subprocess.Popen(cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def restart(self, name: str) -> None:
        """Start the worker or status consumer `name` (again, on its health port)."""
        port = ["--health-port", str(self.ports[name])]
        if name == "status-consumer":
            self.procs[name] = self._spawn([sys.executable, "-m", "hrlc.cli", "status-consumer", *port])
        else:
            processor = name.rsplit("-", 1)[0]
            cmd = [sys.executable, "-m", "hrlc.cli", "worker", "--processor", processor, *port]
            self.procs[name] = self._spawn(cmd)

    def kill(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait()

    def ready(self, name: str) -> bool:
        try:
            r = httpx.get(f"http://127.0.0.1:{self.ports[name]}/health/ready", timeout=5)
            return r.status_code == 200
        except httpx.TransportError:
            return False

    def wait_ready(self, names: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not all(self.ready(n) for n in names):
            dead = [n for n in names if self.procs[n].poll() is not None]
            if dead or time.monotonic() > deadline:
                tail = self.log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{self.name}: not ready: {names} (exited: {dead})\n{tail}")
            time.sleep(0.2)

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        delete(self.topo, PROCESSORS)
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{self.db}" with (force)')

    def class_maps(self) -> dict[str, Path]:
        """Lake key -> file of every class map of the run."""
        return {str(p.relative_to(self.lake)): p for p in self.lake.rglob("classified_map_*.tif")}


# ------------------------------------------------------------------------------------------------ disturbances


def rabbitmq_restart() -> str:
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        return "skipped: rabbitmqctl not found"
    stopped = subprocess.run([ctl, "stop_app"], capture_output=True, text=True, timeout=120)
    if stopped.returncode != 0:
        return f"skipped: rabbitmqctl stop_app failed: {stopped.stderr.strip()[:200]}"
    time.sleep(2)
    subprocess.run([ctl, "start_app"], capture_output=True, text=True, timeout=180, check=True)
    return "rabbitmqctl stop_app / start_app"


def postgresql_restart(dsn: str) -> str:
    """Restart the PostgreSQL cluster that serves `dsn` with pg_ctlcluster; where that cannot be done, terminate
    every connection to the database (what a restart does to its clients) and say so."""
    port = str(psycopg.conninfo.conninfo_to_dict(dsn).get("port") or 5432)
    ls = shutil.which("pg_lsclusters")
    if ls and shutil.which("pg_ctlcluster") and os.geteuid() == 0:
        for line in subprocess.run([ls, "-h"], capture_output=True, text=True).stdout.splitlines():
            version, cluster, cluster_port = line.split()[:3]
            if cluster_port == port:
                subprocess.run(["pg_ctlcluster", version, cluster, "restart"], check=True, timeout=120)
                return f"pg_ctlcluster {version} {cluster} restart"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity "
            "where datname = current_database() and pid <> pg_backend_pid()"
        )
    return "all connections terminated (pg_ctlcluster not usable here)"


def schedule(window: float, kills: int, seed: int, stack: Stack) -> list[tuple[float, str, str]]:
    """(seconds after the first submission, what, target): kills spread over the window and 30 s after it, the
    status consumer at 25 %, RabbitMQ at 50 %, PostgreSQL at 75 % of the window."""
    span, rng = window + 30, random.Random(seed)
    workers = sorted(n for n in stack.ports if n not in ("api", "status-consumer"))
    events = [(5 + i * (span - 5) / max(kills, 1), "kill", rng.choice(workers)) for i in range(kills)]
    events += [(window * 0.25, "consumer", "status-consumer"), (window * 0.5, "broker", ""),
               (window * 0.75, "database", "")]  # fmt: skip
    return sorted(events)


# ------------------------------------------------------------------------------------------------ one run


@dataclass
class RunReport:
    name: str
    jobs: dict[str, dict[str, Any]]  # job index -> the API's job at the end
    seconds: float
    longest_stall_s: float
    codes: dict[int, int]
    most_status_consumers: int
    recoveries: list[dict[str, Any]]

    @property
    def makespan_s(self) -> float:
        """From the first job's creation to the last job's end (the API's timestamps)."""
        created = [t for j in self.jobs.values() if (t := _ts(j.get("created"))) is not None]
        ended = [t for j in self.jobs.values() if (t := _ts(j.get("finished"))) is not None]
        return max(ended) - min(created) if created and ended else float("nan")

    def duration(self, i: str) -> float | None:
        job = self.jobs[i]
        start, end = _ts(job.get("queued") or job.get("created")), _ts(job.get("finished"))
        return None if start is None or end is None else end - start


def status_consumers(stack: Stack, broker: list[Any]) -> int | None:
    """Consumers on the status queue (None while the broker cannot be asked)."""
    try:
        if not broker or broker[0].is_closed:
            broker[:] = [connect(stack.env.get("HRLC_BROKER_URL"))]
            declare_common(broker[0].channel(), stack.topo)
        ch = broker[0].channel()
        n = int(ch.queue_declare(stack.topo.status_queue, passive=True).method.consumer_count)
        ch.close()
        return n
    except Exception:  # noqa: BLE001 - the broker restarting
        broker.clear()
        return None


def run(
    stack: Stack, procs_: list[dict[str, Any]], window: float, events: list[tuple[float, str, str]]
) -> RunReport:
    client = Client(f"http://127.0.0.1:{stack.ports['api']}")
    broker: list[Any] = []
    ids: dict[str, str] = {}
    watchers: list[threading.Thread] = []  # one per disturbance, until the processes it hit are ready
    recoveries: list[dict[str, Any]] = []
    lock = threading.Lock()
    t0 = time.monotonic()

    def disturb() -> None:
        """The disturbances on schedule, in a thread of their own: a restart takes seconds, and meanwhile the
        client goes on polling (so stalls are measured through them)."""
        for at, what, target in events:
            time.sleep(max(0.0, t0 + at - time.monotonic()))
            start = time.monotonic()
            if what in ("kill", "consumer"):
                stack.kill(target)
                stack.restart(target)
                how, wait_for = f"kill -9 {target}", [target]
            elif what == "broker":
                how, wait_for = rabbitmq_restart(), list(stack.ports)
            else:
                how, wait_for = postgresql_restart(stack.dsn), list(stack.ports)
            end = time.monotonic()
            print(f"  {start - t0:6.1f} s  {how} ({end - start:.1f} s)", flush=True)
            record = {
                "at_s": round(start - t0, 1),
                "what": what,
                "how": how,
                "outage_s": round(end - start, 1),
            }
            watcher = threading.Thread(target=recover, args=(record, end, wait_for), daemon=True)
            watcher.start()
            watchers.append(watcher)

    def recover(record: dict[str, Any], end: float, wait_for: list[str]) -> None:
        """Recovery: from the end of the disturbance until every process it hit answers ready."""
        while not all(stack.ready(n) for n in wait_for):
            time.sleep(0.1)
        with lock:
            recoveries.append({**record, "recovery_s": round(time.monotonic() - end, 1)})

    disturber = threading.Thread(target=disturb, name="disturb", daemon=True)
    disturber.start()
    last_change, last_state, longest, most = t0, None, 0.0, 0
    while True:
        now = time.monotonic() - t0
        for i, process in enumerate(procs_):  # submit on schedule
            if str(i) not in ids and now >= i * window / len(procs_):
                ids[str(i)] = client.submit(process)
        busy = disturber.is_alive() or any(w.is_alive() for w in watchers)
        jobs = client.jobs()
        state = sorted((j, v["status"], v.get("progress"), v.get("updated")) for j, v in jobs.items())
        if state != last_state:
            last_state, last_change = state, time.monotonic()
        unfinished = [j for j in ids.values() if jobs.get(j, {}).get("status") not in TERMINAL]
        if unfinished:
            longest = max(longest, time.monotonic() - last_change)
        consumers = status_consumers(stack, broker)
        most = max(most, consumers or 0)
        if len(ids) == len(procs_) and not unfinished and not busy:
            break
        if now > 1800:
            raise RuntimeError(f"{stack.name}: jobs still running after 30 min: {unfinished}")
        time.sleep(0.25)
    seconds = time.monotonic() - t0
    for b in broker:
        if b.is_open:
            b.close()
    return RunReport(
        stack.name,
        {i: jobs[j] for i, j in ids.items()},
        seconds,
        longest,
        dict(client.codes),
        most,
        recoveries,
    )


def same_maps(a: Stack, b: Stack) -> tuple[int, int, list[str]]:
    """(byte-identical, pixel-identical, differing keys) of the two runs' class maps."""
    ma, mb = a.class_maps(), b.class_maps()
    differ = sorted(set(ma) ^ set(mb))
    same_bytes = same_pixels = 0
    for key in sorted(set(ma) & set(mb)):
        if hashlib.sha256(ma[key].read_bytes()).digest() == hashlib.sha256(mb[key].read_bytes()).digest():
            same_bytes += 1
        with rasterio.open(ma[key]) as x, rasterio.open(mb[key]) as y:
            if np.array_equal(x.read(), y.read()):
                same_pixels += 1
            else:
                differ.append(key)
    return same_bytes, same_pixels, differ


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=20, help="land-cover jobs per run")
    ap.add_argument("--kills", type=int, default=20, help="kill -9 of workers during the disturbed run")
    ap.add_argument("--window", type=float, default=90.0, help="seconds over which the jobs are submitted")
    ap.add_argument("--size", type=int, default=96, help="pixels of the synthetic repository's side")
    ap.add_argument("--seed", type=int, default=11, help="seed of the choice of workers to kill")
    ap.add_argument(
        "--independent", action="store_true", help="one AOI per job (no products shared between jobs)"
    )
    ap.add_argument(
        "--workdir", type=Path, default=None, help="where lakes and logs go (default: a new temp dir)"
    )
    ap.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=["consumer", "broker", "database"],
        help="leave this out",
    )
    args = ap.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="hrlc-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"soak: {args.jobs} jobs over {args.window:g} s, {args.kills} kills; work in {workdir}", flush=True)
    repo = sample.generate(workdir / "external", size=args.size, year=YEAR, landsat_year=LANDSAT_YEAR)
    jobs = processes(repo, args.jobs, shared=not args.independent)
    reports: dict[str, RunReport] = {}
    stacks: dict[str, Stack] = {}
    try:
        for name in ("undisturbed", "disturbed"):
            stack = stacks[name] = Stack(name, workdir, repo)
            stack.start()
            events = [] if name == "undisturbed" else schedule(args.window, args.kills, args.seed, stack)
            events = [e for e in events if e[1] not in args.skip]
            print(
                f"{name}: stack ready ({len(stack.procs)} processes), {len(events)} disturbances", flush=True
            )
            reports[name] = rep = run(stack, jobs, args.window, events)
            done = sum(j["status"] == "finished" for j in rep.jobs.values())
            errors = sum(v for k, v in rep.codes.items() if k >= 500 and k != 503)
            print(
                f"{name}: {done}/{len(jobs)} finished in {rep.makespan_s:.1f} s "
                f"= {60 * done / rep.makespan_s:.1f} jobs/min; "
                f"longest stall {rep.longest_stall_s:.1f} s; API answers {dict(sorted(rep.codes.items()))} "
                f"({errors} 5xx other than 503); status queue consumers at most {rep.most_status_consumers}",
                flush=True,
            )
            for r in sorted(rep.recoveries, key=lambda r: r["at_s"]):
                print(
                    f"  {r['how']} at {r['at_s']} s: out {r['outage_s']} s, all ready {r['recovery_s']} s after"
                )
            stack.stop()
        twin, day = reports["undisturbed"], reports["disturbed"]
        same_bytes, same_pixels, differ = same_maps(stacks["undisturbed"], stacks["disturbed"])
        slowdown = {
            i: round(d - u, 1)
            for i in day.jobs
            if (d := day.duration(i)) is not None and (u := twin.duration(i)) is not None
        }
        worst = max(slowdown.values(), default=float("nan"))
        longest = {name: max((d for i in r.jobs if (d := r.duration(i)) is not None), default=float("nan"))
                   for name, r in reports.items()}  # fmt: skip
        n = len(jobs)
        checks = {
            "0 lost": len(day.jobs) == n and all(j["status"] in TERMINAL for j in day.jobs.values()),
            "0 failed": all(j["status"] == "finished" for j in day.jobs.values()),
            "byte-identical class maps": same_bytes == n and not differ,
            "0 API 500s": not any(k >= 500 and k != 503 for k in day.codes),
            "one status-queue consumer": day.most_status_consumers <= 1,
            # the measure ("jobs waited up to 77 s (15 s undisturbed)"): the longest wait of the day
            f"longest job <= undisturbed longest + {SLOWDOWN_BOUND_S:g} s "
            f"({longest['disturbed']:.1f} vs {longest['undisturbed']:.1f} s)": longest["disturbed"]
            <= longest["undisturbed"] + SLOWDOWN_BOUND_S,
            # stricter, job by job: a job of 0.4 s (its AOI's products made by an earlier job) that lives through
            # the broker restart and a kill of its worker fails it by itself
            f"no job > {SLOWDOWN_BOUND_S:g} s slower than its own twin (worst {worst:+.1f} s)": worst
            <= SLOWDOWN_BOUND_S,
        }
        print(
            f"class maps: {same_bytes}/{n} byte-identical, {same_pixels}/{n} pixel-identical, differing {differ}"
        )
        first = min(t for j in day.jobs.values() if (t := _ts(j.get("created"))) is not None)
        print("job  submitted  undisturbed  disturbed  slowdown  disturbances during its life")
        for i in sorted(day.jobs, key=int):
            created, ended = _ts(day.jobs[i].get("created")), _ts(day.jobs[i].get("finished"))
            if created is None or ended is None:
                continue
            start, end = created - first, ended - first
            hits = [r["how"].split(" (")[0] for r in sorted(day.recoveries, key=lambda r: r["at_s"])
                    if start <= r["at_s"] <= end]  # fmt: skip
            print(f"{i:>3}  {start:7.1f} s  {twin.duration(i) or 0:9.1f} s  {day.duration(i) or 0:7.1f} s  "
                  f"{slowdown.get(i, float('nan')):+6.1f} s  {', '.join(hits)}")  # fmt: skip
        for name, ok in checks.items():
            print(f"  {'ok  ' if ok else 'FAIL'} {name}")
        summary = {
            "jobs": n,
            "kills": args.kills,
            "window_s": args.window,
            "size_px": args.size,
            "jobs_per_min": {k: round(60 * n / r.makespan_s, 2) for k, r in reports.items()},
            "makespan_s": {k: round(r.makespan_s, 1) for k, r in reports.items()},
            "longest_stall_s": {k: round(r.longest_stall_s, 1) for k, r in reports.items()},
            "api_codes": {k: r.codes for k, r in reports.items()},
            "recoveries": day.recoveries,
            "worst_slowdown_s": worst,
            "longest_job_s": {k: round(v, 1) for k, v in longest.items()},
            "byte_identical": same_bytes,
            "checks": checks,
        }
        print(json.dumps(summary, default=str))
        return 0 if all(checks.values()) else 1
    finally:
        for stack in stacks.values():
            try:
                stack.stop()
            except Exception as e:  # noqa: BLE001 - a second stop after a failure
                print(f"cleanup of {stack.name}: {e}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())

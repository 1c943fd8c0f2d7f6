"""Run the official openEO test suite (openeo-test-suite 0.2.2) against a local hrlc stack, offline.

    bash scripts/openeo_test_suite.sh [--groups general,collections,metadata,workflows,individual] [--keep]

(the .sh makes the suite's own venv `.venv-ots` first; this script runs in hrlc's `.venv`). Steps:

1. a stack of its own: a fresh pgstac database (`HRLC_TEST_PG_ADMIN`, default the local PostgreSQL as
   postgres), a temporary Data Lake, `hrlc demo --size 64` into both (so the product collections, e.g.
   `hrlc-optical-composites`, hold real items), a users file with one user, `hrlc serve` on a free port,
   the status consumer and one worker per processor on RabbitMQ (`HRLC_BROKER_URL`, a queue prefix of its
   own);
2. a run folder laid out the way the suite looks for its git submodules: `assets/openeo-api` → the API spec
   1.2.0 and `assets/processes` → the process specs (`--processes-version`, default 2.0.0-rc.1, the specs
   `/processes` is built from) with `tests/` → the `add-tests` branch's `*.json5` (they carry the levels),
   all from `$HRLC_SHARED/schemas` (default `../shared` beside the repository), linked, never copied;
   and `src/openeo_test_suite/tests/general/payload_examples/`, which the wheel does not ship (written
   here for our collection and process, see `payloads`);
3. one pytest run of the suite per group, with the plugin `openeo_test_suite_plugin` (HTTP Basic instead of
   OIDC, schemas from the offline mirror), a JUnit XML and an HTML report per group in `--out`;
4. pass/fail/skip counts per group (`summary.md`, `summary.json` in `--out`), then the stack is torn down.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hrlc.jobs.dag import LAND_COVER_PROCESSORS

REPO = Path(__file__).resolve().parents[1]
SUITE_VERSION = "0.2.2"
PROCESSORS = list(LAND_COVER_PROCESSORS)
USER = "ots"
GROUPS = ["general", "collections", "metadata", "metadata-optional", "workflows", "individual"]


def log(msg: str) -> None:
    print(f"[ots] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------------------------ stack
def new_pgstac_db(admin_dsn: str, name: str) -> str:
    import psycopg
    from pypgstac.db import PgstacDB
    from pypgstac.migrate import Migrate

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        conn.execute(f'create database "{name}"')
    dsn = admin_dsn.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("create extension if not exists postgis; create extension if not exists btree_gist")
    with PgstacDB(dsn=dsn) as db:
        Migrate(db).run_migration()
    from hrlc.api.openeo import udp
    from hrlc.db import migrations
    from hrlc.jobs import jobstore

    jobstore.migrate(dsn)  # what `hrlc migrate` does for the API's components
    migrations.migrate(dsn, udp.COMPONENT, udp.MIGRATIONS)
    return dsn


def drop_db(admin_dsn: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


def wait_http(url: str, procs: list[subprocess.Popen[bytes]], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            raise RuntimeError(f"{url} did not answer")
        time.sleep(0.3)


def wait_workers(logfile: Path, prefix: str, n: int, procs: list[subprocess.Popen[bytes]]) -> bool:
    """Whether `n` workers consume their queues (False when one died or after 90 s)."""
    deadline = time.monotonic() + 90
    mark = f"consuming {prefix}.tasks."
    while logfile.read_text(errors="replace").count(mark) < n:
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            return False
        time.sleep(0.3)
    return True


class Stack:
    """The database, lake, demo products, users file, workers and `hrlc serve` of one run."""

    def __init__(self, work: Path, out: Path, size: int, keep: bool):
        self.work, self.out, self.size, self.keep = work, out, size, keep
        self.admin_dsn = os.environ.get("HRLC_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
        self.db = f"hrlc_ots_{os.getpid()}"
        self.prefix = f"hrlcots{os.getpid()}"
        self.password = secrets.token_urlsafe(16)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.hrlc = str(Path(sys.executable).with_name("hrlc"))
        self.root = ""
        self.repo: Any = None

    def start(self) -> None:
        from hrlc.api.openeo.auth import hash_password
        from hrlc.sample import SampleRepository

        log(f"pgstac database {self.db}")
        dsn = new_pgstac_db(self.admin_dsn, self.db)
        users = self.work / "users.json"
        users.write_text(json.dumps({USER: hash_password(self.password)}))
        self._env = {
            **os.environ,
            "HRLC_CATALOG": dsn,
            "HRLC_STORE": f"file://{self.work / 'lake'}",
            "HRLC_JOBS_DSN": dsn,
            "HRLC_BROKER_PREFIX": self.prefix,
            "HRLC_USERS_FILE": str(users),
            "HRLC_TOKEN_SECRET": secrets.token_urlsafe(32),
            "HRLC_LOG_LEVEL": "INFO",
            # LightGBM/OpenMP threads spin under CPU contention: the demo and workers are small
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        }
        log(f"hrlc demo --size {self.size} (products into the catalogue)")
        stack_log = self.out / "stack.log"
        logf = open(stack_log, "ab")  # noqa: SIM115 - lives as long as the processes
        subprocess.run(
            [self.hrlc, "demo", "--workdir", str(self.work / "demo"), "--size", str(self.size)],
            env=self._env, check=True, stdout=logf, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.repo = SampleRepository.open(self.work / "demo" / "external")
        spawn = [[self.hrlc, "status-consumer"]] + [
            [self.hrlc, "worker", "--processor", p] for p in PROCESSORS
        ]
        for args in spawn:
            self.procs.append(subprocess.Popen(args, env=self._env, stdout=logf, stderr=subprocess.STDOUT))
        port = free_port()
        self.procs.append(
            subprocess.Popen(
                [self.hrlc, "serve", "--port", str(port), "--log-level", "warning"],
                env=self._env,
                stdout=logf,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        )
        self.root = f"http://127.0.0.1:{port}"
        wait_http(f"{self.root}/openeo/", self.procs[-1:])
        if not wait_workers(stack_log, self.prefix, len(PROCESSORS), self.procs[:-1]):
            log(f"WARNING: the workers or the status consumer did not start (see {stack_log}): batch jobs "
                "will stay queued")  # fmt: skip
        log(f"hrlc serve at {self.root}/openeo/ (log: {stack_log})")

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if self.prefix:
            from hrlc.jobs.broker import Topology, delete

            with contextlib.suppress(Exception):
                delete(Topology(self.prefix), PROCESSORS)
        if not self.keep:
            with contextlib.suppress(Exception):
                drop_db(self.admin_dsn, self.db)

    def land_cover_args(self) -> dict[str, Any]:
        r = self.repo
        t = r.transform
        w, n = t.c, t.f
        e, s = w + t.a * r.size, n + t.e * r.size
        return {
            "spatial_extent": {"west": w, "south": s, "east": e, "north": n, "crs": r.epsg},
            "year": r.year,
            "sensor": "sentinel2",
            "source": str(r.catalog),
            "training": str(r.training_points),
            "crs": r.epsg,
            "resolution": 10,
        }

    def composite_extent(self) -> dict[str, Any]:
        """A 200 m square inside the demo's grid (in its UTM zone)."""
        t = self.repo.transform
        return {"west": t.c, "south": t.f - 200, "east": t.c + 200, "north": t.f, "crs": self.repo.epsg}


# ------------------------------------------------------------------------------------- run folder
def link_assets(run: Path, shared: Path, processes_version: str) -> None:
    """`assets/openeo-api` and `assets/processes` as the suite's git submodules would be (links)."""
    schemas = shared / "schemas"
    api = schemas / "openeo-api" / "1.2.0"
    procs = schemas / "openeo-processes" / processes_version
    tests = schemas / "openeo-processes" / "add-tests" / "tests"
    for p in (api / "openapi.yaml", procs, tests):
        if not p.exists():
            raise SystemExit(f"{p} not found; set HRLC_SHARED to the shared/ folder")
    assets = run / "assets"
    assets.mkdir(parents=True)
    (assets / "openeo-api").symlink_to(api, target_is_directory=True)
    mine = assets / "processes"
    mine.mkdir()
    for name in ("proposals", "meta"):
        if (procs / name).is_dir():
            (mine / name).symlink_to(procs / name, target_is_directory=True)
    for f in procs.glob("*.json"):
        if f.name != "processes.json":  # the bundled list, not a process
            (mine / f.name).symlink_to(f)
    (mine / "tests").symlink_to(tests, target_is_directory=True)
    # the individual process tests resolve `$ref: assets/...` of a test file against the folder of the
    # process's JSON, not against tests/ where the assets are
    (mine / "assets").symlink_to(tests / "assets", target_is_directory=True)


def payloads(stack: Stack) -> dict[str, dict[str, Any]]:
    """The request bodies of the compliance tests (`payload_examples/<dir>/<name>.json`).

    The suite's repository has them, its wheel does not. These have the upstream shape (a job is `title`,
    `description`, `budget`, `process` with metadata) but use what this back end offers: batch jobs run
    `hrlc_land_cover` (on the demo's synthetic repository), `/result` and `/validation` get a small
    `load_collection` → `save_result` of `hrlc-optical-composites`. `empty_payload` is a process without
    nodes, which is what the suite's expectations fit (4xx for PUT/POST, 200 with errors for /validation)."""
    lc = {
        "lc": {"process_id": "hrlc_land_cover", "arguments": stack.land_cover_args()},
        "save": {
            "process_id": "save_result",
            "arguments": {"data": {"from_node": "lc"}, "format": "GTiff"},
            "result": True,
        },
    }
    load_save = {
        "load1": {
            "process_id": "load_collection",
            "arguments": {
                "id": "hrlc-optical-composites",
                "spatial_extent": stack.composite_extent(),
                "temporal_extent": [f"{stack.repo.year}-07-01", f"{stack.repo.year}-07-31"],
                "bands": ["red", "nir"],
            },
        },
        "save2": {
            "process_id": "save_result",
            "arguments": {"data": {"from_node": "load1"}, "format": "GTiff"},
            "result": True,
        },
    }

    def job(title: str) -> dict[str, Any]:
        process = {"categories": [], "deprecated": False, "experimental": False, "process_graph": lc}
        return {"title": title, "description": None, "budget": None, "process": process}

    udp = {
        "id": "placeholder",
        "summary": "x plus one",
        "description": "Adds 1 to `x` (a user-defined process of the openEO test suite run).",
        "parameters": [{"name": "x", "description": "A number.", "schema": {"type": "number"}}],
        "returns": {"description": "x + 1", "schema": {"type": "number"}},
        "process_graph": {
            "add1": {"process_id": "add", "arguments": {"x": {"from_parameter": "x"}, "y": 1}, "result": True}
        },
    }
    return {
        "post_jobs/post_jobs_1.json": job("test"),
        "patch_jobs/patch_jobs_1.json": job("testpatch"),
        "put_process_graphs/put_process_graphs_1.json": udp,
        "post_result/post_result_1.json": {"process": {"process_graph": load_save}},
        "post_validation/post_validation_1.json": {"process_graph": load_save},
        "empty_payload/empty_payload.json": {"process_graph": {}},
    }


def write_payloads(run: Path, stack: Stack) -> None:
    root = run / "src" / "openeo_test_suite" / "tests" / "general" / "payload_examples"
    for rel, body in payloads(stack).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(body, indent=1))


# ------------------------------------------------------------------------------------------ suite
def suite_tests_dir(ots_python: str) -> Path:
    code = "import openeo_test_suite, pathlib; print(pathlib.Path(openeo_test_suite.__file__).parent)"
    return Path(subprocess.check_output([ots_python, "-c", code], text=True).strip()) / "tests"


def group_args(group: str, tests: Path, a: argparse.Namespace) -> list[str]:
    if group == "general":
        return [str(tests / "general")]
    if group == "collections":
        return [str(tests / "collections")]
    if group == "metadata":
        return [str(tests / "processes" / "metadata"), "-m", "not optional"]
    if group == "metadata-optional":
        return [str(tests / "processes" / "metadata"), "-m", "optional"]
    if group == "workflows":
        dirs = [str(tests / "workflows" / lvl) for lvl in a.process_levels.split(",")]
        return [*dirs, f"--s2-collection={a.s2_collection}", f"--process-levels={a.process_levels}"]
    if group == "individual":
        return [
            str(tests / "processes" / "processing"),
            "--runner=http",
            f"--process-levels={a.process_levels}",
        ]
    raise ValueError(group)


def counts(junit: Path) -> dict[str, int]:
    if not junit.is_file():
        return {"tests": 0, "passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    root = ET.parse(junit).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    c = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    return {
        "tests": c["tests"],
        "passed": c["tests"] - c["failures"] - c["errors"] - c["skipped"],
        "failed": c["failures"],
        "errors": c["errors"],
        "skipped": c["skipped"],
    }


def failures(junit: Path) -> list[str]:
    if not junit.is_file():
        return []
    out = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        for bad in list(case.findall("failure")) + list(case.findall("error")):
            msg = (bad.get("message") or "").strip().splitlines()
            out.append(f"{case.get('name')}: {msg[0][:200] if msg else bad.tag}")
    return out


def run_group(group: str, a: argparse.Namespace, stack: Stack, run: Path, out: Path, tests: Path) -> int:
    env = {
        **os.environ,
        "OPENEO_AUTH_METHOD": "basic",
        "OPENEO_AUTH_BASIC_USERNAME": USER,
        "OPENEO_AUTH_BASIC_PASSWORD": stack.password,
        "OTS_SCHEMAS": str(a.shared / "schemas"),
        "PYTHONPATH": str(REPO / "scripts"),
        "NO_PROXY": "127.0.0.1,localhost",
    }
    cmd = [
        a.ots_python, "-m", "pytest", *group_args(group, tests, a),
        "-p", "openeo_test_suite.lib.pytest_plugin", "-p", "openeo_test_suite_plugin",
        f"--openeo-backend-url={stack.root}/openeo/",
        f"--junit-xml={out / f'{group}.xml'}", f"--html={out / f'{group}.html'}", "--self-contained-html",
        "-o", "junit_family=xunit2", "-p", "no:cacheprovider", "-rfEs", "--tb=short", "-q",
        *a.pytest_args,
    ]  # fmt: skip
    log(f"group {group}: {' '.join(cmd[3:])}")
    with open(out / f"{group}.log", "wb") as f:
        rc = subprocess.run(cmd, cwd=run, env=env, stdout=f, stderr=subprocess.STDOUT).returncode
    return rc


def summarise(groups: list[str], out: Path) -> str:
    rows = {g: counts(out / f"{g}.xml") for g in groups}
    lines = [
        "| group | tests | passed | failed | errors | skipped |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for g, c in rows.items():
        lines.append(
            f"| {g} | {c['tests']} | {c['passed']} | {c['failed']} | {c['errors']} | {c['skipped']} |"
        )
    text = "\n".join(lines) + "\n"
    details = []
    for g in groups:
        bad = failures(out / f"{g}.xml")
        if bad:
            details.append(f"\n## {g}: {len(bad)} failed or errored\n")
            details += [f"- {b}" for b in bad]
    (out / "summary.md").write_text(text + "\n".join(details) + "\n")
    (out / "summary.json").write_text(json.dumps(rows, indent=1))
    return text


@contextlib.contextmanager
def workdir(given: Path | None, keep: bool) -> Iterator[Path]:
    if given:
        given.mkdir(parents=True, exist_ok=True)
        yield given.resolve()
        return
    tmp = Path(tempfile.mkdtemp(prefix="hrlc-ots-"))
    try:
        yield tmp
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1 :]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--groups", default="general,collections,metadata,metadata-optional,workflows,individual")
    p.add_argument("--out", type=Path, help="reports folder (default: a new temporary folder, kept)")
    p.add_argument("--workdir", type=Path, help="stack folder (default: temporary, removed unless --keep)")
    p.add_argument("--keep", action="store_true", help="keep the stack folder and the database")
    p.add_argument(
        "--hold", action="store_true",
        help="after the groups, keep the stack up (user, password and URL printed) until SIGTERM or Ctrl-C",
    )  # fmt: skip
    p.add_argument("--size", type=int, default=64, help="demo grid size, pixels")
    p.add_argument("--processes-version", default="2.0.0-rc.1", help="openeo-processes specs to compare with")
    p.add_argument("--process-levels", default="L1,L2", help="levels of the workflow and individual tests")
    p.add_argument("--s2-collection", default="hrlc-optical-composites")
    p.add_argument(
        "--shared", type=Path, default=Path(os.environ.get("HRLC_SHARED", REPO.parent / "shared")),
        help="the shared/ folder with schemas/ (HRLC_SHARED)",
    )  # fmt: skip
    p.add_argument(
        "--ots-python", default=os.environ.get("OTS_PYTHON", str(REPO / ".venv-ots" / "bin" / "python")),
        help="python of the venv with openeo-test-suite (OTS_PYTHON)",
    )  # fmt: skip
    a = p.parse_args(argv)
    a.pytest_args = extra
    a.shared = a.shared.resolve()
    groups = [g for g in a.groups.split(",") if g]
    unknown = set(groups) - set(GROUPS)
    if unknown:
        p.error(f"unknown groups {sorted(unknown)}; known: {GROUPS}")
    if not Path(a.ots_python).exists():
        p.error(f"{a.ots_python} not found: run scripts/openeo_test_suite.sh (it makes the venv)")
    out = (a.out or Path(tempfile.mkdtemp(prefix="hrlc-ots-report-"))).resolve()
    out.mkdir(parents=True, exist_ok=True)
    tests = suite_tests_dir(a.ots_python)
    with workdir(a.workdir, a.keep) as work:
        stack = Stack(work, out, a.size, a.keep)
        try:
            stack.start()
            run = work / "run"
            link_assets(run, a.shared, a.processes_version)
            write_payloads(run, stack)
            for g in groups:
                run_group(g, a, stack, run, out, tests)
                c = counts(out / f"{g}.xml")
                log(f"group {g}: {c['passed']} passed, {c['failed']} failed, {c['errors']} errors, "
                    f"{c['skipped']} skipped")  # fmt: skip
            if a.hold:
                signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
                log(
                    f"holding: {stack.root}/openeo/ user {USER!r} password {stack.password!r} (run folder {run})"
                )
                with contextlib.suppress(KeyboardInterrupt, SystemExit):
                    while all(p.poll() is None for p in stack.procs):
                        time.sleep(1)
        finally:
            stack.stop()
    print(
        f"openeo-test-suite {SUITE_VERSION} against hrlc (processes {a.processes_version}); reports in {out}"
    )
    print(summarise(groups, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

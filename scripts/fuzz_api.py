"""Fuzz `hrlc serve` with schemathesis: the openEO API against the official openEO API 1.2.0 document
(`../shared/schemas/openeo-api/1.2.0/openapi.yaml`, precise request schemas) and the STAC API against its own
OpenAPI document. The only check is the one that matters here: no server error (5xx) for any request.

    .venv/bin/python scripts/fuzz_api.py                  # what CI runs (deterministic, bounded)
    .venv/bin/python scripts/fuzz_api.py --max-examples 50

It makes a fresh pgstac database (dropped at the end), a users file with one user, starts `hrlc serve` on a free
port with one worker process (a crash shows as a failure, not as a supervisor restart), logs in, runs
schemathesis twice and prints its summaries (operations and test cases). Exit 0 only when both runs found no
server error. Needs PostgreSQL (scripts/services.sh) and RabbitMQ (a started job publishes its tasks).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HRLC_SHARED", REPO.parent / "shared"))
ADMIN = os.environ.get("HRLC_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
# Operations of the openEO API that hrlc does not offer (secondary web services, file workspace, UDFs): they
# answer 404/501 and one of their schemas uses a `not` schemathesis cannot generate from.
NOT_OFFERED = r"^/(services|files|service_types|udf_runtimes)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _schemathesis(schema: str, base: str, token: str | None, args: argparse.Namespace, *extra: str) -> bool:
    """Run schemathesis; True when no request got a server error and none broke the connection. Operations
    schemathesis cannot generate requests for (its "Schema Error", e.g. a `not` in a schema) are reported, not
    failed: they are the generator's limits, not the server's."""
    command = [
        str(Path(sys.executable).with_name("schemathesis")), "run", schema, "--url", base,
        "--checks", "not_a_server_error", "--max-examples", str(args.max_examples),
        "--generation-deterministic", "--workers", "1", "--no-color", *extra,
    ]  # fmt: skip
    if token:
        command += ["--header", f"Authorization: Bearer basic//{token}"]
    print(f"== schemathesis {schema} against {base}", flush=True)
    done = subprocess.run(command, capture_output=True, text=True)
    out = done.stdout + done.stderr
    for section in ("ERRORS", "FAILURES", "SUMMARY"):  # schemathesis's report: what broke, then the counts
        at = out.find(f" {section} ")
        if at >= 0:
            end = min(
                [i for i in (out.find(" WARNINGS ", at), out.find(" SUMMARY ", at)) if i > at] or [len(out)]
            )
            print(
                out[out.rfind("\n", 0, at) + 1 : end if section != "SUMMARY" else len(out)][:20000],
                flush=True,
            )
    import re

    tested = re.search(r"Tested: (\d+)", out)
    cases = re.search(r"(\d+) generated", out)
    server_errors = len(
        re.findall(r"ST\d+ Server error", out.split("SUMMARY")[0])
    )  # also on undeclared media types
    network = "Network Error" in out
    schema_errors = re.search(r"Schema Error: (\d+)", out)
    print(f"== {schema}: {tested.group(1) if tested else '?'} operations, {cases.group(1) if cases else '?'} test "
          f"cases, {server_errors} server errors, {'a' if network else 'no'} broken connection, "
          f"{schema_errors.group(1) if schema_errors else 0} operations schemathesis could not fully generate for",
          flush=True)  # fmt: skip
    return server_errors == 0 and not network and tested is not None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-examples", type=int, default=5, help="examples per operation and phase")
    args = parser.parse_args()
    name = f"hrlc_fuzz_{os.getpid()}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        conn.execute(f'create database "{name}"')
    dsn = ADMIN.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("create extension if not exists postgis; create extension if not exists btree_gist")
    migrate = [str(Path(sys.executable).with_name("hrlc")), "migrate", "--catalog", dsn, "--jobs-dsn", dsn]
    subprocess.run([*migrate, *(a for c in ("pgstac", "api", "ingest", "jobs") for a in ("--only", c))],
                   check=True, capture_output=True)  # fmt: skip
    from hrlc.api.openeo.users import hash_password
    from hrlc.jobs.broker import Topology, delete

    prefix = f"hrlcfuzz{os.getpid()}"
    port = _free_port()
    proc = None
    with tempfile.TemporaryDirectory() as tmp:
        users = Path(tmp) / "users.json"
        users.write_text(json.dumps({"fuzz": hash_password("fuzz-password")}))
        env = {
            **os.environ,
            "HRLC_CATALOG": dsn,
            "HRLC_STORE": str(Path(tmp) / "lake"),
            "HRLC_USERS_FILE": str(users),
            "HRLC_TOKEN_SECRET": "fuzz-token-secret-of-at-least-32-bytes",
            "HRLC_BROKER_PREFIX": prefix,
            "HRLC_API_WORKERS": "1",
            "HRLC_API_LOGIN_MAX_ATTEMPTS": "1000000",
            "HRLC_API_LOGIN_MAX_FAILURES": "1000000",
        }
        log = Path(tmp) / "serve.log"
        try:
            with open(log, "wb") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "hrlc.cli", "serve", "--port", str(port), "--log-level", "warning"],
                    env=env, stdout=out, stderr=subprocess.STDOUT,
                )  # fmt: skip
            root = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{root}/openeo/", timeout=5).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    print(log.read_text()[-3000:], file=sys.stderr)
                    return 1
                time.sleep(0.3)
            token = httpx.get(f"{root}/openeo/credentials/basic", auth=("fuzz", "fuzz-password")).json()[
                "access_token"
            ]
            openapi = SHARED / "schemas" / "openeo-api" / "1.2.0" / "openapi.yaml"
            t0 = time.monotonic()
            openeo = _schemathesis(
                str(openapi), f"{root}/openeo", token, args, "--exclude-path-regex", NOT_OFFERED
            )
            # as the user (reads need a token); stac-fastapi's document names no path parameter for bulk_items
            stac = _schemathesis(
                f"{root}/stac/api", f"{root}/stac", token, args, "--exclude-path-regex", "bulk_items$"
            )
            alive = proc.poll() is None
            print(f"== fuzzing done in {time.monotonic() - t0:.0f} s: openEO {'ok' if openeo else 'FAILED'}, STAC "
                  f"{'ok' if stac else 'FAILED'}, server {'still up' if alive else 'DEAD'}", flush=True)  # fmt: skip
            return 0 if openeo and stac and alive else 1
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(30)
            delete(Topology(prefix), ["optical-preprocessing", "features", "classification", "process-graph"])
            with psycopg.connect(ADMIN, autocommit=True) as conn:
                conn.execute(f'drop database if exists "{name}" with (force)')


if __name__ == "__main__":
    sys.exit(main())

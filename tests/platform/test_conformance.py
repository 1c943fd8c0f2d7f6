"""stac-api-validator passes against `hrlc serve` for core, collections, features, item-search and filter,
offline (its JSON schemas come from `shared/schemas/` through `scripts/stac_api_validator_offline.py`).
The command is the one recorded in docs/conformance.md."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pyproj import Transformer

from hrlc.catalog.pgstac import collection_ids

REPO = Path(__file__).resolve().parents[2]
CONFORMANCE = ["core", "collections", "features", "item-search", "filter"]


@pytest.fixture
def hrlc_serve(platform_run: Any, pgstac_dsn: str) -> Iterator[str]:
    """`hrlc serve` in a subprocess over the platform run's pgstac database; yields the STAC landing URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "HRLC_STORE": platform_run.store.url,
        "HRLC_CATALOG": pgstac_dsn,
        "HRLC_API_WRITE_TOKEN": "conformance-write-token-of-32-characters",
        "HRLC_STAC_PUBLIC_COLLECTIONS": json.dumps(collection_ids()),  # the validators read anonymously
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "hrlc.cli", "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/stac/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read().decode() if proc.stdout else ""
                pytest.fail(f"hrlc serve did not start: {out}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_stac_api_validator_passes(hrlc_serve: str, platform_run: Any, shared: Path) -> None:
    repo = platform_run.repo
    t = repo.transform
    to_ll = Transformer.from_crs(f"EPSG:{repo.epsg}", "EPSG:4326", always_xy=True)
    w, s, e, n = to_ll.transform_bounds(t.c, t.f + t.e * repo.size, t.c + t.a * repo.size, t.f)
    geometry = {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}
    command = [
        sys.executable,
        str(REPO / "scripts" / "stac_api_validator_offline.py"),
        "--schemas",
        str(shared / "schemas"),
        "--",
        "--root-url",
        hrlc_serve,
        *(arg for cc in CONFORMANCE for arg in ("--conformance", cc)),
        "--collection",
        "hrlc-class-maps",
        "--geometry",
        json.dumps(geometry),
        "--log-level",
        "WARNING",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    assert "Errors: none" in report, report
    assert "offline:" not in report, report  # nothing tried to reach the internet

"""The contract stays byte-for-byte (issue 12): a demo run's lake keys, its STAC Items and collections, and
the task params of its DAG are compared with the golden copy (made before the composition root came in;
remade when products became tiles of the product grid, issue 13).

Normalised only for what a run cannot repeat: the processing time. The run's folder is fixed (the training
file's path is part of the classification's config, so of its keys) and written as {workdir} in hrefs.
Regenerate deliberately with `HRLC_GOLDEN_WRITE=1 pytest tests/test_contract_golden.py` (and say why in the
commit): a diff here is a change of contract for every lake and catalogue already written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

GOLDEN = Path(__file__).parent / "golden" / "demo-128.json"


def _normalise(value: Any, root: str) -> Any:
    if isinstance(value, dict):
        return {k: _normalise(v, root) for k, v in value.items() if k != "processing:datetime"}
    if isinstance(value, list):
        return [_normalise(v, root) for v in value]
    if isinstance(value, str):
        return value.replace(root, "{workdir}")
    return value


def _snapshot(workdir: Path) -> dict[str, Any]:
    from hrlc.jobs.dag import land_cover_dag
    from hrlc.jobs.request import BoundingBox, LandCoverRequest

    lake = workdir / "lake"
    keys = sorted(str(p.relative_to(lake)) for p in lake.rglob("*") if p.is_file())
    stac = {
        k: _normalise(json.loads((lake / k).read_text()), str(workdir))
        for k in keys
        if k.startswith("metadata/stac/")
    }
    request = LandCoverRequest(
        spatial_extent=BoundingBox.of((430080.0, 5159680.0, 431360.0, 5160960.0), "EPSG:32633"),
        crs="EPSG:32633",
        resolution=10.0,
        year=2021,
        source="{workdir}/external/catalog.json",
        training="{workdir}/external/training.gpkg",
        sensor="sentinel2",
        tile_size=640,  # the demo's: 2 x 2 tiles
    )
    dag = land_cover_dag(request)
    tasks = [
        {"id": t.id, "processor": t.processor, "params": t.params, "depends_on": list(t.depends_on)}
        for t in dag.order()
    ]
    return {"keys": keys, "stac": stac, "tasks": tasks}


@pytest.mark.slow
def test_demo_keys_items_and_tasks_are_unchanged() -> None:
    import shutil
    import tempfile

    from rich.console import Console

    from hrlc.demo import run_demo
    from hrlc.settings import Settings

    workdir = Path(tempfile.gettempdir()).resolve() / "hrlc-contract-golden"
    shutil.rmtree(workdir, ignore_errors=True)
    try:
        run_demo(workdir, size=128, console=Console(quiet=True), settings=Settings())
        got = json.loads(json.dumps(_snapshot(workdir)))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if os.environ.get("HRLC_GOLDEN_WRITE"):
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    want = json.loads(GOLDEN.read_text())
    assert got["keys"] == want["keys"]
    assert got["tasks"] == want["tasks"]
    assert sorted(got["stac"]) == sorted(want["stac"])
    for key, item in want["stac"].items():
        assert got["stac"][key] == item, key

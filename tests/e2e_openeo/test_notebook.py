"""`notebooks/land_cover_job.ipynb` executed with nbclient (a real ipykernel) against the local stack: it runs
without error, writes the figure, and the class map it downloaded equals the in-process run's."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

from landcover import YEAR, is_aoi_map_file, read_class_map

from .conftest import PASSWORD, USER, Stack

pytestmark = pytest.mark.slow
NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "land_cover_job.ipynb"


def test_land_cover_notebook_runs_against_the_stack(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    env = {
        "HRLC_OPENEO_URL": stack.url,
        "HRLC_STAC_URL": f"{stack.root}/stac",
        "HRLC_USER": USER,
        "HRLC_PASSWORD": PASSWORD,
        "HRLC_SAMPLE_CATALOG": str(stack.repo.catalog),
        "HRLC_SAMPLE_TRAINING": str(stack.repo.training_points),
        "HRLC_YEAR": str(YEAR),
        "HRLC_OUTPUT_DIR": str(out),
        "HRLC_JOB_TIMEOUT_S": "240",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)  # the kernel inherits this environment
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()  # raises CellExecutionError on the first failing cell
    nbformat.write(nb, tmp_path / "executed.ipynb")  # to look at after a failure

    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"
    ]
    assert not errors
    figure = out / "class_map.png"
    assert figure.is_file() and figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    [class_map] = [
        p for p in (out / "results").glob("classified_map_*.tif") if is_aoi_map_file(p.name)
    ]  # the AOI map item's data asset (its confidence COG, styles and accuracy files are downloaded too)
    assert np.array_equal(read_class_map(class_map), stack.reference)
    # the last cell found the job's class map through the STAC API
    last = nb.cells[-1].outputs[-1]["data"]["text/plain"]
    assert "classified_map_" in last
    if (
        os.environ.get("HRLC_NOTEBOOKS_WRITE") == "1"
    ):  # the executed notebook, committed (tests/test_notebooks.py)
        nbformat.write(nb, NOTEBOOK)

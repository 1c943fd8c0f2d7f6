"""`notebooks/training_import.ipynb` executed with nbclient (a real ipykernel) against a fresh PostGIS database:
it imports the eo-learn land-use set laid out under the naming convention, shows the import status, and maps
the samples (a PNG)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import nbformat
import pytest
from nbclient import NotebookClient

from hrlc.training import db

from .conftest import LULC_SET, write_set

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "training_import.ipynb"


def test_training_import_notebook(
    pgstac_db_factory: Callable[[str], str],
    lulc_polygons: gpd.GeoDataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dsn = pgstac_db_factory("training_notebook")
    source = tmp_path / "sets"
    write_set(source, LULC_SET, lulc_polygons)
    out = tmp_path / "out"
    for k, v in {
        "HRLC_TRAINING_DSN": dsn,
        "HRLC_TRAINING_SOURCE": str(source),
        "HRLC_TRAINING_AREA": "slovenia",
        "HRLC_OUTPUT_DIR": str(out),
    }.items():
        monkeypatch.setenv(k, v)  # the kernel inherits this environment
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()  # raises CellExecutionError on the first failing cell
    nbformat.write(nb, tmp_path / "executed.ipynb")

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    figure = out / "training_samples.png"
    assert figure.is_file() and figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any("image/png" in o.get("data", {}) for o in outputs)
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "'imported': 1" in text and "84 samples of" in text
    status = db.import_status(dsn)
    assert (
        status.set_index("dataset_name").loc[LULC_SET, "outcome"] == "unchanged"
    )  # the notebook re-imported
    if (
        os.environ.get("HRLC_NOTEBOOKS_WRITE") == "1"
    ):  # the executed notebook, committed (tests/test_notebooks.py)
        nbformat.write(nb, NOTEBOOK)

"""`notebooks/my_aoi.ipynb` executed with nbclient (a real ipykernel), as a scientist would run it: offline, on the
synthetic archive, in-process (issue 14): it plans, maps, plots the map and its confidence, shows the map's
accuracy, and its independent assessment holds the map's true accuracy (every pixel against the truth) in its
95 % interval. `HRLC_NOTEBOOKS_WRITE=1` writes the executed notebook back to notebooks/ (outputs visible on the
forge; tests/test_notebooks.py checks that every committed notebook is executed)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow
NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "my_aoi.ipynb"


def test_my_aoi_notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HRLC_MY_AOI_DIR", str(tmp_path / "my-aoi"))  # the kernel inherits this environment
    monkeypatch.delenv("HRLC_SOURCE", raising=False)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()  # raises CellExecutionError on the first failing cell
    nbformat.write(nb, tmp_path / "executed.ipynb")  # to look at after a failure

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2  # map + confidence, accuracy plot
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "sentinel2: 73 scenes" in text and "class map: lake/classification/" in text
    found = re.search(r"independent sample: ([\d.]+) \(95 % CI ([\d.]+)-([\d.]+)\).*every pixel against the truth: "
                      r"([\d.]+)", text)  # fmt: skip
    assert found, text
    lo, hi, truth = (float(found.group(i)) for i in (2, 3, 4))
    assert lo <= truth <= hi
    if os.environ.get("HRLC_NOTEBOOKS_WRITE") == "1":
        nbformat.write(nb, NOTEBOOK)

"""The notebooks are committed executed, so their outputs show on the forge (issue 14): every code cell ran, in
order, without error. Each notebook's test executes it again against real services and writes it back with
`HRLC_NOTEBOOKS_WRITE=1` (tests/e2e/test_my_aoi_notebook.py, tests/e2e_openeo/test_notebook.py,
tests/training/test_notebook.py)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_committed_executed(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.get("execution_count") for c in code), f"{path.name}: run it and commit the outputs"
    assert [c.execution_count for c in code] == sorted(c.execution_count for c in code)
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    assert any(o for c in code for o in c.outputs), path.name


def test_prerequisites_are_said_first() -> None:
    for path in NOTEBOOKS:
        first = nbformat.read(path, as_version=4).cells[0]
        assert first.cell_type == "markdown" and "Prerequisites" in first.source, path.name

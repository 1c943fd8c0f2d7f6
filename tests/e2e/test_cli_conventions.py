"""The command line's conventions (issue 14): every failure a user can cause or meet answers with one line
`error: ...` and the documented exit code (2: bad input; 1: a failure while running, e.g. a service down), never
a traceback; `hrlc run` ends with a short summary, or the products as JSON with `--json`."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import pystac
import pytest
from typer.testing import CliRunner

from hrlc import sample
from hrlc.cli import app
from hrlc.settings import get_settings

from .test_cli import _base_args

runner = CliRunner()


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once closed


def _one_class(repo: sample.SampleRepository, tmp: Path) -> Path:
    gdf = gpd.read_file(repo.training_points)
    gdf = gdf[gdf["class_code"] == gdf["class_code"].iloc[0]]
    gdf.to_file(tmp / "one-class.gpkg", engine="pyogrio")
    return tmp / "one-class.gpkg"


def _far_away(repo: sample.SampleRepository, tmp: Path) -> Path:
    gdf = gpd.read_file(repo.training_points)
    gdf["geometry"] = gdf.geometry.translate(xoff=50_000)  # 50 km east of the AOI
    gdf.to_file(tmp / "far.gpkg", engine="pyogrio")
    return tmp / "far.gpkg"


Row = Callable[[sample.SampleRepository, Path], tuple[list[str], dict[str, str]]]

#: (what the user did, the command and environment, exit code, what the error line says)
TABLE: list[tuple[str, Row, int, str]] = [
    (
        "an unknown classifier",
        lambda r, t: (_base_args(r, t / "w", **{"--classifier": "xgboost"}), {}),
        2,
        "invalid classifier: Input should be 'lightgbm' or 'rf'",
    ),
    (
        "a working folder that cannot be made",
        lambda r, t: (_base_args(r, Path("/proc/hrlc-not-here/w")), {}),
        2,
        "cannot create the working folder /proc/hrlc-not-here/w",
    ),
    (
        "a training file of one class",
        lambda r, t: (_base_args(r, t / "w", **{"--training": _one_class(r, t)}), {}),
        2,
        "a classifier needs 2 classes or more",
    ),
    (
        "training samples outside the AOI",
        lambda r, t: (_base_args(r, t / "w", **{"--training": _far_away(r, t)}), {}),
        2,
        "lies inside the AOI (the file's samples span lon",
    ),
    (
        "a group column the training file lacks",
        lambda r, t: (_base_args(r, t / "w", **{"--group-column": "parcel"}), {}),
        2,
        "has no column 'parcel'",
    ),
    (
        "a hold-out share out of range",
        lambda r, t: (_base_args(r, t / "w", **{"--holdout": 1.5}), {}),
        2,
        "invalid holdout: Input should be less than 1",
    ),
    (
        "serve with the catalogue database down",
        lambda r, t: (
            ["serve", "--port", "1"],
            {
                "HRLC_CATALOG": f"postgresql://postgres@127.0.0.1:{_dead_port()}/hrlc",
                "HRLC_TOKEN_SECRET": "s" * 40,
            },
        ),
        1,
        "the catalogue database (HRLC_CATALOG, 127.0.0.1:",
    ),
]


@pytest.mark.parametrize(("case", "row", "code", "fragment"), TABLE, ids=[t[0] for t in TABLE])
def test_every_failure_is_one_line_with_its_exit_code(
    repo: sample.SampleRepository, tmp_path: Path, case: str, row: Row, code: int, fragment: str
) -> None:
    args, env = row(repo, tmp_path)
    get_settings.cache_clear()  # `hrlc serve` reads the process-wide settings: this row's environment
    try:
        result = runner.invoke(app, args, env=env)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == code, (case, result.output)
    errors = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and fragment in errors[0], (case, result.output)
    assert "Traceback" not in result.output
    assert not (tmp_path / "w" / "lake").exists() or not any((tmp_path / "w" / "lake").rglob("*.tif"))


def test_run_ends_with_a_summary_or_json(repo: sample.SampleRepository, tmp_path: Path) -> None:
    result = runner.invoke(app, _base_args(repo, tmp_path / "w"))
    assert result.exit_code == 0, result.output
    lines = dict(ln.split(":", 1) for ln in result.stdout.splitlines() if ":" in ln)
    assert result.stdout.startswith("done in ")
    assert Path(lines["class map"].strip()).is_file()
    assert "95 % CI" in lines["accuracy"] and "held-out spatial blocks" in lines["accuracy"]
    assert Path(lines["its report"].strip()).is_file()
    assert len(result.stdout.splitlines()) <= 6  # a summary, not the list of products

    again = runner.invoke(app, [*_base_args(repo, tmp_path / "w"), "--json"])
    assert again.exit_code == 0, again.output
    out: dict[str, Any] = json.loads(again.stdout)
    assert out["class_map"] == lines["class map"].strip()
    assert {"map_accuracy", "validation_report", "items"} <= set(out)
    assert json.loads(Path(out["map_accuracy"]).read_text())["validation"]["split"] == "spatial blocks"


def test_dry_run_plans_in_seconds_and_computes_nothing(repo: sample.SampleRepository, tmp_path: Path) -> None:
    """`--dry-run`: the scenes per month (every date of the synthetic year), the training points per class
    inside the AOI, the tiles and pixels; nothing written, not even the working folder."""
    result = runner.invoke(app, [*_base_args(repo, tmp_path / "w"), "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert not (tmp_path / "w").exists()
    dates = [
        i
        for i in pystac.Catalog.from_file(str(repo.catalog)).get_items(recursive=True)
        if i.id.startswith("S2")
    ]
    assert plan["sensor"] == "sentinel2" and plan["scenes"] == len(dates)
    assert sum(v["scenes"] for v in plan["periods"].values()) == len(dates) and plan["empty_periods"] == []
    points = gpd.read_file(repo.training_points)
    want = points["class_code"].value_counts()
    assert plan["training_samples"] == {
        str(c): int(want[c]) for c in sorted(want.index)
    }  # all inside the AOI
    assert plan["tiles"] == 1 and plan["pixels"] > 0 and plan["estimated_seconds"] > 0

    text = runner.invoke(app, [*_base_args(repo, tmp_path / "w"), "--dry-run"])
    assert (
        text.exit_code == 0
        and "training samples in the AOI:" in text.stdout
        and "per period: 01:" in text.stdout
    )

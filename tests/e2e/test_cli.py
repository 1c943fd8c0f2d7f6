"""The command line: the demo report, and bad input answered with one line and exit code 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import geopandas as gpd
import pytest
import rasterio
from shapely.geometry import Point
from typer.testing import CliRunner

from hrlc import sample
from hrlc.cli import app
from landcover import one_tile, utm_bbox

runner = CliRunner()


def _run(args: list[str]):  # noqa: ANN202
    return runner.invoke(app, [str(a) for a in args])


def _base_args(repo: sample.SampleRepository, workdir: Path, **over: object) -> list[str]:
    bbox = ",".join(str(v) for v in utm_bbox(repo))
    args = {
        "--aoi": bbox,
        "--aoi-crs": f"EPSG:{repo.epsg}",
        "--crs": f"EPSG:{repo.epsg}",
        "--year": 2021,
        "--source": repo.catalog,
        "--training": repo.training_points,
        "--workdir": workdir,
        "--sensor": "sentinel2",
        "--tile-size": one_tile(repo),
    }
    args.update({k: v for k, v in over.items()})
    return ["run", *(str(x) for kv in args.items() for x in kv)]


def _assert_one_line_error(result, *fragments: str) -> None:  # noqa: ANN001
    """Exit code 2 and exactly one line `error: ...` (progress bars may stand before it)."""
    assert result.exit_code == 2, result.output
    text = result.stderr if hasattr(result, "stderr") else result.output
    errors = [ln for ln in text.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, text
    assert "Traceback" not in text
    for f in fragments:
        assert f in errors[0], text


def _products(workdir: Path) -> list[Path]:
    lake = workdir / "lake"
    return [p for p in lake.rglob("*") if p.is_file()] if lake.exists() else []


def test_aoi_outside_the_source(repo, tmp_path: Path) -> None:
    result = _run(
        _base_args(
            repo,
            tmp_path,
            **{"--aoi": "100.0,10.0,100.1,10.1", "--aoi-crs": "EPSG:4326", "--crs": "EPSG:32647"},
        )
    )
    _assert_one_line_error(
        result, "lies inside the AOI"
    )  # the cheap check comes first: no sample there either
    assert _products(tmp_path) == []


def test_year_without_scenes(repo, tmp_path: Path) -> None:
    result = _run(_base_args(repo, tmp_path, **{"--year": 2019}))
    _assert_one_line_error(result, "2019", "2021")
    assert _products(tmp_path) == []


def test_training_with_unknown_codes(repo, tmp_path: Path) -> None:
    bad = tmp_path / "bad.geojson"
    gpd.GeoDataFrame({"class_code": [80, 7, 99]}, geometry=[Point(15, 46)] * 3, crs="EPSG:4326").to_file(bad)
    result = _run(_base_args(repo, tmp_path, **{"--training": bad}))
    _assert_one_line_error(result, "unknown class codes", "7", "99")
    assert _products(tmp_path) == []


def test_training_without_crs(repo, tmp_path: Path) -> None:
    bad = tmp_path / "nocrs.gpkg"
    gpd.GeoDataFrame({"class_code": [80, 30]}, geometry=[Point(500000, 5000000)] * 2).to_file(bad)
    result = _run(_base_args(repo, tmp_path, **{"--training": bad}))
    _assert_one_line_error(result, "no CRS")
    assert _products(tmp_path) == []


@pytest.mark.parametrize("aoi", ["1,2,3", "a,b,c,d", "10,10,5,5", "missing.geojson"])
def test_malformed_aoi(repo, tmp_path: Path, aoi: str) -> None:
    _assert_one_line_error(_run(_base_args(repo, tmp_path, **{"--aoi": aoi})))


@pytest.mark.parametrize(
    "option", [("--composite", "mean"), ("--dilate", "-1"), ("--sensor", "modis"), ("--classifier", "svm")]
)
def test_bad_options_stop_before_any_work(repo, tmp_path: Path, option: tuple[str, str]) -> None:
    _assert_one_line_error(_run(_base_args(repo, tmp_path, **{option[0]: option[1]})), "invalid")
    assert _products(tmp_path) == []


def test_unreadable_cog(tmp_path: Path) -> None:
    repo = sample.generate(tmp_path / "external", size=64, year=2021, seed=3)
    import pystac

    cat = pystac.Catalog.from_file(str(repo.catalog))
    victim = next(i for i in cat.get_items(recursive=True) if i.datetime.month == 5)
    path = Path(victim.assets["red"].get_absolute_href())
    path.write_bytes(path.read_bytes()[:300])  # truncated: header only
    work = tmp_path / "work"
    result = _run(_base_args(repo, work))
    _assert_one_line_error(result, "unreadable")
    files = _products(work)
    assert not [p for p in files if ".tmp-" in p.name]
    assert not [p for p in files if "_2021_05" in p.name]
    # every item written points at a complete product
    for item_json in (work / "lake" / "metadata" / "stac").rglob("optical_*.json"):
        for asset in json.loads(item_json.read_text())["assets"].values():
            assert Path(asset["href"]).is_file()


@pytest.mark.slow
def test_demo_report(tmp_path: Path) -> None:
    """The demo scene (the default 1 024 px): the map's accuracy against every pixel of the truth, and the two
    estimates a user without a truth map gets. The independent one (a stratified random sample of the truth,
    Olofsson et al. 2014) holds the truth in its 95 % interval; the chain's own (area-weighted, held-out spatial
    blocks of training samples) is within 0.03 of it; the class map's item and tags carry that estimate, said
    to be area-weighted from blocks, and never the held-out samples' count as the map's accuracy."""
    result = _run(["demo", "--workdir", tmp_path])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "demo-report.json").read_text())
    for field in (
        "class_map",
        "truth_map",
        "overall_accuracy",
        "kappa",
        "per_class_f1",
        "items",
        "elapsed_s",
    ):
        assert field in report
    assert Path(report["class_map"]).is_file() and Path(report["truth_map"]).is_file()
    assert (tmp_path / "quicklook.png").stat().st_size > 10_000
    assert all(Path(h).is_file() for h in report["items"])

    truth = report["overall_accuracy"]
    assert truth >= 0.9
    lo, hi = report["assessed_accuracy"]["ci95"]
    assert lo <= truth <= hi
    estimated = report["estimated_accuracy"]
    assert abs(estimated["estimate"] - truth) <= 0.03
    assert "spatial blocks" in estimated["from"]

    [map_item] = [
        json.loads(Path(h).read_text())
        for h in report["items"]
        if "classified_map" in h and "/aoi-" in json.loads(Path(h).read_text())["assets"]["data"]["href"]
    ]
    props = map_item["properties"]
    assert props["hrlc:overall_accuracy"] == round(estimated["estimate"], 4)
    assert props["hrlc:overall_accuracy_ci95"] == [round(v, 4) for v in estimated["ci95"]]
    assert (
        "spatial blocks" in props["hrlc:accuracy_design"] and "area-weighted" in props["hrlc:accuracy_design"]
    )
    assert props["hrlc:heldout_overall_accuracy"] == round(report["heldout_sample_accuracy"], 4)  # named so
    assert {"accuracy", "accuracy-plot", "validation"} <= set(map_item["assets"])
    with rasterio.open(report["class_map"]) as src:
        tags = src.tags()
    assert float(tags["hrlc_overall_accuracy"]) == pytest.approx(estimated["estimate"], abs=1e-4)
    shutil.rmtree(tmp_path / "external")


def test_version_and_short_help() -> None:
    """`--version`/`-V` print the version and exit 0; `-h` is `--help` for the app and every sub-command."""
    from hrlc import __version__

    for flag in ("--version", "-V"):
        result = runner.invoke(app, [flag])
        assert result.exit_code == 0 and result.output.strip() == f"hrlc {__version__}"
    for args in (["-h"], ["run", "-h"], ["training", "import", "-h"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0 and "Usage: hrlc" in result.output, args

"""Agreement of a class map with a reference map of the registry (WorldCover, cross-walked to the HRLC legend):
a hand-computed case, then a synthetic class map against the synthetic WorldCover served by the STAC API."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from typer.testing import CliRunner

from hrlc import legend
from hrlc.ancillary import AncillaryError
from hrlc.ancillary.agreement import agreement_report
from hrlc.cli import app
from hrlc.settings import Settings

from .conftest import AOI, StacServer, service

runner = CliRunner()


def test_report_by_hand() -> None:
    class_map = np.array([[30, 30, 80], [80, 142, 0]], np.uint8)
    reference = np.array([[30, 70, 80], [80, 141, 130]], np.uint8)
    groups = agreement_report(class_map, reference)
    assert groups["pixels_compared"] == 5 and groups["pixels_excluded"] == 1
    assert groups["overall_agreement"] == pytest.approx(4 / 5)
    assert groups["labels"] == ["tree", "grass", "crop", "water"]
    assert groups["confusion_matrix"] == [[1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 2, 0], [0, 0, 0, 1]]
    tree = groups["per_class"]["tree"]
    assert (tree["map_pixels"], tree["reference_pixels"], tree["agreement_pixels"]) == (2, 1, 1)
    assert tree["users_agreement"] == 0.5 and tree["producers_agreement"] == 1.0
    assert groups["per_class"]["grass"]["users_agreement"] is None  # not mapped at all
    # kappa: po = 0.8, pe = (2*1 + 0*1 + 2*2 + 1*1) / 25 = 7/25
    assert groups["kappa"] == pytest.approx((0.8 - 7 / 25) / (1 - 7 / 25))
    classes = agreement_report(class_map, reference, level="class")
    assert classes["overall_agreement"] == pytest.approx(3 / 5)  # 142 vs 141 counts only as the same group
    assert classes["per_class"]["142"]["name"] == "Open water permanent"
    with pytest.raises(ValueError, match="not HRLC codes: \\[7\\]"):
        agreement_report(np.array([[7]]), np.array([[30]]))


def _write_class_map(path: Path, codes: np.ndarray, like: str) -> Path:
    with rasterio.open(like) as src:
        profile = {"crs": src.crs, "transform": src.transform}
    with rasterio.open(
        path, "w", driver="GTiff", width=codes.shape[1], height=codes.shape[0], count=1, dtype="uint8",
        nodata=0, **profile,
    ) as dst:  # fmt: skip
        dst.write(codes, 1)
    return path


def test_synthetic_class_map_against_worldcover(
    env: Settings, stac_server: StacServer, tmp_path: Path
) -> None:
    svc = service(env)
    ref_layer = svc.get("esa-worldcover", aoi=AOI, resolution=30)
    ref = legend.crosswalk(ref_layer.read().values, legend.WORLDCOVER_TO_HRLC)
    # the class map: the reference in HRLC codes, with trees mapped as evergreen needleleaf (same group), and
    # the first 20 rows mapped as croplands (a known disagreement)
    cmap = np.where(ref == 30, 20, ref).astype(np.uint8)
    cmap[:20, :] = 80
    valid = ref != 0
    wrong = np.zeros_like(valid)
    wrong[:20, :] = valid[:20, :] & (ref[:20, :] != 80)
    expected_overall = 1 - wrong.sum() / valid.sum()
    assert 0.75 < expected_overall < 0.95
    path = _write_class_map(tmp_path / "classified_map_optical_2021_annual.tif", cmap, ref_layer.href)

    stac_server.reset()
    out = tmp_path / "agreement.json"
    result = runner.invoke(
        app, ["ancillary", "agreement", str(path), "--reference", "esa-worldcover", "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert json.loads(out.read_text()) == report
    assert report["reference"]["cached"] is True and stac_server.requests == []  # same grid: the cached layer
    assert report["reference"]["edition"] == "2021" and report["level"] == "group"
    assert report["pixels_compared"] == int(valid.sum())
    assert report["overall_agreement"] == pytest.approx(expected_overall)
    cm = np.array(report["confusion_matrix"])
    assert cm.sum() == valid.sum() and np.trace(cm) == valid.sum() - wrong.sum()
    crop = report["per_class"]["crop"]
    assert crop["map_pixels"] == int((valid & (cmap == 80)).sum())
    assert crop["producers_agreement"] == 1.0  # every reference cropland pixel is mapped as cropland
    tree = report["per_class"]["tree"]
    assert tree["users_agreement"] == 1.0  # needleleaf vs WorldCover tree: same group
    assert tree["agreement_pixels"] == int((valid & (ref == 30) & ~wrong).sum())

    classes = svc.agreement(path, level="class")
    moved = int(
        (valid & (ref == 30) & ~wrong).sum()
    )  # tree pixels that are 20 in the map, 30 in the reference
    assert classes["overall_agreement"] == pytest.approx(expected_overall - moved / valid.sum())


def test_bad_agreement_input(env: Settings, stac_server: StacServer, tmp_path: Path) -> None:
    layer = service(env).get("esa-worldcover", aoi=AOI, resolution=30)
    bad = _write_class_map(tmp_path / "bad.tif", np.full(layer.shape, 7, np.uint8), layer.href)
    cases = [
        ([str(bad)], "not HRLC codes: [7]"),
        ([str(tmp_path / "missing.tif")], "does not exist"),
        ([str(bad), "--reference", "copernicus-dem"], "no cross-walk to the HRLC legend"),
        ([str(bad), "--reference", "mapbiomas-amazonia"], "no cross-walk to the HRLC legend"),
        ([str(bad), "--level", "leaf"], "group or class"),
    ]
    for args, fragment in cases:
        result = runner.invoke(app, ["ancillary", "agreement", *args])
        assert result.exit_code == 2, result.output
        errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1 and fragment in errors[0], result.stderr
    with pytest.raises(AncillaryError, match="outside the esa-worldcover data"):
        far = rasterio.transform.from_origin(500000, 5000000, 30, 30)
        p = tmp_path / "far.tif"
        with rasterio.open(
            p, "w", driver="GTiff", width=8, height=8, count=1, dtype="uint8", crs="EPSG:32633", transform=far
        ) as dst:
            dst.write(np.full((1, 8, 8), 80, np.uint8))
        service(env).agreement(p)

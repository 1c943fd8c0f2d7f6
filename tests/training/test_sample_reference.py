"""Training samples from a reference map (`hrlc.training.reference`, `hrlc training sample-reference`): points
inside their class, stratified counts, skipped rare classes, cross-walks, windowed reading equal to a whole-array
reference, the training format, and the command's refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
from affine import Affine
from rasterio.io import DatasetReader
from scipy import ndimage
from typer.testing import CliRunner

from cli_errors import one_line_error
from hrlc import legend
from hrlc.cli import app
from hrlc.training.reference import ReferenceMapError, _keys, _mix, sample_reference
from hrlc.training.samples import read_training

# 600 x 500 px of 10 m in UTM 33N, upper-left corner (400000, 5100000)
WIDTH, HEIGHT = 600, 500
TRANSFORM = Affine(10.0, 0.0, 400000.0, 0.0, -10.0, 5100000.0)
CRS = "EPSG:32633"
RARE = 130  # built-up: a 6 x 6 px block, 4 interior pixels at erode 2 (< min_pixels)
#: the landscape's classes in WorldCover codes (most are HRLC codes too, with other meanings; 95 is not)
HRLC_TO_WORLDCOVER = {30: 10, 80: 40, 70: 30, 142: 80, 90: 95, RARE: 50}


def landscape() -> np.ndarray:
    """HRLC codes: trees on the left (a wavy edge), crops top right, grass bottom right, three lakes (one across
    window seams, one in the crops, one touching the raster's edge), a wetland, a small built-up block, a nodata
    strip."""
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH]
    codes = np.full((HEIGHT, WIDTH), 80, dtype=np.uint8)
    codes[rows > 240 + 15 * np.sin(cols / 23.0)] = 70
    codes[cols < 200 + 20 * np.cos(rows / 31.0)] = 30
    codes[((rows - 250) / 60.0) ** 2 + ((cols - 256) / 40.0) ** 2 < 1] = 142  # across the 256-px seams
    codes[60:100, 420:520] = 142
    codes[400:440, 0:30] = 142  # touches the left edge
    codes[450:490, 300:360] = 90
    codes[300:306, 450:456] = RARE
    codes[:, 590:] = 0  # no data
    return codes


def as_worldcover(codes: np.ndarray) -> np.ndarray:
    worldcover = np.zeros_like(codes)
    for hrlc, wc in HRLC_TO_WORLDCOVER.items():
        worldcover[codes == hrlc] = wc
    return worldcover


def write_raster(path: Path, codes: np.ndarray, nodata: float | None = 0) -> Path:
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=codes.shape[1],
        height=codes.shape[0],
        count=1,
        dtype=codes.dtype,
        crs=CRS,
        transform=TRANSFORM,
        nodata=nodata,
        tiled=True,
        blockxsize=128,
        blockysize=128,
    ) as dst:
        dst.write(codes, 1)
    return path


@pytest.fixture(scope="module")
def codes() -> np.ndarray:
    return landscape()


@pytest.fixture(scope="module")
def raster(tmp_path_factory: pytest.TempPathFactory, codes: np.ndarray) -> Path:
    return write_raster(tmp_path_factory.mktemp("reference") / "map.tif", codes)


def rowcol(points) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    inv = ~TRANSFORM
    cols = inv.a * points.geometry.x.to_numpy() + inv.c
    rows = inv.e * points.geometry.y.to_numpy() + inv.f
    assert np.allclose(cols % 1, 0.5) and np.allclose(rows % 1, 0.5)  # pixel centres
    return np.floor(rows).astype(int), np.floor(cols).astype(int)


def whole_array_interior(codes: np.ndarray, radius: int) -> np.ndarray:
    """The reference: the whole array at once, beyond the edge no class."""
    c = codes.astype(np.int16)
    size = 2 * radius + 1
    lo = ndimage.minimum_filter(c, size=size, mode="constant", cval=-1)
    hi = ndimage.maximum_filter(c, size=size, mode="constant", cval=-1)
    return (lo == c) & (hi == c) & (c > 0)


def by_class(report: list[dict]) -> dict[int, dict]:
    return {r["class_code"]: r for r in report}


def test_points_lie_inside_their_class_and_counts_are_stratified(raster: Path, codes: np.ndarray) -> None:
    points = sample_reference(raster, per_class=200, erode_px=2, min_pixels=50, seed=1)
    rows, cols = rowcol(points)
    for r, c, code in zip(rows, cols, points["class_code"], strict=True):
        assert 2 <= r < HEIGHT - 2 and 2 <= c < WIDTH - 2
        assert (codes[r - 2 : r + 3, c - 2 : c + 3] == code).all()
    assert len(set(zip(rows, cols, strict=True))) == len(points)  # without replacement

    interior = whole_array_interior(codes, 2)
    report = by_class(points.attrs["report"])
    assert set(report) == {30, 70, 80, 90, 142, RARE}
    counts = points["class_code"].value_counts().to_dict()
    for code, r in report.items():
        assert r["pixels"] == int((codes == code).sum())
        assert r["interior_pixels"] == int((interior & (codes == code)).sum())
        expected = 0 if r["interior_pixels"] < 50 else min(200, r["interior_pixels"])
        assert r["points"] == counts.get(code, 0) == expected
        assert r["class_name"] == legend.name(code)
    assert report[RARE]["skipped"] and "4 interior pixels" in report[RARE]["skipped"]
    assert report[RARE]["points"] == 0 and RARE not in counts
    assert all(report[c]["skipped"] is None for c in (30, 70, 80, 90, 142))
    assert points.crs == CRS and set(points["source"]) == {"map.tif"}
    assert list(points.columns) == ["class_code", "class_name", "source", "patch_id", "geometry"]


def test_fewer_interior_pixels_than_per_class_takes_them_all(raster: Path, codes: np.ndarray) -> None:
    points = sample_reference(raster, per_class=100_000, erode_px=3, min_pixels=0)
    interior = whole_array_interior(codes, 3)
    rows, cols = rowcol(points)
    assert interior[rows, cols].all()
    assert len(points) == int(interior.sum())


def test_seed_reproducibility(raster: Path) -> None:
    a = sample_reference(raster, per_class=50, seed=7)
    b = sample_reference(raster, per_class=50, seed=7)
    c = sample_reference(raster, per_class=50, seed=8)
    assert a.equals(b) and a.attrs == b.attrs
    assert not a.geometry.geom_equals(c.geometry).all()
    assert (a["class_code"].value_counts() == c["class_code"].value_counts()).all()


def test_windowed_reading_equals_a_whole_array_reference(
    raster: Path, codes: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = sample_reference(raster, per_class=120, erode_px=2, seed=3, window_px=10_000)

    shapes: list[tuple[int, int]] = []
    read = DatasetReader.read

    def spy(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        out = read(self, *args, **kwargs)
        assert kwargs.get("window") is not None, "the raster must be read window by window"
        shapes.append(out.shape)
        return out

    monkeypatch.setattr(DatasetReader, "read", spy)
    windowed = sample_reference(raster, per_class=120, erode_px=2, seed=3, window_px=128)
    monkeypatch.undo()

    assert len(shapes) == 4 * 5  # 500 / 128 -> 4 window rows, 600 / 128 -> 5 columns
    assert max(h for h, _ in shapes) <= 128 + 2 * 2 and max(w for _, w in shapes) <= 128 + 2 * 2
    assert windowed.equals(whole) and windowed.attrs == whole.attrs

    # the draw: the per_class interior pixels of each class with the smallest keys, on the whole array at once
    interior = whole_array_interior(codes, 2)
    rows, cols = rowcol(windowed)
    for code in (30, 70, 80, 90, 142):
        r, c = np.nonzero(interior & (codes == code))
        keys = _keys(r.astype(np.uint64) * np.uint64(WIDTH) + c.astype(np.uint64), _mix(3))
        first = np.argsort(keys)[:120]
        mine = windowed["class_code"].to_numpy() == code
        assert set(zip(r[first], c[first], strict=True)) == set(zip(rows[mine], cols[mine], strict=True))

    # patches: one id per connected patch of the whole array (4-connectivity), whatever the windows
    truth = np.zeros(codes.shape, dtype=np.int64)
    offset = 0
    for code in (30, 70, 80, 90, 142, RARE):
        lab, n = ndimage.label(codes == code)
        truth[lab > 0] = lab[lab > 0] + offset
        offset += n
    pairs = set(zip(truth[rows, cols], windowed["patch_id"], strict=True))
    assert len(pairs) == len({p for p, _ in pairs}) == len({q for _, q in pairs})
    lake = windowed[windowed["class_code"] == 142]
    lake_rows, lake_cols = rowcol(lake)
    in_seam_lake = ((lake_rows - 250) / 60.0) ** 2 + ((lake_cols - 256) / 40.0) ** 2 < 1
    assert in_seam_lake.any() and lake["patch_id"][in_seam_lake].nunique() == 1  # joined across 4 windows
    assert lake["patch_id"].nunique() == 3


def test_crosswalk_from_worldcover_codes(tmp_path: Path, raster: Path, codes: np.ndarray) -> None:
    worldcover = as_worldcover(codes)
    path = write_raster(tmp_path / "worldcover.tif", worldcover)
    walked = sample_reference(path, per_class=60, seed=2, crosswalk=legend.WORLDCOVER_TO_HRLC)
    expected = {legend.WORLDCOVER_TO_HRLC[wc] for wc in HRLC_TO_WORLDCOVER.values()} - {
        legend.WORLDCOVER_TO_HRLC[50]
    }
    assert set(walked["class_code"]) == expected and not legend.unknown_codes(walked["class_code"])
    rows, cols = rowcol(walked)
    for code in set(walked["class_code"]):
        mine = walked["class_code"].to_numpy() == code
        wc = {legend.WORLDCOVER_TO_HRLC[v] for v in np.unique(worldcover[rows[mine], cols[mine]])}
        assert wc == {code}

    with pytest.raises(ReferenceMapError, match=r"codes \[95\] of worldcover.tif are not HRLC"):
        sample_reference(path)
    with pytest.raises(ReferenceMapError, match=r"codes \[50\] of worldcover.tif are not in the cross-walk"):
        sample_reference(path, crosswalk={10: 30, 30: 70, 40: 80, 80: 142, 95: 90})
    # a code cross-walked to None is not a class
    dropped = sample_reference(path, per_class=60, seed=2, crosswalk={**legend.WORLDCOVER_TO_HRLC, 40: None})
    assert 80 not in set(dropped["class_code"]) and 80 not in by_class(dropped.attrs["report"])
    with pytest.raises(ReferenceMapError, match=r"maps to \[99\]"):
        sample_reference(path, crosswalk={10: 99})


def test_bbox_limits_the_sample(raster: Path, codes: np.ndarray) -> None:
    # rows 100..299, columns 150..399 (pixel centres inside)
    west, east = 400000 + 150 * 10, 400000 + 400 * 10
    north, south = 5100000 - 100 * 10, 5100000 - 300 * 10
    points = sample_reference(raster, aoi=(west, south, east, north), per_class=40, erode_px=1, min_pixels=10)
    rows, cols = rowcol(points)
    assert rows.min() >= 100 and rows.max() < 300 and cols.min() >= 150 and cols.max() < 400
    sub = codes[100:300, 150:400]
    report = by_class(points.attrs["report"])
    assert {c: r["pixels"] for c, r in report.items()} == {
        int(c): int((sub == c).sum()) for c in np.unique(sub) if c
    }
    with pytest.raises(ReferenceMapError, match="holds no pixel centre"):
        sample_reference(raster, aoi=(14.5, 45.8, 14.6, 45.9))


def test_the_file_reads_back_as_training(raster: Path, tmp_path: Path) -> None:
    out = tmp_path / "samples.gpkg"
    result = CliRunner().invoke(
        app, ["training", "sample-reference", str(raster), str(out), "--per-class", "80", "--seed", "4"]
    )
    assert result.exit_code == 0, result.output
    assert "caveats:" in result.stdout and "hrlc assess" in result.stdout
    assert "400 points of 5 classes" in result.stdout and "interior" in result.stdout
    samples = read_training(out, group_column="patch_id")
    assert len(samples) == 400 and set(samples["class_code"]) == {30, 70, 80, 90, 142}
    assert samples.crs == CRS and samples["group"].nunique() >= 4
    assert [name for name, _ in pyogrio.list_layers(out)] == ["training"]
    again = CliRunner().invoke(
        app, ["training", "sample-reference", str(raster), str(out), "--per-class", "10", "--seed", "4"]
    )
    assert again.exit_code == 0 and len(read_training(out)) == 50  # replaced, not appended


def test_cli_crosswalk_and_bbox(tmp_path: Path, codes: np.ndarray) -> None:
    path = write_raster(tmp_path / "wc.tif", as_worldcover(codes))
    out = tmp_path / "wc.gpkg"
    args = ["training", "sample-reference", str(path), str(out), "--crosswalk", "worldcover", "--erode", "1"]
    result = CliRunner().invoke(app, [*args, "--bbox", "401500,5097000,404000,5099000", "--min-pixels", "10"])
    assert result.exit_code == 0, result.output
    assert not legend.unknown_codes(read_training(out)["class_code"])

    walk = tmp_path / "walk.json"
    walk.write_text(json.dumps({"10": 30, "30": 70, "40": 80, "80": 142, "95": 90, "50": None, "0": None}))
    result = CliRunner().invoke(
        app, ["training", "sample-reference", str(path), str(out), "--crosswalk", str(walk)]
    )
    assert result.exit_code == 0, result.output
    assert set(read_training(out)["class_code"]) == {30, 70, 80, 90, 142}


@pytest.mark.parametrize(
    ("case", "fragments"),
    [
        ("missing raster", ("does not exist",)),
        ("unknown crosswalk", ("nowhere.json", "neither a built-in")),
        ("crosswalk not json", ("cannot read the cross-walk",)),
        ("crosswalk to a non-HRLC code", ("maps to [7]",)),
        ("codes not HRLC", ("codes [95]", "are not HRLC classes")),
        ("bad bbox", ("--bbox",)),
        ("not a gpkg", ("must be a GeoPackage",)),
    ],
)
def test_cli_refuses_bad_input(
    tmp_path: Path, codes: np.ndarray, case: str, fragments: tuple[str, ...]
) -> None:
    path = write_raster(tmp_path / "wc.tif", as_worldcover(codes))
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "seven.json").write_text('{"10": 7}')
    out = str(tmp_path / "out.gpkg")
    args = {
        "missing raster": [str(tmp_path / "nothing.tif"), out],
        "unknown crosswalk": [str(path), out, "--crosswalk", str(tmp_path / "nowhere.json")],
        "crosswalk not json": [str(path), out, "--crosswalk", str(tmp_path / "bad.json")],
        "crosswalk to a non-HRLC code": [str(path), out, "--crosswalk", str(tmp_path / "seven.json")],
        "codes not HRLC": [str(path), out],
        "bad bbox": [str(path), out, "--bbox", "1,2,3"],
        "not a gpkg": [str(path), str(tmp_path / "out.geojson"), "--crosswalk", "worldcover"],
    }[case]
    result = CliRunner().invoke(app, ["training", "sample-reference", *args])
    one_line_error(result, *fragments)
    assert not (tmp_path / "out.gpkg").exists()


def test_help_has_an_example() -> None:
    result = CliRunner().invoke(app, ["training", "sample-reference", "--help"])
    assert result.exit_code == 0
    assert "truth_2021.tif" in result.stdout and "--crosswalk" in result.stdout

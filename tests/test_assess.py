"""Independent accuracy assessment (`hrlc.assess`, `hrlc assess`) on a synthetic map whose true accuracy and
areas are known: the reference is the map with a known set of pixels changed.

The map (300 x 400 px of 10 m, EPSG:32633, 128 px tiles) is made of 2 x 2 px cells, so a 20 m reference on
the same origin holds exactly the values of the 10 m one; a corner of it is map nodata, 1 % of the reference
cells are reference nodata (at random)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.warp import Resampling, calculate_default_transform, reproject
from shapely.geometry import Point, box
from typer.testing import CliRunner

from hrlc.assess import AssessError, assess_map, draw_ranks, locate_ranks
from hrlc.chain.accuracy import error_matrix, stratified_estimates
from hrlc.cli import app

CRS = "EPSG:32633"
RES = 10.0
X0, Y0 = 500_000.0, 5_100_000.0
SHAPE = (300, 400)
CLASSES = {30: 0.45, 80: 0.33, 142: 0.12, 130: 0.08, 60: 0.02}  # the map's classes and their shares
CONFUSED = {
    30: 0.05,
    80: 0.10,
    142: 0.03,
    130: 0.20,
    60: 0.30,
}  # the share of each map class the reference changes
REF_NODATA = 255
FOREIGN = {30: 1, 80: 2, 142: 3, 130: 4, 60: 5}  # a legend of another producer, for the cross-walk
FOREIGN_TO_MAP: dict[int, int | None] = {v: k for k, v in FOREIGN.items()}


def _arrays(seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    codes = np.array(list(CLASSES))
    cells = rng.choice(codes, size=(SHAPE[0] // 2, SHAPE[1] // 2), p=list(CLASSES.values()))
    ref = cells.copy()
    for c, share in CONFUSED.items():
        changed = (cells == c) & (rng.random(cells.shape) < share)
        ref[changed] = rng.choice(codes[codes != c], size=int(changed.sum()))
    cells[:15, :15] = 0  # map nodata
    ref[rng.random(ref.shape) < 0.01] = REF_NODATA
    up = np.ones((2, 2), dtype=np.uint8)
    return np.kron(cells, up).astype(np.uint8), np.kron(ref, up).astype(np.uint8)


MAP, REF = _arrays()


def _truth() -> dict[str, Any]:
    valid = (MAP != 0) & (REF != REF_NODATA)
    total_m2 = float((MAP != 0).sum()) * RES**2
    return {
        "oa": float(np.mean(MAP[valid] == REF[valid])),
        "area_m2": {c: float(np.mean(REF[valid] == c)) * total_m2 for c in CLASSES},
    }


def _write(path: Path, data: np.ndarray, *, transform: Affine, crs: str = CRS, nodata: float | None = 0,
           tiled: bool = True) -> Path:  # fmt: skip
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "height": data.shape[-2],
        "width": data.shape[-1],
        "count": 1 if data.ndim == 2 else data.shape[0],
        "dtype": data.dtype,
        "crs": crs,
        "transform": transform,
        "nodata": nodata,
    }
    if tiled:
        profile.update(tiled=True, blockxsize=128, blockysize=128)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data if data.ndim == 3 else data[np.newaxis])
    return path


GRID = Affine(RES, 0, X0, 0, -RES, Y0)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("assess")
    out = {
        "map": _write(d / "map.tif", MAP, transform=GRID),
        "ref": _write(d / "ref.tif", REF, transform=GRID, nodata=REF_NODATA),
        "ref20": _write(
            d / "ref20.tif",
            REF[::2, ::2],
            transform=Affine(2 * RES, 0, X0, 0, -2 * RES, Y0),
            nodata=REF_NODATA,
        ),
    }
    foreign = np.vectorize(lambda v: FOREIGN.get(int(v), v), otypes=[np.uint8])(REF)
    out["foreign"] = _write(d / "foreign.tif", foreign, transform=GRID, nodata=REF_NODATA)
    # the reference in lon/lat, 5 m-ish pixels, nearest neighbour (the 20 m cells survive whole)
    with rasterio.open(out["ref"]) as src:
        transform, width, height = calculate_default_transform(
            CRS, "EPSG:4326", src.width, src.height, *src.bounds, resolution=0.00005
        )
    geo = np.full((height, width), REF_NODATA, np.uint8)
    reproject(REF, geo, src_transform=GRID, src_crs=CRS, dst_transform=transform, dst_crs="EPSG:4326",
              resampling=Resampling.nearest, src_nodata=REF_NODATA, dst_nodata=REF_NODATA)  # fmt: skip
    out["ref4326"] = _write(d / "ref4326.tif", geo, transform=transform, crs="EPSG:4326", nodata=REF_NODATA)
    return out


def test_the_estimates_hold_the_true_accuracy_and_areas(files: dict[str, Path]) -> None:
    truth = _truth()
    r = assess_map(files["map"], files["ref"], n_per_class=200, seed=0)
    oa = r["overall_accuracy"]
    assert oa["ci95"][0] <= truth["oa"] <= oa["ci95"][1]
    assert abs(oa["estimate"] - truth["oa"]) < 0.02
    for c in (30, 80, 142, 130):  # the big classes
        lo, hi = r["area"][str(c)]["m2_ci95"]
        assert lo <= truth["area_m2"][c] <= hi, c
    # the design: 200 per class (class 60 has 2 % of 120 000 px: more than enough), the map's weights
    assert sum(r["samples_per_map_class"].values()) + r["dropped"] == 200 * len(CLASSES)
    assert r["dropped"] == r["dropped_by"].get("reference_nodata", 0) > 0  # the 1 % of reference nodata
    weights = {str(c): float(np.mean(MAP[MAP != 0] == c)) for c in CLASSES}
    assert r["weights"] == pytest.approx(weights)
    assert r["area"]["30"]["mapped_m2"] == pytest.approx(float((MAP == 30).sum()) * 100.0)
    design = r["design"]
    assert (
        design["sampling"] == "stratified random by map class"
        and design["estimator"] == "Olofsson et al. 2014"
    )
    assert design["n_per_class"] == 200 and design["seed"] == 0 and design["reference"] == str(files["ref"])
    assert "Olofsson et al. (2014)" in design["text"] and f"{oa['estimate']:.3f}" in design["text"]
    # the sample: centres of map pixels, their map class, the reference under them
    assert len(r["sample"]) == 200 * len(CLASSES)
    for s in r["sample"][:50]:
        assert MAP[s["row"], s["col"]] == s["map"]
        assert (s["x"], s["y"]) == (X0 + (s["col"] + 0.5) * RES, Y0 - (s["row"] + 0.5) * RES)
        expected = int(REF[s["row"], s["col"]])
        assert s["reference"] == (None if expected == REF_NODATA else expected)
    json.dumps(r)  # plain values throughout


def test_the_sample_is_stratified_without_replacement(files: dict[str, Path]) -> None:
    r = assess_map(files["map"], files["ref"], n_per_class=1500, seed=1)
    pixels = [(s["row"], s["col"]) for s in r["sample"]]
    assert len(set(pixels)) == len(pixels) == 1500 * len(CLASSES)
    assert {c: sum(s["map"] == c for s in r["sample"]) for c in CLASSES} == dict.fromkeys(CLASSES, 1500)
    again = assess_map(files["map"], files["ref"], n_per_class=1500, seed=1)
    assert again["sample"] == r["sample"]  # seeded
    assert "sample" not in assess_map(files["map"], files["ref"], n_per_class=2000)  # 10 000 points or more
    # a class smaller than n_per_class gives all its pixels
    ranks = draw_ranks({10: 7, 20: 1_000_000_000, 30: 0}, 50, np.random.default_rng(0))
    assert ranks[10].tolist() == list(range(7)) and ranks[20].size == 50 and 30 not in ranks
    assert np.all(np.diff(ranks[20]) > 0) and ranks[20].max() < 1_000_000_000


def test_a_reference_on_another_grid_gives_the_same_answer(files: dict[str, Path]) -> None:
    same = assess_map(files["map"], files["ref"], n_per_class=150, seed=3)
    coarse = assess_map(files["map"], files["ref20"], n_per_class=150, seed=3)
    assert coarse["error_matrix"] == same["error_matrix"]
    assert coarse["overall_accuracy"] == same["overall_accuracy"] and coarse["area"] == same["area"]
    geo = assess_map(files["map"], files["ref4326"], n_per_class=150, seed=3)
    agree = [a["reference"] == b["reference"] for a, b in zip(same["sample"], geo["sample"], strict=True)]
    assert np.mean(agree) > 0.98
    assert abs(geo["overall_accuracy"]["estimate"] - same["overall_accuracy"]["estimate"]) < 0.01


def test_a_crosswalk_maps_reference_codes(files: dict[str, Path]) -> None:
    direct = assess_map(files["map"], files["ref"], n_per_class=100, seed=2)
    walked = assess_map(files["map"], files["foreign"], n_per_class=100, seed=2, crosswalk=FOREIGN_TO_MAP)
    assert walked["error_matrix"] == direct["error_matrix"]
    assert walked["design"]["crosswalk"] == {str(k): v for k, v in FOREIGN_TO_MAP.items()}
    # null drops a code: the points whose reference is 60 go
    dropped = assess_map(
        files["map"], files["foreign"], n_per_class=100, seed=2, crosswalk={**FOREIGN_TO_MAP, 5: None}
    )
    assert dropped["dropped_by"]["crosswalk_null"] == sum(s["reference"] == 60 for s in direct["sample"]) > 0
    assert 60 not in [s["reference"] for s in dropped["sample"]]
    with pytest.raises(AssessError, match=r"reference codes \[5\] .* not in the cross-walk"):
        assess_map(
            files["map"], files["foreign"], crosswalk={k: v for k, v in FOREIGN_TO_MAP.items() if k != 5}
        )
    with pytest.raises(AssessError, match=r"reference codes \[1, 2, 3, 4, 5\] .* not HRLC classes"):
        assess_map(files["map"], files["foreign"])
    with pytest.raises(AssessError, match=r"\[7\] .* after the cross-walk are not HRLC classes"):
        assess_map(files["map"], files["foreign"], crosswalk={**FOREIGN_TO_MAP, 1: 7})


def test_reference_points_are_post_stratified(files: dict[str, Path], tmp_path: Path) -> None:
    """A simple random sample of 1 500 points (lon/lat), some off the map or on its nodata."""
    rng = np.random.default_rng(5)
    rows, cols = rng.integers(0, SHAPE[0], 1500), rng.integers(0, SHAPE[1], 1500)
    labels = REF[rows, cols]
    keep = labels != REF_NODATA
    rows, cols, labels = rows[keep], cols[keep], labels[keep]
    x, y = X0 + (cols + 0.3) * RES, Y0 - (rows + 0.7) * RES
    off = [Point(X0 - 500, Y0 + 500)]  # outside the map
    points = gpd.GeoDataFrame(
        {"label": [*labels.tolist(), 30]}, geometry=[*gpd.points_from_xy(x, y), *off], crs=CRS
    ).to_crs("EPSG:4326")
    path = tmp_path / "points.gpkg"
    points.to_file(path)
    r = assess_map(files["map"], path)
    assert r["design"]["sampling"] == "user points, post-stratified by map class"
    assert "post-stratified" in r["design"]["text"]
    on_nodata = int((MAP[rows, cols] == 0).sum())
    assert r["dropped_by"] == {"outside_map": 1, "map_nodata": on_nodata}
    assert r["n_samples"] == labels.size - on_nodata
    oa = r["overall_accuracy"]
    assert oa["ci95"][0] <= _truth()["oa"] <= oa["ci95"][1]
    for s in r["sample"][:50]:
        if s["reference"] is not None:
            assert s["map"] == MAP[s["row"], s["col"]]
    # the same points with foreign codes and a cross-walk; an explicit class column
    points["other"] = [FOREIGN[c] for c in points["label"]]
    points.to_file(tmp_path / "foreign.geojson")
    walked = assess_map(
        files["map"], tmp_path / "foreign.geojson", class_column="other", crosswalk=FOREIGN_TO_MAP
    )
    assert walked["error_matrix"] == r["error_matrix"]
    with pytest.raises(AssessError, match="unknown class codes"):
        assess_map(files["map"], tmp_path / "foreign.geojson", class_column="other")


def test_the_map_is_read_one_block_at_a_time(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[tuple[str, int, int]] = []
    original = rasterio.io.DatasetReader.read

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        window = kwargs.get("window")
        height, width = (self.height, self.width) if window is None else (window.height, window.width)
        reads.append((self.name, int(height), int(width)))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(rasterio.io.DatasetReader, "read", spy)
    assess_map(files["map"], files["ref"], n_per_class=50)
    of_map = [(h, w) for name, h, w in reads if name.endswith("map.tif")]
    assert len(of_map) == 2 * 3 * 4  # two passes over 3 x 4 tiles of 128 px
    assert all(h <= 128 and w <= 128 for h, w in of_map)
    assert all(
        h * w == 1 for name, h, w in reads if not name.endswith("map.tif")
    )  # the reference: its points


def test_a_map_without_tiles_is_read_in_512_px_windows(tmp_path: Path) -> None:
    big = np.kron(MAP, np.ones((2, 2), np.uint8))  # 600 x 800
    path = _write(tmp_path / "striped.tif", big, transform=Affine(5, 0, X0, 0, -5, Y0), tiled=False)
    with rasterio.open(path) as src:
        from hrlc.assess import _windows

        windows = list(_windows(src))
    assert len(windows) == 4 and max(w.height * w.width for w in windows) == 512 * 512


def test_bad_input_is_one_clear_line(files: dict[str, Path], tmp_path: Path) -> None:
    def refused(match: str, map_path: Path, reference: Path, **kw: Any) -> None:
        with pytest.raises(AssessError, match=match) as info:
            assess_map(map_path, reference, **kw)
        assert "\n" not in str(info.value)

    refused("class map .*nowhere.tif does not exist", tmp_path / "nowhere.tif", files["ref"])
    refused("reference .*nowhere.tif does not exist", files["map"], tmp_path / "nowhere.tif")
    floats = _write(tmp_path / "floats.tif", MAP.astype(np.float32), transform=GRID)
    refused("values of type float32: give a single-band raster of integer", floats, files["ref"])
    bands = _write(tmp_path / "bands.tif", np.stack([MAP, MAP]), transform=GRID)
    refused("has 2 bands", bands, files["ref"])
    empty = _write(tmp_path / "empty.tif", np.zeros_like(MAP), transform=GRID)
    refused("no classified pixel", empty, files["ref"])
    odd = _write(tmp_path / "odd.tif", np.where(MAP == 60, 61, MAP).astype(np.uint8), transform=GRID)
    refused(r"codes \[61\] outside the HRLC legend", odd, files["ref"])
    far = _write(
        tmp_path / "far.tif", REF, transform=Affine(RES, 0, X0 + 1e5, 0, -RES, Y0), nodata=REF_NODATA
    )
    refused("does not overlap the class map", files["map"], far)
    blank = _write(tmp_path / "blank.tif", np.full_like(REF, REF_NODATA), transform=GRID, nodata=REF_NODATA)
    refused("no sample point has a reference class", files["map"], blank)
    refused("n_per_class is 1", files["map"], files["ref"], n_per_class=1)
    refused("class column applies to reference points", files["map"], files["ref"], class_column="x")
    polygons = tmp_path / "polygons.geojson"
    gpd.GeoDataFrame({"class_code": [30]}, geometry=[box(X0, Y0 - 100, X0 + 100, Y0)], crs=CRS).to_file(
        polygons
    )
    refused(r"\['Polygon'\] geometries: reference data must be points", files["map"], polygons)
    away = tmp_path / "away.geojson"
    gpd.GeoDataFrame({"class_code": [30]}, geometry=[Point(0, 0)], crs=CRS).to_file(away)
    refused("no point of the reference .* falls on the class map", files["map"], away)
    junk = tmp_path / "junk.tif"
    junk.write_text("not a raster")
    refused("cannot read the class map", junk, files["ref"])


def test_the_confidence_intervals_cover_the_truth() -> None:
    """200 draws of 50 pixels a class through the same design (`draw_ranks`, `locate_ranks`) on the arrays:
    the overall accuracy's 95 % interval holds the true value in at least 90 % of them."""
    truth = _truth()["oa"]
    valid_map = MAP
    codes, counts = np.unique(valid_map[valid_map != 0], return_counts=True)
    histogram = dict(zip(codes.tolist(), counts.tolist(), strict=True))
    labels = sorted(histogram)
    ref_flat = REF.reshape(-1)
    rng = np.random.default_rng(2024)
    hits = 0
    for _ in range(200):
        ranks = draw_ranks(histogram, 50, rng)
        mapped, flat = locate_ranks(valid_map, ranks, {})
        assert mapped.size == 50 * len(labels)
        reference = ref_flat[flat]
        ok = reference != REF_NODATA
        n, labs = error_matrix(reference[ok], mapped[ok], labels)
        lo, hi = stratified_estimates(n, [histogram[c] for c in labs], labs)["overall_accuracy"]["ci95"]
        hits += lo <= truth <= hi
    assert hits / 200 >= 0.9


def test_locate_ranks_finds_the_same_pixels_block_by_block() -> None:
    """Ranks counted across windows (reading order) address each pixel of a class once."""
    ranks = {c: np.arange(int(np.count_nonzero(np.equal(MAP, c)))) for c in CLASSES}  # every pixel
    seen: dict[int, int] = {}
    found = []
    for r0 in range(0, SHAPE[0], 128):
        for c0 in range(0, SHAPE[1], 128):
            block = MAP[r0 : r0 + 128, c0 : c0 + 128]
            codes, flat = locate_ranks(block, ranks, seen)
            rows, cols = np.divmod(flat, block.shape[1])
            assert np.all(block[rows, cols] == codes)
            found.extend(zip((rows + r0).tolist(), (cols + c0).tolist(), strict=True))
    assert len(found) == len(set(found)) == int((MAP != 0).sum())
    assert seen == {c: int(np.count_nonzero(np.equal(MAP, c))) for c in CLASSES}


# --- the command line ----------------------------------------------------------------------------------------

runner = CliRunner()


def test_cli_json_summary_files(files: dict[str, Path], tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["assess", str(files["map"]), str(files["ref"]), "--n-per-class", "60", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n_samples"] + report["dropped"] == 60 * len(CLASSES)
    assert report["design"]["n_per_class"] == 60

    crosswalk = tmp_path / "crosswalk.json"
    crosswalk.write_text(json.dumps({str(k): v for k, v in FOREIGN_TO_MAP.items()}))
    out, plot = tmp_path / "report" / "assess.json", tmp_path / "assess.png"
    args = ["assess", str(files["map"]), str(files["foreign"]), "--crosswalk", str(crosswalk), "--seed", "4"]
    result = runner.invoke(app, [*args, "--out", str(out), "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    assert "overall accuracy" in result.stdout and "Croplands" in result.stdout
    assert json.loads(out.read_text())["design"]["seed"] == 4
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["{tmp}/missing.tif", "{ref}"], "does not exist"),
        (["{map}", "{ref}", "--crosswalk", "{tmp}/missing.json"], "cross-walk"),
        (["{map}", "{foreign}"], "not HRLC classes"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(
    files: dict[str, Path], tmp_path: Path, args: list[str], fragment: str
) -> None:
    where = {"tmp": tmp_path, "map": files["map"], "ref": files["ref"], "foreign": files["foreign"]}
    result = runner.invoke(app, ["assess", *(a.format(**where) for a in args)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and fragment in lines[0], result.stderr
    assert result.stdout == ""

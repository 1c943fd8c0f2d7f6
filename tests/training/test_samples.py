"""Training files: validation with clear errors, sampling of the feature cube, grouped hold-out."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from affine import Affine
from shapely.geometry import LineString, MultiPoint, Point, Polygon, box

from hrlc.training.samples import (
    TrainingDataError,
    extract_samples,
    read_training,
    split_holdout,
    validation_groups,
)

# 10 m grid, 12 x 10 pixels, upper-left corner (500000, 5000120) in UTM 33N
TRANSFORM = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5000120.0)
CRS = "EPSG:32633"


def write(tmp_path: Path, name: str, gdf: gpd.GeoDataFrame) -> Path:
    path = tmp_path / name
    gdf.to_file(path, engine="pyogrio")
    return path


def centre(row: int, col: int) -> Point:
    return Point(500000.0 + 10 * col + 5, 5000120.0 - 10 * row - 5)


def test_unknown_codes_are_named(tmp_path: Path) -> None:
    gdf = gpd.GeoDataFrame({"label": [10, 7, 99, 7]}, geometry=[centre(0, i) for i in range(4)], crs=CRS)
    path = write(tmp_path, "t.geojson", gdf)
    with pytest.raises(
        TrainingDataError, match=r"unknown class codes \[7, 99\] in .*t.geojson; valid codes: 10, 20"
    ):
        read_training(path)


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_no_crs_empty_missing_column_and_lines_are_refused(tmp_path: Path) -> None:
    no_crs = write(tmp_path, "nocrs.gpkg", gpd.GeoDataFrame({"class": [10]}, geometry=[centre(0, 0)]))
    with pytest.raises(TrainingDataError, match=r"training file .*nocrs.gpkg has no CRS"):
        read_training(no_crs)
    no_col = write(
        tmp_path, "nocol.gpkg", gpd.GeoDataFrame({"name": ["a"]}, geometry=[centre(0, 0)], crs=CRS)
    )
    with pytest.raises(TrainingDataError, match="no class column"):
        read_training(no_col)
    lines = write(
        tmp_path,
        "lines.gpkg",
        gpd.GeoDataFrame(
            {"code": [10, 20]},
            geometry=[centre(0, 0), LineString([(500000, 5000000), (500050, 5000050)])],
            crs=CRS,
        ),
    )
    with pytest.raises(TrainingDataError, match=r"unsupported geometry types \['LineString'\]"):
        read_training(lines)
    with pytest.raises(TrainingDataError, match="does not exist"):
        read_training(tmp_path / "missing.gpkg")
    empty = write(tmp_path, "empty.gpkg", gpd.GeoDataFrame({"class": []}, geometry=[], crs=CRS))
    with pytest.raises(TrainingDataError, match="has no features"):
        read_training(empty)
    text = write(
        tmp_path, "text.gpkg", gpd.GeoDataFrame({"class": ["forest"]}, geometry=[centre(0, 0)], crs=CRS)
    )
    with pytest.raises(TrainingDataError, match="non-integer class codes"):
        read_training(text)


def test_reads_and_drops_null_geometries(tmp_path: Path) -> None:
    gdf = gpd.GeoDataFrame(
        {"LC_Class": [10, 80, 142], "other": [1, 2, 3]},
        geometry=[centre(0, 0), None, box(500000, 5000000, 500020, 5000020)],
        crs=CRS,
    )
    path = write(tmp_path, "t.gpkg", gdf)
    with pytest.warns(UserWarning, match="dropped 1 feature"):
        out = read_training(path)
    assert list(out.columns) == ["class_code", "sample_id", "geometry"]
    assert out["class_code"].tolist() == [10, 142] and out["sample_id"].tolist() == [0, 2]
    assert out["class_code"].dtype == np.int64 and out.crs == CRS
    with pytest.raises(TrainingDataError, match="no column 'klass'"):
        read_training(path, class_column="klass")


def test_explicit_column_is_validated_too(tmp_path: Path) -> None:
    gdf = gpd.GeoDataFrame({"class": [10], "other": [3]}, geometry=[centre(0, 0)], crs=CRS)
    path = write(tmp_path, "t.gpkg", gdf)
    with pytest.raises(TrainingDataError, match=r"unknown class codes \[3\]"):
        read_training(path, class_column="other")


def feature_cube(nf: int = 3, ny: int = 12, nx: int = 10) -> np.ndarray:
    """Feature f of pixel (r, c) = 1000 f + 10 r + c, so a sample tells where it came from."""
    f, r, c = np.meshgrid(np.arange(nf), np.arange(ny), np.arange(nx), indexing="ij")
    return (1000 * f + 10 * r + c).astype(np.float32)


def test_points_sample_the_pixel_under_them_and_polygons_their_pixels(tmp_path: Path) -> None:
    # polygon over pixel centres rows 2..3, cols 4..6 (edges between centres)
    poly = box(500000 + 41, 5000120 - 39, 500000 + 69, 5000120 - 18)
    tiny = box(500000 + 81, 5000120 - 109, 500000 + 84, 5000120 - 106)  # inside pixel (10, 8), no centre
    gdf = gpd.GeoDataFrame(
        {"class_code": [10, 80, 30, 142, 20]},
        geometry=[
            Point(500000 + 23, 5000120 - 57),  # pixel (5, 2)
            poly,
            MultiPoint([(500000 + 1, 5000120 - 1), (500000 + 99, 5000120 - 119)]),  # (0, 0) and (11, 9)
            Point(400000, 5000000),  # outside the grid
            tiny,
        ],
        crs=CRS,
    )
    training = read_training(write(tmp_path, "mixed.gpkg", gdf))
    X, y, group, rowcol = extract_samples(training, feature_cube(), crs=CRS, transform=TRANSFORM)
    got = {(int(g), int(r), int(c)) for g, (r, c) in zip(group, rowcol, strict=True)}
    expected = {(0, 5, 2), (2, 0, 0), (2, 11, 9), (4, 10, 8)} | {(1, r, c) for r in (2, 3) for c in (4, 5, 6)}
    assert got == expected
    assert X.dtype == np.float32 and X.shape == (len(expected), 3)
    np.testing.assert_array_equal(X[:, 0], 10 * rowcol[:, 0] + rowcol[:, 1])
    np.testing.assert_array_equal(X[:, 2], 2000 + 10 * rowcol[:, 0] + rowcol[:, 1])
    np.testing.assert_array_equal(y, training["class_code"].to_numpy()[group])
    assert list(group) == sorted(group)


def test_reprojects_caps_pixels_per_polygon_and_drops_nan(tmp_path: Path) -> None:
    big = box(500000, 5000000, 500100, 5000120)  # the whole grid: 120 pixels
    gdf = gpd.GeoDataFrame({"class": [70, 120]}, geometry=[big, centre(0, 0)], crs=CRS).to_crs(4326)
    training = read_training(write(tmp_path, "wgs84.geojson", gdf))
    cube = feature_cube()
    cube[:, 0, 0] = np.nan  # the point's pixel has no observation
    X, y, group, rowcol = extract_samples(
        training, cube, crs=CRS, transform=TRANSFORM, max_pixels_per_polygon=25, seed=1
    )
    assert (group == 0).sum() == 25 and 1 not in group  # capped; NaN pixel dropped
    assert len({tuple(rc) for rc in rowcol}) == 25
    again = extract_samples(training, cube, crs=CRS, transform=TRANSFORM, max_pixels_per_polygon=25, seed=1)
    np.testing.assert_array_equal(again[3], rowcol)  # seeded
    other = extract_samples(training, cube, crs=CRS, transform=TRANSFORM, max_pixels_per_polygon=25, seed=2)
    assert not np.array_equal(other[3], rowcol)


def test_overlapping_polygons_and_holes() -> None:
    outer = Polygon(
        [(500000, 5000000), (500100, 5000000), (500100, 5000120), (500000, 5000120)],
        holes=[[(500020, 5000020), (500080, 5000020), (500080, 5000100), (500020, 5000100)]],
    )
    gdf = gpd.GeoDataFrame(
        {"class_code": [10, 20]}, geometry=[outer, box(500000, 5000100, 500020, 5000120)], crs=CRS
    )
    _, _, group, rowcol = extract_samples(
        gdf, feature_cube(), crs=CRS, transform=TRANSFORM, max_pixels_per_polygon=1000
    )
    assert (group == 0).sum() == 120 - 48 - 4  # ring minus the later square
    assert {tuple(rc) for rc in rowcol[group == 1]} == {(0, 0), (0, 1), (1, 0), (1, 1)}
    assert not any(2 <= r < 10 and 2 <= c < 8 for r, c in rowcol)  # nothing from the hole


def test_holdout_never_shares_groups_and_is_stratified() -> None:
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(40), rng.integers(1, 30, 40))
    group_class = np.array([10, 20, 30, 80] * 10)
    y = group_class[groups]
    held = split_holdout(groups, y, fraction=0.3, seed=0)
    assert not set(groups[held]) & set(groups[~held])
    for c in (10, 20, 30, 80):
        assert len(set(groups[held & (y == c)])) == 3  # round(0.3 * 10) groups of each class
    np.testing.assert_array_equal(held, split_holdout(groups, y, fraction=0.3, seed=0))
    # a class with a single group keeps it for training
    single = split_holdout(np.array([0, 0, 1, 2]), np.array([10, 10, 20, 20]), fraction=0.5)
    assert not single[:2].any() and single[2:].sum() == 1


def test_holdout_of_mixed_groups_validates_every_class_and_keeps_each_in_training() -> None:
    """Spatial blocks hold several classes: a class that is nowhere the majority (20, a minority in 10 of 30
    blocks) gets about `fraction` of its blocks held out, and no class loses its last training block."""
    rng = np.random.default_rng(1)
    groups, y = [], []
    for g in range(30):
        groups += [g] * 20
        y += [10] * 15 + [80] * 5 if g % 3 else [10] * 12 + [80] * 4 + [20] * 4
    groups_a, y_a = np.array(groups), np.array(y)
    for seed in range(20):
        held = split_holdout(groups_a, y_a, fraction=0.3, seed=seed)
        assert not set(groups_a[held]) & set(groups_a[~held])
        # round(0.3 * 10) of the blocks holding class 20: the draws for the other classes take none more
        assert len(set(groups_a[held & (y_a == 20)])) == 3
        assert 9 <= len(set(groups_a[held])) <= 12  # about 30 % of the blocks overall
    # two blocks, each the only one of a class: neither may go, they are each class's training data
    two = split_holdout(np.array([0, 0, 1, 1]), np.array([10, 20, 10, 30]), fraction=0.5)
    assert not two.any()
    del rng


def test_polygons_rasterised_in_windows_give_the_pixels_of_the_whole_grid() -> None:
    """`sample_pixels` burns polygons window by window (its memory must not grow with the AOI): the pixels and
    their polygons are those of one rasterisation of the whole grid — overlaps (later over earlier), polygons
    across window edges, off-grid coordinates, a rotated one and one outside the grid."""
    from rasterio import features as rio_features
    from shapely import affinity

    from hrlc.training.samples import _burn_polygons

    rng = np.random.default_rng(3)
    transform = Affine(10.0, 0, 500_003.7, 0, -10.0, 4_000_001.3)
    shape = (300, 470)
    polys = []
    for _ in range(60):
        x = 500_003.7 + rng.uniform(-200, 4900)
        y = 4_000_001.3 - rng.uniform(-200, 3200)
        w, h = rng.uniform(3, 900, size=2)
        polys.append(affinity.rotate(box(x, y - h, x + w, y), rng.uniform(0, 90)))
    polys.append(box(0, 0, 10, 10))  # far outside the grid
    polygons = np.array(polys, dtype=object)
    whole = rio_features.rasterize(
        ((p, k + 1) for k, p in enumerate(polygons)),
        out_shape=shape,
        transform=transform,
        fill=0,
        dtype=np.int32,
    )
    want_flat = np.flatnonzero(whole)
    want_label = whole.reshape(-1)[want_flat] - 1
    for window in (64, 97, 1000):
        flat, label = _burn_polygons(polygons, shape, transform, window)
        np.testing.assert_array_equal(flat, want_flat, err_msg=str(window))
        np.testing.assert_array_equal(label, want_label, err_msg=str(window))
    assert want_flat.size > 10_000 and len(np.unique(want_label)) > 40


def test_validation_groups_keep_geometries_and_blocks_whole() -> None:
    """Every geometry lies, whole, in the block of its pixels' centre; blocks shrink until the samples span 20."""
    rng = np.random.default_rng(0)
    # 40 geometries, each 5 pixels scattered around a centre on a 200 x 200 px grid
    centres = rng.integers(5, 195, size=(40, 2))
    geometry = np.repeat(np.arange(40), 5)
    rowcol = np.repeat(centres, 5, axis=0) + rng.integers(-4, 5, size=(200, 2))
    groups, block = validation_groups(geometry, rowcol, block_px=50, min_blocks=10)
    assert block == 50
    for g in range(40):  # a geometry is never cut, even where its pixels straddle a block edge
        assert np.unique(groups[geometry == g]).size == 1
    centre_block = (np.floor(rowcol.reshape(40, 5, 2).mean(axis=1) + 0.5).astype(int) // 50) @ np.array(
        [4, 1]
    )
    # geometries share a group exactly when their centres share a block
    same = groups[::5][:, None] == groups[::5][None, :]
    np.testing.assert_array_equal(same, centre_block[:, None] == centre_block[None, :])

    # all samples in one corner: 1000 px blocks hold them all, so the side is halved until they span 20 blocks
    _, block = validation_groups(geometry, rowcol // 4, block_px=1000)
    assert (
        block is not None
        and block < 50
        and np.unique(validation_groups(geometry, rowcol // 4, block_px=block)[0]).size >= 20
    )
    # never below 3 px: a handful of samples in one pixel stays one group
    groups, block = validation_groups(np.arange(4), np.zeros((4, 2), dtype=int), block_px=64)
    assert block == 3 and set(groups) == {0}

    # declared groups (parcels): geometries with the same label together, whatever the distance
    labels = np.array(["a", "b"] * 20)
    groups, block = validation_groups(geometry, rowcol, block_px=50, labels=labels)
    assert block is None and np.unique(groups).size == 2
    np.testing.assert_array_equal(groups, np.repeat(np.arange(40) % 2, 5))


def test_group_column_is_read_and_checked(tmp_path: Path) -> None:
    gdf = gpd.GeoDataFrame(
        {"class_code": [10, 30, 30], "parcel": [7, 7, None]},
        geometry=[Point(0, 0), Point(10, 0), Point(20, 0)],
        crs="EPSG:32633",
    )
    gdf.iloc[:2].to_file(tmp_path / "ok.gpkg", engine="pyogrio")
    assert list(read_training(tmp_path / "ok.gpkg", group_column="parcel")["group"]) == ["7.0", "7.0"]
    with pytest.raises(TrainingDataError, match="has no column 'field'"):
        read_training(tmp_path / "ok.gpkg", group_column="field")
    gdf.to_file(tmp_path / "gap.gpkg", engine="pyogrio")
    with pytest.raises(TrainingDataError, match="1 feature\\(s\\) of .* have no group in 'parcel'"):
        read_training(tmp_path / "gap.gpkg", group_column="parcel")

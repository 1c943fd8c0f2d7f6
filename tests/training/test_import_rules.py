"""Import rules on a real PostGIS: every bad delivery is rejected with its reason and leaves the training data
EXACTLY as before (row counts and md5 of every data table); re-imports change nothing; a changed delivery
becomes a new version; concurrent imports of one set do not duplicate it."""

from __future__ import annotations

import threading
import zlib
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from hrlc.training import db
from hrlc.training.importer import ImportReport, TrainingImportError, import_training
from hrlc.training.select import select_samples

from .conftest import query, snapshot, write_set

CRS = "EPSG:32633"


def points(tag: str, n: int = 6, codes: list[int] | None = None) -> gpd.GeoDataFrame:
    """n points in UTM 33N, HRLC codes, a `tag` attribute that makes every test's files different."""
    rng = np.random.default_rng(zlib.crc32(tag.encode()))
    return gpd.GeoDataFrame(
        {
            "class_code": codes or [(10, 30, 80)[i % 3] for i in range(n)],
            "sample_id": [f"{tag}-{i}" for i in range(n)],
            "tag": [tag] * n,
        },
        geometry=shapely.points(465_000 + rng.random(n) * 1000, 5_079_000 + rng.random(n) * 1000),
        crs=CRS,
    )


def polygons(tag: str, geoms: list[shapely.Geometry], codes: list[int] | None = None) -> gpd.GeoDataFrame:
    n = len(geoms)
    return gpd.GeoDataFrame({"class_code": codes or [30] * n, "tag": [tag] * n}, geometry=geoms, crs=CRS)


def one(report: ImportReport) -> tuple[str, str | None, list[str]]:
    [o] = report.outcomes
    return o.outcome, o.reason, o.notes


def assert_rejected(dsn: str, root: Path, match: str) -> None:
    before = snapshot(dsn)
    report = import_training(root, dsn=dsn)
    outcome, reason, _ = one(report)
    assert outcome == "rejected"
    assert reason is not None and match in reason, reason
    assert snapshot(dsn) == before  # the training data exactly as before
    [(status, logged)] = query(
        dsn, "select outcome, reason from training.import_outcome where import_run_id = %s", report.run_id
    )
    assert (status, logged) == ("rejected", reason)  # and the import log says why


# ------------------------------------------------------------------------------------------- bad deliveries


def test_wrong_name_pattern(training_dsn: str, tmp_path: Path) -> None:
    folder = tmp_path / "slovenia" / "slovenia_static_2017_Polimi"
    folder.mkdir(parents=True)
    points("wrong-name").to_file(folder / "slovenia_static_2017_Polimi.shp")
    assert_rejected(
        training_dsn, tmp_path, "does not match <area_name>_<type>_<ROI>_<year>_<source>_<provider>"
    )


def test_set_outside_its_area_folder(training_dsn: str, tmp_path: Path) -> None:
    name = "slovenia_static_R1_2017_photo-interpreted_Polimi"
    folder = tmp_path / "incoming" / name
    folder.mkdir(parents=True)
    points("outside").to_file(folder / f"{name}.shp")
    assert_rejected(training_dsn, tmp_path, "must be in a folder named after its area 'slovenia'")


def test_missing_prj(training_dsn: str, tmp_path: Path) -> None:
    name = "slovenia_static_R2_2017_photo-interpreted_Polimi"
    (write_set(tmp_path, name, points("no-prj")) / f"{name}.prj").unlink()
    assert_rejected(training_dsn, tmp_path, ".shp comes without its .prj (the CRS are missing)")


def test_shp_without_dbf(training_dsn: str, tmp_path: Path) -> None:
    name = "slovenia_static_R3_2017_photo-interpreted_Polimi"
    (write_set(tmp_path, name, points("no-dbf")) / f"{name}.dbf").unlink()
    assert_rejected(training_dsn, tmp_path, "comes without its .dbf")


def test_unknown_provider(training_dsn: str, tmp_path: Path) -> None:
    write_set(tmp_path, "slovenia_static_R4_2017_photo-interpreted_UniXX", points("unknown-provider"))
    assert_rejected(training_dsn, tmp_path, "unknown provider 'UniXX'; known providers: ")


def test_misnamed_member_file(training_dsn: str, tmp_path: Path) -> None:
    name = "slovenia_static_R5_2017_photo-interpreted_Polimi"
    folder = write_set(tmp_path, name, points("misnamed"))
    (folder / f"{name}.dbf").rename(folder / "attributes.dbf")
    assert_rejected(training_dsn, tmp_path, "file attributes.dbf does not carry the set's name")


@pytest.mark.parametrize(
    ("kind", "wkt", "match"),
    [
        (
            "collapsed",
            "POLYGON ((465000 5079000, 465100 5079000, 465200 5079000, 465000 5079000))",
            "cannot be repaired without losing its area",
        ),
        ("empty", "POLYGON EMPTY", "have no or an empty geometry"),
        ("null", None, "have no or an empty geometry"),
        ("line", "LINESTRING (465000 5079000, 465100 5079100)", "only points and polygons"),
    ],
)
def test_invalid_or_empty_geometries(
    training_dsn: str, tmp_path: Path, kind: str, wkt: str | None, match: str
) -> None:
    good = shapely.box(465_000, 5_079_000, 465_100, 5_079_100)
    bad = shapely.from_wkt(wkt) if wkt else None
    gdf = polygons(kind, [good, bad, good.buffer(-10)], codes=[30, 30, 70])
    write_set(
        tmp_path, f"slovenia_static_G{kind}_2017_photo-interpreted_Polimi", gdf, shapefile=False, geojson=True
    )
    assert_rejected(training_dsn, tmp_path, match)


def test_unknown_class_codes(training_dsn: str, tmp_path: Path) -> None:
    write_set(
        tmp_path,
        "slovenia_static_R6_2017_photo-interpreted_Polimi",
        points("codes", codes=[10, 7, 30, 99, 80, 80]),
    )
    assert_rejected(training_dsn, tmp_path, "unknown class codes [7, 99] in 'class_code'")


def test_labels_missing_from_the_providers_mapping(training_dsn: str, tmp_path: Path) -> None:
    gdf = points("mapping").rename(columns={"class_code": "LULC_ID"})
    gdf["LULC_ID"] = [1, 2, 3, 42, 1, 2]
    write_set(tmp_path, "slovenia_static_R7_2017_photo-interpreted_eolearn", gdf)
    assert_rejected(training_dsn, tmp_path, "labels ['42'] in 'LULC_ID'")


def test_dbf_not_in_the_encoding_of_its_cpg(training_dsn: str, tmp_path: Path) -> None:
    name = "slovenia_static_R8_2017_photo-interpreted_Polimi"
    gdf = points("encoding")
    gdf["note"] = ["Cafe", "Wald", "Polje", "Gozd", "Travnik", "Njiva"]
    folder = write_set(tmp_path, name, gdf)
    assert (folder / f"{name}.cpg").read_text().strip() == "UTF-8"
    dbf = folder / f"{name}.dbf"
    data = dbf.read_bytes()
    dbf.write_bytes(data.replace(b"Cafe", "Café".encode("latin-1")))  # latin-1 bytes under a UTF-8 .cpg
    assert_rejected(training_dsn, tmp_path, "text attributes are not valid UTF-8 as its .cpg declares")


@pytest.mark.parametrize(
    ("ext", "match"),
    [(".shp", "truncated or damaged"), (".dbf", ".dbf is truncated"), (".shx", "truncated or damaged")],
)
def test_truncated_shapefile(training_dsn: str, tmp_path: Path, ext: str, match: str) -> None:
    name = f"slovenia_static_T{ext[1:]}_2017_photo-interpreted_Polimi"
    path = write_set(tmp_path, name, points(f"truncated{ext}")) / f"{name}{ext}"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 30])
    assert_rejected(training_dsn, tmp_path, match)


def test_truncated_geojson(training_dsn: str, tmp_path: Path) -> None:
    name = "slovenia_static_Tjson_2017_photo-interpreted_Polimi"
    path = (
        write_set(tmp_path, name, points("truncated-json"), shapefile=False, geojson=True) / f"{name}.geojson"
    )
    path.write_bytes(path.read_bytes()[:-200])
    assert_rejected(training_dsn, tmp_path, f"cannot read {name}.geojson")


def test_shapefile_and_geojson_that_disagree(training_dsn: str, tmp_path: Path) -> None:
    name = "slovenia_static_R9_2017_photo-interpreted_Polimi"
    folder = write_set(tmp_path, name, points("disagree"))
    points("disagree", n=4).to_file(folder / f"{name}.geojson", driver="GeoJSON")
    assert_rejected(training_dsn, tmp_path, "holds 4 features")


def test_identical_geometries_with_different_classes(training_dsn: str, tmp_path: Path) -> None:
    gdf = points("conflict")
    gdf.loc[3, "geometry"] = gdf.geometry[1]
    gdf.loc[3, "class_code"] = 70
    write_set(tmp_path, "slovenia_static_R10_2017_photo-interpreted_Polimi", gdf)
    assert_rejected(training_dsn, tmp_path, "features 1, 3 of")


def test_duplicate_sample_ids(training_dsn: str, tmp_path: Path) -> None:
    gdf = points("dup-ids")
    gdf.loc[4, "sample_id"] = gdf.loc[0, "sample_id"]
    write_set(tmp_path, "slovenia_static_R11_2017_photo-interpreted_Polimi", gdf)
    assert_rejected(training_dsn, tmp_path, "sample_id ['dup-ids-0'] used by more than one feature")


def test_same_files_as_another_set(training_dsn: str, tmp_path: Path) -> None:
    gdf = points("twin")
    write_set(tmp_path / "a", "slovenia_static_R12_2017_photo-interpreted_Polimi", gdf)
    assert one(import_training(tmp_path / "a", dsn=training_dsn))[0] == "imported"
    # the very same files, copied under another name (same bytes; the file names are not part of the checksum)
    src = tmp_path / "a" / "slovenia" / "slovenia_static_R12_2017_photo-interpreted_Polimi"
    dst = tmp_path / "b" / "slovenia" / "slovenia_static_R13_2017_photo-interpreted_Polimi"
    dst.mkdir(parents=True)
    for f in src.iterdir():
        (dst / f.name.replace("R12", "R13")).write_bytes(f.read_bytes())
    assert_rejected(training_dsn, tmp_path / "b", "the same files as training set slovenia_static_R12_2017")


def test_nothing_to_import_is_an_error(training_dsn: str, tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("no training sets here")
    with pytest.raises(TrainingImportError, match="no training set under"):
        import_training(tmp_path, dsn=training_dsn)
    with pytest.raises(TrainingImportError, match="does not exist"):
        import_training(tmp_path / "missing", dsn=training_dsn)


# ------------------------------------------------------------------------------------------- good deliveries


def test_repairable_polygons_are_repaired_and_reported(training_dsn: str, tmp_path: Path) -> None:
    bowtie = shapely.from_wkt(
        "POLYGON ((465000 5079000, 465100 5079100, 465100 5079000, 465000 5079100, 465000 5079000))"
    )
    square = shapely.box(465_200, 5_079_000, 465_300, 5_079_100)
    gdf = polygons("repair", [square, bowtie, square.buffer(50)], codes=[30, 70, 80])
    write_set(tmp_path, "slovenia_static_P1_2017_photo-interpreted_Polimi", gdf, qml=True)
    (tmp_path / "slovenia" / "slovenia_static_P1_2017_photo-interpreted_Polimi" / "README.txt").write_text(
        "hi"
    )
    outcome, _, notes = one(import_training(tmp_path, dsn=training_dsn))
    assert outcome == "imported"
    assert any(
        "repaired 1 invalid polygon(s) with make_valid: features 1 (Self-intersection" in n for n in notes
    )
    assert any("ignored file README.txt" in n for n in notes)
    rows = query(
        training_dsn,
        "select s.feature_index, s.repaired, st_isvalid(s.geom), st_geometrytype(s.geom), st_area(s.geom), "
        "m.n_repaired, m.style_qml is not null "
        "from training.trainingset s join training.trainingmetadata m using (trainingmetadata_id) "
        "where m.dataset_name = 'slovenia_static_P1_2017_photo-interpreted_Polimi' order by 1",
    )
    assert [r[:4] for r in rows] == [
        (0, False, True, "ST_Polygon"),
        (1, True, True, "ST_MultiPolygon"),
        (2, False, True, "ST_Polygon"),
    ]
    assert rows[1][4] == pytest.approx(5000.0)  # the two triangles of the bow-tie
    assert rows[0][5] == 1 and rows[0][6]


def test_repeated_features_are_kept_once(training_dsn: str, tmp_path: Path) -> None:
    gdf = points("repeat")
    gdf = gpd.GeoDataFrame(
        {"class_code": [*gdf.class_code, gdf.class_code[2]], "tag": ["repeat"] * 7},
        geometry=[*gdf.geometry, gdf.geometry[2]],
        crs=CRS,
    )
    write_set(tmp_path, "slovenia_static_P2_2017_photo-interpreted_Polimi", gdf)
    outcome, _, notes = one(import_training(tmp_path, dsn=training_dsn))
    assert outcome == "imported" and "kept once 1 feature(s) repeating a geometry and class" in notes
    assert query(
        training_dsn,
        "select n_features from training.trainingmetadata "
        "where dataset_name = 'slovenia_static_P2_2017_photo-interpreted_Polimi'",
    ) == [(6,)]


def test_reimport_is_a_no_op(training_dsn: str, tmp_path: Path) -> None:
    write_set(tmp_path, "slovenia_static_V1_2017_photo-interpreted_Polimi", points("reimport"))
    assert one(import_training(tmp_path, dsn=training_dsn))[0] == "imported"
    before = snapshot(training_dsn)
    report = import_training(tmp_path, dsn=training_dsn)
    assert one(report)[0] == "unchanged" and report.outcomes[0].version == 1
    assert snapshot(training_dsn) == before


def test_a_changed_file_replaces_its_set_as_a_new_version(training_dsn: str, tmp_path: Path) -> None:
    name = "slovenia_static_V2_2017_photo-interpreted_Polimi"
    write_set(tmp_path, name, points("v1"))
    first = import_training(tmp_path, dsn=training_dsn).outcomes[0]
    changed = points("v2", n=9)
    write_set(tmp_path, name, changed)
    second = import_training(tmp_path, dsn=training_dsn).outcomes[0]
    assert (second.outcome, second.version, second.n_features) == ("replaced", 2, 9)
    rows = query(
        training_dsn,
        "select version, superseded_at is not null, superseded_by, n_features, "
        "(select count(*) from training.trainingset s where s.trainingmetadata_id = m.trainingmetadata_id) "
        "from training.trainingmetadata m where dataset_name = %s order by version",
        name,
    )
    assert rows == [(1, True, second.trainingmetadata_id, 6, 6), (2, False, None, 9, 9)]  # old rows kept
    assert first.trainingmetadata_id != second.trainingmetadata_id
    selected = select_samples(training_dsn, area="slovenia", roi="V2")
    assert len(selected) == 9 and selected.attrs["datasets"][0]["version"] == 2

    # a bad third delivery is rejected and the second version stays current
    (tmp_path / "slovenia" / name / f"{name}.prj").unlink()
    assert one(import_training(tmp_path, dsn=training_dsn))[0] == "rejected"
    assert len(select_samples(training_dsn, area="slovenia", roi="V2")) == 9
    status = db.import_status(training_dsn).set_index("dataset_name")
    assert status.loc[name, "outcome"] == "rejected"


def test_concurrent_imports_of_one_set_do_not_duplicate_it(training_dsn: str, tmp_path: Path) -> None:
    name = "slovenia_static_C1_2017_photo-interpreted_Polimi"
    n = 20_000
    rng = np.random.default_rng(1)
    gdf = gpd.GeoDataFrame(
        {"class_code": rng.choice([10, 30, 80, 130], size=n)},
        geometry=shapely.points(400_000 + rng.random(n) * 1e5, 5e6 + rng.random(n) * 1e5),
        crs=CRS,
    )
    write_set(tmp_path, name, gdf)
    reports: list[ImportReport] = []
    barrier = threading.Barrier(3)

    def run() -> None:
        barrier.wait()
        reports.append(import_training(tmp_path, dsn=training_dsn))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(r.outcomes[0].outcome for r in reports) == ["imported", "unchanged", "unchanged"]
    assert query(
        training_dsn,
        "select count(*), sum(n_features), (select count(*) from training.trainingset s "
        " join training.trainingmetadata m using (trainingmetadata_id) where m.dataset_name = %s) "
        "from training.trainingmetadata where dataset_name = %s",
        name,
        name,
    ) == [(1, n, n)]

"""`hrlc training ...` on a real PostGIS: migrate, providers with a label mapping, import (exit 0 / 1 when a set
was rejected / 2 with one line on bad input), status."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from typer.testing import CliRunner

from cli_errors import one_line_error
from hrlc.cli import app

from .conftest import write_set

runner = CliRunner()


def invoke(*args: object):  # noqa: ANN201
    return runner.invoke(app, ["training", *(str(a) for a in args)])


def test_migrate_provider_import_status(training_dsn: str, tmp_path: Path) -> None:
    assert json.loads(invoke("migrate", "--dsn", training_dsn).stdout) == {"applied": []}

    mapping = tmp_path / "mapping.csv"
    mapping.write_text("label,class_code\nforest,30\ncrop,80\ncloud,\n")
    result = invoke(
        "provider",
        "add",
        "CLI-Lab",
        "--name",
        "A CLI lab",
        "--class-column",
        "lc",
        "--mapping",
        mapping,
        "--dsn",
        training_dsn,
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["labels"] == 3
    listing = invoke("provider", "list", "--dsn", training_dsn)
    assert listing.exit_code == 0 and "CLI-Lab" in listing.stdout

    gdf = gpd.GeoDataFrame(
        {"lc": ["forest", "crop", "cloud", "crop"]},
        geometry=shapely.points([14.50, 14.51, 14.52, 14.53], [45.80, 45.81, 45.82, 45.83]),
        crs="EPSG:4326",
    )
    write_set(
        tmp_path / "in", "ljubljana_static_CLI_2020_map-agreement_CLI-Lab", gdf, shapefile=False, geojson=True
    )
    bad = gdf.assign(lc=["forest", "snow", "crop", "crop"])
    write_set(
        tmp_path / "in", "ljubljana_static_CLI_2021_map-agreement_CLI-Lab", bad, shapefile=False, geojson=True
    )
    result = invoke("import", tmp_path / "in", "--dsn", training_dsn, "--json")
    assert result.exit_code == 1, result.output  # one set rejected
    outcomes = {o["dataset_name"]: o for o in map(json.loads, result.stdout.splitlines())}
    good = outcomes["ljubljana_static_CLI_2020_map-agreement_CLI-Lab"]
    assert (good["outcome"], good["n_features"]) == ("imported", 3)  # 'cloud' maps to no class: skipped
    rejected = outcomes["ljubljana_static_CLI_2021_map-agreement_CLI-Lab"]
    assert rejected["outcome"] == "rejected" and "labels ['snow']" in rejected["reason"]

    table = invoke(
        "import",
        tmp_path / "in" / "ljubljana" / "ljubljana_static_CLI_2020_map-agreement_CLI-Lab",
        "--dsn",
        training_dsn,
    )
    assert table.exit_code == 0 and "unchanged" in table.stdout

    status = invoke("status", "--dsn", training_dsn, "--json")
    rows = {r["dataset_name"]: r for r in map(json.loads, status.stdout.splitlines())}
    assert rows["ljubljana_static_CLI_2020_map-agreement_CLI-Lab"]["outcome"] == "unchanged"
    assert rows["ljubljana_static_CLI_2021_map-agreement_CLI-Lab"]["outcome"] == "rejected"
    runs = invoke("status", "--dsn", training_dsn, "--runs", "--json")
    assert runs.exit_code == 0 and json.loads(runs.stdout.splitlines()[0])["unchanged"] == 1


def test_bad_input_is_one_line_and_exit_2(training_dsn: str, tmp_path: Path) -> None:
    one_line_error(invoke("import", tmp_path / "missing", "--dsn", training_dsn), "does not exist")
    one_line_error(invoke("import", tmp_path, "--dsn", training_dsn), "no training set under")
    one_line_error(
        invoke("import", tmp_path, "--dsn", "postgresql://postgres@127.0.0.1:1/nowhere"),
        "cannot connect to the training database",
    )
    one_line_error(invoke("status", "--dsn", "postgresql://postgres@127.0.0.1:1/nowhere"), "cannot connect")
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("label,class_code\nforest,7\n")
    one_line_error(
        invoke("provider", "add", "X", "--mapping", bad_csv, "--dsn", training_dsn), "outside the HRLC"
    )
    one_line_error(
        invoke("provider", "add", "Bad_Code", "--dsn", training_dsn), "is not letters, digits and '-'"
    )


def test_names_that_are_not_utf8_are_refused_in_one_line_or_rejected(
    training_dsn: str, tmp_path: Path
) -> None:
    import os

    root = os.fsencode(tmp_path) + b"/in"
    bad_set = root + b"/koper/koper_static_RET_2019_photo-interpreted_Polimi_\xe9"
    os.makedirs(bad_set)
    with open(bad_set + b"/data_\xe9.shp", "wb") as f:
        f.write(b"not a shapefile")
    # the source path itself: refused at the edge
    one_line_error(invoke("import", os.fsdecode(bad_set), "--dsn", training_dsn), "is not valid UTF-8")
    # a set below it: rejected with the names shown escaped, the run recorded, nothing imported
    result = invoke("import", os.fsdecode(root), "--dsn", training_dsn, "--json")
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    [outcome] = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert outcome["outcome"] == "rejected" and "not valid UTF-8" in outcome["reason"]
    assert "\\xe9" in outcome["reason"] and "data_\\xe9.shp" in outcome["reason"]


def test_retire_a_set_then_deliver_it_again(training_dsn: str, tmp_path: Path) -> None:
    from hrlc.training.query import TrainingQuery
    from hrlc.training.samples import TrainingDataError
    from hrlc.training.select import select_samples

    from .conftest import query

    name = "koper_static_RET_2019_photo-interpreted_Polimi"
    gdf = gpd.GeoDataFrame(
        {"class_code": [30, 80]}, geometry=shapely.points([13.70, 13.71], [45.50, 45.51]), crs="EPSG:4326"
    )
    write_set(tmp_path / "in", name, gdf)
    assert invoke("import", tmp_path / "in", "--dsn", training_dsn).exit_code == 0
    selection = TrainingQuery(area="koper", year=2019)
    assert len(select_samples(training_dsn, query=selection)) == 2

    result = invoke("retire", name, "--reason", "delivered under the wrong ROI", "--dsn", training_dsn)
    assert result.exit_code == 0 and "retired" in result.stdout and "version 1" in result.stdout
    assert query(training_dsn, "select count(*) from training.dataset where dataset_name = %s", name) == [
        (0,)
    ]
    assert query(training_dsn, "select count(*) from training.trainingset t join training.trainingmetadata m "
                 "using (trainingmetadata_id) where m.dataset_name = %s", name) == [(2,)]  # fmt: skip
    status = invoke("status", "--dsn", training_dsn, "--json")
    rows = {r["dataset_name"]: r for r in map(json.loads, status.stdout.splitlines())}
    assert rows[name]["outcome"] == "retired" and rows[name]["reason"] == "delivered under the wrong ROI"
    with pytest.raises(TrainingDataError, match="no training set in the database matches"):
        select_samples(training_dsn, query=selection)  # the classification no longer finds it
    one_line_error(
        invoke("retire", name, "--reason", "again", "--dsn", training_dsn), "no current training set"
    )

    fixed = name.replace("_RET_", "_RETFIXED_")
    write_set(tmp_path / "fixed", fixed, gdf)  # the same files under the right name are accepted now
    result = invoke("import", tmp_path / "fixed", "--dsn", training_dsn, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.splitlines()[0])["outcome"] == "imported"

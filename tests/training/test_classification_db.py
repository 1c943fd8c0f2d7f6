"""The classification processor trained from the training-set database: `hrlc run --training-db ...` over the
synthetic repository gives the same class map as training from the file the database was filled from; a
selection has its own model id, so two selections keep two models; params take exactly one training source."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pytest
from pydantic import ValidationError
from rich.console import Console
from typer.testing import CliRunner

from hrlc.catalog.static import StaticCatalog
from hrlc.cli import app
from hrlc.jobs.runner import InProcessRunner
from hrlc.lake.store import LocalStore
from hrlc.processors.classification import Classification, ClassificationParams, model_id
from hrlc.training.importer import import_training
from hrlc.training.query import TrainingQuery, parse_query
from hrlc.training.select import TrainingDb
from landcover import Reference, chain_dag, class_map_of, one_tile, read_class_map, utm_bbox

from .conftest import write_set

pytestmark = pytest.mark.slow
SET = "synthetic_static_S96_2021_photo-interpreted_UniTN"


@pytest.fixture(scope="module")
def synthetic_in_db(
    training_dsn: str, land_cover_reference: Reference, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """The reference repository's training points (HRLC codes) imported as a set of provider UniTN."""
    points = gpd.read_file(land_cover_reference.repo.training_points, engine="pyogrio")
    root = tmp_path_factory.mktemp("synthetic-training")
    write_set(root, SET, points)
    [o] = import_training(root, dsn=training_dsn).outcomes
    assert o.outcome == "imported" and o.n_features == len(points)
    return training_dsn


def test_run_with_training_db_equals_the_file_run(
    synthetic_in_db: str, land_cover_reference: Reference, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HRLC_TRAINING_DSN", synthetic_in_db)
    monkeypatch.delenv("HRLC_STORE", raising=False)
    repo = land_cover_reference.repo
    args = {
        "--aoi": ",".join(str(v) for v in utm_bbox(repo)),
        "--aoi-crs": f"EPSG:{repo.epsg}",
        "--crs": f"EPSG:{repo.epsg}",
        "--resolution": 10,
        "--year": 2021,
        "--source": repo.catalog,
        "--training-db": "area=synthetic,year=2021,provider=UniTN",
        "--workdir": tmp_path,
        "--sensor": "sentinel2",
        "--tile-size": one_tile(repo),
    }
    result = CliRunner().invoke(app, ["run", *(str(x) for kv in args.items() for x in kv), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout[result.stdout.index("{") :])
    assert (class_map_of(out["items"]) == land_cover_reference.class_map).all()
    assert (read_class_map(out["class_map"]) == land_cover_reference.class_map).all()  # named: the AOI's
    assert json.loads(Path(out["validation_report"]).read_text())["n_test"] > 0
    assert json.loads(Path(out["map_accuracy"]).read_text())["overall_accuracy"]["ci95"]

    [meta_path] = (tmp_path / "lake" / "models" / "metadata").glob("*.json")
    mid = meta_path.stem  # lc_optical_{sensor}_{year}_{method}_{space}_{config}: the products' identity
    assert mid.startswith("lc_optical_sentinel2_2021_lightgbm_aoi-")
    meta = json.loads(meta_path.read_text())
    assert meta["training_source"] == "training-db:area=synthetic;year=2021;provider=UniTN"
    assert [d["name"] for d in meta["training_sets"]] == [SET]

    # a second selection of the same samples (with a bbox) trains a second model next to the first
    store = LocalStore(tmp_path / "lake")
    w, s, e, n = repo_lonlat_bounds(land_cover_reference)
    dag = chain_dag(repo, training={"area": "synthetic", "bbox": [w, s, e, n]})
    runner = InProcessRunner(
        store,
        StaticCatalog(store),
        training=TrainingDb(synthetic_in_db),
        resume=True,
        console=Console(quiet=True),
    )
    runner.run(dag)
    models = sorted(p.name for p in (tmp_path / "lake" / "models" / "checkpoints").iterdir())
    assert len(models) == 2 and f"{mid}.joblib" in models


def repo_lonlat_bounds(ref: Reference) -> tuple[float, float, float, float]:
    from pyproj import Transformer

    x0, y0, x1, y1 = ref.bbox
    tr = Transformer.from_crs(ref.repo.epsg, 4326, always_xy=True)
    lon0, lat0 = tr.transform(x0, y0)
    lon1, lat1 = tr.transform(x1, y1)
    return min(lon0, lon1) - 0.01, min(lat0, lat1) - 0.01, max(lon0, lon1) + 0.01, max(lat0, lat1) + 0.01


def test_run_with_a_selection_that_matches_nothing(
    synthetic_in_db: str, land_cover_reference: Reference, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HRLC_TRAINING_DSN", synthetic_in_db)
    repo = land_cover_reference.repo
    base = [
        "run",
        "--aoi",
        ",".join(str(v) for v in utm_bbox(repo)),
        "--aoi-crs",
        f"EPSG:{repo.epsg}",
        "--year",
        "2021",
        "--source",
        str(repo.catalog),
        "--workdir",
        str(tmp_path),
        "--tile-size",
        str(one_tile(repo)),
    ]
    for extra, message in (
        (
            ["--training-db", "area=siberia"],
            "no training set in the database matches training-db:area=siberia",
        ),
        (["--training-db", "year=twenty"], "--training-db 'year=twenty'"),
        ([], "give exactly one of --training FILE and --training-db SELECTION"),
    ):
        result = CliRunner().invoke(app, base + extra)
        assert result.exit_code == 2, result.output
        errors = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1 and message in errors[0], result.output
    assert not (tmp_path / "lake").exists() or not list((tmp_path / "lake").rglob("*.tif"))


def test_params_take_exactly_one_training_source() -> None:
    q = {"area": "amazonia", "year": 2019}
    p = ClassificationParams(year=2019, sensor="landsat", training_query=q)
    assert model_id(p).startswith("lc_optical_landsat_2019_lightgbm_db")
    other = ClassificationParams(year=2019, sensor="landsat", training_query={**q, "provider": "UniTN"})
    assert model_id(other) != model_id(p)
    assert Classification().outputs(other)[0] != Classification().outputs(p)[0]
    file_based = ClassificationParams(year=2019, sensor="landsat", training="t.gpkg")
    assert model_id(file_based) == "lc_optical_landsat_2019_lightgbm"  # unchanged for files
    with pytest.raises(ValidationError, match="exactly one of training"):
        ClassificationParams(year=2019, sensor="landsat", training="t.gpkg", training_query=q)
    with pytest.raises(ValidationError, match="exactly one of training"):
        ClassificationParams(year=2019, sensor="landsat")


def test_parse_query() -> None:
    q = parse_query(
        "area=amazonia, year=2019,type=historic,source=map-agreement,provider=UniPV,bbox=-60,-10,-59,-9"
    )
    assert q == TrainingQuery(
        area="amazonia",
        year=2019,
        type="historic",
        source="map-agreement",
        provider="UniPV",
        bbox=(-60, -10, -59, -9),
    )
    assert parse_query('{"roi": "A02"}') == TrainingQuery(roi="A02")
    for bad in ("area", "year=2019,year=2020", "bbox=1,2,3", "type=dynamic", "colour=red"):
        with pytest.raises(ValueError):
            parse_query(bad)

"""`hrlc ancillary put`: a manually retrieved file goes once into the shared S3 (moto) and the database; the same
bytes again change nothing; `get` then serves the dataset from the upload, on the product grid."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import psycopg
import pytest
import rasterio
from pyproj import Transformer
from rasterio.transform import from_origin
from shapely.geometry import Point, box
from typer.testing import CliRunner

from hrlc.ancillary import AncillaryError
from hrlc.cli import app
from hrlc.settings import Settings

from .conftest import AOI, UTM, WC_EXTENT, service

runner = CliRunner()
RES = 0.00025  # degrees, ~27 m north-south
LCCS = np.array([10, 50, 61, 71, 130, 190, 210, 220], dtype=np.uint8)  # GLC_FCS30D codes


def lccs_truth(lon: np.ndarray, lat: np.ndarray, shift: int = 0) -> np.ndarray:
    col = np.floor((lon - WC_EXTENT[0]) / 0.03).astype(int)
    row = np.floor((WC_EXTENT[3] - lat) / 0.03).astype(int)
    return LCCS[(row * 5 + col + shift) % len(LCCS)]


def make_tile(path: Path, shift: int = 0) -> Path:
    x0, y0, x1, y1 = WC_EXTENT
    w, h = round((x1 - x0) / RES), round((y1 - y0) / RES)
    lon, lat = np.meshgrid(x0 + (np.arange(w) + 0.5) * RES, y1 - (np.arange(h) + 0.5) * RES)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=w,
        height=h,
        count=1,
        dtype="uint8",
        crs="EPSG:4326",
        transform=from_origin(x0, y1, RES, RES),
        nodata=0,
        tiled=True,
        compress="deflate",
    ) as dst:
        dst.write(lccs_truth(lon, lat, shift), 1)
    return path


@pytest.fixture(scope="module")
def catalog_dsn(pgstac_db_factory) -> str:  # noqa: ANN001
    return pgstac_db_factory("ancillary_catalog")


@pytest.fixture
def s3_env(
    env: Settings,
    s3_server,
    catalog_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Settings:  # noqa: ANN001
    """The platform: the lake on moto's S3 (the shared S3 of the spec), the catalogue in pgstac."""
    bucket = s3_server.new_bucket(f"hrlc-anc-{request.node.name[:20].lower().replace('_', '-')}")
    monkeypatch.setenv("HRLC_STORE", f"s3://{bucket}/lake")
    monkeypatch.setenv("HRLC_CATALOG", catalog_dsn)
    return Settings()


def _objects(s3_server, settings: Settings, prefix: str) -> list[str]:  # noqa: ANN001
    bucket, _, lake = settings.store.removeprefix("s3://").partition("/")
    out = s3_server.client().list_objects_v2(Bucket=bucket, Prefix=f"{lake}/{prefix}")
    return sorted(o["Key"] for o in out.get("Contents", []))


def _uploads(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "select dataset, edition, filename, key, sha256, superseded is null, st_astext(footprint), "
            "item is not null from ancillary.uploads order by id"
        ).fetchall()


def test_put_once_then_get_from_the_upload(s3_env: Settings, s3_server, tmp_path: Path) -> None:  # noqa: ANN001
    tile = make_tile(tmp_path / "GLC_FCS30D_2020_W030S55.tif")
    svc = service(s3_env)
    up = svc.put("glc-fcs30d", tile, year=2020, source_url="https://example.org/GLC_FCS30D")
    assert up.created and up.edition == "2020" and up.bytes == tile.stat().st_size
    assert up.key == f"ancillary/glc-fcs30d/source/{up.sha256[:16]}/GLC_FCS30D_2020_W030S55.tif"
    assert up.href.startswith("s3://")
    objects = _objects(s3_server, s3_env, "ancillary/")
    assert len(objects) == 1 and objects[0].endswith(up.key)
    assert svc.store.read_bytes(up.key) == tile.read_bytes()
    rows = _uploads(s3_env.training_dsn)
    assert len(rows) == 1
    dataset, edition, filename, key, sha, current, footprint, has_item = rows[0]
    assert (dataset, edition, key, sha, current, has_item) == (
        "glc-fcs30d",
        "2020",
        up.key,
        up.sha256,
        True,
        True,
    )
    assert footprint.startswith("MULTIPOLYGON")

    # the same bytes again, from the command line: nothing changes
    result = runner.invoke(app, ["ancillary", "put", "glc-fcs30d", str(tile), "--year", "2020"])
    assert result.exit_code == 0, result.output
    again = json.loads(result.stdout)
    assert again["created"] is False and again["key"] == up.key
    assert "nothing changed" in result.stderr
    assert _uploads(s3_env.training_dsn) == rows
    assert _objects(s3_server, s3_env, "ancillary/") == objects

    # get: the upload (read from S3 with range requests) on the product grid
    layer = svc.get("glc-fcs30d", aoi=AOI, year=2020, resolution=30)
    assert not layer.cached and layer.access == "manual" and layer.source == "uploads"
    assert layer.href.startswith("s3://") and layer.crs == UTM
    da = layer.read()
    e, n = np.meshgrid(da.x.values, da.y.values)
    lon, lat = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True).transform(e, n)
    truth = lccs_truth(lon, lat)
    assert (da.values == truth).mean() > 0.97  # nearest neighbour: only pixels on block edges may differ
    assert svc.get("glc-fcs30d", aoi=AOI, year=2020, resolution=30).cached
    with psycopg.connect(s3_env.catalog) as conn:  # the layer's item is in the pgstac catalogue
        got = conn.execute(
            "select collection, content->'properties'->>'hrlc:dataset' from pgstac.items where id = %s",
            (layer.item_id,),
        ).fetchone()
    assert got == ("hrlc-ancillary", "glc-fcs30d")

    # a corrected file under the same name: a new version, the old one superseded, the cache forgotten
    tile.unlink()
    make_tile(tile, shift=1)
    v2 = svc.put("glc-fcs30d", tile, year=2020)
    assert v2.created and v2.key != up.key
    rows = _uploads(s3_env.training_dsn)
    assert [r[5] for r in rows] == [False, True]
    layer2 = svc.get("glc-fcs30d", aoi=AOI, year=2020, resolution=30)
    assert not layer2.cached and layer2.key == layer.key  # same grid, same key, new content
    assert (layer2.read().values == lccs_truth(lon, lat, shift=1)).mean() > 0.97


def test_vector_upload_is_clipped_and_reprojected(s3_env: Settings, tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    lon = rng.uniform(WC_EXTENT[0], WC_EXTENT[2], 300)
    lat = rng.uniform(WC_EXTENT[1], WC_EXTENT[3], 300)
    classes = rng.integers(1, 8, 300)
    points = gpd.GeoDataFrame(
        {"Glance_Class_ID_level1": classes, "Start_Year": 2018},
        geometry=[Point(x, y) for x, y in zip(lon, lat, strict=True)],
        crs="EPSG:4326",
    )
    path = tmp_path / "glance_training.geojson"
    points.to_file(path, driver="GeoJSON")
    svc = service(s3_env)
    assert svc.put("glance", path).created
    layer = svc.get("glance", aoi=AOI, resolution=30)
    assert layer.key.endswith(".gpkg") and layer.kind == "vector"
    got = layer.read()
    assert got.crs.to_string() == UTM
    grid = box(*rasterio.transform.array_bounds(*layer.shape, rasterio.Affine(*layer.transform)))
    inside = points.to_crs(UTM).within(grid)
    assert len(got) == int(inside.sum()) > 20
    expected = {1: 142, 2: 150, 3: 130, 4: 120, 5: 30, 6: 60, 7: 70}
    assert (got["hrlc_code"] == got["Glance_Class_ID_level1"].map(expected)).all()


def _one_line_error(result, *fragments: str) -> None:  # noqa: ANN001
    assert result.exit_code == 2, result.output
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    for f in fragments:
        assert f in errors[0], errors[0]


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_bad_puts_change_nothing(s3_env: Settings, s3_server, tmp_path: Path) -> None:  # noqa: ANN001
    tile = make_tile(tmp_path / "tile.tif")
    garbage = tmp_path / "broken.tif"
    garbage.write_bytes(b"II*\x00 not a tiff at all")
    no_crs = tmp_path / "nocrs.tif"
    with rasterio.open(no_crs, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8") as dst:
        dst.write(np.ones((1, 4, 4), np.uint8))
    cases = [
        (["copernicus-dem", tile], ["machine-to-machine", "glc-fcs30d"]),
        (["nope", tile], ["unknown ancillary dataset"]),
        (["glc-fcs30d", tile], ["yearly editions", "--year"]),
        (["glc-fcs30d", tile, "--year", "1987"], ["no 1987 edition"]),
        (["glc-fcs30d", tmp_path / "missing.tif", "--year", "2020"], ["does not exist"]),
        (["glc-fcs30d", garbage, "--year", "2020"], ["cannot read broken.tif as a raster"]),
        (["glc-fcs30d", no_crs, "--year", "2020"], ["has no CRS"]),
        (["glance", tile], ["vector dataset takes"]),
    ]
    for args, fragments in cases:
        _one_line_error(runner.invoke(app, ["ancillary", "put", *map(str, args)]), *fragments)
    assert _uploads(s3_env.training_dsn) == []
    assert _objects(s3_server, s3_env, "ancillary/") == []
    # the same bytes under another edition
    assert service(s3_env).put("glc-fcs30d", tile, year=2020).created
    with pytest.raises(AncillaryError, match="already uploaded to glc-fcs30d as edition 2020"):
        service(s3_env).put("glc-fcs30d", tile, year=2021)
    assert len(_uploads(s3_env.training_dsn)) == 1


def test_manual_dataset_outside_its_uploads(s3_env: Settings, tmp_path: Path) -> None:
    service(s3_env).put("glc-fcs30d", make_tile(tmp_path / "tile.tif"), year=2020)
    result = runner.invoke(
        app, ["ancillary", "get", "glc-fcs30d", "--aoi", "14.50,45.85,14.60,45.90", "--year", "2020"]
    )
    _one_line_error(result, "outside the glc-fcs30d data", "uploaded file")
    result = runner.invoke(
        app, ["ancillary", "get", "glc-fcs30d", "--aoi", ",".join(map(str, AOI)), "--year", "2021"]
    )
    _one_line_error(result, "nothing is uploaded for edition 2021")

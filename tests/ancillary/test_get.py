"""`hrlc ancillary get`: a layer of the registry from a STAC API, clipped and reprojected to the product grid,
cached in the lake (COG + STAC Item + `ancillary.cache` row); the second call makes no request to the API."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import psycopg
import pytest
import rasterio
from pyproj import Transformer
from typer.testing import CliRunner

from cli_errors import one_line_error
from hrlc.ancillary import AncillaryError, grid_id, product_grid
from hrlc.chain.terrain import slope_degrees
from hrlc.cli import app
from hrlc.lake import layout
from hrlc.settings import Settings

from .conftest import AOI, DEM_SLOPE_DEG, UTM, StacServer, dem_truth, service, worldcover_truth

runner = CliRunner()
AOI_ARG = ",".join(str(v) for v in AOI)


def _get(*args: object):  # noqa: ANN202
    return runner.invoke(app, ["ancillary", "get", *(str(a) for a in args)])


def _pixel_centres(transform: rasterio.Affine, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    ny, nx = shape
    xs = transform.c + transform.a * (np.arange(nx) + 0.5)
    ys = transform.f + transform.e * (np.arange(ny) + 0.5)
    return np.meshgrid(xs, ys)


def test_dem_is_retrieved_reprojected_cached_and_read_back_without_requests(
    env: Settings, stac_server: StacServer
) -> None:
    result = _get("copernicus-dem", "--aoi", AOI_ARG, "--resolution", 30)
    assert result.exit_code == 0, result.output
    first = json.loads(result.stdout)
    assert first["cached"] is False and first["access"] == "stac"
    assert first["source"].endswith("/collections/cop-dem-glo-30")
    assert len(first["source_ids"]) == 4  # the AOI spans the four quadrant tiles: a mosaic
    assert stac_server.requests, "the first call must have asked the STAC API"
    assert any(p.endswith("/search") for p in stac_server.requests)

    # the product grid: UTM 26 south, 30 m, edges on multiples of 30 m
    gbox = product_grid(AOI, resolution=30)
    assert first["crs"] == UTM and first["grid"] == grid_id(gbox)
    key = layout.key(
        "ancillary-layer", dataset="copernicus-dem", edition="static", grid=first["grid"], fmt="tif"
    )
    assert first["key"] == key
    lake = Path(env.store)
    with rasterio.open(lake / key) as src:
        assert src.crs.to_string() == UTM and src.res == (30.0, 30.0)
        assert src.transform.c % 30 == 0 and src.transform.f % 30 == 0
        assert src.driver == "GTiff" and src.profile.get("tiled")  # a COG (tiled GeoTIFF with overviews)
        elev = src.read(1)
        e, n = _pixel_centres(src.transform, elev.shape)
    truth = dem_truth(e, n)
    err = np.abs(elev - truth)
    assert np.isfinite(elev).all()
    # bilinear on a plane: exact up to GDAL's approximate transformer (0.125 px); the seams between the four
    # tiles are no worse (mosaic first, then one warp)
    assert err.max() < 0.1, err.max()
    assert err.mean() < 0.05, err.mean()
    slope = slope_degrees(elev, 30.0, 30.0)
    assert np.abs(slope - DEM_SLOPE_DEG).max() < 0.02, (slope.min(), slope.max(), DEM_SLOPE_DEG)

    # the STAC Item of the cached layer, in the collection hrlc-ancillary
    item = json.loads((lake / "metadata/stac/hrlc-ancillary" / f"{first['item']}.json").read_text())
    assert item["collection"] == "hrlc-ancillary"
    assert item["properties"]["hrlc:dataset"] == "copernicus-dem"
    assert item["properties"]["hrlc:product"] == "ancillary-layer"
    assert sorted(item["properties"]["hrlc:inputs"]) == sorted(first["source_ids"])
    assert item["assets"]["data"]["href"] == str(lake / key)

    # and its row in ancillary.cache
    with psycopg.connect(env.training_dsn) as conn:
        row = conn.execute(
            "select key, access, hits, source_ids, st_astext(footprint) from ancillary.cache "
            "where dataset = 'copernicus-dem'"
        ).fetchone()
    assert row is not None and row[0] == key and row[1] == "stac" and row[2] == 0 and len(row[3]) == 4

    # second call: the lake cache, no request at all to the STAC API
    stac_server.reset()
    result = _get("copernicus-dem", "--aoi", AOI_ARG, "--resolution", 30)
    assert result.exit_code == 0, result.output
    second = json.loads(result.stdout)
    assert second["cached"] is True and second["key"] == key
    assert stac_server.requests == []
    assert "read from the lake cache" in result.stderr
    with psycopg.connect(env.training_dsn) as conn:
        hits = conn.execute("select hits from ancillary.cache where key = %s", (key,)).fetchone()
    assert hits == (1,)


def test_worldcover_nearest_at_10m_mode_at_30m(env: Settings, stac_server: StacServer) -> None:
    svc = service(env)
    to_lonlat = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
    for resolution, want_method in ((10.0, "nearest"), (30.0, "mode")):
        layer = svc.get("esa-worldcover", aoi=AOI, resolution=resolution)
        assert not layer.cached and layer.edition == "2021"  # the latest edition by default
        da = layer.read()
        with rasterio.open(layer.href) as src:
            assert src.tags()["resampling"] == want_method
        e, n = np.meshgrid(da.x.values, da.y.values)
        lon, lat = to_lonlat.transform(e, n)
        truth = worldcover_truth(lon, lat)
        got = da.values
        assert set(np.unique(got)) <= {0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100}
        # pixels at least one output pixel away from any class edge: exactly the truth
        interior = np.ones_like(truth, dtype=bool)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                interior &= np.roll(np.roll(truth, dy, 0), dx, 1) == truth
        interior[[0, -1], :] = False
        interior[:, [0, -1]] = False
        assert interior.mean() > 0.8
        assert (got[interior] == truth[interior]).all()
        assert (got == truth).mean() > 0.97
        assert (got == 0).any()  # the nodata hole is kept as nodata
    assert len(svc.cache_entries("esa-worldcover")) == 2


def test_year_picks_an_edition(env: Settings) -> None:
    with pytest.raises(AncillaryError, match="no item there for 2020"):  # the test API holds 2021 only
        service(env).get("esa-worldcover", aoi=AOI, year=2020)
    with pytest.raises(AncillaryError, match="no 2019 edition"):
        service(env).get("esa-worldcover", aoi=AOI, year=2019)


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["no-such-map", "--aoi", AOI_ARG], ["unknown ancillary dataset 'no-such-map'", "copernicus-dem"]),
        (["glc-fcs30d", "--aoi", AOI_ARG], ["manual dataset and nothing is uploaded", "hrlc ancillary put"]),
        (["copernicus-dem", "--aoi", "14.50,45.85,14.60,45.90"], ["outside the copernicus-dem data"]),
        (["copernicus-dem", "--aoi", "1,2,3"], ["4 numbers"]),
        (["copernicus-dem", "--aoi", "10,50,5,55"], ["empty"]),
        (["copernicus-dem", "--aoi", "200,50,210,55"], ["not lon/lat"]),
        (["copernicus-dem", "--aoi", AOI_ARG, "--resolution", 20], ["10 or 30"]),
        (["copernicus-dem", "--aoi", AOI_ARG, "--crs", "EPSG:4326"], ["not a projected CRS in metres"]),
        (["copernicus-dem", "--aoi", AOI_ARG, "--year", 2021], ["one edition only"]),
        (["esa-worldcover", "--aoi", AOI_ARG, "--year", 1999], ["no 1999 edition"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    env: Settings, stac_server: StacServer, args: list[object], fragments: list[str]
) -> None:
    one_line_error(_get(*args), *fragments)
    with psycopg.connect(env.training_dsn) as conn:
        assert conn.execute("select count(*) from ancillary.cache").fetchone() == (0,)
    lake = Path(env.store)
    assert not (lake / "ancillary").exists()


def test_unreachable_api_and_database_are_one_line(env: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HRLC_ANCILLARY_STAC_API", "http://127.0.0.1:9/stac")  # nothing listens on port 9
    one_line_error(_get("copernicus-dem", "--aoi", AOI_ARG), "STAC search of cop-dem-glo-30")
    monkeypatch.setenv("HRLC_TRAINING_DSN", "postgresql://postgres@127.0.0.1:9/none")
    one_line_error(_get("copernicus-dem", "--aoi", AOI_ARG), "cannot reach the ancillary database")

"""Input scene sources: real STAC items of Earth Search, Planetary Computer and USGS are recognised, and
loaded through odc-stac from local COGs (the real items with their hrefs and grids rewritten), lazily."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path

import dask.array as da
import numpy as np
import pystac
import pytest
import rasterio
from odc.geo import geom
from odc.geo.geobox import GeoBox
from rasterio.transform import from_origin

from hrlc.catalog import sources as src
from hrlc.catalog.sources import (
    CANONICAL_LANDSAT,
    CANONICAL_S2,
    SourceError,
    band_assets,
    grid_for,
    load_optical,
    scale_offset,
    search,
    sensor_of,
    to_reflectance,
)

ES = "data/pystac-client/extracted_from_cassettes/earth-search-v1"
ES_S2_2023 = f"{ES}/sentinel-2-l2a__S2A_13TDE_20231008_0_L2A.json"
ES_S2_2025 = f"{ES}/sentinel-2-l2a__S2B_20EPT_20250731_0_L2A.json"
ES_S2_C1 = f"{ES}/sentinel-2-c1-l2a__S2B_T20EPT_20250731T131905_L2A.json"
ES_L1C = f"{ES}/sentinel-2-l1c__S2B_20EPT_20250731_0_L1C.json"
ES_LANDSAT = f"{ES}/landsat-c2-l2__LC08_L2SP_033032_20231008_02_T1.json"
ES_S1 = f"{ES}/sentinel-1-grd__S1A_IW_GRDH_1SSH_20250731T135702_20250731T135722_060328_077F7E.json"
ES_DEM = f"{ES}/cop-dem-glo-30__Copernicus_DSM_COG_10_S90_00_W180_00_DEM.json"
PC_S2_2019 = "data/odc-stac/tests/data/S2B_MSIL2A_20190629T212529_R043_T06VVN_20201006T080531.json"
PC_S2_2019_RASTER = (
    "data/odc-stac/tests/data/S2B_MSIL2A_20190629T212529_R043_T06VVN_20201006T080531_raster_ext.json"
)
PC_S2_LIST = "data/stac-geoparquet/tests/data/sentinel-2-l2a-pc.json"
PC_S2_2015 = "data/stac-geoparquet/extracted_from_cassettes/pc_sentinel-2-l2a_item_S2A_MSIL2A_20150704.json"
PC_S2_2025 = "data/stac-geoparquet/extracted_from_cassettes/pc_sentinel-2-l2a_items_limit1.json"
PC_LANDSAT_LIST = "data/stac-geoparquet/tests/data/landsat-c2-l2-pc.json"
PC_LANDSAT_2025 = "data/stac-geoparquet/extracted_from_cassettes/pc_landsat-c2-l2_items_limit1.json"
PC_S1 = "data/stac-geoparquet/extracted_from_cassettes/pc_sentinel-1-grd_items_limit1.json"
PC_DEM = "data/stac-geoparquet/tests/data/cop-dem-glo-30-pc.json"
USGS_L8 = "data/odc-stac/tests/data/LC08_L2SP_028030_20200114_20200824_02_T1_SR.json"
USGS_L7 = "data/odc-stac/tests/data/LE07_L2SP_044033_20210329_20210424_02_T1_SR.json"
OPENEO_S2 = "data/openeo-processes-dask/tests/data/stac/s2_l2a_test_item.json"

S2_FILES = [
    ES_S2_2023,
    ES_S2_2025,
    ES_S2_C1,
    PC_S2_2019,
    PC_S2_2019_RASTER,
    PC_S2_LIST,
    PC_S2_2015,
    PC_S2_2025,
    OPENEO_S2,
]
LANDSAT_FILES = [ES_LANDSAT, PC_LANDSAT_LIST, PC_LANDSAT_2025, USGS_L8, USGS_L7]
NON_OPTICAL_FILES = [ES_S1, ES_DEM, PC_S1, PC_DEM, ES_L1C]


def _dicts(path: Path) -> list[dict]:
    d = json.loads(path.read_text())
    if isinstance(d, list):
        return d
    return d["features"] if d.get("type") == "FeatureCollection" else [d]


def _items(shared: Path, rel: str) -> list[pystac.Item]:
    return [pystac.Item.from_dict(d) for d in _dicts(shared / rel)]


# ------------------------------------------------------------------------------------------- recognition


@pytest.mark.parametrize("rel", S2_FILES)
def test_real_sentinel2_items_are_recognised(shared: Path, rel: str) -> None:
    for item in _items(shared, rel):
        spec = sensor_of(item)
        assert spec.name == "sentinel2"
        keys = band_assets(item, spec)
        assert set(keys) == {*CANONICAL_S2, "qa"}
        # the mapping is the band, not just a key: check eo:bands where the item has them
        for name, b in (("blue", "B02"), ("red", "B04"), ("nir", "B08"), ("nir08", "B8A"), ("swir22", "B12")):
            eo = item.assets[keys[name]].extra_fields.get("eo:bands")
            if eo and eo[0].get("name", "").startswith("B"):
                assert eo[0]["name"] == b
        assert keys["qa"].lower() == "scl"
        scale, _, nodata = scale_offset(item, keys["red"])
        assert scale == 1e-4 and nodata == 0
        assert scale_offset(item, keys["qa"]) == (1.0, 0.0, 0.0)


@pytest.mark.parametrize(
    ("rel", "red_key", "offset"),
    [
        (ES_S2_2023, "red", -0.1),  # raster:bands offset -0.1
        (ES_S2_C1, "red", -0.1),
        (OPENEO_S2, "red", -0.1),
        (PC_S2_2019, "B04", 0.0),  # no raster:bands, s2:processing_baseline 02.12
        (PC_S2_2019_RASTER, "B04", 0.0),  # raster:bands without scale/offset, baseline 02.12
        (PC_S2_2015, "B04", 0.0),
        (PC_S2_2025, "B04", -0.1),  # no raster:bands, baseline 05.11
        (PC_S2_LIST, "B04", -0.1),  # baseline 05.10
    ],
)
def test_sentinel2_offset_follows_raster_bands_then_baseline(
    shared: Path, rel: str, red_key: str, offset: float
) -> None:
    for item in _items(shared, rel):
        assert band_assets(item, "sentinel2", ["red"]) == {"red": red_key}
        assert scale_offset(item, red_key) == (1e-4, pytest.approx(offset), 0.0)


def test_sentinel2_offset_values_match_the_json(shared: Path) -> None:
    d = _dicts(shared / ES_S2_2023)[0]
    rb = d["assets"]["nir08"]["raster:bands"][0]
    item = pystac.Item.from_dict(d)
    assert scale_offset(item, "nir08") == (rb["scale"], rb["offset"], rb["nodata"])
    pc = _dicts(shared / PC_S2_2019)[0]
    assert pc["properties"]["s2:processing_baseline"].startswith("02.")
    assert "raster:bands" not in pc["assets"]["B04"]


def test_sentinel2_baseline_from_product_id_or_date(shared: Path) -> None:
    d = copy.deepcopy(_dicts(shared / PC_S2_2025)[0])
    del d["properties"]["s2:processing_baseline"]
    d["properties"]["s2:product_uri"] = "S2B_MSIL2A_20250312T014549_N0511_R117_T53KLQ_20250312T040506.SAFE"
    assert scale_offset(pystac.Item.from_dict(d), "B04")[1] == pytest.approx(-0.1)
    for k in ("s2:product_uri", "s2:datatake_id", "s2:granule_id", "s2:datastrip_id"):
        del d["properties"][k]  # nothing left but the date: 2025 -> after baseline 04.00
    assert scale_offset(pystac.Item.from_dict(d), "B04")[1] == pytest.approx(-0.1)
    d["properties"]["datetime"] = "2021-06-01T10:00:00Z"
    assert scale_offset(pystac.Item.from_dict(d), "B04")[1] == 0.0
    d["properties"]["processing:version"] = "04.00"
    assert scale_offset(pystac.Item.from_dict(d), "B04")[1] == pytest.approx(-0.1)


@pytest.mark.parametrize("rel", LANDSAT_FILES)
def test_real_landsat_items_are_recognised(shared: Path, rel: str) -> None:
    for item in _items(shared, rel):
        spec = sensor_of(item)
        assert spec.name == "landsat"
        keys = band_assets(item, spec)
        assert set(keys) == {*CANONICAL_LANDSAT, "qa"}
        assert keys["nir"] == "nir08" and keys["qa"] == "qa_pixel"
        for name in CANONICAL_LANDSAT:  # every mapped asset is the band of that common name
            eo = item.assets[keys[name]].extra_fields["eo:bands"][0]
            assert eo["common_name"] == ("nir08" if name == "nir" else name)
        assert scale_offset(item, keys["red"]) == (2.75e-05, -0.2, 0.0)
        assert scale_offset(item, "qa_pixel") == (1.0, 0.0, 1.0)


def test_landsat_scale_values_match_the_json(shared: Path) -> None:
    d = _dicts(shared / PC_LANDSAT_LIST)[0]
    rb = d["assets"]["swir16"]["raster:bands"][0]
    assert scale_offset(pystac.Item.from_dict(d), "swir16") == (rb["scale"], rb["offset"], rb["nodata"])
    # the PC "qa" asset is the surface temperature QA, not the pixel QA
    assert band_assets(pystac.Item.from_dict(d), "landsat", ["qa"]) == {"qa": "qa_pixel"}


def test_tm_etm_numbered_keys_are_not_mistaken_for_oli(shared: Path) -> None:
    d = copy.deepcopy(_dicts(shared / USGS_L7)[0])
    d["collection"] = "landsat-elsewhere"
    renamed = {
        "blue": "SR_B1",
        "green": "SR_B2",
        "red": "SR_B3",
        "nir08": "SR_B4",
        "swir16": "SR_B5",
        "swir22": "SR_B7",
    }
    d["assets"] = {renamed.get(k, k): v for k, v in d["assets"].items()}
    keys = band_assets(pystac.Item.from_dict(d), "landsat")
    assert keys["nir"] == "SR_B4" and keys["swir16"] == "SR_B5" and keys["blue"] == "SR_B1"


@pytest.mark.parametrize("rel", NON_OPTICAL_FILES)
def test_non_optical_items_are_refused(shared: Path, rel: str) -> None:
    for item in _items(shared, rel):
        with pytest.raises(SourceError):
            sensor_of(item)


def test_item_without_collection_is_recognised_by_platform(shared: Path) -> None:
    d = copy.deepcopy(_dicts(shared / ES_S2_2023)[0])
    d.pop("collection", None)
    d["links"] = []
    assert sensor_of(pystac.Item.from_dict(d)).name == "sentinel2"
    d["properties"].pop("platform")
    d["properties"].pop("constellation")
    d["properties"].pop("instruments")
    assert sensor_of(pystac.Item.from_dict(d)).name == "sentinel2"  # by eo:bands


def test_missing_bands_are_named(shared: Path) -> None:
    d = copy.deepcopy(_dicts(shared / ES_S2_2023)[0])
    del d["assets"]["rededge2"], d["assets"]["swir22"]
    with pytest.raises(SourceError, match="rededge2, swir22"):
        band_assets(pystac.Item.from_dict(d), "sentinel2")
    with pytest.raises(SourceError, match="not a band"):
        band_assets(pystac.Item.from_dict(d), "sentinel2", ["coastal"])
    with pytest.raises(SourceError, match="unknown sensor"):
        band_assets(pystac.Item.from_dict(d), "modis")


# ------------------------------------------------------------------------------- local COGs from real items

CRS = "EPSG:32613"
X0, Y0 = 500_000.0, 4_420_000.0  # top-left of the local grid, inside MGRS 13TDE
N10 = 64  # 64 x 64 pixels at 10 m (32 x 32 at 20 m, 22 x 22 at 30 m)
S2_10M = ("blue", "green", "red", "nir")
S2_BAND_IDS = dict(
    zip(CANONICAL_S2, ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"), strict=True)
)


def _write(path: Path, arr: np.ndarray, res: float, nodata: float) -> dict:
    """A small COG; returns the proj fields describing it."""
    transform = from_origin(X0, Y0, res, res)
    with rasterio.open(
        path,
        "w",
        driver="COG",
        width=arr.shape[1],
        height=arr.shape[0],
        count=1,
        dtype=arr.dtype,
        crs=CRS,
        transform=transform,
        nodata=nodata,
    ) as f:
        f.write(arr, 1)
    return {"proj:shape": list(arr.shape), "proj:transform": list(transform)[:6]}


def s2_dn(band: int, step: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The known pattern of the Sentinel-2 test COGs (same formula on the 10 m and the 20 m grid)."""
    return (1000 * (band + 1) + 100 * step + rows + 2 * cols).astype("uint16")


def _s2_files(folder: Path, step: int, nodata_left: bool = False) -> dict[str, tuple[Path, dict]]:
    """COGs of all canonical S2 bands + SCL for one date; with `nodata_left` the left half is 0."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for b, name in enumerate(CANONICAL_S2):
        res, n = (10.0, N10) if name in S2_10M else (20.0, N10 // 2)
        rows, cols = np.mgrid[0:n, 0:n]
        arr = s2_dn(b, step, rows, cols)
        if name == "red" and step == 0:
            arr[:4, :4] = 0  # a nodata block
        if nodata_left:
            arr[:, : n // 2] = 0
        out[name] = (folder / f"{name}.tif", _write(folder / f"{name}.tif", arr, res, 0))
    scl = np.full((N10 // 2, N10 // 2), 4, "uint8")
    scl[:8, :8] = 9  # cloud, high probability
    if nodata_left:
        scl[:, : N10 // 4] = 0
    out["qa"] = (folder / "scl.tif", _write(folder / "scl.tif", scl, 20.0, 0))
    return out


def _footprint(res: float, n: int) -> tuple[dict, list[float]]:
    box = geom.box(X0, Y0 - res * n, X0 + res * n, Y0, CRS).to_crs("epsg:4326")
    return box.json, list(box.boundingbox)


def _localise(
    template: dict, files: dict[str, tuple[Path, dict]], keys: dict[str, str], when: str, item_id: str
) -> pystac.Item:
    """The real item `template` with its hrefs, grids, footprint and time rewritten to the local COGs."""
    d = copy.deepcopy(template)
    d["id"] = item_id
    d["links"] = []
    d["properties"]["datetime"] = when
    for k in ("proj:code", "proj:wkt2", "proj:projjson", "proj:bbox", "proj:centroid", "proj:geometry"):
        d["properties"].pop(k, None)
    d["properties"]["proj:epsg"] = int(CRS.split(":")[1])
    res0 = 30.0 if "qa_pixel" in keys.values() else 10.0
    d["geometry"], d["bbox"] = _footprint(res0, N10 if res0 == 10 else N10 // 3)
    if "proj:transform" in d["properties"]:  # Landsat: the grid is item-level
        d["properties"].update(next(iter(files.values()))[1])
    for name, (path, proj) in files.items():
        asset = d["assets"][keys[name]]
        asset["href"] = str(path)
        asset.pop("alternate", None)
        if "proj:transform" in asset:
            asset.update(proj)
        for k in ("proj:bbox", "proj:code", "proj:epsg", "proj:centroid"):
            asset.pop(k, None)
    return pystac.Item.from_dict(d)


def _es_keys() -> dict[str, str]:
    return {**{n: n for n in CANONICAL_S2}, "qa": "scl"}


def _pc_keys() -> dict[str, str]:
    return {**S2_BAND_IDS, "qa": "SCL"}


@pytest.fixture
def s2_items(shared: Path, tmp_path: Path) -> dict[str, list[pystac.Item]]:
    """Two Earth Search v1 items (2023, offset -0.1) and two PC items (2019, offset 0) on the local grid."""
    es = _dicts(shared / ES_S2_2023)[0]
    pc = _dicts(shared / PC_S2_2019)[0]
    files = [_s2_files(tmp_path / f"t{step}", step) for step in range(4)]
    return {
        "es": [
            _localise(es, files[0], _es_keys(), "2023-10-08T18:02:55Z", "es-0"),
            _localise(es, files[1], _es_keys(), "2023-10-13T18:02:55Z", "es-1"),
        ],
        "pc": [
            _localise(pc, files[2], _pc_keys(), "2019-06-29T18:25:29Z", "pc-2"),
            _localise(pc, files[3], _pc_keys(), "2019-07-04T18:25:29Z", "pc-3"),
        ],
    }


def _expected(band: str, step: int, r: int, c: int) -> int:
    b = CANONICAL_S2.index(band)
    if band in S2_10M:
        return int(s2_dn(b, step, np.array(r), np.array(c)))
    return int(s2_dn(b, step, np.array(r // 2), np.array(c // 2)))  # nearest from 20 m


def test_load_earth_search_items_from_local_cogs(s2_items: dict[str, list[pystac.Item]]) -> None:
    ds = load_optical(s2_items["es"], sensor="sentinel2", crs=CRS, resolution=10, chunks=32)
    assert list(ds.data_vars) == [*CANONICAL_S2, "qa"]
    assert ds.sizes == {"time": 2, "y": N10, "x": N10}
    assert isinstance(ds.red.data, da.Array) and ds.red.data.chunksize == (1, 32, 32)
    assert ds.red.dtype == np.uint16 and ds.qa.dtype == np.uint8
    assert ds.red.attrs.items() >= {"scale": 1e-4, "offset": -0.1, "nodata": 0.0, "asset": "red"}.items()
    assert ds.qa.attrs["asset"] == "scl" and ds.qa.attrs["offset"] == 0.0
    assert ds.odc.geobox.crs == CRS and ds.odc.geobox.resolution.x == 10
    assert list(ds.time.dt.day.values) == [8, 13]
    v = ds.compute()
    for band in ("red", "nir", "rededge1", "nir08", "swir22"):
        for r, c in ((10, 20), (63, 0), (33, 47)):
            for t in (0, 1):
                assert int(v[band][t, r, c]) == _expected(band, t, r, c), (band, t, r, c)
    assert int(v.red[0, 2, 2]) == 0 and int(v.red[1, 2, 2]) == _expected("red", 1, 2, 2)
    assert int(v.qa[0, 0, 0]) == 9 and int(v.qa[0, 40, 40]) == 4

    refl = to_reflectance(ds)
    assert refl.red.dtype == np.float32 and isinstance(refl.red.data, da.Array)
    rv = refl.compute()
    assert np.isnan(rv.red[0, 2, 2])
    assert float(rv.red[1, 10, 20]) == pytest.approx(_expected("red", 1, 10, 20) * 1e-4 - 0.1, abs=1e-6)
    assert rv.qa.dtype == np.uint8 and int(rv.qa[0, 0, 0]) == 9


def test_load_planetary_computer_items_same_code_path(s2_items: dict[str, list[pystac.Item]]) -> None:
    ds = load_optical(s2_items["pc"], sensor="sentinel2", crs=CRS, resolution=10)
    assert list(ds.data_vars) == [*CANONICAL_S2, "qa"]
    assert isinstance(ds.nir08.data, da.Array)
    assert (
        ds.red.attrs["asset"] == "B04" and ds.nir08.attrs["asset"] == "B8A" and ds.qa.attrs["asset"] == "SCL"
    )
    assert ds.red.attrs["offset"] == 0.0 and ds.red.attrs["scale"] == 1e-4
    v = ds.compute()
    for band in ("blue", "rededge3", "nir08", "swir16"):
        assert int(v[band][0, 5, 6]) == _expected(band, 2, 5, 6)
        assert int(v[band][1, 50, 9]) == _expected(band, 3, 50, 9)
    refl = to_reflectance(ds).compute()
    assert float(refl.green[0, 5, 6]) == pytest.approx(_expected("green", 2, 5, 6) * 1e-4, abs=1e-6)


def test_mixed_sources_and_offsets_are_harmonised(s2_items: dict[str, list[pystac.Item]]) -> None:
    items = s2_items["es"] + s2_items["pc"]
    ds = load_optical(items, sensor="sentinel2", crs=CRS, resolution=10, chunks=32)
    assert isinstance(ds.red.data, da.Array)
    assert ds.sizes["time"] == 4 and list(ds.time.dt.year.values) == [2019, 2019, 2023, 2023]
    assert ds.red.attrs["offset"] == pytest.approx(-0.1) and ds.red.attrs["asset"] == "B04,red"
    assert ds.red.dtype == np.uint16 and ds.qa.dtype == np.uint8
    v = ds.compute()
    # the 2019 (offset 0) scenes are shifted by +1000 DN onto the -0.1 offset; the 2023 ones are unchanged
    assert int(v.red[0, 10, 20]) == _expected("red", 2, 10, 20) + 1000
    assert int(v.swir16[1, 10, 20]) == _expected("swir16", 3, 10, 20) + 1000
    assert int(v.red[3, 10, 20]) == _expected("red", 1, 10, 20)
    assert int(v.red[2, 2, 2]) == 0  # nodata stays nodata
    assert int(v.qa[0, 0, 0]) == 9  # qa is never shifted
    # reflectance is the same whichever way the scenes were loaded
    alone = to_reflectance(load_optical(s2_items["pc"], sensor="sentinel2", crs=CRS, resolution=10)).compute()
    mixed = to_reflectance(ds).compute()
    np.testing.assert_allclose(mixed.red[:2].values, alone.red.values, atol=1e-6)


def test_same_solar_day_items_are_fused_across_offset_groups(shared: Path, tmp_path: Path) -> None:
    es, pc = _dicts(shared / ES_S2_2023)[0], _dicts(shared / PC_S2_2019)[0]
    old = _localise(
        pc, _s2_files(tmp_path / "old", 1, nodata_left=True), _pc_keys(), "2021-05-01T17:00:00Z", "old"
    )
    new_files = _s2_files(tmp_path / "new", 2)
    new = _localise(es, new_files, _es_keys(), "2021-05-01T17:00:30Z", "new")
    ds = load_optical([new, old], sensor="sentinel2", crs=CRS, resolution=10, bands=["red", "qa"])
    assert list(ds.data_vars) == ["red", "qa"] and ds.sizes["time"] == 1
    assert str(ds.time.values[0]).startswith("2021-05-01T17:00:00")
    v = ds.compute()
    assert int(v.red[0, 10, 50]) == _expected("red", 1, 10, 50) + 1000  # the earlier scene, shifted
    assert int(v.red[0, 10, 5]) == _expected("red", 2, 10, 5)  # its hole filled by the later one
    assert int(v.qa[0, 20, 5]) == 4 and int(v.qa[0, 0, 40]) == 4


def test_load_is_lazy_and_only_reads_on_compute(shared: Path, tmp_path: Path) -> None:
    es = _dicts(shared / ES_S2_2023)[0]
    files = _s2_files(tmp_path / "gone", 0)
    item = _localise(es, files, _es_keys(), "2023-10-08T18:02:55Z", "gone")
    for path, _ in files.values():
        path.unlink()
    ds = load_optical([item], sensor="sentinel2", crs=CRS, resolution=10)
    assert isinstance(ds.red.data, da.Array)
    with pytest.raises(Exception):  # noqa: B017 - whatever GDAL says about a missing file
        ds.red.compute()


def test_bbox_and_resolution_select_the_grid(s2_items: dict[str, list[pystac.Item]]) -> None:
    bbox = (X0 + 100, Y0 - 300, X0 + 300, Y0 - 100)
    ds = load_optical(
        s2_items["es"], sensor="sentinel2", crs=CRS, resolution=20, bbox=bbox, bands=["red", "swir16"]
    )
    assert ds.sizes == {"time": 2, "y": 10, "x": 10}
    v = ds.compute()
    # 20 m pixel (0, 0) of the bbox = 10 m pixel rows 10-11, cols 10-11; nearest takes one of them
    assert int(v.swir16[0, 0, 0]) == _expected("swir16", 0, 10, 10)
    assert int(v.red[0, 0, 0]) in {_expected("red", 0, 10 + i, 10 + j) for i in (0, 1) for j in (0, 1)}
    gbox = GeoBox.from_bbox(bbox, crs=CRS, resolution=10)
    same = load_optical(s2_items["es"], sensor="sentinel2", crs=CRS, resolution=10, bbox=gbox, bands=["red"])
    assert same.odc.geobox == gbox
    also = load_optical(s2_items["es"], sensor="sentinel2", geobox=gbox, bands=["red"])  # crs/res of the grid
    assert also.odc.geobox == gbox
    with pytest.raises(SourceError, match="needs crs and resolution"):
        load_optical(s2_items["es"], sensor="sentinel2", resolution=10)


def test_load_landsat_usgs_and_earth_search_items(shared: Path, tmp_path: Path) -> None:
    def files(folder: Path, step: int) -> dict[str, tuple[Path, dict]]:
        folder.mkdir()
        rows, cols = np.mgrid[0:22, 0:22]
        out = {}
        for b, name in enumerate(CANONICAL_LANDSAT):
            arr = (8000 + 1000 * b + 100 * step + rows + cols).astype("uint16")
            out[name] = (folder / f"{name}.tif", _write(folder / f"{name}.tif", arr, 30.0, 0))
        qa = np.full((22, 22), 21824, "uint16")  # clear, low confidence cloud
        qa[0, :] = 1  # fill
        out["qa"] = (folder / "qa.tif", _write(folder / "qa.tif", qa, 30.0, 1))
        return out

    keys = {**{n: n for n in CANONICAL_LANDSAT}, "nir": "nir08", "qa": "qa_pixel"}
    usgs = _localise(
        _dicts(shared / USGS_L8)[0], files(tmp_path / "a", 0), keys, "2020-01-14T17:05:46Z", "usgs"
    )
    es = _localise(
        _dicts(shared / ES_LANDSAT)[0], files(tmp_path / "b", 1), keys, "2023-10-08T17:37:26Z", "es"
    )
    native = GeoBox.from_bbox((X0, Y0 - 660, X0 + 660, Y0), crs=CRS, resolution=30, tight=True)
    ds = load_optical([es, usgs], sensor="landsat", crs=CRS, resolution=30, bbox=native)
    assert list(ds.data_vars) == [*CANONICAL_LANDSAT, "qa"]
    assert ds.sizes == {"time": 2, "y": 22, "x": 22}
    assert isinstance(ds.nir.data, da.Array) and ds.nir.attrs["asset"] == "nir08"
    assert ds.red.attrs.items() >= {"scale": 2.75e-05, "offset": -0.2, "nodata": 0.0}.items()
    assert ds.qa.attrs["nodata"] == 1.0 and ds.qa.dtype == np.uint16
    v = ds.compute()
    assert int(v.nir[0, 5, 7]) == 8000 + 3000 + 12 and int(v.nir[1, 5, 7]) == 8000 + 3000 + 100 + 12
    assert int(v.qa[0, 0, 3]) == 1 and int(v.qa[1, 4, 3]) == 21824
    refl = to_reflectance(ds).compute()
    assert float(refl.nir[0, 5, 7]) == pytest.approx(11012 * 2.75e-05 - 0.2, abs=1e-6)


def test_real_items_build_lazy_cubes_without_network(shared: Path) -> None:
    """The real items, hrefs untouched (internet, unreachable here): the cube is built, nothing is read."""
    import planetary_computer.settings

    planetary_computer.settings.Settings.get.cache_clear()  # the real SAS API, not a test's
    es = _items(shared, ES_S2_2023)
    grid = grid_for((-105.0, 40.0, -104.9, 40.1), resolution=10)
    ds = load_optical(es, sensor="sentinel2", crs=grid.crs, resolution=10, bbox=grid)
    assert ds.odc.geobox == grid and ds.sizes["time"] == 1 and isinstance(ds.swir22.data, da.Array)
    assert ds.red.attrs["asset"] == "red" and ds.red.attrs["offset"] == pytest.approx(-0.1)
    pc = _items(shared, PC_S2_LIST)  # four tiles over two UTM zones, one solar day
    # unsigned: signing asks the PC's SAS API for a token when the cube is planned (tests/catalog/
    # test_planetary_computer.py); offline that is a SourceError in seconds
    with pytest.raises(SourceError, match="cannot get a Planetary Computer SAS token for sentinel2l2a01"):
        load_optical(pc, sensor="sentinel2", crs="EPSG:32647", resolution=60, bands=["red", "qa"])
    ds = load_optical(
        pc, sensor="sentinel2", crs="EPSG:32647", resolution=60, bands=["red", "qa"], patch_url=lambda h: h
    )
    assert ds.sizes["time"] == 1 and ds.red.attrs["asset"] == "B04" and ds.qa.attrs["asset"] == "SCL"
    usgs = _items(shared, USGS_L8)
    ds = load_optical(usgs, sensor="landsat", crs="EPSG:32615", resolution=30, anchor="center", bands=["nir"])
    native = _dicts(shared / USGS_L8)[0]["properties"]["proj:transform"]
    assert ds.odc.geobox.affine.c % 30 == native[2] % 30 == 15 and ds.nir.attrs["asset"] == "nir08"


def test_load_refuses_what_it_cannot_serve(s2_items: dict[str, list[pystac.Item]], shared: Path) -> None:
    with pytest.raises(SourceError, match="no items"):
        load_optical([], sensor="sentinel2", crs=CRS, resolution=10)
    with pytest.raises(SourceError, match="not sentinel2"):
        load_optical(_items(shared, ES_LANDSAT), sensor="sentinel2", crs=CRS, resolution=10)
    with pytest.raises(SourceError, match="not a band"):
        load_optical(s2_items["es"], sensor="sentinel2", crs=CRS, resolution=10, bands=["coastal"])
    odd = copy.deepcopy(s2_items["es"][0])
    odd.assets["red"].extra_fields["raster:bands"][0]["scale"] = 2e-4
    with pytest.raises(SourceError, match="scale of red"):
        load_optical([s2_items["es"][1], odd], sensor="sentinel2", crs=CRS, resolution=10)


# ---------------------------------------------------------------------------------------------------- grid


def test_grid_for_picks_the_utm_zone_of_the_centre() -> None:
    bbox = (-104.6, 39.9, -104.5, 40.0)
    g = grid_for(bbox, resolution=10)
    assert g.crs == "EPSG:32613" and g.resolution.x == 10 and g.resolution.y == -10
    assert g.extent.to_crs("epsg:4326").contains(geom.box(*bbox, "epsg:4326"))
    assert g.affine.c % 10 == 0 and g.affine.f % 10 == 0
    assert grid_for((150.0, -35.0, 150.1, -34.9), resolution=30).crs == "EPSG:32756"
    g3 = grid_for(bbox, crs=3035, resolution=100)
    assert g3.crs == "EPSG:3035" and g3.resolution.x == 100
    assert grid_for(bbox, resolution=30, anchor="center").affine.c % 30 == 15
    with pytest.raises(SourceError):
        grid_for((1.0, 1.0, 0.0, 2.0), resolution=10)


# -------------------------------------------------------------------------------------------------- search


def _catalog_item(
    template: dict, item_id: str, lonlat: tuple[float, float], when: str, cloud: float
) -> pystac.Item:
    d = copy.deepcopy(template)
    d["id"], d["links"] = item_id, []
    lon, lat = lonlat
    box = geom.box(lon, lat, lon + 1, lat + 1, "epsg:4326")
    d["geometry"], d["bbox"] = box.json, list(box.boundingbox)
    d["properties"]["datetime"] = when
    d["properties"]["eo:cloud_cover"] = cloud
    return pystac.Item.from_dict(d)


@pytest.fixture
def static_catalog(shared: Path, tmp_path: Path) -> Path:
    """A static catalog: a sentinel-2-l2a collection of 4 items, a sentinel-1-grd collection of 1."""
    s2 = _dicts(shared / ES_S2_2023)[0]
    s1 = _dicts(shared / ES_S1)[0]
    cat = pystac.Catalog("test", "test catalog")
    extent = pystac.Extent(
        pystac.SpatialExtent([[-180, -90, 180, 90]]), pystac.TemporalExtent([[None, None]])
    )
    c2 = pystac.Collection("sentinel-2-l2a", "S2", extent)
    c1 = pystac.Collection("sentinel-1-grd", "S1", extent)
    for args in (
        ("a", (10.0, 45.0), "2023-06-03T10:00:00Z", 5.0),
        ("b", (10.5, 45.5), "2023-06-20T10:00:00Z", 80.0),
        ("c", (10.0, 45.0), "2023-07-02T10:00:00Z", 1.0),
        ("d", (-70.0, -30.0), "2023-06-10T10:00:00Z", 0.0),
    ):
        c2.add_item(_catalog_item(s2, *args))
    c1.add_item(_catalog_item(s1, "s1", (10.0, 45.0), "2023-06-05T10:00:00Z", 0.0))
    cat.add_children([c2, c1])
    root = tmp_path / "stac"
    cat.normalize_hrefs(str(root))
    cat.save(pystac.CatalogType.SELF_CONTAINED)
    return root / "catalog.json"


def test_search_static_catalog_filters_bbox_and_datetime(static_catalog: Path) -> None:
    found = search(str(static_catalog), sensor="sentinel2", bbox=(10.2, 45.2, 10.6, 45.6), datetime="2023-06")
    assert [i.id for i in found] == ["a", "b"]
    assert all(i.assets["red"].href.startswith("https://") for i in found)
    found = search(
        f"file://{static_catalog}",
        sensor="sentinel2",
        bbox=(9.0, 44.0, 12.0, 47.0),
        datetime="2023-06-01/2023-07-31",
    )
    assert [i.id for i in found] == ["a", "b", "c"]  # sorted by time, never the sentinel-1 item
    found = search(
        str(static_catalog.parent), sensor="sentinel2", bbox=(9.0, 44.0, 12.0, 47.0), datetime="../2023-06-03"
    )
    assert [i.id for i in found] == ["a"]
    found = search(
        str(static_catalog),
        sensor="sentinel2",
        bbox=(-180, -90, 180, 90),
        datetime=None,
        max_cloud=10,
        limit=2,
    )
    assert [i.id for i in found] == ["a", "d"]
    coll = static_catalog.parent / "sentinel-2-l2a" / "collection.json"
    assert [i.id for i in search(str(coll), sensor="sentinel2", bbox=None, datetime="2023-07-02")] == ["c"]
    assert search(str(static_catalog), sensor="landsat", bbox=None, datetime=None) == []


def test_search_empty_and_unknown_sources(static_catalog: Path, tmp_path: Path) -> None:
    assert (
        search(str(static_catalog), sensor="sentinel2", bbox=(100.0, 10.0, 101.0, 11.0), datetime=None) == []
    )
    assert search(str(static_catalog), sensor="sentinel2", bbox=None, datetime="2024") == []
    with pytest.raises(SourceError, match="cannot open STAC source"):
        search(str(tmp_path / "nowhere" / "catalog.json"), sensor="sentinel2", bbox=None, datetime=None)
    with pytest.raises(SourceError, match="cannot open STAC source"):
        search("http://127.0.0.1:9/stac", sensor="sentinel2", bbox=None, datetime=None)
    with pytest.raises(SourceError, match="unknown sensor"):
        search(str(static_catalog), sensor="modis", bbox=None, datetime=None)
    with pytest.raises(SourceError, match="bad datetime"):
        search(str(static_catalog), sensor="sentinel2", bbox=None, datetime="June")


def test_search_stac_api_uses_the_collections_it_has(shared: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An API (stubbed: no internet here) that has sentinel-2-c1-l2a only, and the query extension."""
    import pystac_client

    items = _items(shared, ES_S2_C1) + _items(shared, ES_S2_2023)
    calls: dict = {}

    class FakeSearch:
        def items(self):
            return iter(reversed(items))

    class FakeClient:
        def get_collection(self, cid: str):
            return object() if cid == "sentinel-2-c1-l2a" else None

        def conforms_to(self, _cls) -> bool:
            return True

        def search(self, **kw):
            calls.update(kw)
            return FakeSearch()

    monkeypatch.setattr(pystac_client.Client, "open", staticmethod(lambda url: FakeClient()))
    found = search(
        "https://example.test/v1", sensor="sentinel2", bbox=(1, 2, 3, 4), datetime="2023", max_cloud=30
    )
    assert calls["collections"] == ["sentinel-2-c1-l2a"] and calls["bbox"] == (1, 2, 3, 4)
    assert calls["query"] == {"eo:cloud_cover": {"lte": 30}} and calls["datetime"] == "2023"
    assert [i.id for i in found] == ["S2A_13TDE_20231008_0_L2A", "S2B_T20EPT_20250731T131905_L2A"]
    with pytest.raises(SourceError, match="none of the landsat collections"):
        search("https://example.test/v1", sensor="landsat", bbox=None, datetime=None)


def test_search_item_collection_files(shared: Path, tmp_path: Path) -> None:
    # real PC list of items; the search keeps the S2 items and sorts them
    found = search(str(shared / PC_S2_LIST), sensor="sentinel2", bbox=None, datetime="2024-04")
    assert len(found) == 4 and [i.datetime for i in found] == sorted(i.datetime for i in found)
    fc = {"type": "FeatureCollection", "features": _dicts(shared / PC_LANDSAT_LIST) + _dicts(shared / PC_S1)}
    (tmp_path / "fc.geojson").write_text(json.dumps(fc))
    found = search(str(tmp_path / "fc.geojson"), sensor="landsat", bbox=None, datetime=None)
    assert len(found) == 4 and all(i.collection_id == "landsat-c2-l2" for i in found)
    (tmp_path / "bad.json").write_text('{"type": "Nothing"}')
    with pytest.raises(SourceError, match="cannot open STAC source"):
        search(str(tmp_path / "bad.json"), sensor="landsat", bbox=None, datetime=None)


def test_datetime_ranges() -> None:
    utc = dt.UTC
    assert src._parse_range("2023") == (
        dt.datetime(2023, 1, 1, tzinfo=utc),
        dt.datetime(2024, 1, 1, tzinfo=utc),
    )
    assert src._parse_range("2023-12") == (
        dt.datetime(2023, 12, 1, tzinfo=utc),
        dt.datetime(2024, 1, 1, tzinfo=utc),
    )
    a, b = src._parse_range("2023-06-01T00:00:00Z/..")
    assert a == dt.datetime(2023, 6, 1, tzinfo=utc) and b is None

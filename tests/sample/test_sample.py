"""The synthetic repository: determinism, landscape, clouds, phenology, sensors, streaming, STAC, samples."""

from __future__ import annotations

import json
import tempfile
from functools import cache
from pathlib import Path

import geopandas as gpd
import numpy as np
import pystac
import pytest
import rasterio
from rasterio.features import rasterize
from rio_cogeo.cogeo import cog_validate
from scipy import ndimage

from hrlc import sample
from hrlc.lake.grid import TILE_M, Tile, Zone
from hrlc.legend import CODES, colormap
from hrlc.sample import _noise, _strips, phenology, sensors
from hrlc.sample._kernels import observe_kernel
from hrlc.sample._noise import Field, rank01
from hrlc.sample._strips import quantile, quantiles
from hrlc.sample.clouds import apply_clouds, cloud_layer, shadow_offset_px, shift
from hrlc.sample.grid import Grid
from hrlc.sample.landscape import boundary_pairs, erode_classes, landscape
from hrlc.sample.phenology import CROP_CALENDAR, LANDSAT_BANDS, Unit
from hrlc.sample.sensors import (
    CIRRUS_SPECTRUM,
    CLOUD_SPECTRUM,
    QA_CIRRUS,
    QA_CLEAR,
    QA_CLOUD,
    QA_FILL,
    QA_SHADOW,
    QA_SNOW,
    SCL_CODES,
    SHADOW_TRANSMISSION,
    LandsatScene,
    S2Scene,
    landsat_acquisitions,
    render_landsat,
    render_s2,
    s2_acquisitions,
    surface_classes,
)
from hrlc.sample.surface import PixelTraits, SurfaceModel, TraitStore, pixel_traits
from hrlc.sample.writer import CogWriter, write_cog

SIZE, SEED, YEAR, LANDSAT_YEAR = 128, 42, 2021, 2018  # the repository of the `repo` fixture (conftest.py)
S2_KEYS = ("blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir", "nir08", "swir16", "swir22")
REQUIRED = {20, 30, 60, 70, 80, 100, 120, 130, 141, 142}


# --- helpers ------------------------------------------------------------------------------------------------


@cache
def _items(catalog: str, collection: str) -> list[pystac.Item]:
    cat = pystac.Catalog.from_file(catalog)
    return sorted(cat.get_child(collection).get_items(), key=lambda i: i.datetime)


def _read(item: pystac.Item, key: str) -> np.ndarray:
    with rasterio.open(item.assets[key].get_absolute_href()) as src:
        return src.read(1)


def _s2(item: pystac.Item) -> tuple[np.ndarray, np.ndarray]:
    """(reflectance (10, h, w) float32 from the raster:bands scale/offset, SCL)."""
    bands = []
    for key in S2_KEYS:
        rb = item.assets[key].extra_fields["raster:bands"][0]
        bands.append(_read(item, key).astype(np.float32) * rb["scale"] + rb["offset"])
    return np.stack(bands), _read(item, "scl")


def _ndvi(refl: np.ndarray, red: int = 2, nir: int = 6) -> np.ndarray:
    return (refl[nir] - refl[red]) / (refl[nir] + refl[red])


def _clear(scl: np.ndarray) -> np.ndarray:
    return np.isin(scl, (4, 5, 6))


# --- landscape ----------------------------------------------------------------------------------------------


def test_class_map_is_seeded() -> None:
    a, b = sample.class_map(128, 1), sample.class_map(128, 1)
    assert a.dtype == np.uint8 and a.shape == (128, 128)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, sample.class_map(128, 2))


def test_class_map_classes_and_patch_sizes() -> None:
    ls = landscape(384, 7)
    codes, counts = np.unique(ls.codes, return_counts=True)
    assert set(codes.tolist()) >= REQUIRED and set(codes.tolist()) <= set(CODES)
    assert counts.min() >= 0.003 * ls.codes.size  # every class is visible
    # Crop fields: 1-10 ha parcels (pixel = 0.01 ha), median between 1 and 20 ha.
    crop = ls.codes == 80
    areas = np.bincount(ls.field[crop])
    areas = areas[areas > 0] * 0.01
    assert 1.0 <= np.median(areas) <= 20.0, np.median(areas)
    # Forests are larger, smooth patches: their largest connected component dwarfs a field.
    lab, _ = ndimage.label(np.isin(ls.codes, (20, 30)))
    assert np.bincount(lab.ravel())[1:].max() * 0.01 > 10 * np.median(areas)
    # Water: a lake and a river of permanent water, seasonal water at their margins.
    lab, n = ndimage.label(ls.codes == 142)
    assert n >= 1 and np.bincount(lab.ravel())[1:].max() >= 200


def test_small_grids_hold_every_required_class() -> None:
    for size in (64, 128):
        assert set(np.unique(sample.class_map(size, SEED)).tolist()) >= REQUIRED


# --- determinism --------------------------------------------------------------------------------------------


def test_repository_matches_a_fresh_rendering(repo: sample.SampleRepository, tmp_path: Path) -> None:
    """Same seed -> the same arrays and the same COG bytes; another seed -> other arrays."""
    acq = s2_acquisitions(YEAR)[30]
    ls = landscape(SIZE, SEED)
    scene = render_s2(SurfaceModel(ls, YEAR, pixel_traits(ls)), acq, SEED, repo.cloud_cover)
    item = next(i for i in _items(str(repo.catalog), "sentinel-2-l2a") if i.id == acq.item_id)
    assert np.array_equal(_read(item, "red"), scene.data[2])
    assert np.array_equal(_read(item, "scl"), scene.quality)
    ours = write_cog(
        tmp_path / "B04.tif",
        scene.data[2],
        crs=repo.grid.crs,
        transform=repo.transform,
        nodata=0,
        overviews=False,
    )
    assert ours.read_bytes() == Path(item.assets["red"].get_absolute_href()).read_bytes()
    with rasterio.open(repo.truth_map) as src:
        assert np.array_equal(src.read(1), sample.class_map(SIZE, SEED))

    other = landscape(SIZE, SEED + 1)
    scene2 = render_s2(SurfaceModel(other, YEAR, pixel_traits(other)), acq, SEED + 1, repo.cloud_cover)
    assert not np.array_equal(scene.data, scene2.data)


def test_cogs_written_by_rows_are_the_cogs_of_the_whole_arrays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A band too big for one strip goes through a temporary GeoTIFF: the same COG bytes, no file left."""
    grid = Grid(700)
    data = np.random.default_rng(0).integers(1, 5000, (700, 600)).astype(np.uint16)
    whole = write_cog(tmp_path / "whole.tif", data, crs=grid.crs, transform=grid.transform, nodata=0)
    monkeypatch.setattr(_strips, "STRIP_PIXELS", 600 * 50)
    writer = CogWriter(
        tmp_path / "rows.tif", data.shape, np.uint16, crs=grid.crs, transform=grid.transform, nodata=0
    )
    for r0, r1 in _strips.strips(700, 600):
        writer.write(data[r0:r1], r0)
    writer.close()
    assert writer.finish().read_bytes() == whole.read_bytes()
    assert sorted(p.name for p in tmp_path.glob("*.tif*")) == ["rows.tif", "whole.tif"]


def test_ranks_are_those_of_a_stable_sort() -> None:
    values = np.random.default_rng(1).standard_normal((60, 70)).astype(np.float32)
    values[10:20] = 0.5  # ties rank in pixel order
    values[30, :5] = -0.0
    values[31, :5] = 0.0
    want = np.empty(values.size, dtype=np.float32)
    want[np.argsort(values.ravel(), kind="stable")] = np.arange(values.size, dtype=np.float32) / values.size
    assert np.array_equal(rank01(values.copy()).ravel(), want)


def test_generate_is_idempotent(repo: sample.SampleRepository) -> None:
    manifest = repo.root / "sample.json"
    before = manifest.stat().st_mtime_ns
    again = sample.generate(repo.root, size=SIZE, year=YEAR, landsat_year=LANDSAT_YEAR, seed=SEED)
    assert again == repo
    assert manifest.stat().st_mtime_ns == before
    m = json.loads(manifest.read_text())
    assert m["items"] == {"sentinel-2-l2a": 73, "landsat-c2-l2": 46}


def test_generate_rejects_bad_parameters(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        sample.generate(tmp_path, size=32)
    with pytest.raises(ValueError):
        sample.generate(tmp_path, size=64, cloud_cover=(0.6, 0.4))
    with pytest.raises(ValueError, match="multiple of 30"):
        sample.generate(tmp_path, size=64, origin=(439_210.0, 5_160_600.0))


def test_origin_moves_the_grid_not_the_pixels(repo: sample.SampleRepository, tmp_path: Path) -> None:
    """A repository at another corner (`origin`) has the same pixels there; at the corner of a product-grid
    tile, a repository as wide as the tile is that tile (the full-tile benchmark relies on it)."""
    x0, y0 = 439_200.0, 5_160_600.0  # the corner of product-grid tile utm33n-109800-4-46
    moved = sample.generate(
        tmp_path, size=SIZE, year=YEAR, landsat_year=LANDSAT_YEAR, seed=SEED, every=12, origin=(x0, y0)
    )
    assert (moved.transform.c, moved.transform.f) == (x0, y0)
    href = min((moved.catalog.parent / "sentinel-2-l2a").glob("*/B04.tif"))
    same = repo.catalog.parent / "sentinel-2-l2a" / href.parent.name / href.name
    with rasterio.open(href) as a, rasterio.open(same) as b:
        assert a.transform.c == x0 and a.transform.f == y0
        np.testing.assert_array_equal(a.read(), b.read())
    tile = Tile(Zone(33), TILE_M, 4, 46)
    assert (tile.bounds.left, tile.bounds.top) == (x0, y0) and tile.id == "utm33n-109800-4-46"


# --- clouds -------------------------------------------------------------------------------------------------


def test_s2_cloud_cover_and_scl_codes(repo: sample.SampleRepository) -> None:
    lo, hi = repo.cloud_cover
    fractions = []
    for item in _items(str(repo.catalog), "sentinel-2-l2a"):
        scl = _read(item, "scl")
        assert set(np.unique(scl).tolist()) <= set(SCL_CODES) - {0}
        cloudy = float(np.isin(scl, (8, 9, 10)).mean())
        assert lo - 0.01 <= cloudy <= hi + 0.01, (item.id, cloudy)
        assert item.properties["eo:cloud_cover"] == pytest.approx(100 * cloudy, abs=0.01)
        fractions.append(cloudy)
    assert 0.30 <= np.mean(fractions) <= 0.50
    assert np.std(fractions) > 0.02  # random per date


def test_shadows_are_clouds_moved_by_the_sun_offset(repo: sample.SampleRepository) -> None:
    dy, dx = shadow_offset_px(10.0)
    assert 15 <= np.hypot(dy, dx) <= 25
    seen = 0
    for item in _items(str(repo.catalog), "sentinel-2-l2a")[::6]:
        scl = _read(item, "scl")
        cloud = np.isin(scl, (8, 9))
        shadow = scl == 3
        assert not (shadow & cloud).any()
        assert (shift(cloud, dy, dx) | ~shadow).all()  # every shadow pixel lies under a moved cloud pixel
        seen += int(shadow.sum())
    assert seen > 0


def test_cloud_layer_hits_its_cover_and_brightens() -> None:
    gen = np.random.default_rng(0)
    layer = cloud_layer(gen, (256, 256), 10.0, 0.4)
    assert layer.cover == pytest.approx(0.4, abs=0.005)
    refl = np.full((10, 256 * 256), 0.05, dtype=np.float32)
    apply_clouds(refl, layer, CLOUD_SPECTRUM, SHADOW_TRANSMISSION, CIRRUS_SPECTRUM)
    thick = layer.thick.ravel()
    assert 0.3 <= refl[:3, thick].mean() <= 0.8  # bright in the visible
    free = (
        (layer.alpha.ravel() == 0) & (layer.shadow_alpha.ravel() == 0) & (layer.cirrus_strength.ravel() == 0)
    )
    assert free.mean() > 0.3
    undetected = ~(layer.cloud | layer.haze) & (layer.alpha > 0)  # the thin fringe cloud masks miss
    assert undetected.any() and layer.alpha[undetected].max() < 0.05
    assert np.allclose(refl[:, free], 0.05)


def test_landsat_quality_bits(repo: sample.SampleRepository) -> None:
    lo, hi = repo.cloud_cover
    items = _items(str(repo.catalog), "landsat-c2-l2")
    for item in items:
        qa = _read(item, "qa_pixel")
        fill = qa == QA_FILL
        valid = ~fill
        cloud = (qa & QA_CLOUD) > 0
        assert not (cloud & ((qa & QA_CLEAR) > 0)).any()
        l7 = item.properties["platform"] == "landsat-7"
        assert fill.any() == l7  # SLC-off gaps only on Landsat 7
        flagged = cloud | ((qa & QA_CIRRUS) > 0)
        if not l7:
            assert lo - 0.02 <= flagged.mean() <= hi + 0.02
        assert _read(item, "red")[fill].max(initial=0) == 0
        assert np.all(_read(item, "red")[valid] > 0)


# --- phenology ----------------------------------------------------------------------------------------------


def test_crop_ndvi_peaks_then_drops_after_harvest(repo: sample.SampleRepository) -> None:
    ls = landscape(SIZE, SEED)
    units = ls.units(YEAR)
    inner = erode_classes(units, 1)
    items = _items(str(repo.catalog), "sentinel-2-l2a")
    scenes = {i.datetime.timetuple().tm_yday: _s2(i) for i in items}
    for crop, (peak, after) in CROP_CALENDAR.items():
        mask = (units == crop) & inner
        assert mask.sum() > 50, crop

        def mean_ndvi(day: int, mask: np.ndarray = mask) -> float:
            values = [
                _ndvi(refl)[mask & (scl == 4) | mask & (scl == 5)]
                for doy, (refl, scl) in scenes.items()
                if abs(doy - day) <= 10
            ]
            return float(np.concatenate(values).mean())

        assert mean_ndvi(peak) > 0.6, crop
        assert mean_ndvi(after) < 0.35, crop


def test_deciduous_forest_leaf_off_and_water_dark(repo: sample.SampleRepository) -> None:
    codes = sample.class_map(SIZE, SEED)
    broadleaf = (codes == 30) & erode_classes(codes, 1)
    water = (codes == 142) & erode_classes(codes, 1)
    summer, winter, nir_water = [], [], []
    for item in _items(str(repo.catalog), "sentinel-2-l2a"):
        refl, scl = _s2(item)
        month = item.datetime.month
        clear = np.isin(scl, (4, 5))  # snow-free, cloud-free land
        if month in (6, 7, 8):
            summer.append(_ndvi(refl)[broadleaf & clear])
        if month in (12, 1, 2):
            winter.append(_ndvi(refl)[broadleaf & clear])
        nir_water.append(refl[6][water & (scl == 6)])
    assert np.concatenate(summer).mean() > np.concatenate(winter).mean() + 0.3
    nir = np.concatenate(nir_water)
    assert nir.mean() < 0.05 and np.percentile(nir, 95) < 0.08


def test_valid_reflectance_is_realistic(repo: sample.SampleRepository) -> None:
    item = _items(str(repo.catalog), "sentinel-2-l2a")[36]  # early July
    refl, scl = _s2(item)
    clear = refl[:, _clear(scl)]
    assert clear.min() >= 0.0 and np.percentile(clear, 99.5) < 0.6
    assert refl[:, np.isin(scl, (9,))][:3].mean() > 0.3  # thick clouds are bright


def test_landsat_sees_the_same_surface_as_sentinel2(repo: sample.SampleRepository) -> None:
    """Landsat DN * 2.75e-5 - 0.2 on common days of year matches the S2 surface of the same class."""
    codes = sample.class_map(SIZE, SEED)
    m = repo.grid.landsat_size
    pad = 3 * m - SIZE
    blocks = np.pad(codes, ((0, pad), (0, pad)), mode="edge").reshape(m, 3, m, 3)
    pure = blocks.min(axis=(1, 3)) == blocks.max(axis=(1, 3))
    block_code = blocks[:, 0, :, 0]
    s2_by_doy = {i.datetime.timetuple().tm_yday: i for i in _items(str(repo.catalog), "sentinel-2-l2a")}
    s2_band = dict(zip(LANDSAT_BANDS, (0, 1, 2, 7, 8, 9), strict=True))
    compared = 0
    for item in _items(str(repo.catalog), "landsat-c2-l2"):
        doy = item.datetime.timetuple().tm_yday
        if doy not in s2_by_doy or not 100 <= doy <= 300:  # common dates, no snow
            continue
        qa = _read(item, "qa_pixel")
        ok = ((qa & QA_CLEAR) > 0) & ((qa & (QA_SHADOW | QA_FILL | QA_SNOW | QA_CIRRUS)) == 0)
        refl_s2, scl = _s2(s2_by_doy[doy])
        s2_blocks = np.pad(refl_s2, ((0, 0), (0, pad), (0, pad)), mode="edge").reshape(10, m, 3, m, 3)
        s2_clear = np.pad(_clear(scl), ((0, pad), (0, pad)), mode="edge").reshape(m, 3, m, 3).all(axis=(1, 3))
        for code in (20, 30, 60, 70, 120, 130, 142):
            mask = ok & pure & s2_clear & (block_code == code)  # the same 30 m blocks, clear in both
            if mask.sum() < 10:
                continue
            for key, b in s2_band.items():
                rb = item.assets[key].extra_fields["raster:bands"][0]
                landsat = _read(item, key)[mask].astype(np.float64) * rb["scale"] + rb["offset"]
                s2 = s2_blocks[b].mean(axis=(1, 3))[mask]
                # aerosol residuals differ per date (<= 0.012 in blue), OLI/ETM+ band passes by a few %
                assert abs(landsat.mean() - s2.mean()) < 0.02 + 0.05 * s2.mean(), (item.id, code, key)
            compared += 1
    assert compared >= 8


# --- kernels against their numpy reference ------------------------------------------------------------------


def test_surface_kernel_reproduces_the_phenology_model() -> None:
    ls = landscape(64, 5)
    shape = ls.codes.shape
    neutral = PixelTraits(
        shift=np.zeros(shape, np.int16), vigor=np.ones(shape, np.float32), bright=np.ones(shape, np.float32),
        soil=np.ones(shape, np.float32), turbidity=np.zeros(shape, np.float32),
        offset=np.zeros((10, *shape), np.float32), patchiness=np.ones(shape, np.float32),
    )  # fmt: skip
    model = SurfaceModel(ls, YEAR, TraitStore.of(neutral))  # no mixed edge pixels
    units = ls.units(YEAR).ravel()
    for doy in (45, 180, 300):
        got = model.reflectance(doy, snow=False)
        for u in np.unique(units):
            want = phenology.reflectance(Unit(u), doy)
            assert np.allclose(got[:, units == u], want[:, None], atol=1e-5), (Unit(u), doy)


def test_observe_kernel_matches_numpy() -> None:
    """Also on a strip of a grid larger than its noise bank: pixel i reads bank[(start + i + shift) mod M]."""
    gen = np.random.default_rng(3)
    shape, nb = (32, 32), 10
    npx = shape[0] * shape[1]
    for start, bank_size in ((0, npx), (5000, 700)):
        refl = gen.uniform(0.0, 0.5, (nb, npx)).astype(np.float32)
        bank = gen.standard_normal((nb, bank_size)).astype(np.float32)
        shifts = gen.integers(0, 10 * npx, nb).astype(np.int64)
        gain = (1 + 0.01 * gen.standard_normal(nb)).astype(np.float32)
        haze = gen.uniform(0, 0.01, npx).astype(np.float32)
        hspec = np.linspace(1, 0.1, nb).astype(np.float32)
        layer = cloud_layer(gen, shape, 10.0, 0.4)
        dn = np.empty((nb, npx), np.uint16)
        cls = np.empty(npx, np.uint8)
        expected = refl.copy()
        idx = np.arange(npx)
        for b in range(nb):
            noise = bank[b, (start + idx + shifts[b]) % bank_size]
            expected[b] = (
                expected[b] * gain[b] + (0.003 + 0.03 * np.abs(expected[b])) * noise + haze * hspec[b]
            )
        expected_classes = surface_classes(expected, 1, 2, 6, 8)
        apply_clouds(expected, layer, CLOUD_SPECTRUM, SHADOW_TRANSMISSION, CIRRUS_SPECTRUM)
        observe_kernel(refl, bank, shifts, start, gain, haze, hspec, layer.alpha.ravel(),
                       layer.shadow_alpha.ravel(), SHADOW_TRANSMISSION, layer.cirrus_strength.ravel(),
                       CIRRUS_SPECTRUM, CLOUD_SPECTRUM, 1e4, 0.0, np.array([1, 2, 6, 8]), dn, cls)  # fmt: skip
        assert np.abs(dn.astype(np.int32) - np.clip(np.rint(expected * 1e4), 1, 65535)).max() <= 1
        assert (cls == expected_classes).mean() > 0.999  # (float rounding at the thresholds)


# --- streaming: strips give what one piece gives ------------------------------------------------------------


def test_streamed_quantiles_equal_numpy() -> None:
    gen = np.random.default_rng(0)
    for n in (2, 17, 1000, 4099):
        values = gen.standard_normal(n).astype(np.float32)
        values[: n // 4] = np.round(values[: n // 4], 1)  # ties
        parts = np.array_split(values, 4)
        for q in (0.0, 0.37, 0.5, 0.63, 0.7, float(gen.random()), 1.0):
            got = quantile(lambda parts=parts: iter(parts), q)
            assert type(got) is np.float32 and got == np.quantile(values, q), (n, q)
        got = quantiles(lambda parts=parts: iter(parts), [0.70, 0.63])
        assert got.dtype == np.float64 and np.array_equal(got, np.quantile(values, [0.70, 0.63]))


def test_landscape_and_scenes_do_not_depend_on_the_strips(monkeypatch: pytest.MonkeyPatch) -> None:
    """A grid computed in strips of 7 rows (traits on disk) equals the grid computed in one piece."""
    size, seed = 96, 11
    whole = landscape(size, seed)
    whole_pairs = boundary_pairs(whole)
    model = SurfaceModel(whole, YEAR)
    s2_acq, ls_acq = s2_acquisitions(YEAR)[40], landsat_acquisitions(YEAR)[1]  # summer; a Landsat 7 date
    s2_whole = render_s2(model, s2_acq, seed, (0.3, 0.5))
    ls_whole = render_landsat(model, ls_acq, seed, (0.3, 0.5))

    monkeypatch.setattr(_strips, "STRIP_PIXELS", 7 * size)
    landscape.cache_clear()
    try:
        ls = landscape(size, seed)
        for a, b in zip((ls.codes, ls.unit, ls.field, ls.elevation), (whole.codes, whole.unit, whole.field,
                                                                       whole.elevation), strict=True):  # fmt: skip
            assert np.array_equal(a, b)
        for a, b in zip(boundary_pairs(ls), whole_pairs, strict=True):
            assert np.array_equal(a, b)
        with tempfile.TemporaryDirectory() as work:
            streamed = SurfaceModel(ls, YEAR, pixel_traits(ls, Path(work)))
            s2 = S2Scene(streamed, s2_acq, seed, (0.3, 0.5))
            parts = [s2.rows(r0, r1) for r0, r1 in _strips.strips(size, size)]
            assert len(parts) > 5
            assert np.array_equal(np.concatenate([p[0] for p in parts], axis=1), s2_whole.data)
            assert np.array_equal(np.concatenate([p[1] for p in parts]), s2_whole.quality)
            assert (s2.stats, s2.cover) == (s2_whole.stats, s2_whole.cover)
            lsat = LandsatScene(streamed, ls_acq, seed, (0.3, 0.5))
            parts = [lsat.rows(r0, r1) for r0, r1 in _strips.strips(lsat.shape[0], 3 * size)]
            assert len(parts) > 5
            assert np.array_equal(np.concatenate([p[0] for p in parts], axis=1), ls_whole.data)
            assert np.array_equal(np.concatenate([p[1] for p in parts]), ls_whole.quality)
            assert (lsat.stats, lsat.cover) == (ls_whole.stats, ls_whole.cover)
    finally:
        landscape.cache_clear()


def test_large_fields_by_rows_match_the_whole_field(monkeypatch: pytest.MonkeyPatch) -> None:
    """A field above FIELD_PIXELS is computed by rows, normalised with statistics gathered over chunks."""
    for scale, octaves in ((12.0, 2), (2.5, 1), (20.0, 2)):
        whole = Field(np.random.default_rng(4), (300, 260), scale, octaves=octaves).rows(0, 300)
        monkeypatch.setattr(_noise, "FIELD_PIXELS", 4000)
        field = Field(np.random.default_rng(4), (300, 260), scale, octaves=octaves)
        by_rows = np.concatenate([field.rows(r, r + 41) for r in range(0, 300, 41)])
        monkeypatch.undo()
        assert np.allclose(by_rows, whole, atol=1e-5), scale
        assert abs(float(by_rows.mean())) < 1e-5 and abs(float(by_rows.std()) - float(whole.std())) < 1e-5


def test_scenes_read_the_noise_bank_round_again_on_large_grids(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above BANK_PIXELS the noise bank is read modulo its size: the scene renders, realistic, seeded."""
    ls = landscape(SIZE, SEED)
    acq = s2_acquisitions(YEAR)[36]
    full = render_s2(SurfaceModel(ls, YEAR), acq, SEED, (0.3, 0.5))
    monkeypatch.setattr(sensors, "BANK_PIXELS", 1000)
    small = render_s2(SurfaceModel(ls, YEAR), acq, SEED, (0.3, 0.5))
    again = render_s2(SurfaceModel(ls, YEAR), acq, SEED, (0.3, 0.5))
    assert np.array_equal(small.data, again.data)
    assert np.array_equal(small.quality == 9, full.quality == 9)  # the clouds do not depend on the noise
    diff = small.data.astype(np.int32) - full.data.astype(np.int32)
    assert diff.any() and np.abs(diff.mean(axis=(1, 2))).max() < 5  # other noise draws, no bias (DN)


# --- catalogue and files ------------------------------------------------------------------------------------


def test_catalogue_items_and_assets(repo: sample.SampleRepository) -> None:
    cat = pystac.Catalog.from_file(str(repo.catalog))
    assert {c.id for c in cat.get_children()} == {"sentinel-2-l2a", "landsat-c2-l2"}
    s2 = _items(str(repo.catalog), "sentinel-2-l2a")
    ls = _items(str(repo.catalog), "landsat-c2-l2")
    assert len(s2) == 73 and len(ls) == 46
    assert {i.datetime.year for i in s2} == {YEAR} and {i.datetime.year for i in ls} == {LANDSAT_YEAR}
    assert {i.properties["platform"] for i in ls} == {"landsat-7", "landsat-8"}
    assert s2[0].id == f"S2A_33TVM_{YEAR}0101_0_L2A"
    for item in s2 + ls:
        raw = json.loads(Path(item.get_self_href()).read_text())
        assert raw["properties"]["proj:epsg"] == repo.epsg  # as the real items (pystac reads it as proj:code)
        for key, asset in raw["assets"].items():
            assert not asset["href"].startswith(("/", "http")), asset["href"]
            assert Path(item.assets[key].get_absolute_href()).is_file()
    assert set(s2[0].assets) == {*S2_KEYS, "scl"}
    assert set(ls[0].assets) == {*LANDSAT_BANDS, "qa_pixel"}
    rb = s2[0].assets["red"].extra_fields["raster:bands"][0]
    assert (rb["scale"], rb["offset"], rb["nodata"], rb["data_type"]) == (0.0001, 0, 0, "uint16")
    rb = ls[0].assets["red"].extra_fields["raster:bands"][0]
    assert (rb["scale"], rb["offset"], rb["nodata"]) == (2.75e-05, -0.2, 0)
    coll = cat.get_child("sentinel-2-l2a")
    assert coll.extent.temporal.intervals[0][0] == s2[0].datetime


def test_files_are_valid_cogs(repo: sample.SampleRepository) -> None:
    s2 = _items(str(repo.catalog), "sentinel-2-l2a")[10]
    ls = _items(str(repo.catalog), "landsat-c2-l2")[10]
    paths = [Path(s2.assets[k].get_absolute_href()) for k in ("blue", "swir22", "scl")]
    paths += [Path(ls.assets[k].get_absolute_href()) for k in ("nir08", "qa_pixel")]
    paths.append(repo.truth_map)
    for p in paths:
        valid, errors, _ = cog_validate(str(p), quiet=True)
        assert valid, (p, errors)
    with rasterio.open(repo.truth_map) as src:
        assert src.dtypes[0] == "uint8" and src.nodata == 0 and src.crs.to_epsg() == repo.epsg
        assert src.colormap(1)[80] == colormap()[80]
    with rasterio.open(ls.assets["red"].get_absolute_href()) as src:
        assert src.width == repo.grid.landsat_size and src.transform.a == 30.0


# --- training samples ---------------------------------------------------------------------------------------


def test_training_points_match_the_truth(repo: sample.SampleRepository) -> None:
    points = gpd.read_file(repo.training_points, layer="training_points")
    assert points.crs.to_epsg() == repo.epsg
    with rasterio.open(repo.truth_map) as src:
        truth = src.read(1)
        rows, cols = rasterio.transform.rowcol(src.transform, points.geometry.x, points.geometry.y)
    assert np.array_equal(truth[np.asarray(rows), np.asarray(cols)], points["class_code"].to_numpy())
    counts = points["class_code"].value_counts()
    assert set(counts.index) == set(np.unique(truth).tolist())
    assert counts.max() <= 250


def test_training_polygons_are_homogeneous(repo: sample.SampleRepository) -> None:
    polygons = gpd.read_file(repo.training_polygons)
    assert polygons.crs.to_epsg() == 4326
    assert len(polygons) >= 50 and polygons["class_code"].nunique() >= 8
    utm = polygons.to_crs(repo.epsg)
    with rasterio.open(repo.truth_map) as src:
        truth = src.read(1)
        burned = rasterize(
            ((g.buffer(-1.0), int(c)) for g, c in zip(utm.geometry, utm["class_code"], strict=True)),
            out_shape=truth.shape, transform=src.transform, fill=0, dtype="uint8",
        )  # fmt: skip
    inside = burned > 0
    assert inside.sum() >= 4 * len(polygons)
    assert np.array_equal(burned[inside], truth[inside])

"""Tests of the optical masks and composites (`hrlc.chain.optical`) on small seeded synthetic arrays."""

from __future__ import annotations

import itertools
import json
import warnings
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from hrlc.chain.optical import (
    SCL_CLOUD,
    SCL_NODATA,
    SCL_SHADOW,
    _sorting_network,
    cloud_distance_score,
    composite,
    composite_bap,
    composite_median,
    period_index,
    period_mid_doy,
    qa_pixel_mask,
    scl_mask,
)


def _disk_count(r: int) -> int:
    return sum(1 for dy in range(-r, r + 1) for dx in range(-r, r + 1) if dy * dy + dx * dx <= r * r)


def _nanmedian(a: np.ndarray, axis: int = 0) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices
        return np.nanmedian(a, axis=axis)


def _reference_median(
    data: np.ndarray, invalid: np.ndarray, period: np.ndarray, n_periods: int
) -> np.ndarray:
    """nanmedian (float64) of the valid observations, per period; NaN where none."""
    f = np.where(invalid[:, None], np.nan, data.astype(np.float64))
    return np.stack([_nanmedian(f[period == p]) for p in range(n_periods)])


# ------------------------------------------------------------------------------------------------
# masks
# ------------------------------------------------------------------------------------------------
def test_scl_mask_flags_exactly_the_documented_codes() -> None:
    codes = np.arange(0, 13, dtype=np.uint8).reshape(1, 13)
    expected = set(SCL_NODATA + SCL_SHADOW + SCL_CLOUD)
    assert expected == {0, 1, 3, 8, 9, 10}
    m = scl_mask(codes)
    assert m.dtype == bool and m.shape == codes.shape
    assert {int(c) for c in codes[m]} == expected
    m_snow = scl_mask(codes, snow=True)
    assert {int(c) for c in codes[m_snow]} == expected | {11}
    # 2 (dark area / topographic shadow) and 7 (unclassified) stay valid
    assert not m[0, 2] and not m[0, 7]
    # (t, y, x) works the same
    m3 = scl_mask(np.stack([codes, codes[:, ::-1]]))
    assert m3.shape == (2, 1, 13)
    np.testing.assert_array_equal(m3[1], m[:, ::-1])


def test_qa_pixel_mask_flags_exactly_the_documented_bits() -> None:
    single = np.array([[0] + [1 << b for b in range(16)]], dtype=np.uint16)
    m = qa_pixel_mask(single)
    flagged = {b for b in range(16) if m[0, b + 1]}
    assert flagged == {0, 1, 2, 3, 4}
    assert not m[0, 0]
    m_snow = qa_pixel_mask(single, snow=True)
    assert {b for b in range(16) if m_snow[0, b + 1]} == {0, 1, 2, 3, 4, 5}
    # typical real values: clear land (21824), clear water (21952), cloud (22280), shadow (23888), fill (1)
    real = np.array([[21824, 21952, 22280, 23888, 1, 30048]], dtype=np.uint16)
    np.testing.assert_array_equal(qa_pixel_mask(real), [[False, False, True, True, True, False]])
    np.testing.assert_array_equal(qa_pixel_mask(real, snow=True)[0, 5], True)  # 30048 has the snow bit


def test_scl_dilation_grows_clouds_by_a_disk_but_not_nodata() -> None:
    scl = np.full((2, 25, 25), 4, dtype=np.uint8)
    scl[0, 12, 12] = 9  # one cloud pixel
    scl[0, :, :3] = 0  # nodata strip on the left
    scl[1, 5, 20] = 3  # one shadow pixel on the second date only
    m = scl_mask(scl, dilate_px=3)
    cloud_area = m[0, :, 3:]
    assert cloud_area.sum() == _disk_count(3)  # 29 pixels: the Euclidean disk of radius 3
    assert m[0, 12, 15] and m[0, 15, 12] and not m[0, 15, 15] and not m[0, 12, 16]
    # nodata strip is invalid but not grown
    assert m[0, :, :3].all() and not m[0, 0, 3]
    # per-slice: the second date only has its own shadow, dilated
    assert m[1].sum() == _disk_count(3) and m[1, 5, 23] and not m[1, 12, 12]
    # no dilation by default
    assert scl_mask(scl)[0, :, 3:].sum() == 1


def test_qa_dilation_grows_cloud_and_shadow_but_not_fill_or_snow() -> None:
    qa = np.full((30, 30), 1 << 6, dtype=np.uint16)  # clear
    qa[10, 10] = 1 << 3  # cloud
    qa[20, 20] = 1 << 4  # shadow
    qa[:, 0] = 1  # fill column
    qa[0, 15] = 1 << 5  # snow
    m = qa_pixel_mask(qa, snow=True, dilate_px=2)
    assert m[:, 0].all() and not m[5, 1]  # fill flagged, not grown
    assert m[0, 15] and not m[1, 15] and not m[0, 14]  # snow flagged, not grown
    assert m[10, 12] and m[8, 10] and not m[10, 13] and not m[12, 12]
    assert m[20, 18] and m[22, 20] and not m[20, 17]
    assert m[1:, 1:].sum() == 2 * _disk_count(2)  # two disks, nothing else (snow is on row 0)


# ------------------------------------------------------------------------------------------------
# periods
# ------------------------------------------------------------------------------------------------
def test_period_index_months_and_seasons() -> None:
    times = np.array(
        [
            "2020-12-31T23:59",
            "2021-01-01T00:00",
            "2021-03-31T12:00",
            "2021-04-01",
            "2021-06-30",
            "2021-07-01",
            "2021-12-31T23:59:59",
            "2022-01-01",
            "NaT",
        ],
        dtype="datetime64[ns]",
    )
    month = period_index(times, 2021, "month")
    assert month.dtype == np.int64
    np.testing.assert_array_equal(month, [-1, 0, 2, 3, 5, 6, 11, -1, -1])
    np.testing.assert_array_equal(period_index(times, 2021, "season"), [-1, 0, 0, 1, 1, 2, 3, -1, -1])
    np.testing.assert_array_equal(period_index(times, 2020, "month"), [11] + [-1] * 8)
    # other units and string input
    np.testing.assert_array_equal(
        period_index(np.array(["2021-05-17", "2021-11-02"], dtype="datetime64[D]"), 2021, "season"), [1, 3]
    )
    np.testing.assert_array_equal(period_index(["2021-02-03"], 2021, "month"), [1])
    with pytest.raises(ValueError):
        period_index(times, 2021, "week")


def test_period_mid_doy() -> None:
    np.testing.assert_allclose(period_mid_doy(2021, "month")[:2], [16.0, 45.5])
    np.testing.assert_allclose(period_mid_doy(2021, "season"), [45.5, 136.0, 227.5, 319.5])


# ------------------------------------------------------------------------------------------------
# median
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", range(1, 11))
def test_sorting_network_sorts_all_zero_one_inputs(n: int) -> None:
    x = np.array(list(itertools.product([0, 1], repeat=n)), dtype=np.uint8).T.copy()
    for i, j in _sorting_network(n):
        lo, hi = np.minimum(x[i], x[j]), np.maximum(x[i], x[j])
        x[i], x[j] = lo, hi
    assert (np.diff(x.astype(int), axis=0) >= 0).all()


def test_composite_median_float_equals_nanmedian() -> None:
    rng = np.random.default_rng(1)
    t, b, ny, nx = 14, 3, 9, 600  # nx > the kernel's column block, to cross a block edge
    data = rng.uniform(0.01, 0.6, size=(t, b, ny, nx)).astype(np.float32)
    invalid = rng.random((t, ny, nx)) < 0.5
    period = np.array([0, 0, 0, 0, 0, 1, 1, 1, -1, 2, 2, 2, 2, 2])
    data[8] = 5.0  # skipped date: would pull medians if used
    comp, count = composite_median(data, invalid, period, 4, nodata=np.nan)
    assert comp.shape == (4, b, ny, nx) and comp.dtype == np.float32
    assert count.shape == (4, ny, nx) and count.dtype == np.uint16
    ref = _reference_median(data, invalid, period, 4)
    np.testing.assert_allclose(comp, ref.astype(np.float32), rtol=1e-6, equal_nan=True)
    for p in range(3):
        np.testing.assert_array_equal(count[p], (~invalid[period == p]).sum(axis=0))
    assert (count[3] == 0).all() and np.isnan(comp[3]).all()  # a period without dates


def test_composite_median_uint16_rounds_half_up_and_handles_extremes() -> None:
    rng = np.random.default_rng(2)
    t, b, ny, nx = 40, 2, 6, 50  # 30 dates in period 0: sorting network of a non power of two > 8
    data = rng.integers(1, 65536, size=(t, b, ny, nx), dtype=np.uint16)
    data[:, :, 0, :5] = 65535  # valid maxima tie with the kernel's sentinel
    invalid = rng.random((t, ny, nx)) < 0.4
    period = np.array([0] * 30 + [1] * 7 + [-1] * 3)
    comp, count = composite_median(data, invalid, period, 2)
    ref = _reference_median(data, invalid, period, 2)
    expected = np.where(np.isnan(ref), 0, np.floor(ref + 0.5)).astype(np.uint16)
    np.testing.assert_array_equal(comp, expected)
    np.testing.assert_array_equal(count[0], (~invalid[:30]).sum(axis=0))


def test_composite_median_even_count_rounding_explicit() -> None:
    data = np.array([1, 2, 7, 8], dtype=np.uint16).reshape(4, 1, 1, 1)
    comp, count = composite_median(data, np.zeros((4, 1, 1), bool), np.array([0, 0, 1, 1]), 2)
    assert comp.ravel().tolist() == [2, 8]  # 1.5 -> 2, 7.5 -> 8
    assert count.ravel().tolist() == [2, 2]
    neg = np.array([-3, -4, 5, 6, 7], dtype=np.int16).reshape(5, 1, 1, 1)
    comp, _ = composite_median(neg, np.zeros((5, 1, 1), bool), np.array([0, 0, 1, 1, 1]), 2, nodata=-9999)
    assert comp.ravel().tolist() == [-3, 6]  # -3.5 rounds half up to -3
    f = np.array([1, 2], dtype=np.float32).reshape(2, 1, 1, 1)
    assert composite_median(f, np.zeros((2, 1, 1), bool), np.array([0, 0]), 1)[0].item() == 1.5


def test_composite_median_nodata_in_band0_is_invalid_and_fills_empty_pixels() -> None:
    data = np.full((3, 2, 2, 2), 100, dtype=np.uint16)
    data[0, :, 0, 0] = 500
    data[1, 0, 0, 0] = 0  # nodata in band 0: the whole observation is dropped
    data[1, 1, 0, 0] = 9000
    invalid = np.zeros((3, 2, 2), bool)
    invalid[:, 1, 1] = True  # never a valid observation
    comp, count = composite_median(data, invalid, np.array([0, 0, 0]), 1, nodata=0)
    assert count[0].tolist() == [[2, 3], [3, 0]]
    assert comp[0, :, 0, 0].tolist() == [300, 300]  # median of 500 and 100 in both bands, 9000 unused
    assert comp[0, :, 1, 1].tolist() == [0, 0]
    comp, count = composite_median(data, invalid, np.array([0, 0, 0]), 1, nodata=65535)
    assert comp[0, :, 1, 1].tolist() == [65535, 65535] and count[0, 0, 0] == 3


def test_composite_median_rejects_bad_input() -> None:
    d = np.zeros((2, 1, 2, 2), np.uint16)
    inv = np.zeros((2, 2, 2), bool)
    with pytest.raises(ValueError):
        composite_median(d, inv[:1], np.array([0, 0]), 1)
    with pytest.raises(ValueError):
        composite_median(d, inv, np.array([0, 3]), 2)
    with pytest.raises(ValueError):
        composite_median(d, inv, np.array([0, 0]), 1, nodata=-1)
    with pytest.raises(TypeError):
        composite_median(d.astype(np.int64), inv, np.array([0, 0]), 1)


# ------------------------------------------------------------------------------------------------
# the key property: composites only ever use clear values
# ------------------------------------------------------------------------------------------------
def _cloudy_stack(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Clear values in 1000..3000, clouds 9000..12000 (bright), shadows 1..60 (dark), with the SCL mask."""
    rng = np.random.default_rng(seed)
    t, b, ny, nx = 24, 4, 20, 30
    data = rng.integers(1000, 3001, size=(t, b, ny, nx), dtype=np.uint16)
    scl = rng.choice(
        np.array([4, 5, 6, 9, 8, 3, 10], np.uint8), size=(t, ny, nx), p=[0.1, 0.1, 0.05, 0.3, 0.2, 0.15, 0.1]
    )
    cloud = np.isin(scl, (8, 9, 10))
    shadow = scl == 3
    data[:, :][np.broadcast_to(cloud[:, None], data.shape)] = rng.integers(9000, 12001, size=cloud.sum() * b)
    data[:, :][np.broadcast_to(shadow[:, None], data.shape)] = rng.integers(1, 61, size=shadow.sum() * b)
    times = np.datetime64("2021-01-03") + np.arange(t) * np.timedelta64(15, "D")
    return data, scl_mask(scl), period_index(times, 2021, "month"), times


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("method", ["median", "bap"])
def test_composite_stays_within_the_clear_values(seed: int, method: str) -> None:
    data, invalid, period, times = _cloudy_stack(seed)
    doy = (times - times.astype("datetime64[Y]")).astype("timedelta64[D]").astype(int) + 1
    if method == "median":
        comp, count = composite_median(data, invalid, period, 12)
    else:
        comp, count, score = composite_bap(data, invalid, period, 12, doy, period_mid_doy(2021, "month"))
        assert score.dtype == np.float32 and ((score > 0) == (count > 0)).all()
    n_checked = 0
    for p in range(12):
        sel = period == p
        clear = np.where(invalid[sel][:, None], np.nan, data[sel].astype(float))  # (k, b, y, x)
        has_clear = (~invalid[sel]).any(axis=0)
        np.testing.assert_array_equal(count[p], (~invalid[sel]).sum(axis=0))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lo, hi = np.nanmin(clear, axis=0), np.nanmax(clear, axis=0)
        c = comp[p].astype(float)
        assert ((c >= lo) & (c <= hi))[:, has_clear].all()
        assert (comp[p][:, ~has_clear] == 0).all()
        if method == "bap":  # one whole clear observation: all bands of the same date
            same = (clear == c[None]).all(axis=1)  # (k, y, x)
            assert same.any(axis=0)[has_clear].all()
        n_checked += int(has_clear.sum())
    assert n_checked > 1000  # the test is not vacuous
    assert comp[comp > 0].min() >= 1000 and comp.max() <= 3000


# ------------------------------------------------------------------------------------------------
# best-available-pixel
# ------------------------------------------------------------------------------------------------
def test_bap_prefers_the_date_closest_to_the_target_doy() -> None:
    doy = np.array([10.0, 30.0, 45.0, 70.0, 80.0])
    data = np.stack([np.full((2, 3, 3), v, np.uint16) for v in (100, 200, 300, 400, 500)])
    period = np.array([0, 0, 0, 1, 1])
    target = np.array([40.0, 95.0])
    # no clouds at all: equal (full) cloud terms, same blue -> the DOY term decides
    data[:, 0] = 700
    comp, count, score = composite_bap(data, np.zeros((5, 3, 3), bool), period, 2, doy, target)
    assert (comp[0, 1] == 300).all() and (comp[1, 1] == 500).all()
    assert (count == [[[3]], [[2]]]).all()
    expected = np.exp(-0.5 * (5 / 15) ** 2) + 1.0 + 0.5 * (1 - 700 / 2000)
    assert score[0, 0, 0] == pytest.approx(expected, rel=1e-6)
    # the best date is cloudy at the centre pixel only: the next closest clear date (30, not 10) wins there
    invalid = np.zeros((5, 3, 3), bool)
    invalid[2, 1, 1] = True
    comp, count, _ = composite_bap(data, invalid, period, 2, doy, target, w_cloud=0)
    assert comp[0, 1, 1, 1] == 200 and count[0, 1, 1] == 2
    assert comp[0, 1, 0, 0] == 300 and count[0, 0, 0] == 3


def test_bap_prefers_observations_far_from_clouds() -> None:
    doy = np.array([20.0, 40.0])  # equally far from the target 30
    data = np.stack([np.full((1, 21, 21), 1000, np.uint16), np.full((1, 21, 21), 2000, np.uint16)])
    invalid = np.zeros((2, 21, 21), bool)
    invalid[0, 10, 12] = True  # cloud two pixels away from the centre on date 0
    invalid[1, 0, 0] = True  # cloud in the far corner on date 1
    comp, _, score = composite_bap(data, invalid, np.array([0, 0]), 1, doy, np.array([30.0]), blue_band=None)
    assert comp[0, 0, 10, 10] == 2000  # far from clouds wins
    assert comp[0, 0, 1, 1] == 1000  # next to the corner cloud of date 1: date 0 wins
    assert comp[0, 0, 20, 20] == 1000  # far from both clouds: equal scores, the earlier date wins
    assert comp[0, 0, 10, 12] == 2000  # cloudy on date 0: only date 1 is valid
    g = np.exp(-0.5 * (10 / 15) ** 2)
    assert score[0, 10, 10] == pytest.approx(g + 1.0, rel=1e-6)
    assert score[0, 10, 11] == pytest.approx(g + 1.0, rel=1e-6)


def test_cloud_distance_score_is_the_distance_to_the_nearest_cloud_in_tenths_of_the_reach() -> None:
    invalid = np.zeros((2, 31, 31), bool)
    invalid[0, 15, 15] = True
    score = cloud_distance_score(invalid, 10.0)
    assert score.dtype == np.float32 and score.shape == invalid.shape
    assert score[0, 15, 15] == 0.0  # the cloud itself
    assert score[0, 15, 18] == pytest.approx(0.3)  # 3 px away
    assert score[0, 19, 18] == pytest.approx(0.5)  # 3-4-5: 5 px away
    assert (
        score[0, 15, 25] == 1.0 and score[0, 15, 27] == 1.0 and score[0, 0, 0] == 1.0
    )  # >= 10 px: saturated
    assert (score[1] == 1.0).all()  # a date without clouds
    assert (cloud_distance_score(invalid, 0.0) == 1.0).all()  # term disabled


def _bap_in_blocks(
    data: np.ndarray, invalid: np.ndarray, doy: np.ndarray, block: int, halo: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One period's BAP composited block by block, the cloud term computed on each block grown by `halo`
    pixels (None: the block alone, as `composite_bap` would without `cloud_score`)."""
    t, nb, ny, nx = data.shape
    comp, count, score = (
        np.empty((1, nb, ny, nx), data.dtype),
        np.empty((1, ny, nx), np.uint16),
        np.empty((1, ny, nx), np.float32),
    )
    for y0, x0 in itertools.product(range(0, ny, block), range(0, nx, block)):
        y1, x1 = min(y0 + block, ny), min(x0 + block, nx)
        cloud = None
        if halo is not None:
            gy0, gx0 = max(y0 - halo, 0), max(x0 - halo, 0)
            grown = cloud_distance_score(invalid[:, gy0 : y1 + halo, gx0 : x1 + halo], 10.0)
            cloud = grown[:, y0 - gy0 : y1 - gy0, x0 - gx0 : x1 - gx0]
        c, n, s = composite_bap(
            data[:, :, y0:y1, x0:x1],
            invalid[:, y0:y1, x0:x1],
            np.zeros(t, int),
            1,
            doy,
            np.array([30.0]),
            cloud_score=cloud,
        )
        comp[..., y0:y1, x0:x1], count[..., y0:y1, x0:x1], score[..., y0:y1, x0:x1] = c, n, s
    return comp, count, score


def test_bap_in_blocks_with_a_cloud_halo_is_the_bap_of_the_whole_image() -> None:
    rng = np.random.default_rng(11)
    t, ny, nx = 6, 70, 90
    data = rng.integers(200, 3000, (t, 4, ny, nx), dtype=np.uint16)
    scl = np.where(rng.random((t, ny, nx)) < 0.01, 9, 4).astype(np.uint8)  # scattered clouds...
    invalid = scl_mask(scl, dilate_px=2)  # ...grown into small blobs
    doy = np.array([5.0, 18.0, 27.0, 33.0, 41.0, 55.0])
    whole = composite_bap(data, invalid, np.zeros(t, int), 1, doy, np.array([30.0]))

    blocks = _bap_in_blocks(data, invalid, doy, block=32, halo=10)  # halo = ceil(cloud_distance_px)
    for got, want in zip(blocks, whole, strict=True):
        np.testing.assert_array_equal(got, want)
    # without the halo a cloud across a block edge is not seen: the scores (and picks) differ along the seams
    seams = _bap_in_blocks(data, invalid, doy, block=32, halo=None)
    assert not np.array_equal(seams[2], whole[2])


def test_bap_haze_term_prefers_darker_blue() -> None:
    doy = np.array([20.0, 40.0])
    data = np.zeros((2, 3, 2, 2), np.uint16)
    data[0] = [[[1500]], [[700]], [[3000]]]  # hazy: bright blue
    data[1] = [[[400]], [[700]], [[3000]]]
    comp, _, _ = composite_bap(data, np.zeros((2, 2, 2), bool), np.array([0, 0]), 1, doy, np.array([30.0]))
    assert (comp[0, 0] == 400).all()
    # with the blue band elsewhere and the haze term disabled, ties go to the earlier date
    comp, _, _ = composite_bap(
        data, np.zeros((2, 2, 2), bool), np.array([0, 0]), 1, doy, np.array([30.0]), blue_band=None
    )
    assert (comp[0, 0] == 1500).all()


def test_bap_empty_pixels_get_nodata_and_zero_score() -> None:
    data = np.full((2, 2, 2, 2), 500, np.uint16)
    invalid = np.ones((2, 2, 2), bool)
    invalid[1, 0, 0] = False
    comp, count, score = composite_bap(
        data, invalid, np.array([0, 0]), 2, np.array([5, 9]), np.array([15.0, 45.0]), nodata=1
    )
    assert comp[0, :, 0, 0].tolist() == [500, 500] and count[0, 0, 0] == 1 and score[0, 0, 0] > 0
    assert (comp[0, :, 1, 1] == 1).all() and count[0, 1, 1] == 0 and score[0, 1, 1] == 0
    assert (comp[1] == 1).all() and (count[1] == 0).all() and (score[1] == 0).all()


# ------------------------------------------------------------------------------------------------
# xarray front end
# ------------------------------------------------------------------------------------------------
def _dataset(chunked: bool) -> tuple[xr.Dataset, xr.DataArray]:
    rng = np.random.default_rng(5)
    times = np.datetime64("2021-01-02") + np.arange(0, 370, 10) * np.timedelta64(1, "D")  # last one is 2022
    t, ny, nx = times.size, 8, 10
    bands = {}
    for name in ("B02", "B04", "B08"):
        arr = rng.integers(100, 5000, size=(t, ny, nx), dtype=np.uint16)
        bands[name] = (
            ("time", "y", "x"),
            da.from_array(arr, chunks=(5, 4, 5)) if chunked else arr,
            {"units": "DN"},
        )
    ds = xr.Dataset(
        bands,
        coords={
            "time": times.astype("datetime64[ns]"),
            "y": 5e6 - 10 * np.arange(ny),
            "x": 4e5 + 10 * np.arange(nx),
            "spatial_ref": 0,
        },
        attrs={"title": "test cube"},
    )
    inv = xr.DataArray(rng.random((t, ny, nx)) < 0.3, dims=("time", "y", "x"), coords={"time": ds.time})
    if chunked:
        inv = inv.chunk({"time": 5})
    return ds, inv


@pytest.mark.parametrize(
    "period, labels",
    [("month", [f"{m:02d}" for m in range(1, 13)]), ("season", [f"season{s}" for s in range(1, 5)])],
)
def test_composite_dataset_with_dask(period: str, labels: list[str]) -> None:
    ds, inv = _dataset(chunked=True)
    out = composite(ds, inv, year=2021, period=period)
    assert set(out.data_vars) == {"B02", "B04", "B08", "valid_count"}
    for v in out.data_vars.values():
        assert v.dims == ("period", "y", "x")
    assert out["period"].values.tolist() == labels
    np.testing.assert_array_equal(out["x"], ds["x"])
    np.testing.assert_array_equal(out["y"], ds["y"])
    assert "spatial_ref" in out.coords and "time" not in out.coords
    assert out.attrs["title"] == "test cube" and out["B04"].attrs["units"] == "DN"
    assert out["B02"].dtype == np.uint16 and out["valid_count"].dtype == np.uint16
    # same numbers as the numpy function
    data = np.stack([ds[b].values for b in ("B02", "B04", "B08")], axis=1)
    pidx = period_index(ds.time.values, 2021, period)
    comp, count = composite_median(data, inv.values, pidx, len(labels))
    np.testing.assert_array_equal(out["B08"].values, comp[:, 2])
    np.testing.assert_array_equal(out["valid_count"].values, count)
    assert int(out["valid_count"].sum()) == int((~inv.values[pidx >= 0]).sum())  # the 2022 date is dropped


def test_composite_dataset_bap() -> None:
    ds, inv = _dataset(chunked=False)
    out = composite(ds, inv, year=2021, period="season", method="bap")
    assert set(out.data_vars) == {"B02", "B04", "B08", "valid_count", "bap_score"}
    assert out["bap_score"].dims == ("period", "y", "x") and out["bap_score"].dtype == np.float32
    assert out.attrs["composite_method"] == "bap"
    with pytest.raises(ValueError):
        composite(ds, inv, year=2021, method="mean")


# ------------------------------------------------------------------------------------------------
# real data: eo-learn TestEOPatch (Slovenia, S2 NDVI, 68 dates with the s2cloudless mask CLM)
# ------------------------------------------------------------------------------------------------
def test_monthly_ndvi_composite_of_a_real_patch(shared: Path) -> None:
    patch = shared / "data" / "eo-learn" / "example_data" / "TestEOPatch"
    ndvi = np.load(patch / "data" / "NDVI.npy")[..., 0]  # (68, 101, 100) float32
    clm = np.load(patch / "mask" / "CLM.npy")[..., 0].astype(bool)
    times = np.array(json.loads((patch / "timestamps.json").read_text()), dtype="datetime64[s]")
    period = period_index(times, 2016, "month")
    comp, count = composite_median(ndvi[:, None], clm, period, 12, nodata=np.nan)
    ref = _reference_median(ndvi[:, None], clm, period, 12)
    np.testing.assert_allclose(comp, ref.astype(np.float32), rtol=1e-6, equal_nan=True)
    assert int(count.sum()) == int((~clm[period >= 0]).sum()) > 0
    clear = np.where(clm[:, None], np.nan, ndvi[:, None])
    for p in range(12):
        sel = period == p
        if not sel.any():
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lo, hi = np.nanmin(clear[sel], axis=0), np.nanmax(clear[sel], axis=0)
        ok = count[p][None] > 0
        assert ((comp[p] >= lo) & (comp[p] <= hi))[ok].all()

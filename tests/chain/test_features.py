"""Spectral indices, cyclic gap filling, the feature stack and its matrix (`hrlc.chain.features`)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from hrlc.chain import features

MONTHS = [f"{m:02d}" for m in range(1, 13)]


def cube(values: dict[str, np.ndarray], periods: list[str]) -> xr.Dataset:
    return xr.Dataset(
        {k: (("period", "y", "x"), np.asarray(v, dtype=np.float32)) for k, v in values.items()},
        coords={"period": periods},
    )


def test_indices_match_hand_computed_values() -> None:
    # one period, 1x4 pixels; reflectance 0..1
    ds = cube(
        {
            "green": [[[0.10, 0.08, 0.0, np.nan]]],
            "red": [[[0.05, 0.20, 0.0, 0.1]]],
            "nir": [[[0.45, 0.20, 0.0, 0.3]]],
            "swir16": [[[0.20, 0.30, 0.0, 0.2]]],
            "swir22": [[[0.10, 0.25, 0.0, 0.1]]],
        },
        ["season1"],
    )
    out = features.spectral_indices(ds)
    assert "ndre" not in out  # no red-edge band (Landsat)
    for name in ("ndvi", "ndwi", "mndwi", "ndbi", "nbr"):
        assert out[name].dtype == np.float32
    np.testing.assert_allclose(out.ndvi.values[0, 0, :2], [0.40 / 0.50, 0.0], rtol=1e-6)
    np.testing.assert_allclose(out.ndwi.values[0, 0, 0], (0.10 - 0.45) / 0.55, rtol=1e-6)
    np.testing.assert_allclose(out.mndwi.values[0, 0, 0], (0.10 - 0.20) / 0.30, rtol=1e-6)
    np.testing.assert_allclose(out.ndbi.values[0, 0, 0], (0.20 - 0.45) / 0.65, rtol=1e-6)
    np.testing.assert_allclose(out.nbr.values[0, 0, 0], (0.45 - 0.10) / 0.55, rtol=1e-6)
    assert np.isnan(out.ndvi.values[0, 0, 2])  # 0 / 0
    assert np.isnan(out.ndwi.values[0, 0, 3])  # NaN band
    assert np.isfinite(out.ndvi.values[0, 0, 3])  # the other index of that pixel is fine
    assert out.ndvi.attrs["units"] == "1" and "standard_name" not in out.ndvi.attrs


def test_red_edge_index_when_bands_exist_and_values_clipped() -> None:
    ds = cube({"nir": [[[0.3, 0.01]]], "rededge1": [[[0.1, -0.011]]]}, ["01"])
    out = features.spectral_indices(ds)
    np.testing.assert_allclose(out.ndre.values[0, 0, 0], 0.5, rtol=1e-6)
    assert out.ndre.values[0, 0, 1] == -1.0  # 0.021 / -0.001 from negative reflectance noise: clipped


def test_gap_fill_linear_and_cyclic() -> None:
    a = np.full(12, np.nan, dtype=np.float32)
    a[1], a[4] = 2.0, 5.0  # Feb and May valid
    pix = np.stack([a, np.full(12, np.nan, np.float32), np.arange(12, dtype=np.float32)], axis=-1)
    ds = cube({"red": pix[:, None, :]}, MONTHS)
    out = features.gap_fill(ds).red.values[:, 0, :]
    # Mar, Apr between Feb (2) and May (5)
    np.testing.assert_allclose(out[2:4, 0], [3.0, 4.0], rtol=1e-6)
    # Jun..Dec, Jan: from May (5) back down to Feb (2) across the year end, 9 months: step -1/3
    expected = 5.0 + (2.0 - 5.0) * np.arange(1, 9) / 9.0
    np.testing.assert_allclose(np.r_[out[5:, 0], out[0, 0]], expected, rtol=1e-6)
    assert out[1, 0] == 2.0 and out[4, 0] == 5.0  # valid values untouched
    assert np.isnan(out[:, 1]).all()  # never valid: stays NaN
    np.testing.assert_array_equal(out[:, 2], np.arange(12))  # complete series unchanged


def test_gap_fill_wraps_december_to_january_and_seasons() -> None:
    a = np.array([np.nan, 1.0, 2.0, np.nan], dtype=np.float32)  # seasons 2 and 3 valid
    ds = cube({"nir": a[:, None, None]}, ["season1", "season2", "season3", "season4"])
    out = features.gap_fill(ds).nir.values[:, 0, 0]
    np.testing.assert_allclose(out, [1.0 + 1 / 3, 1.0, 2.0, 2.0 - 1 / 3], rtol=1e-6)
    # not cyclic: constant at the edges
    out = features.gap_fill(ds, cyclic=False).nir.values[:, 0, 0]
    np.testing.assert_allclose(out, [1.0, 1.0, 2.0, 2.0])
    # December only: every month takes its value
    dec = np.full(12, np.nan, dtype=np.float32)
    dec[11] = 0.3
    out = features.gap_fill(cube({"red": dec[:, None, None]}, MONTHS)).red.values[:, 0, 0]
    np.testing.assert_allclose(out, 0.3, rtol=1e-6)


def test_gap_fill_uses_calendar_positions_of_missing_labels() -> None:
    # only Jan, Feb, Apr present: Mar is missing as a label, so Feb->Apr spans 2 months
    a = np.array([1.0, np.nan, 3.0], dtype=np.float32)
    ds = cube({"red": a[:, None, None]}, ["01", "02", "04"])
    np.testing.assert_allclose(features.gap_fill(ds).red.values[:, 0, 0], [1.0, 1.0 + 2 / 3, 3.0], rtol=1e-6)


def test_gap_fill_dask_equals_numpy() -> None:
    rng = np.random.default_rng(0)
    v = rng.random((12, 6, 5)).astype(np.float32)
    v[rng.random(v.shape) < 0.5] = np.nan
    ds = cube({"red": v}, MONTHS)
    eager = features.gap_fill(ds)
    lazy = features.gap_fill(ds.chunk({"y": 2}))
    xr.testing.assert_allclose(eager, lazy.compute())


def make_composite(
    seed: int = 0,
    bands: tuple[str, ...] = ("blue", "green", "red", "nir", "swir16", "swir22"),
    periods: list[str] = MONTHS,
) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    data = {b: rng.uniform(0.01, 0.5, (len(periods), 4, 3)).astype(np.float32) for b in bands}
    for b in bands:
        data[b][rng.random(data[b].shape) < 0.3] = np.nan
        data[b][:, 0, 0] = np.nan  # a pixel never observed
    return cube(data, periods)


def test_feature_stack_and_matrix() -> None:
    comp = make_composite()
    # variable order of the input must not matter
    stack = features.feature_stack(comp[["swir22", "red", "nir", "blue", "swir16", "green"]])
    for name in ("blue", "ndvi", "nbr"):
        assert stack[name].dims == ("period", "y", "x") and stack[name].dtype == np.float32
    assert stack.ndvi_max.dims == ("y", "x")
    assert stack.red.attrs["standard_name"] == "surface_bidirectional_reflectance"
    assert all(
        stack[v].attrs["grid_mapping"] == "crs" and stack[v].attrs["units"] == "1" for v in stack.data_vars
    )
    # filled except the never-observed pixel
    assert not np.isnan(stack.red.values[:, 1:, :]).any()
    assert np.isnan(stack.red.values[:, 0, 0]).all() and np.isnan(stack.ndvi_median.values[0, 0])
    ndvi = stack.ndvi.values
    np.testing.assert_allclose(stack.ndvi_max.values[1:], ndvi.max(axis=0)[1:], rtol=1e-6)
    np.testing.assert_allclose(stack.ndvi_median.values[1:], np.median(ndvi, axis=0)[1:], rtol=1e-6)
    np.testing.assert_allclose(stack.ndvi_amplitude.values[1:], np.ptp(ndvi, axis=0)[1:], rtol=1e-6)

    matrix, names = features.to_matrix(stack)
    assert matrix.dtype == np.float32 and matrix.shape == (len(names), 4, 3)
    assert names[:13] == [f"blue_{m}" for m in MONTHS] + ["green_01"]
    assert names.index("ndvi_03") < names.index("ndvi_min") < names.index("ndvi_max")
    assert names[-1] == "nbr_amplitude" and len(names) == 11 * 12 + 5 * 4
    np.testing.assert_array_equal(matrix[names.index("red_05")], stack.red.values[4])
    assert features.feature_names(stack) == names
    # deterministic: same names whatever the variable order of the stack
    assert features.to_matrix(stack[list(reversed(list(stack.data_vars)))])[1] == names


def test_feature_stack_seasons_names_and_no_fill() -> None:
    comp = make_composite(periods=["season1", "season2", "season3", "season4"])
    stack = features.feature_stack(comp, fill=False, stats=False)
    assert np.isnan(stack.red.values).sum() == np.isnan(comp.red.values).sum()
    _, names = features.to_matrix(stack)
    assert "red_season2" in names and not any(n.endswith("_max") for n in names)


def test_to_matrix_refuses_unexpected_dims() -> None:
    ds = xr.Dataset({"a": (("band", "y", "x"), np.zeros((2, 2, 2), np.float32))})
    with pytest.raises(ValueError, match="unexpected dims"):
        features.to_matrix(ds)


def test_the_stack_of_a_block_is_the_block_of_the_stack() -> None:
    """Features of a pixel depend on its own periods only: a grid streamed block by block (variable by variable,
    `feature_variables`) gives exactly the stack of the whole grid."""
    comp = make_composite(seed=4)
    whole = features.feature_stack(comp)
    names = [name for name, _ in features.feature_variables(comp)]
    assert names == list(whole.data_vars)  # same order as the stack
    for rows, cols in ((slice(0, 2), slice(0, 2)), (slice(2, 4), slice(1, 3))):
        block = dict(features.feature_variables(comp.isel(y=rows, x=cols)))
        for name in names:
            xr.testing.assert_identical(block[name], whole[name].isel(y=rows, x=cols))

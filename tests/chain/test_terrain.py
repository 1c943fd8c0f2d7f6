"""Slope from a DEM: known planes and a cone, in projected and geographic grids."""

import numpy as np
import pytest

from hrlc.chain.terrain import pixel_size_m, slope_degrees


@pytest.mark.parametrize(("a", "b"), [(0.0, 0.0), (0.1, 0.05), (1.0, 0.0), (-0.3, 0.4)])
def test_plane_has_one_slope_everywhere(a: float, b: float) -> None:
    y, x = np.mgrid[0:20, 0:30].astype(float)
    dx, dy = 30.0, 10.0
    z = 100 + a * x * dx - b * y * dy  # rows run south: northing decreases with the row
    got = slope_degrees(z, dx, dy)
    assert got.dtype == np.float32 and got.shape == z.shape
    np.testing.assert_allclose(got, np.degrees(np.arctan(np.hypot(a, b))), atol=1e-4)


def test_cone_and_nan() -> None:
    y, x = np.mgrid[-50:51, -50:51].astype(float)
    z = -np.hypot(x, y) * 10.0 * np.tan(np.radians(30))  # 10 m pixels, 30 degree flanks
    got = slope_degrees(z, 10.0, 10.0)
    assert abs(float(np.median(got)) - 30) < 0.5
    z[50, 50] = np.nan
    got = slope_degrees(z, 10.0, 10.0)
    assert np.isnan(got[49:52, 49:52]).all() and np.isfinite(got[:45]).all()


def test_geographic_pixel_sizes() -> None:
    dx, dy = pixel_size_m(1 / 3600, -1 / 3600, geographic=True, lat=np.array([0.0, 60.0]))
    assert dy == pytest.approx(30.87, abs=0.01)
    assert np.asarray(dx).ravel() == pytest.approx([30.92, 15.46], abs=0.01)
    assert pixel_size_m(30, -30) == (30.0, 30.0)
    with pytest.raises(ValueError):
        pixel_size_m(1, 1, geographic=True)

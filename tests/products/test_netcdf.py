"""Feature stack NetCDF: CF-1.8/ACDD metadata and a lossless round trip (`hrlc.products.netcdf`)."""

from __future__ import annotations

from pathlib import Path

import netCDF4
import numpy as np
import pytest
import xarray as xr
from affine import Affine
from pyproj import CRS

from hrlc.chain import features
from hrlc.products.netcdf import (
    KEEP_BITS,
    FeatureStackReader,
    feature_stack_writer,
    grid_of,
    read_feature_stack,
    write_feature_stack,
)

TRANSFORM = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5100000.0)


def stack(periods: list[str]) -> xr.Dataset:
    rng = np.random.default_rng(1)
    comp = xr.Dataset(
        {
            b: (("period", "y", "x"), rng.uniform(0, 0.5, (len(periods), 5, 7)).astype(np.float32))
            for b in ("blue", "green", "red", "nir", "swir16", "swir22")
        },
        coords={"period": periods},
    )
    comp["red"][0, 0, 0] = np.nan
    comp["red"][:, 1, 1] = np.nan  # stays NaN after filling
    return features.feature_stack(comp)


@pytest.mark.parametrize("periods", [[f"{m:02d}" for m in range(1, 13)], [f"season{q}" for q in range(1, 5)]])
def test_round_trip(tmp_path: Path, periods: list[str]) -> None:
    ds = stack(periods)
    path = tmp_path / "features.nc"
    write_feature_stack(
        ds,
        path,
        crs="EPSG:32633",
        transform=TRANSFORM,
        attrs={"title": "test stack"},
        year=2021,
        keep_bits=None,
    )
    back = read_feature_stack(path).load()
    assert list(back.period.values) == periods
    m0, n0 = features.to_matrix(ds)
    m1, n1 = features.to_matrix(back)
    assert n0 == n1
    np.testing.assert_array_equal(m0, m1)  # lossless: float32 exact, NaN preserved
    assert np.isnan(back.red.values[:, 1, 1]).all()
    crs, transform = grid_of(back)
    assert crs == "EPSG:32633" and transform == TRANSFORM
    np.testing.assert_allclose(back.x.values[:2], [500005.0, 500015.0])
    np.testing.assert_allclose(back.y.values[:2], [5099995.0, 5099985.0])
    assert back.attrs["title"] == "test stack"
    back.close()


def test_features_keep_12_significant_bits_by_default(tmp_path: Path) -> None:
    """The default stack is quantized (netCDF-C BitRound, `KEEP_BITS`): every value within 2**-13 of itself,
    NaN kept, the file saying how, and smaller than the lossless one."""
    rng = np.random.default_rng(0)
    small = stack(["01", "02"])  # 5 x 7 px, repeated to 200 x 280: the data, not the header, sets the size
    ds = small.isel(y=np.tile(np.arange(5), 40), x=np.tile(np.arange(7), 40))
    for name in ds.data_vars:  # noisy reflectances and indices: what real stacks hold
        v = ds[name].values
        ds[name].values = np.where(np.isnan(v), v, rng.uniform(-1, 1, v.shape)).astype(v.dtype)
    sizes = {}
    for bits in (KEEP_BITS, None):
        path = tmp_path / f"features-{bits}.nc"
        write_feature_stack(ds, path, crs=32633, transform=TRANSFORM, keep_bits=bits)
        sizes[bits] = path.stat().st_size
    back = read_feature_stack(tmp_path / f"features-{KEEP_BITS}.nc").load()
    m0, _ = features.to_matrix(ds)
    m1, _ = features.to_matrix(back)
    assert np.array_equal(np.isnan(m0), np.isnan(m1))
    ok = ~np.isnan(m0)
    assert np.all(np.abs(m1[ok] - m0[ok]) <= np.abs(m0[ok]) * 2.0**-13)
    assert not np.array_equal(m0[ok], m1[ok])  # it did quantize
    assert (
        back.red.encoding.get(
            "_QuantizeBitRoundNumberOfSignificantBits",
            back.red.attrs.get("_QuantizeBitRoundNumberOfSignificantBits"),
        )
        == KEEP_BITS
    )
    assert sizes[KEEP_BITS] < sizes[None]
    back.close()


def test_cf_and_acdd_attributes(tmp_path: Path) -> None:
    path = tmp_path / "features.nc"
    write_feature_stack(
        stack([f"season{q}" for q in range(1, 5)]),
        path,
        crs=32633,
        transform=TRANSFORM,
        attrs={"source": "unit test", "history": "made by a test"},
        year=2018,
    )
    with netCDF4.Dataset(path) as nc:
        g = {k: nc.getncattr(k) for k in nc.ncattrs()}
        assert g["Conventions"] == "CF-1.8, ACDD-1.3"
        for key in (
            "title",
            "institution",
            "source",
            "history",
            "product_version",
            "date_created",
            "summary",
            "geospatial_lat_min",
            "geospatial_lon_max",
            "time_coverage_start",
        ):
            assert key in g, key
        assert g["source"] == "unit test" and g["history"].startswith("made by a test\n")
        assert 45 < g["geospatial_lat_min"] < g["geospatial_lat_max"] < 47
        red = nc["red"]
        assert red.grid_mapping == "crs" and red.units == "1"
        assert red.standard_name == "surface_bidirectional_reflectance"
        assert "period_label" in red.coordinates
        assert red.filters()["zlib"] and red.chunking() == [1, 5, 7] and np.isnan(red._FillValue)
        assert nc["ndvi"].units == "1" and not hasattr(nc["ndvi"], "standard_name")
        assert nc["ndvi_max"].dimensions == ("y", "x")
        assert nc["x"].standard_name == "projection_x_coordinate" and nc["x"].units == "m"
        assert nc["y"].standard_name == "projection_y_coordinate"
        crs = nc["crs"]
        assert crs.grid_mapping_name == "transverse_mercator"
        assert CRS.from_wkt(crs.crs_wkt).to_epsg() == 32633 and crs.spatial_ref == crs.crs_wkt
        assert crs.GeoTransform.split() == ["500000.0", "10.0", "0.0", "5100000.0", "0.0", "-10.0"]
        assert list(nc["period_label"].month_bounds) == [1, 3, 4, 6, 7, 9, 10, 12]
        assert nc["time"].bounds == "time_bnds" and nc["time"].units == "days since 2018-01-01 00:00:00"
        np.testing.assert_allclose(nc["time_bnds"][0], [0, 90])  # Jan-Mar 2018: 90 days


def test_geographic_crs_and_wrong_coordinates(tmp_path: Path) -> None:
    ds = stack(["01", "02"])
    t = Affine(0.001, 0, 14.0, 0, -0.001, 46.0)
    write_feature_stack(ds, tmp_path / "geo.nc", crs="EPSG:4326", transform=t, attrs={})
    with netCDF4.Dataset(tmp_path / "geo.nc") as nc:
        assert nc["x"].standard_name == "longitude" and nc["y"].units == "degrees_north"
    back = read_feature_stack(tmp_path / "geo.nc")
    assert grid_of(back) == ("EPSG:4326", t)
    back.close()
    shifted = ds.assign_coords(x=np.arange(7) * 10.0, y=np.arange(5) * 10.0)
    with pytest.raises(ValueError, match="pixel centres"):
        write_feature_stack(shifted, tmp_path / "bad.nc", crs=32633, transform=TRANSFORM, attrs={})


@pytest.mark.parametrize("pending", [0, 2])
def test_written_block_by_block_is_the_same_file(tmp_path: Path, pending: int) -> None:
    """The stack written in blocks (not aligned with the chunks here, through the writer thread or not) holds the
    same variables, values, attributes, chunking and compression as the stack written whole."""
    ds = stack([f"{m:02d}" for m in range(1, 13)])
    write_feature_stack(
        ds, tmp_path / "whole.nc", crs=32633, transform=TRANSFORM, attrs={"title": "t"}, year=2021
    )
    with feature_stack_writer(
        tmp_path / "blocks.nc",
        ds.isel(y=slice(0, 1), x=slice(0, 1)),  # the variables of one pixel are enough
        height=5,
        width=7,
        crs=32633,
        transform=TRANSFORM,
        attrs={"title": "t"},
        year=2021,
        pending=pending,
    ) as writer:
        assert writer.variables == list(ds.data_vars)
        for rows in (slice(0, 2), slice(2, 5)):
            for cols in (slice(0, 3), slice(3, 7)):
                writer.write(ds.isel(y=rows, x=cols), rows, cols)
    with netCDF4.Dataset(tmp_path / "whole.nc") as a, netCDF4.Dataset(tmp_path / "blocks.nc") as b:
        assert list(a.variables) == list(b.variables) and a.dimensions.keys() == b.dimensions.keys()
        skip = {"date_created", "history"}
        assert {k: a.getncattr(k) for k in a.ncattrs() if k not in skip} == {
            k: b.getncattr(k) for k in b.ncattrs() if k not in skip
        }
        for name, va in a.variables.items():
            vb = b.variables[name]
            assert va.dimensions == vb.dimensions and va.dtype == vb.dtype, name
            assert va.chunking() == vb.chunking() and va.filters() == vb.filters(), name
            assert va.ncattrs() == vb.ncattrs(), name
            for k in va.ncattrs():
                np.testing.assert_array_equal(va.getncattr(k), vb.getncattr(k), err_msg=f"{name}.{k}")
            np.testing.assert_array_equal(
                np.asarray(va[...]), np.asarray(vb[...]), err_msg=name
            )  # NaN == NaN


def test_block_writer_refuses_wrong_windows_and_an_incomplete_stack(tmp_path: Path) -> None:
    ds = stack(["01", "02"])
    grid = {"height": 5, "width": 7, "crs": 32633, "transform": TRANSFORM}
    with (
        pytest.raises(ValueError, match="window of shape"),
        feature_stack_writer(tmp_path / "a.nc", ds, pending=2, **grid) as writer,  # type: ignore[arg-type]
    ):
        writer.write_variable("red", ds["red"].values, slice(0, 2), slice(0, 7))
    with (
        pytest.raises(ValueError, match="incomplete"),
        feature_stack_writer(tmp_path / "b.nc", ds, **grid) as writer,  # type: ignore[arg-type]
    ):
        writer.write(ds.isel(y=slice(0, 4)), slice(0, 4), slice(None))


@pytest.mark.parametrize("keep_bits", [KEEP_BITS, None])
def test_chunks_compressed_on_threads_are_what_netcdf_c_writes(tmp_path: Path, keep_bits: int | None) -> None:
    """The block writer compresses whole chunks itself (BitRound, shuffle, deflate) and writes them with HDF5's
    direct chunk write: read back, every value is bit for bit what netCDF-C makes of the same stack written by
    `Dataset.to_netcdf` with the same encoding, for windows of whole chunks (edge chunks padded) and windows
    that cut chunks; and GDAL reads it."""
    rng = np.random.default_rng(3)
    ny, nx = 700, 1100  # 2 x 3 chunks of 512 px, the last ones cut by the grid
    ds = xr.Dataset(
        {
            "red": (("period", "y", "x"), rng.uniform(-1, 1, (2, ny, nx)).astype(np.float32)),
            "ndvi_max": (("y", "x"), rng.normal(0, 1e3, (ny, nx)).astype(np.float32)),
        },
        coords={"period": ["01", "02"]},
    )
    ds["red"][0, :3, :5] = np.nan
    ds["ndvi_max"][600:, 1000:] = np.nan
    reference = tmp_path / "netcdf-c.nc"
    encoding = {
        name: {"zlib": True, "complevel": 1, "shuffle": True, "chunksizes": (1, 512, 512)[-ds[name].ndim :],
               "_FillValue": np.float32(np.nan)}
        | ({"quantize_mode": "BitRound", "significant_digits": keep_bits} if keep_bits else {})
        for name in ds.data_vars
    }  # fmt: skip
    ds.to_netcdf(reference, engine="netcdf4", encoding=encoding)
    windows = [  # whole chunks, then windows cutting chunks (HDF5's filters) in the last row of chunks
        (slice(0, 512), slice(0, 1024)),
        (slice(0, 512), slice(1024, nx)),
        (slice(512, ny), slice(0, 300)),
        (slice(512, ny), slice(300, nx)),
    ]
    path = tmp_path / "blocks.nc"
    with feature_stack_writer(
        path, ds, height=ny, width=nx, crs=32633, transform=TRANSFORM, keep_bits=keep_bits, pending=2
    ) as writer:
        for rows, cols in windows:
            writer.write(ds.isel(y=rows, x=cols), rows, cols)
    with netCDF4.Dataset(reference) as a, netCDF4.Dataset(path) as b:
        for name in ds.data_vars:
            va, vb = a.variables[name], b.variables[name]
            assert va.chunking() == vb.chunking() and va.filters() == vb.filters(), name
            np.testing.assert_array_equal(
                np.asarray(va[...], np.float32).view(np.uint32),
                np.asarray(vb[...], np.float32).view(np.uint32),
            )
    if keep_bits:  # it did quantize: not the values given
        assert not np.array_equal(read_feature_stack(path)["red"].values[1], ds["red"].values[1])
    import rasterio

    with rasterio.open(f'NETCDF:"{path}":ndvi_max') as src:
        np.testing.assert_array_equal(
            src.read(1).view(np.uint32), read_feature_stack(path)["ndvi_max"].values.view(np.uint32)
        )


def test_reader_decompressing_chunks_on_threads_reads_what_xarray_reads(tmp_path: Path) -> None:
    """Windows read by the chunk reader (direct chunk reads, decompressed on threads) are `to_matrix` of the
    same windows read through netCDF-C: aligned with the chunks or not, across chunk edges and the grid's
    edge; a chunk never written reads as NaN (the fill value)."""
    rng = np.random.default_rng(5)
    ny, nx = 700, 1100
    comp = xr.Dataset(
        {
            b: (("period", "y", "x"), rng.uniform(0, 0.5, (3, ny, nx)).astype(np.float32))
            for b in ("red", "nir")
        },
        coords={"period": ["01", "02", "03"]},
    )
    ds = comp.assign(ndvi_max=(("y", "x"), rng.normal(0, 1, (ny, nx)).astype(np.float32)))
    path = tmp_path / "stack.nc"
    write_feature_stack(ds, path, crs=32633, transform=TRANSFORM)
    back = read_feature_stack(path)
    names = features.matrix_variables(back)
    assert names == ["red", "nir", "ndvi_max"]  # the matrix's order, not the file's
    with FeatureStackReader(path, names, threads=3) as reader:
        assert reader.layers == 7
        for rows, cols in [
            (slice(0, 512), slice(0, 512)),
            (slice(0, ny), slice(0, nx)),
            (slice(500, 530), slice(1020, 1100)),  # four chunks, the grid's corner
            (slice(3, 4), slice(1099, 1100)),
        ]:
            want, _ = features.to_matrix(back.isel(y=rows, x=cols))
            np.testing.assert_array_equal(reader.read(rows, cols), want)
    back.close()
    with pytest.raises(ValueError, match="no variable"):
        FeatureStackReader(path, ["red", "missing"])

    partial = tmp_path / "partial.nc"
    grid = {"height": ny, "width": nx, "crs": 32633, "transform": TRANSFORM}
    with (
        pytest.raises(ValueError, match="incomplete"),
        feature_stack_writer(partial, ds, **grid) as writer,  # type: ignore[arg-type]
    ):
        writer.write(ds.isel(y=slice(0, 512), x=slice(0, 512)), slice(0, 512), slice(0, 512))
    with FeatureStackReader(partial, ["red", "ndvi_max"]) as reader:
        m = reader.read(slice(500, 520), slice(500, 520))
    assert (
        not np.isnan(m[:, :12, :12]).any() and np.isnan(m[:, 12:, :]).all() and np.isnan(m[:, :, 12:]).all()
    )

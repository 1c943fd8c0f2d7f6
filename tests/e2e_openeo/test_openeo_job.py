"""The issue's end-to-end: the official `openeo` client creates, starts and waits for an `hrlc_land_cover`
batch job that runs on worker processes fed by RabbitMQ (results in moto S3, items in pgstac), downloads
the class map, and it equals, pixel for pixel, the one the in-process runner makes for the same inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openeo
import pytest
import rasterio

from landcover import is_aoi_map, is_aoi_map_file, read_class_map

from .conftest import PASSWORD, USER, Stack

pytestmark = pytest.mark.slow


def test_openeo_client_land_cover_job_equals_in_process_run(stack: Stack, tmp_path: Path) -> None:
    con = openeo.connect(stack.url).authenticate_basic(USER, PASSWORD)
    assert "hrlc_land_cover" in {p["id"] for p in con.list_processes()}
    cube = con.datacube_from_process("hrlc_land_cover", **stack.land_cover_args())
    job = cube.save_result(format="GTiff").create_job(title="e2e land cover")
    assert job.status() == "created"
    assert job.job_id in {j["id"] for j in con.list_jobs()}

    job.start_and_wait(max_poll_interval=0.5, soft_error_max=3, show_error_logs=True)
    assert job.status() == "finished", stack.log.read_text()[-5000:]
    meta = job.describe()
    assert meta["progress"] == 100 and meta["started"] and meta["finished"]
    assert meta["process"]["process_graph"]

    results = job.get_results()
    [asset] = [a for a in results.get_assets() if is_aoi_map(a.key) and a.key.endswith("/data")]
    assert "X-Amz-Signature=" in asset.href  # a presigned URL of the S3 lake
    paths = results.download_files(tmp_path / "out")
    [class_map] = [p for p in paths if is_aoi_map_file(p.name)]
    downloaded = read_class_map(class_map)
    assert downloaded.shape == stack.reference.shape
    assert np.array_equal(downloaded, stack.reference)
    assert (tmp_path / "out" / "job-results.json").is_file()

    logs = job.logs(level="info")
    assert any("job finished" in e.message for e in logs), logs
    listed = {j["id"]: j for j in con.list_jobs()}
    assert listed[job.job_id]["status"] == "finished"

    # a job of standard processes on the composites that job made: summer NDVI, evaluated on a worker
    # through openeo-processes-dask; equal to numpy on the downloaded composites
    w, s, e, n = stack.bbox
    summer = con.load_collection(
        "hrlc-optical-composites",
        spatial_extent={"west": w, "south": s, "east": e, "north": n, "crs": stack.repo.epsg},
        temporal_extent=["2021-06-01", "2021-09-01"],
        bands=["red", "nir"],
    )
    ndvi = summer.ndvi(red="red", nir="nir").reduce_dimension(dimension="t", reducer="mean")
    graph_job = ndvi.save_result(format="GTiff").create_job(title="summer NDVI")
    graph_job.start_and_wait(max_poll_interval=0.5, soft_error_max=3, show_error_logs=True)
    [ndvi_tif] = graph_job.get_results().download_files(tmp_path / "ndvi")[:1]
    expected = []
    for month in ("06", "07", "08"):
        [comp] = [p for p in paths if p.name.endswith(f"-optical_sentinel2_2021_{month}.tif")]
        with rasterio.open(comp) as src:
            red, nir = (src.read(src.descriptions.index(b) + 1).astype("float64") for b in ("red", "nir"))
            red[red == src.nodata], nir[nir == src.nodata] = np.nan, np.nan
        expected.append((nir - red) / (nir + red))
    with rasterio.open(ndvi_tif) as src:
        np.testing.assert_allclose(src.read(1), np.nanmean(expected, axis=0), rtol=1e-5, atol=1e-6)

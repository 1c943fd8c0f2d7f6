"""The issue's end-to-end: the official `openeo` client creates, starts and waits for an `hrlc_land_cover`
batch job that runs on worker processes fed by RabbitMQ (results in moto S3, items in pgstac), downloads
the class map, and it equals, pixel for pixel, the one the in-process runner makes for the same inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openeo
import pytest

from .conftest import PASSWORD, USER, Stack, read_class_map

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
    [asset] = [
        a for a in results.get_assets() if a.key.startswith("classified_map_") and a.key.endswith("/data")
    ]
    assert "X-Amz-Signature=" in asset.href  # a presigned URL of the S3 lake
    paths = results.download_files(tmp_path / "out")
    [class_map] = [p for p in paths if p.name.startswith("classified_map_") and p.suffix == ".tif"]
    downloaded = read_class_map(class_map)
    assert downloaded.shape == stack.reference.shape
    assert np.array_equal(downloaded, stack.reference)
    assert (tmp_path / "out" / "job-results.json").is_file()

    logs = job.logs(level="info")
    assert any("job finished" in e.message for e in logs), logs
    listed = {j["id"]: j for j in con.list_jobs()}
    assert listed[job.job_id]["status"] == "finished"

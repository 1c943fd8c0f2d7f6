"""Two users' land-cover jobs on one platform (issue 10, findings 2 and 4): a job over half of another user's
area, or with another classifier, makes its own products and never returns or overwrites the other's; job
products are private in the STAC API, shared products (same identity) are readable by both users."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openeo
import pytest

from landcover import is_aoi_map, is_aoi_map_file, read_class_map

from .conftest import OTHER, OTHER_PASSWORD, PASSWORD, USER, Stack

pytestmark = pytest.mark.slow


def _run(con: openeo.Connection, args: dict[str, Any], out: Path) -> tuple[openeo.BatchJob, np.ndarray]:
    job = con.datacube_from_process("hrlc_land_cover", **args).save_result(format="GTiff").create_job()
    job.start_and_wait(max_poll_interval=0.5, soft_error_max=3, show_error_logs=True)
    return job, _class_map(job, out)


def _class_map(job: openeo.BatchJob, out: Path) -> np.ndarray:
    paths = job.get_results().download_files(out)
    [path] = [p for p in paths if is_aoi_map_file(p.name)]
    return read_class_map(path)


def _stac_ids(stack: Stack, con: openeo.Connection | None, collection: str) -> set[str]:
    headers = {} if con is None else {"Authorization": f"Bearer {con.auth.bearer}"}
    r = httpx.get(f"{stack.root}/stac/collections/{collection}/items", params={"limit": 200}, headers=headers)
    if r.status_code == 401:
        return set()
    r.raise_for_status()
    return {f["id"] for f in r.json()["features"]}


def test_two_users_jobs_neither_share_by_accident_nor_overwrite(stack: Stack, tmp_path: Path) -> None:
    alice = openeo.connect(stack.url).authenticate_basic(USER, PASSWORD)
    bob = openeo.connect(stack.url).authenticate_basic(OTHER, OTHER_PASSWORD)
    a_job, a_map = _run(alice, stack.land_cover_args(), tmp_path / "a")
    assert np.array_equal(a_map, stack.reference)
    a_items = _stac_ids(stack, alice, "hrlc-class-maps")
    assert a_items and not _stac_ids(stack, bob, "hrlc-class-maps")  # alice's map is hers
    assert not _stac_ids(stack, None, "hrlc-class-maps")  # and nobody's without a token

    # bob over the western half of alice's area: his own products, computed (finding 2: it returned hers)
    half = stack.land_cover_args()
    extent = dict(half["spatial_extent"])
    extent["east"] = extent["west"] + (extent["east"] - extent["west"]) / 2
    half["spatial_extent"] = extent
    _, b_half = _run(bob, half, tmp_path / "b-half")
    assert b_half.shape == (a_map.shape[0], a_map.shape[1] // 2)

    # bob with another classifier over alice's area: another map; alice's stays as it was (finding 2: 2 051
    # pixels of hers changed)
    rf = {**stack.land_cover_args(), "classifier": "rf"}
    _, b_rf = _run(bob, rf, tmp_path / "b-rf")
    assert b_rf.shape == a_map.shape and not np.array_equal(b_rf, a_map)
    assert np.array_equal(_class_map(a_job, tmp_path / "a-again"), a_map)

    b_items = _stac_ids(stack, bob, "hrlc-class-maps")
    assert len({i for i in b_items if is_aoi_map(i)}) == 2 and not (b_items & a_items)
    assert _stac_ids(stack, alice, "hrlc-class-maps") == a_items
    # bob's rf job reused alice's composites (same identity): both read them, nobody else. Only the tiles of
    # these jobs' size: the session's catalogue also holds alice's composites of other tests (the notebook's tiles)
    size = f"-{stack.land_cover_args()['tile_size']}-"
    composites = {i for i in _stac_ids(stack, alice, "hrlc-optical-composites") if size in i}
    assert composites and composites <= _stac_ids(stack, bob, "hrlc-optical-composites")

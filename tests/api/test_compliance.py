"""Regressions of what the official openEO test suite (openeo-test-suite 0.2.2, `scripts/openeo_test_suite.sh`,
docs/conformance.md) found: paths with `//`, `/udf_runtimes` and `/service_types`, the job estimate, the id of
a stored user-defined process, and the bands of a collection that holds several products."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from api.conftest import Server, land_cover_process
from hrlc.api.openeo.collections import collection_bands, openeo_collection


def _item(*bands: str) -> dict[str, Any]:
    return {"assets": {"data": {"href": "x.tif", "eo:bands": [{"name": b} for b in bands]}}}


def test_repeated_slashes_count_as_one(server: Server, tokens: dict[str, str]) -> None:
    """The suite joins its base URL (ending in `/`) with `/jobs/...`: `/openeo//jobs/x` is `/openeo/jobs/x`."""
    assert httpx.get(f"{server.url}//collections").status_code == 200
    alice = server.client(tokens["alice"])
    r = alice.post("/jobs", json={"process": land_cover_process()})
    job_id = r.headers["OpenEO-Identifier"]
    got = httpx.get(f"{server.url}//jobs/{job_id}", headers=alice.headers)
    assert (got.status_code, got.json()["id"]) == (200, job_id)
    assert httpx.delete(f"{server.url}//jobs//{job_id}", headers=alice.headers).status_code == 204


@pytest.mark.parametrize("path", ["/udf_runtimes", "/service_types"])
def test_no_udf_runtimes_and_no_service_types(server: Server, path: str) -> None:
    r = httpx.get(f"{server.url}{path}")
    assert (r.status_code, r.json()) == (200, {})
    endpoints = {e["path"]: e["methods"] for e in httpx.get(f"{server.url}/").json()["endpoints"]}
    assert endpoints[path] == ["GET"]


def test_job_estimate(server: Server, tokens: dict[str, str]) -> None:
    alice, bob = server.client(tokens["alice"]), server.client(tokens["bob"])
    job_id = alice.post("/jobs", json={"process": land_cover_process()}).headers["OpenEO-Identifier"]
    r = alice.get(f"/jobs/{job_id}/estimate")
    assert (r.status_code, r.json()["costs"]) == (200, 0)
    for client, path in [(bob, f"/jobs/{job_id}/estimate"), (alice, "/jobs/nope/estimate")]:
        r = client.get(path)
        assert (r.status_code, r.json()["code"]) == (404, "JobNotFound")
    assert httpx.get(f"{server.url}/jobs/{job_id}/estimate").status_code == 401


def test_put_process_graph_takes_the_id_of_the_path(server: Server, tokens: dict[str, str]) -> None:
    """openEO API (store-custom-process): an `id` in the body that differs is replaced by the path's."""
    alice = server.client(tokens["alice"])
    udp = {
        "id": "another_name",
        "parameters": [{"name": "x", "description": "A number.", "schema": {"type": "number"}}],
        "process_graph": {
            "add1": {"process_id": "add", "arguments": {"x": {"from_parameter": "x"}, "y": 1}, "result": True}
        },
    }
    assert alice.put("/process_graphs/plus_one", json=udp).status_code == 200
    try:
        assert alice.get("/process_graphs/plus_one").json()["id"] == "plus_one"
        assert alice.get("/process_graphs/another_name").status_code == 404
    finally:
        alice.delete("/process_graphs/plus_one")


def test_collection_bands_of_several_products() -> None:
    """Composites (4 bands) and their cloud masks (2 bands) in one collection: the composite's bands first (the
    most frequent product), then the mask's; an item without bands adds nothing."""
    items = [_item("blue", "red", "nir", "swir16")] * 3 + [_item("clear", "observations")] * 2 + [{}]
    assert [b["name"] for b in collection_bands(items)] == [
        "blue", "red", "nir", "swir16", "clear", "observations",
    ]  # fmt: skip
    doc = openeo_collection({"id": "c", "links": []}, "http://x/openeo", items)
    assert doc["cube:dimensions"]["bands"]["values"][:4] == ["blue", "red", "nir", "swir16"]
    assert len(doc["summaries"]["eo:bands"]) == 6
    assert openeo_collection({"id": "c"}, "http://x", None)["cube:dimensions"]["bands"]["values"] == ["data"]
    # as many masks as composites (one of each per month): the composite, with more bands, comes first
    tie = [_item("clear", "observations"), _item("blue", "red", "nir", "swir16")] * 12
    assert [b["name"] for b in collection_bands(tie)][:2] == ["blue", "red"]

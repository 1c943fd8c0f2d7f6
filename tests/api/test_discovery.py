"""Discovery: capabilities, well-known, conformance, file formats, collections, processes — with httpx and
with the official `openeo` client."""

from __future__ import annotations

import httpx
import openeo
import pytest

from api.conftest import USERS, Server
from api.openapi_check import OpenAPIResponses


def test_capabilities_list_what_is_served(server: Server) -> None:
    caps = httpx.get(f"{server.url}/").json()
    assert caps["api_version"] == "1.2.0"
    assert caps["stac_version"]
    paths = {e["path"]: set(e["methods"]) for e in caps["endpoints"]}
    for path in ["/collections", "/processes", "/credentials/basic", "/me", "/validation", "/jobs"]:
        assert path in paths
    assert paths["/jobs/{job_id}/results"] == {"GET", "POST", "DELETE"}
    for e in caps["endpoints"]:  # each listed endpoint answers something other than 404/405 route errors
        for method in e["methods"]:
            url = server.url + e["path"].replace("{job_id}", "x").replace("{collection_id}", "x")
            r = httpx.request(method, url.replace("{process_graph_id}", "x"))
            assert r.status_code not in (405,), (method, e["path"])


def test_well_known_at_root_and_in_the_api(server: Server) -> None:
    for url in (f"{server.root}/.well-known/openeo", f"{server.url}/.well-known/openeo"):
        versions = httpx.get(url).json()["versions"]
        assert versions[0]["url"] == f"{server.url}/"
        assert versions[0]["api_version"] == "1.2.0"


def test_conformance_and_file_formats(server: Server) -> None:
    assert "https://api.openeo.org/1.2.0" in httpx.get(f"{server.url}/conformance").json()["conformsTo"]
    formats = httpx.get(f"{server.url}/file_formats").json()
    assert {"GTiff", "netCDF"} <= set(formats["output"])


def test_collections_from_the_catalogue(server: Server) -> None:
    ids = {c["id"] for c in httpx.get(f"{server.url}/collections").json()["collections"]}
    assert {"hrlc-class-maps", "hrlc-optical-composites"} <= ids
    c = httpx.get(f"{server.url}/collections/hrlc-class-maps").json()
    dims = c["cube:dimensions"]
    assert {"x", "y", "t", "bands"} == set(dims)
    assert dims["bands"]["values"] == ["class"]
    assert dims["x"]["extent"] == [10, 10.1]
    assert c["summaries"]["eo:bands"] == [{"name": "class"}]


def test_unknown_collection_is_404(server: Server) -> None:
    r = httpx.get(f"{server.url}/collections/nope")
    assert r.status_code == 404
    assert r.json()["code"] == "CollectionNotFound"
    assert r.json()["id"]


def test_processes_describe_hrlc_land_cover(server: Server) -> None:
    procs = {p["id"]: p for p in httpx.get(f"{server.url}/processes").json()["processes"]}
    assert {"load_collection", "save_result", "hrlc_land_cover", "reduce_dimension", "ndvi"} <= set(procs)
    params = {p["name"] for p in procs["hrlc_land_cover"]["parameters"]}
    assert {"spatial_extent", "year", "sensor", "source", "training", "classifier", "composite"} <= params


def test_openeo_client_discovers(server: Server) -> None:
    con = openeo.connect(server.root)  # finds the API through /.well-known/openeo
    con.authenticate_basic("alice", USERS["alice"])
    assert con.describe_account()["user_id"] == "alice"
    assert "hrlc-class-maps" in con.list_collection_ids()
    assert {c["id"] for c in con.list_collections()} >= {"hrlc-class-maps"}
    assert "hrlc_land_cover" in {p["id"] for p in con.list_processes()}
    lc = con.describe_process("hrlc_land_cover")
    assert lc["returns"]["schema"]["subtype"] == "datacube"
    assert "GTiff" in con.list_output_formats()
    meta = con.describe_collection("hrlc-class-maps")
    assert meta["cube:dimensions"]["bands"]["values"] == ["class"]


def test_cors_headers(server: Server) -> None:
    r = httpx.get(f"{server.url}/collections/nope", headers={"Origin": "https://editor.openeo.org"})
    assert r.headers["access-control-allow-origin"] == "https://editor.openeo.org"
    assert "OpenEO-Identifier" in r.headers["access-control-expose-headers"]
    pre = httpx.options(
        f"{server.url}/jobs",
        headers={"Origin": "https://editor.openeo.org", "Access-Control-Request-Method": "POST"},
    )
    assert pre.status_code == 200
    assert pre.headers["access-control-allow-credentials"] == "true"


def test_the_spec_check_catches_bad_responses(openapi: OpenAPIResponses) -> None:
    """The autouse check is not vacuous: responses off the spec fail it."""
    with pytest.raises(AssertionError):
        openapi.check("GET", "/me", 200, "application/json", b"{}")  # no user_id
    with pytest.raises(AssertionError):
        openapi.check("GET", "/jobs/x", 404, "application/json", b'{"message": "no code"}')
    with pytest.raises(AssertionError):
        openapi.check("GET", "/jobs/x/results", 200, "application/json", b'{"assets": {}}')
    openapi.check("GET", "/jobs/x", 404, "application/json", b'{"code": "JobNotFound", "message": "m"}')

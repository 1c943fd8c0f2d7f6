"""Batch jobs through the API (over `hrlc.jobs.service.JobService`): the `openeo` client creates, lists and
reads a land-cover job; pagination; start and cancel; results (partial, finished, failed); and bad input —
each refused with the right openEO error and nothing stored."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openeo
import psycopg
import pytest

from api.conftest import USERS, Server, land_cover_process
from hrlc.jobs.dag import LAND_COVER_PROCESSORS
from hrlc.lake.store import LocalStore
from hrlc.settings import local_path

pytest.importorskip("hrlc.jobs.service")


def _count(server: Server, user: str) -> int:
    with psycopg.connect(server.dsn) as conn:
        if conn.execute("select to_regclass('hrlc_jobs.jobs')").fetchone() == (None,):
            return 0  # no job was ever stored in this database
        row = conn.execute("select count(*) from hrlc_jobs.jobs where user_id = %s", [user]).fetchone()
    return int(row[0]) if row else 0


def _sql(server: Server, sql: str, params: list[Any]) -> None:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute(sql, params)


def _create(client: httpx.Client, **body: Any) -> str:
    r = client.post("/jobs", json={"process": land_cover_process(), **body})
    assert r.status_code == 201, r.text
    return str(r.headers["OpenEO-Identifier"])


def test_openeo_client_creates_lists_and_reads_a_job(server: Server) -> None:
    con = openeo.connect(server.url).authenticate_basic("alice", USERS["alice"])
    job = con.create_job(land_cover_process(), title="Land cover 2021", description="a test job")
    meta = job.describe()
    assert meta["status"] == "created"
    assert meta["title"] == "Land cover 2021"
    assert meta["process"]["process_graph"]["lc"]["process_id"] == "hrlc_land_cover"
    assert meta["created"].endswith("Z")
    assert job.job_id in {j["id"] for j in con.list_jobs()}
    assert any("job created" in e["message"] for e in job.logs())


def test_post_jobs_headers_and_patch(server: Server, tokens: dict[str, str]) -> None:
    alice = server.client(tokens["alice"])
    r = alice.post("/jobs", json={"process": land_cover_process(), "title": "t1"})
    assert r.status_code == 201
    job_id = r.headers["OpenEO-Identifier"]
    assert r.headers["Location"] == f"{server.url}/jobs/{job_id}"
    assert alice.patch(f"/jobs/{job_id}", json={"title": "t2"}).status_code == 204
    assert alice.get(f"/jobs/{job_id}").json()["title"] == "t2"
    r = alice.patch(f"/jobs/{job_id}", json={})
    assert (r.status_code, r.json()["code"]) == (400, "NoDataForUpdate")
    r = alice.patch(
        f"/jobs/{job_id}",
        json={"process": {"process_graph": {"x": {"process_id": "nope", "arguments": {}, "result": True}}}},
    )
    assert (r.status_code, r.json()["code"]) == (400, "ProcessUnsupported")
    assert alice.delete(f"/jobs/{job_id}").status_code == 204
    r = alice.get(f"/jobs/{job_id}")
    assert (r.status_code, r.json()["code"]) == (404, "JobNotFound")


def test_pagination(server: Server) -> None:
    bob = server.client(server.token("bob"))
    before = _count(server, "bob")
    made = {_create(bob, title=f"page {i}") for i in range(3)}
    seen: list[str] = []
    url: str | None = "/jobs?limit=2"
    pages = 0
    while url:
        page = bob.get(url).json()
        assert len(page["jobs"]) <= 2
        seen += [j["id"] for j in page["jobs"]]
        assert all("process" not in j for j in page["jobs"])
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
        pages += 1
    assert len(seen) == len(set(seen)) == before + 3
    assert made <= set(seen)
    assert pages == (before + 3 + 1) // 2


def test_another_users_job_is_not_found(server: Server, tokens: dict[str, str]) -> None:
    alice, bob = server.client(tokens["alice"]), server.client(tokens["bob"])
    job_id = _create(alice)
    assert job_id not in {j["id"] for j in bob.get("/jobs?limit=1000").json()["jobs"]}
    for method, path, body in [
        ("GET", f"/jobs/{job_id}", None),
        ("PATCH", f"/jobs/{job_id}", {"title": "mine"}),
        ("DELETE", f"/jobs/{job_id}", None),
        ("POST", f"/jobs/{job_id}/results", None),
        ("DELETE", f"/jobs/{job_id}/results", None),
        ("GET", f"/jobs/{job_id}/results", None),
        ("GET", f"/jobs/{job_id}/logs", None),
    ]:
        r = bob.request(method, path, json=body)
        assert (r.status_code, r.json()["code"]) == (404, "JobNotFound"), (method, path)
    assert alice.get(f"/jobs/{job_id}").json()["title"] is None  # untouched


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        (lambda p: p["process_graph"]["lc"].update(process_id="no_such_process"), 400, "ProcessUnsupported"),
        (lambda p: p["process_graph"]["lc"]["arguments"].pop("year"), 400, "ProcessParameterRequired"),
        (lambda p: p["process_graph"]["lc"]["arguments"].update(year="twenty"), 400, "ProcessGraphInvalid"),
        (lambda p: p["process_graph"]["save"].pop("result"), 400, "ProcessGraphInvalid"),
        (lambda p: p.pop("process_graph"), 400, "ProcessGraphMissing"),
        (
            lambda p: p["process_graph"].update(
                load={
                    "process_id": "load_collection",
                    "arguments": {"id": "nope", "spatial_extent": None, "temporal_extent": None},
                }
            ),
            404,
            "CollectionNotFound",
        ),
        (  # a graph of standard processes whose bounding box lies outside the collection's data
            lambda p: p.update(
                process_graph={
                    "load": {
                        "process_id": "load_collection",
                        "arguments": {
                            "id": "hrlc-optical-composites",
                            "spatial_extent": {"west": 100.0, "south": 10.0, "east": 100.1, "north": 10.1},
                            "temporal_extent": None,
                        },
                    },
                    "save": {
                        "process_id": "save_result",
                        "arguments": {"data": {"from_node": "load"}, "format": "GTiff"},
                        "result": True,
                    },
                }
            ),
            400,
            "NoDataAvailable",
        ),  # fmt: skip
    ],
)
def test_bad_jobs_are_refused_and_nothing_is_stored(
    server: Server, tokens: dict[str, str], change: Any, status: int, code: str
) -> None:
    process = land_cover_process()
    change(process)
    before = _count(server, "alice")
    r = server.client(tokens["alice"]).post("/jobs", json={"process": process})
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert _count(server, "alice") == before


def test_jobs_need_a_token(server: Server) -> None:
    before = _count(server, "alice")
    r = httpx.post(f"{server.url}/jobs", json={"process": land_cover_process()})
    assert (r.status_code, r.json()["code"]) == (401, "AuthenticationRequired")
    assert _count(server, "alice") == before


def test_results_before_finishing_partial_and_failed(server: Server, tokens: dict[str, str]) -> None:
    alice = server.client(tokens["alice"])
    job_id = _create(alice)
    r = alice.get(f"/jobs/{job_id}/results")
    assert (r.status_code, r.json()["code"]) == (400, "JobNotFinished")
    r = alice.get(f"/jobs/{job_id}/results", params={"partial": "true"})
    assert r.status_code == 200
    assert r.json()["assets"] == {} and r.json()["openeo:status"] == "running"
    _sql(server, "update hrlc_jobs.jobs set status = 'error', error = 'boom' where id = %s", [job_id])
    r = alice.get(f"/jobs/{job_id}/results")
    assert r.status_code == 424 and r.json()["message"] == "boom"


def test_results_of_a_finished_job(server: Server, tokens: dict[str, str]) -> None:
    alice = server.client(tokens["alice"])
    job_id = _create(alice)
    store = LocalStore(local_path(server.settings.store))
    item = {
        "type": "Feature",
        "stac_version": "1.1.0",
        "id": f"class-map-{job_id}",
        "geometry": None,
        "bbox": [10, 45, 10.05, 45.05],
        "properties": {"datetime": "2021-07-01T00:00:00Z"},
        "assets": {"data": {"href": store.href("products/map.tif"), "type": "image/tiff", "roles": ["data"]}},
        "links": [],
    }
    store.write_bytes(f"metadata/{job_id}.json", json.dumps(item).encode())
    href = store.href(f"metadata/{job_id}.json")
    _sql(
        server,
        "insert into hrlc_jobs.tasks (job_id, id, processor, processor_version, params, status, outputs) "
        "values (%s, 'classification', 'classification', '1', '{}', 'finished', %s::jsonb)",
        [job_id, json.dumps([href])],
    )
    _sql(server, "update hrlc_jobs.jobs set status = 'finished', progress = 1 where id = %s", [job_id])
    doc = alice.get(f"/jobs/{job_id}/results").json()
    assert doc["openeo:status"] == "finished"
    assert alice.get(f"/jobs/{job_id}").json()["progress"] == 100
    assert doc["assets"][f"class-map-{job_id}/data"]["href"] == store.href("products/map.tif")
    assert {"rel": "item", "href": href, "type": "application/geo+json"} in doc["links"]
    assert doc["extent"]["spatial"]["bbox"] == [[10, 45, 10.05, 45.05]]
    con = openeo.connect(server.url).authenticate_basic("alice", USERS["alice"])
    assert [a.key for a in con.job(job_id).get_results().get_assets()] == [f"class-map-{job_id}/data"]


def test_start_and_cancel(server: Server, tokens: dict[str, str]) -> None:
    import os

    from hrlc.jobs.broker import Topology, delete

    alice = server.client(tokens["alice"])
    job_id = _create(alice)
    try:
        r = alice.post(f"/jobs/{job_id}/results")
        assert r.status_code == 202, r.text
        job = alice.get(f"/jobs/{job_id}").json()
        assert job["status"] == "queued" and job["queued"]
        assert alice.delete(f"/jobs/{job_id}/results").status_code == 204
        assert alice.get(f"/jobs/{job_id}").json()["status"] == "canceled"
    finally:
        topo = Topology(os.environ["HRLC_BROKER_PREFIX"])
        delete(topo, list(LAND_COVER_PROCESSORS))


def test_jobs_may_use_the_users_own_processes(server: Server, tokens: dict[str, str]) -> None:
    alice, bob = server.client(tokens["alice"]), server.client(tokens["bob"])
    udp = {"parameters": [{"name": "x", "description": "x", "schema": {"type": "number"}}],
           "process_graph": {"m": {"process_id": "multiply", "arguments": {"x": {"from_parameter": "x"}, "y": 2},
                                   "result": True}}}  # fmt: skip
    assert alice.put("/process_graphs/double_it", json=udp).status_code == 200
    process = {"process_graph": {"d": {"process_id": "double_it", "arguments": {"x": 21}, "result": True}}}
    r = alice.post("/jobs", json={"process": process})
    assert r.status_code == 201, r.text
    before = _count(server, "bob")
    r = bob.post("/jobs", json={"process": process})
    assert (r.status_code, r.json()["code"]) == (400, "ProcessUnsupported")
    assert _count(server, "bob") == before
    assert alice.delete("/process_graphs/double_it").status_code == 204  # other tests list alice's processes

"""The openEO API's routes over fakes of its ports (conftest.py): what a client sees of discovery, collections,
processes, batch jobs, results and user-defined processes, and the openEO error of every bad request — with
no database and no broker."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pystac

from api_routes.conftest import Api
from hrlc.jobs.request import LandCoverRequest


def land_cover(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "spatial_extent": {"west": 10.0, "south": 45.0, "east": 10.05, "north": 45.05},
        "year": 2021,
        "source": "/data/catalog.json",
        "training": "/data/training.gpkg",
        **overrides,
    }
    return {
        "process_graph": {
            "lc": {"process_id": "hrlc_land_cover", "arguments": args},
            "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "lc"}, "format": "GTiff"},
                     "result": True},
        }
    }  # fmt: skip


def _create(api: Api, user: str = "alice", **body: Any) -> str:
    r = api.client.post("/jobs", json={"process": land_cover(), **body}, headers=api.auth(user))
    assert r.status_code == 201, r.text
    return str(r.headers["OpenEO-Identifier"])


def test_capabilities_list_the_job_routes(api: Api) -> None:
    endpoints = {e["path"]: set(e["methods"]) for e in api.client.get("/").json()["endpoints"]}
    assert {"GET", "POST"} <= endpoints["/jobs"]
    assert {"GET", "PATCH", "DELETE"} <= endpoints["/jobs/{job_id}"]
    assert "PUT" in endpoints["/process_graphs/{process_graph_id}"]


def test_collections_come_from_the_catalogue_port(api: Api) -> None:
    ids = [c["id"] for c in api.client.get("/collections").json()["collections"]]
    assert ids == [c["id"] for c in api.catalog.collections()] and "hrlc-class-maps" in ids
    one = api.client.get("/collections/hrlc-class-maps").json()
    assert one["cube:dimensions"]["bands"]["values"] == ["data"]  # no item yet: no band known
    missing = api.client.get("/collections/nope")
    assert missing.status_code == 404 and missing.json()["code"] == "CollectionNotFound"


def test_process_description_says_what_the_request_model_says(api: Api) -> None:
    processes = {p["id"]: p for p in api.client.get("/processes").json()["processes"]}
    params = {p["name"]: p for p in processes["hrlc_land_cover"]["parameters"]}
    for name, field in LandCoverRequest.model_fields.items():
        if name in params and not field.is_required():
            assert params[name]["default"] == field.default, name


def test_a_job_lives_created_queued_canceled_deleted(api: Api) -> None:
    alice = api.auth("alice")
    job_id = _create(api, title="t1")
    assert api.client.patch(f"/jobs/{job_id}", json={"title": "t2"}, headers=alice).status_code == 204
    got = api.client.get(f"/jobs/{job_id}", headers=alice).json()
    assert (got["title"], got["status"]) == ("t2", "created")
    assert [j["id"] for j in api.client.get("/jobs", headers=alice).json()["jobs"]] == [job_id]
    assert api.client.post(f"/jobs/{job_id}/results", headers=alice).status_code == 202
    assert api.client.get(f"/jobs/{job_id}", headers=alice).json()["status"] == "queued"
    assert api.client.patch(f"/jobs/{job_id}", json={"title": "t3"}, headers=alice).status_code == 400
    assert api.client.delete(f"/jobs/{job_id}/results", headers=alice).status_code == 204
    assert api.client.get(f"/jobs/{job_id}", headers=alice).json()["status"] == "canceled"
    logs = api.client.get(f"/jobs/{job_id}/logs", headers=alice).json()["logs"]
    assert [e["message"] for e in logs][:2] == ["job created", "job queued (run 1)"]
    assert api.client.delete(f"/jobs/{job_id}", headers=alice).status_code == 204
    gone = api.client.get(f"/jobs/{job_id}", headers=alice)
    assert gone.status_code == 404 and gone.json()["code"] == "JobNotFound"


def test_another_users_job_is_not_found(api: Api) -> None:
    job_id = _create(api, "alice")
    for method in ("GET", "DELETE"):
        r = api.client.request(method, f"/jobs/{job_id}", headers=api.auth("bob"))
        assert r.status_code == 404 and r.json()["code"] == "JobNotFound"
    assert api.client.get("/jobs", headers=api.auth("bob")).json()["jobs"] == []
    assert job_id in api.jobs.jobs  # bob's delete left it


def test_bad_jobs_are_refused_in_openeo_errors_and_nothing_is_stored(api: Api) -> None:
    alice = api.auth("alice")
    cases = [
        (land_cover(colour="red"), "ProcessParameterUnsupported"),
        (land_cover(classifier="svm"), "ProcessGraphInvalid"),  # the planner's refusal (tests/api/test_jobs)
        (land_cover(year=1800), "ProcessGraphInvalid"),
        (land_cover(source="/elsewhere/catalog.json"), "ProcessParameterInvalid"),  # not allowed here
        ({"process_graph": {"x": {"process_id": "no_such_process", "arguments": {}, "result": True}}}, None),
    ]
    for process, code in cases:
        r = api.client.post("/jobs", json={"process": process}, headers=alice)
        assert r.status_code == 400, (process, r.text)
        body = r.json()
        assert body["message"] and "\n" not in body["message"]
        if code is not None:
            assert body["code"] == code, body
    assert api.jobs.jobs == {}


def test_jobs_need_a_token(api: Api) -> None:
    r = api.client.get("/jobs")
    assert r.status_code == 401 and r.json()["code"] == "AuthenticationRequired"
    assert api.client.get("/jobs", headers={"Authorization": "Bearer basic//forged"}).status_code == 403


def test_results_of_a_finished_job_list_its_items(api: Api) -> None:
    alice = api.auth("alice")
    job_id = _create(api)
    r = api.client.get(f"/jobs/{job_id}/results", headers=alice)
    assert r.status_code == 400 and r.json()["code"] == "JobNotFinished"
    api.store.write_bytes("classification/2021/final/map.tif", b"not read by the route")
    item = pystac.Item(
        "classified_map_optical_2021_annual",
        {"type": "Polygon", "coordinates": [[[10, 45], [10.05, 45], [10.05, 45.05], [10, 45.05], [10, 45]]]},
        [10.0, 45.0, 10.05, 45.05],
        dt.datetime(2021, 7, 2, tzinfo=dt.UTC),
        {"hrlc:product": "class-map"},
        collection="hrlc-class-maps",
    )
    item.add_asset("data", pystac.Asset(api.store.href("classification/2021/final/map.tif"), roles=["data"]))
    api.jobs.finish(job_id, [api.catalog.add(item)])
    results = api.client.get(f"/jobs/{job_id}/results", headers=alice).json()
    assert results["extent"]["spatial"]["bbox"] == [[10.0, 45.0, 10.05, 45.05]]
    assert [ln["href"] for ln in results["links"] if ln["rel"] == "item"] == [api.catalog.href(item)]
    assert any(a["href"].endswith("map.tif") for a in results["assets"].values())


def test_user_defined_processes_are_per_user(api: Api) -> None:
    alice, bob = api.auth("alice"), api.auth("bob")
    udp = {
        "parameters": [{"name": "x", "description": "a number", "schema": {"type": "number"}}],
        "process_graph": {"a": {"process_id": "absolute", "arguments": {"x": {"from_parameter": "x"}},
                                "result": True}},
    }  # fmt: skip
    assert api.client.put("/process_graphs/myabs", json=udp, headers=alice).status_code == 200
    assert api.client.get("/process_graphs/myabs", headers=alice).json()["id"] == "myabs"
    assert api.client.get("/process_graphs/myabs", headers=bob).status_code == 404
    assert [p["id"] for p in api.client.get("/process_graphs", headers=alice).json()["processes"]] == [
        "myabs"
    ]
    assert api.client.delete("/process_graphs/myabs", headers=alice).status_code == 204
    assert api.graphs.rows == {}

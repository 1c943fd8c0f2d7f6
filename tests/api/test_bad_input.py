"""Bad input to the openEO API is a 4xx in openEO error JSON, never a 500 (issue 10, findings 7 and 8): NUL
characters, offsets beyond any integer column, non-ASCII digits, user-defined processes that call each other,
graphs too long or too large for the evaluator, array_create of 1e13 elements, a broken users file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from api.conftest import Server, land_cover_process
from hrlc.api.openeo.auth import Authenticator, hash_password
from hrlc.api.openeo.errors import OpenEOError
from hrlc.graph.complexity import GraphLimits, check_complexity, longest_chain
from hrlc.graph.errors import GraphError
from hrlc.settings import Settings


def _add_chain(n: int) -> dict[str, Any]:
    graph: dict[str, Any] = {"n0": {"process_id": "add", "arguments": {"x": 1, "y": 1}}}
    for i in range(1, n):
        graph[f"n{i}"] = {"process_id": "add", "arguments": {"x": {"from_node": f"n{i - 1}"}, "y": 1}}
    graph[f"n{n - 1}"]["result"] = True
    return {"process_graph": graph}


def _call(pid: str) -> dict[str, Any]:
    return {"process_graph": {"c": {"process_id": pid, "arguments": {}, "result": True}}}


def _error(r: Any, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == code and body["id"] and body["message"], body
    return str(body["message"])


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/jobs/abc%00def", None),
        ("GET", "/collections/abc%00def", None),
        ("GET", "/jobs?limit=%00", None),
        ("POST", "/jobs", {"title": "a\u0000b", "process": _add_chain(2)}),
        ("PUT", "/process_graphs/nul", {"description": "x\u0000", **_add_chain(2)}),
    ],
)
def test_nul_characters_are_400(
    server: Server, tokens: dict[str, str], method: str, path: str, body: dict[str, Any] | None
) -> None:
    with server.client(tokens["alice"]) as c:
        r = c.request(method, server.url + path, json=body)
    assert "NUL" in _error(r, 400, "BadRequest")


def test_offsets_out_of_range_are_400(server: Server, tokens: dict[str, str]) -> None:
    with server.client(tokens["alice"]) as c:
        _error(c.get("/jobs", params={"offset": "99999999999999999999"}), 400, "BadRequest")
        job = c.post("/jobs", json={"process": land_cover_process()})
        assert job.status_code == 201, job.text
        job_id = job.headers["OpenEO-Identifier"]
        _error(c.get(f"/jobs/{job_id}/logs", params={"offset": "³"}), 400, "BadRequest")
        assert c.get(f"/jobs/{job_id}/logs", params={"offset": "0"}).status_code == 200
        c.delete(f"/jobs/{job_id}")


def test_user_defined_processes_that_call_each_other_are_refused(
    server: Server, tokens: dict[str, str]
) -> None:
    with server.client(tokens["alice"]) as c:
        try:
            assert c.put("/process_graphs/cyc_a", json=_add_chain(2)).status_code == 200
            assert c.put("/process_graphs/cyc_b", json=_call("cyc_a")).status_code == 200
            # cyc_a -> cyc_b -> cyc_a: refused when stored, so it never reaches /result or a job
            message = _error(c.put("/process_graphs/cyc_a", json=_call("cyc_b")), 400, "ProcessGraphInvalid")
            assert "cycle: cyc_b → cyc_a → cyc_b" in message
            message = _error(
                c.put("/process_graphs/cyc_self", json=_call("cyc_self")), 400, "ProcessGraphInvalid"
            )
            assert "cycle: cyc_self → cyc_self" in message
            assert c.get("/process_graphs/cyc_self").status_code == 404  # nothing stored
        finally:
            for pid in ("cyc_a", "cyc_b"):
                c.delete(f"/process_graphs/{pid}")


def test_graphs_beyond_the_evaluator_are_refused_by_name(server: Server, tokens: dict[str, str]) -> None:
    with server.client(tokens["alice"]) as c:
        r = c.post("/result", json={"process": _add_chain(100)})
        assert r.status_code == 200 and r.json() == 101
        message = _error(c.post("/result", json={"process": _add_chain(130)}), 400, "ProcessGraphComplexity")
        assert "chain of 130 nodes" in message
        _error(c.post("/jobs", json={"process": _add_chain(130)}), 400, "ProcessGraphComplexity")
        huge = {"process_graph": {"a": {"process_id": "array_create", "arguments": {"data": [1],
                "repeat": 10_000_000_000_000}, "result": True}}}  # fmt: skip
        assert "array_create" in _error(
            c.post("/result", json={"process": huge}), 400, "ProcessGraphComplexity"
        )


def test_long_strings_and_big_bodies_are_refused(server: Server, tokens: dict[str, str]) -> None:
    with server.client(tokens["alice"]) as c:
        r = c.post("/jobs", content=b'{"title": "' + b"x" * (11 * 1024 * 1024) + b'"}',
                   headers={"content-type": "application/json"})  # fmt: skip
        assert r.status_code == 413 and r.json()["code"] == "PayloadTooLarge"


# ------------------------------------------------------------------------------------ pure and unit tests
def test_complexity_counts_every_use_of_a_user_process() -> None:
    two = {"a": {"process_id": "add", "arguments": {"x": 1, "y": 1}},
           "b": {"process_id": "add", "arguments": {"x": 1, "y": 1}, "result": True}}  # fmt: skip
    udps = {"twice": {"process_graph": two}}
    graph = {f"u{i}": {"process_id": "twice", "arguments": {}} for i in range(10)}
    check_complexity(graph, udps.get, GraphLimits(max_nodes=30))  # 10 + 10 * 2
    with pytest.raises(GraphError, match="more than 29 nodes"):
        check_complexity(graph, udps.get, GraphLimits(max_nodes=29))
    nested = {"p": {"process_id": "apply", "arguments": {"process": _call("add")}}}
    for _ in range(4):
        nested = {"p": {"process_id": "apply", "arguments": {"process": {"process_graph": nested}}}}
    with pytest.raises(GraphError, match="nest more than 3"):
        check_complexity(nested, None, GraphLimits(max_nesting=3))


def test_longest_chain_and_reference_cycles() -> None:
    assert longest_chain(_add_chain(7)["process_graph"]) == 7
    assert longest_chain({"a": {"process_id": "add", "arguments": {}}}) == 1
    diamond = {"a": {"arguments": {}}, "b": {"arguments": {"x": {"from_node": "a"}}},
               "c": {"arguments": {"x": {"from_node": "a"}}},
               "d": {"arguments": {"x": [{"from_node": "b"}, {"from_node": "c"}]}}}  # fmt: skip
    assert longest_chain(diamond) == 3
    with pytest.raises(GraphError, match="depends on itself"):
        longest_chain(
            {"a": {"arguments": {"x": {"from_node": "b"}}}, "b": {"arguments": {"x": {"from_node": "a"}}}}
        )


def test_a_broken_users_file_is_503_then_the_last_good_table(tmp_path: Path) -> None:
    users = tmp_path / "users.json"
    users.write_text('{"alice": "')  # truncated mid-write
    auth = Authenticator(Settings(users_file=str(users), token_secret="s" * 32))
    with pytest.raises(OpenEOError) as e:
        auth.users()
    assert e.value.status == 503 and e.value.code == "ServiceUnavailable"
    users.write_text(json.dumps({"alice": hash_password("pw")}))
    assert set(auth.users()) == {"alice"}
    users.write_text('{"alice": ')  # broken again (a new mtime): the table read before stays
    import os

    os.utime(users, (1, 1))
    assert set(auth.users()) == {"alice"}


def test_a_job_over_its_pixel_budget_is_refused_before_it_is_stored(
    server: Server, tokens: dict[str, str]
) -> None:
    world = {"west": -180.0, "south": -85.0, "east": 180.0, "north": 85.0}
    with server.client(tokens["alice"]) as c:
        before = c.get("/jobs").json()["jobs"]
        r = c.post("/jobs", json={"process": land_cover_process(spatial_extent=world, resolution=1)})
        message = _error(r, 400, "ProcessGraphComplexity")
        assert "pixels" in message and "budget" in message
        # half a degree at 10 m (about 30 million pixels) is within the default budget of 1e10
        r = c.post("/jobs", json={"process": land_cover_process(
            spatial_extent={"west": 10.0, "south": 45.0, "east": 10.5, "north": 45.5})})  # fmt: skip
        assert r.status_code == 201, r.text
        c.delete(f"/jobs/{r.headers['OpenEO-Identifier']}")
        assert c.get("/jobs").json()["jobs"] == before


def test_job_titles_and_descriptions_are_bounded(server: Server, tokens: dict[str, str]) -> None:
    with server.client(tokens["alice"]) as c:
        r = c.post("/jobs", json={"title": "x" * 1001, "process": land_cover_process()})
        assert "1001 characters" in _error(r, 400, "BadRequest")
        _error(c.post("/jobs", json={"title": ["a"], "process": land_cover_process()}), 400, "BadRequest")
        r = c.post("/jobs", json={"title": "t" * 1000, "process": land_cover_process()})
        assert r.status_code == 201, r.text
        job_id = r.headers["OpenEO-Identifier"]
        _error(c.patch(f"/jobs/{job_id}", json={"description": "d" * 100_001}), 400, "BadRequest")
        c.delete(f"/jobs/{job_id}")


def test_pixel_budgets_per_user() -> None:
    from hrlc.jobs.planner import Admission, TooLarge, plan, target_pixels

    settings = Settings(job_max_pixels=1000, job_max_pixels_by_user={"operator": 10**12})
    assert settings.pixel_budget("alice") == 1000 and settings.pixel_budget("operator") == 10**12
    process = land_cover_process(spatial_extent={"west": 10.0, "south": 45.0, "east": 10.01, "north": 45.01})
    dag = plan(process)
    assert target_pixels(dag) == 10_980**2  # ~0.01° x 0.01° at 10 m, in one tile: the tile is computed whole
    with pytest.raises(TooLarge):
        plan(process, admit=Admission("alice", settings.pixel_budget("alice")))
    plan(process, admit=Admission("operator", settings.pixel_budget("operator")))

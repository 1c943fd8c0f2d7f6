"""Validation, user-defined processes and synchronous processing (refusals)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from api.conftest import Server, land_cover_process


def _load_save(collection: str = "hrlc-class-maps", extent: dict[str, Any] | None = None) -> dict[str, Any]:
    extent = extent or {"west": 10.0, "south": 45.0, "east": 10.01, "north": 45.01}
    return {
        "process_graph": {
            "load": {
                "process_id": "load_collection",
                "arguments": {"id": collection, "spatial_extent": extent, "temporal_extent": None},
            },
            "save": {
                "process_id": "save_result",
                "arguments": {"data": {"from_node": "load"}, "format": "GTiff"},
                "result": True,
            },
        }
    }


def _with_reduce() -> dict[str, Any]:
    process = _load_save()
    graph = process["process_graph"]
    graph["reduce"] = {
        "process_id": "reduce_dimension",
        "arguments": {
            "data": {"from_node": "load"},
            "dimension": "t",
            "reducer": {
                "process_graph": {
                    "m": {
                        "process_id": "median",
                        "arguments": {"data": {"from_parameter": "data"}},
                        "result": True,
                    }
                }
            },
        },
    }
    graph["save"]["arguments"]["data"] = {"from_node": "reduce"}
    return process


def _unbounded() -> dict[str, Any]:
    graph = _load_save()["process_graph"]
    graph["load"]["arguments"]["spatial_extent"] = None
    return graph


def _codes(r: httpx.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return [e["code"] for e in r.json()["errors"]]


def test_validation_accepts_good_graphs(server: Server) -> None:
    assert _codes(httpx.post(f"{server.url}/validation", json=land_cover_process())) == []
    assert _codes(httpx.post(f"{server.url}/validation", json=_load_save())) == []
    assert _codes(httpx.post(f"{server.url}/validation", json=_with_reduce())) == []


def test_validation_reports_errors(server: Server) -> None:
    bad = land_cover_process()
    del bad["process_graph"]["lc"]["arguments"]["year"]
    bad["process_graph"]["lc"]["arguments"]["colour"] = "blue"
    assert _codes(httpx.post(f"{server.url}/validation", json=bad)) == [
        "ProcessParameterRequired",
        "ProcessParameterUnsupported",
    ]
    unknown = land_cover_process()
    unknown["process_graph"]["lc"]["process_id"] = "make_it_so"
    assert _codes(httpx.post(f"{server.url}/validation", json=unknown)) == ["ProcessUnsupported"]
    assert _codes(httpx.post(f"{server.url}/validation", json=_load_save("nope"))) == ["CollectionNotFound"]
    dangling = _load_save()
    dangling["process_graph"]["save"]["arguments"]["data"] = {"from_node": "nowhere"}
    assert _codes(httpx.post(f"{server.url}/validation", json=dangling)) == ["ProcessGraphInvalid"]
    no_result = _load_save()
    del no_result["process_graph"]["save"]["result"]
    assert _codes(httpx.post(f"{server.url}/validation", json=no_result)) == ["ProcessGraphInvalid"]
    r = httpx.post(f"{server.url}/validation", json={"title": "no graph"})
    assert (r.status_code, r.json()["code"]) == (400, "ProcessGraphMissing")
    r = httpx.post(
        f"{server.url}/validation", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert (r.status_code, r.json()["code"]) == (400, "BadRequest")


def test_user_defined_processes_crud(server: Server, tokens: dict[str, str]) -> None:
    alice, bob = server.client(tokens["alice"]), server.client(tokens["bob"])
    udp = {**_load_save(), "summary": "Class map of a small area", "parameters": []}
    assert alice.put("/process_graphs/small_map", json=udp).status_code == 200
    assert [p["id"] for p in alice.get("/process_graphs").json()["processes"]] == ["small_map"]
    got = alice.get("/process_graphs/small_map").json()
    assert got["process_graph"] == udp["process_graph"] and got["id"] == "small_map"
    # private to alice
    assert bob.get("/process_graphs").json()["processes"] == []
    r = bob.get("/process_graphs/small_map")
    assert (r.status_code, r.json()["code"]) == (404, "ProcessGraphNotFound")
    # used by name in alice's graphs, unknown in bob's
    uses = {"process_graph": {"x": {"process_id": "small_map", "arguments": {}, "result": True}}}
    assert _codes(alice.post("/validation", json=uses)) == []
    assert _codes(bob.post("/validation", json=uses)) == ["ProcessUnsupported"]
    # refusals: predefined id, invalid graph
    r = alice.put("/process_graphs/ndvi", json=udp)
    assert (r.status_code, r.json()["code"]) == (400, "PredefinedProcessExists")
    r = alice.put("/process_graphs/broken", json=_load_save("nope"))
    assert (r.status_code, r.json()["code"]) == (404, "CollectionNotFound")
    assert alice.get("/process_graphs/broken").status_code == 404
    assert alice.delete("/process_graphs/small_map").status_code == 204
    assert alice.delete("/process_graphs/small_map").status_code == 404
    assert alice.get("/process_graphs").json()["processes"] == []


@pytest.mark.parametrize(
    ("process", "code"),
    [
        (land_cover_process(), "ProcessGraphComplexity"),
        (
            _load_save(extent={"west": 0.0, "south": 40.0, "east": 5.0, "north": 45.0}),
            "ProcessGraphComplexity",
        ),
        ({"process_graph": _unbounded()}, "ProcessGraphComplexity"),
    ],
)
def test_sync_result_refuses_large_requests(
    server: Server, tokens: dict[str, str], process: Any, code: str
) -> None:
    r = server.client(tokens["alice"]).post("/result", json={"process": process})
    body = r.json()
    assert body["code"] == code, body
    assert "batch job" in body["message"]
    assert any(link["href"].endswith("/jobs") for link in body["links"])


def test_sync_result_needs_a_token_and_a_valid_graph(server: Server, tokens: dict[str, str]) -> None:
    r = httpx.post(f"{server.url}/result", json={"process": _load_save()})
    assert (r.status_code, r.json()["code"]) == (401, "AuthenticationRequired")
    r = server.client(tokens["alice"]).post("/result", json={"process": _load_save("nope")})
    assert (r.status_code, r.json()["code"]) == (404, "CollectionNotFound")


def _composite(extent: dict[str, Any], bands: list[str] | None = None, fmt: str = "GTiff") -> dict[str, Any]:
    process = _load_save("hrlc-optical-composites", extent)
    args = process["process_graph"]["load"]["arguments"]
    args["temporal_extent"] = ["2021-06-01", "2021-08-01"]
    if bands is not None:
        args["bands"] = bands
    process["process_graph"]["save"]["arguments"]["format"] = fmt
    return process


def test_sync_result_of_a_small_request(server: Server, tokens: dict[str, str]) -> None:
    import numpy as np
    import rasterio
    from rasterio.io import MemoryFile

    from api.conftest import COMPOSITE_EPSG, COMPOSITE_ORIGIN, composite_bands

    x0, y1 = COMPOSITE_ORIGIN
    extent = {"west": x0 + 100, "south": y1 - 200, "east": x0 + 200, "north": y1 - 100, "crs": COMPOSITE_EPSG}
    r = server.client(tokens["alice"]).post("/result", json={"process": _composite(extent, ["nir"])})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("image/tiff")
    with MemoryFile(r.content) as mem, mem.open() as ds:
        assert (ds.count, ds.width, ds.height) == (1, 10, 10)
        assert ds.crs == rasterio.crs.CRS.from_epsg(COMPOSITE_EPSG)
        assert ds.descriptions == ("nir",)
        np.testing.assert_array_equal(ds.read(1), composite_bands()[1, 10:20, 10:20])
    # lon/lat extents work too (the window covers the request)
    ll = {"west": 9.0015, "south": 45.1560, "east": 9.0025, "north": 45.1565}
    r = server.client(tokens["alice"]).post("/result", json={"process": _composite(ll)})
    assert r.status_code == 200, r.text
    with MemoryFile(r.content) as mem, mem.open() as ds:
        assert ds.count == 2 and 0 < ds.width * ds.height <= 1600


def test_sync_result_evaluates_standard_processes(
    server: Server, tokens: dict[str, str], tmp_path: Any
) -> None:
    """NDVI then the median over time, through openeo-processes-dask; and the same cube as netCDF."""
    import numpy as np
    import xarray as xr
    from rasterio.io import MemoryFile

    from api.conftest import COMPOSITE_EPSG, COMPOSITE_ORIGIN, composite_bands

    x0, y1 = COMPOSITE_ORIGIN
    extent = {"west": x0 + 100, "south": y1 - 300, "east": x0 + 300, "north": y1 - 100, "crs": COMPOSITE_EPSG}
    process = _composite(extent)
    graph = process["process_graph"]
    graph["ndvi"] = {"process_id": "ndvi", "arguments": {"data": {"from_node": "load"}}}
    graph["reduce"] = _with_reduce()["process_graph"]["reduce"]
    graph["reduce"]["arguments"]["data"] = {"from_node": "ndvi"}
    graph["save"]["arguments"]["data"] = {"from_node": "reduce"}
    r = server.client(tokens["alice"]).post("/result", json={"process": process})
    assert r.status_code == 200, r.text
    red, nir = composite_bands()[:, 10:30, 10:30].astype("float64")
    with MemoryFile(r.content) as mem, mem.open() as ds:
        np.testing.assert_allclose(ds.read(1), (nir - red) / (nir + red), rtol=1e-6)
    r = server.client(tokens["alice"]).post("/result", json={"process": _composite(extent, fmt="netCDF")})
    assert (r.status_code, r.headers["content-type"]) == (200, "application/x-netcdf"), r.text
    (tmp_path / "cube.nc").write_bytes(r.content)
    with xr.open_dataset(tmp_path / "cube.nc") as ds:
        assert ds.sizes["time"] == 1
        np.testing.assert_array_equal(ds["nir"].values[0], nir)


def test_sync_result_refusals_of_small_requests(server: Server, tokens: dict[str, str]) -> None:
    from api.conftest import COMPOSITE_EPSG, COMPOSITE_ORIGIN

    x0, y1 = COMPOSITE_ORIGIN
    extent = {"west": x0 + 100, "south": y1 - 200, "east": x0 + 200, "north": y1 - 100, "crs": COMPOSITE_EPSG}
    alice = server.client(tokens["alice"])
    r = alice.post("/result", json={"process": _composite(extent, ["swir"])})
    assert (r.status_code, r.json()["code"]) == (400, "ProcessParameterInvalid")
    r = alice.post("/result", json={"process": _composite(extent, fmt="PNG")})
    assert (r.status_code, r.json()["code"]) == (400, "FormatUnsupported")
    far = {"west": 0.0, "south": 0.0, "east": 0.001, "north": 0.001}
    r = alice.post("/result", json={"process": _composite(far)})
    assert (r.status_code, r.json()["code"]) == (400, "NoDataAvailable")


def test_sync_result_runs_the_users_own_processes(server: Server, tokens: dict[str, str]) -> None:
    """A user-defined process (PUT /process_graphs) used in POST /result, with a parameter and a default."""
    import numpy as np
    from rasterio.io import MemoryFile

    from api.conftest import COMPOSITE_EPSG, COMPOSITE_ORIGIN, composite_bands

    alice = server.client(tokens["alice"])
    scaled = {
        "parameters": [
            {"name": "data", "description": "A cube", "schema": {"type": "object", "subtype": "datacube"}},
            {"name": "factor", "description": "Factor", "schema": {"type": "number"}, "optional": True,
             "default": 3},
        ],
        "process_graph": {"apply": {"process_id": "apply", "arguments": {
            "data": {"from_parameter": "data"}, "context": {"from_parameter": "factor"},
            "process": {"process_graph": {"m": {"process_id": "multiply", "arguments": {
                "x": {"from_parameter": "x"}, "y": {"from_parameter": "context"}}, "result": True}}}},
            "result": True}},
    }  # fmt: skip
    assert alice.put("/process_graphs/scaled_cube", json=scaled).status_code == 200
    x0, y1 = COMPOSITE_ORIGIN
    extent = {"west": x0 + 100, "south": y1 - 200, "east": x0 + 200, "north": y1 - 100, "crs": COMPOSITE_EPSG}
    process = _composite(extent, ["nir"])
    graph = process["process_graph"]
    graph["scale"] = {"process_id": "scaled_cube", "arguments": {"data": {"from_node": "load"}}}
    graph["save"]["arguments"]["data"] = {"from_node": "scale"}
    r = alice.post("/result", json={"process": process})
    assert r.status_code == 200, r.text
    with MemoryFile(r.content) as mem, mem.open() as ds:
        np.testing.assert_allclose(ds.read(1), 3.0 * composite_bands()[1, 10:20, 10:20])
    r = server.client(tokens["bob"]).post("/result", json={"process": process})
    assert (r.status_code, r.json()["code"]) == (400, "ProcessUnsupported")  # alice's, not bob's
    assert alice.delete("/process_graphs/scaled_cube").status_code == 204

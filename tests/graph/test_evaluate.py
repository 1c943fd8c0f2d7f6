"""Process graphs on known products: results equal numpy on the same pixels; errors carry openEO codes."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import rasterio
import xarray as xr

from hrlc.graph import GraphEnv, GraphError, evaluate
from hrlc.graph.evaluate import graph_id
from hrlc.lake.store import LocalStore

from .conftest import BANDS, Lake

COMPOSITES = "hrlc-optical-composites"


def load(lake: Lake, window: tuple[int, int, int, int] = (8, 4, 40, 30), **extra: Any) -> dict[str, Any]:
    args = {"id": COMPOSITES, "spatial_extent": lake.bbox(*window), **extra}
    return {"process_id": "load_collection", "arguments": args}


def save(node: str, fmt: str = "GTiff") -> dict[str, Any]:
    return {
        "process_id": "save_result",
        "arguments": {"data": {"from_node": node}, "format": fmt},
        "result": True,
    }


def reducer(pid: str, **args: Any) -> dict[str, Any]:
    node = {"process_id": pid, "arguments": {"data": {"from_parameter": "data"}, **args}, "result": True}
    return {"process_graph": {"r": node}}


def run(
    lake: Lake, graph: dict[str, Any], tmp_path: Any, register: bool = False, **kw: Any
) -> tuple[GraphEnv, list]:
    out = lake.store if register else LocalStore(tmp_path)
    env = GraphEnv(lake.catalog, out, graph_id(graph), lake=lake.store,
                   register=lake.catalog.add if register else None, **kw)  # fmt: skip
    return env, evaluate(graph, env)


def masked(lake: Lake, band: str, window: tuple[int, int, int, int]) -> np.ndarray:
    """(month, y, x) float of one band in a pixel window, NaN where no data."""
    x0, y0, x1, y1 = window
    b = BANDS.index(band)
    stack = np.stack([lake.data[m][b, y0:y1, x0:x1] for m in sorted(lake.data)]).astype(np.float64)
    stack[stack == 0] = np.nan
    return stack


def test_ndvi_mean_over_time_equals_numpy(products: Lake, tmp_path: Any) -> None:
    window = (8, 4, 40, 30)
    graph = {
        "load": load(products, window, temporal_extent=["2021-01-01", "2021-04-01"], bands=["red", "nir"]),
        "ndvi": {"process_id": "ndvi", "arguments": {"data": {"from_node": "load"}, "red": "red", "nir": "nir"}},
        "mean": {"process_id": "reduce_dimension",
                 "arguments": {"data": {"from_node": "ndvi"}, "dimension": "t", "reducer": reducer("mean")}},
        "save": save("mean"),
    }  # fmt: skip
    env, (result,) = run(products, graph, tmp_path)
    red, nir = masked(products, "red", window), masked(products, "nir", window)
    with np.errstate(invalid="ignore"):
        want = np.nanmean((nir - red) / (nir + red), axis=0)
    with rasterio.open(env.store.path(result.key)) as src:
        got = src.read(1)
        assert src.crs.to_epsg() == 32633 and src.res == (10.0, 10.0)
        assert (src.transform.c, src.transform.f) == (430000.0 + 80, 5140000.0 - 40)  # the window's corner
    assert got.shape == want.shape == (26, 32)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)  # float32 cube
    assert result.media_type.startswith("image/tiff")


def test_gtiff_per_time_step_registered_with_lineage_and_idempotent(products: Lake, tmp_path: Any) -> None:
    graph = {
        "load": load(products, bands=["blue", "green"], temporal_extent=["2021-02-01", None]),
        "scale": {"process_id": "apply", "arguments": {"data": {"from_node": "load"}, "process": {"process_graph": {
            "m": {"process_id": "multiply", "arguments": {"x": {"from_parameter": "x"}, "y": 2}, "result": True}}}}},
        "save": save("scale"),
    }  # fmt: skip
    env, results = run(products, graph, tmp_path, register=True)
    assert [r.key.rsplit("_", 1)[-1] for r in results] == ["2021-02-14.tif", "2021-03-16.tif"]  # mid-month
    with rasterio.open(env.store.path(results[0].key)) as src:
        assert src.descriptions == ("blue", "green") and src.count == 2
        np.testing.assert_allclose(src.read(2), 2 * masked(products, "green", (8, 4, 40, 30))[1])
    items = [products.catalog.get_href(r.item_href) for r in results]
    assert {i.collection_id for i in items} == {"hrlc-results"}
    assert items[0].properties["hrlc:inputs"] == ["optical_sentinel2_2021_02", "optical_sentinel2_2021_03"]
    before = sorted(products.store.list("metadata/stac/hrlc-results/"))
    _, again = run(products, graph, tmp_path, register=True)
    assert [r.key for r in again] == [r.key for r in results]
    assert sorted(products.store.list("metadata/stac/hrlc-results/")) == before  # same keys, no new items


def test_netcdf_keeps_time_and_bands(products: Lake, tmp_path: Any) -> None:
    graph = {"load": load(products, bands=["red", "nir"]), "save": save("load", "netCDF")}
    env, (result,) = run(products, graph, tmp_path)
    with xr.open_dataset(env.store.path(result.key), engine="netcdf4") as ds:
        assert set(ds.data_vars) == {"red", "nir"} and ds.sizes["time"] == 3
        np.testing.assert_allclose(ds["nir"].values, masked(products, "nir", (8, 4, 40, 30)), rtol=1e-6)


def test_graph_without_save_result_and_without_data_gives_json(products: Lake, tmp_path: Any) -> None:
    graph = {
        "a": {"process_id": "add", "arguments": {"x": 40, "y": 2}},
        "s": {"process_id": "sqrt", "arguments": {"x": {"from_node": "a"}}, "result": True},
    }
    env, (result,) = run(products, graph, tmp_path)
    assert result.media_type == "application/json"
    assert json.loads(env.store.read_bytes(result.key)) == pytest.approx(42**0.5)


def test_load_without_bands_takes_the_main_product(products: Lake, tmp_path: Any) -> None:
    graph = {"load": load(products, temporal_extent=["2021-01-01", "2021-02-01"]), "save": save("load")}
    env, (result,) = run(products, graph, tmp_path)  # composites (4 bands), not their cloud masks
    with rasterio.open(env.store.path(result.key)) as src:
        assert src.descriptions == tuple(BANDS)


def test_single_band_product_keeps_its_band_name(products: Lake, tmp_path: Any) -> None:
    node = load(products, bands=["class"])
    node["arguments"]["id"] = "hrlc-class-maps"
    env, (result,) = run(products, {"load": node, "save": save("load")}, tmp_path)
    with rasterio.open(env.store.path(result.key)) as src:
        assert src.descriptions == ("class",)
        np.testing.assert_array_equal(src.read(1), products.class_map[4:30, 8:40])


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"id": "no-such-collection"}, "CollectionNotFound"),
        ({"bands": ["red", "thermal"]}, "ProcessParameterInvalid"),
        ({"spatial_extent": {"west": 100.0, "south": 10.0, "east": 100.1, "north": 10.1}}, "NoDataAvailable"),
        ({"temporal_extent": ["2019-01-01", "2019-12-31"]}, "NoDataAvailable"),
        ({"bands": ["red", "valid_count"]}, "ProcessParameterInvalid"),
    ],
)
def test_bad_load_collection_arguments(products: Lake, tmp_path: Any, change: dict, code: str) -> None:
    node = load(products)
    node["arguments"].update(change)
    with pytest.raises(GraphError) as e:
        run(products, {"load": node, "save": save("load")}, tmp_path)
    assert e.value.code == code
    assert e.value.status == (404 if code == "CollectionNotFound" else 400)


def test_pixel_budget_is_checked_on_the_real_grid(products: Lake, tmp_path: Any) -> None:
    graph = {"load": load(products, (0, 0, 30, 30)), "save": save("load")}
    with pytest.raises(GraphError) as e:
        run(products, graph, tmp_path, max_pixels=899)
    assert e.value.code == "ProcessGraphComplexity" and "900" in e.value.message
    run(products, graph, tmp_path, max_pixels=900)


@pytest.mark.parametrize(
    ("graph", "code"),
    [
        ({"r": {"process_id": "reduce_dimension", "arguments": {
            "data": {"from_node": "load"}, "dimension": "wavelength", "reducer": reducer("mean")}}},
         "DimensionNotAvailable"),
        ({"r": {"process_id": "reduce_dimension", "arguments": {
            "data": {"from_node": "load"}, "dimension": "t", "reducer": reducer("mean")}},
          "s": {"process_id": "save_result", "arguments": {"data": {"from_node": "r"}, "format": "PNG"},
                "result": True}},
         "FormatUnsupported"),
        ({"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}},
          "s": {"process_id": "save_result", "arguments": {"data": {"from_node": "a"}, "format": "GTiff"},
                "result": True}},
         "FormatUnsuitable"),
    ],
)  # fmt: skip
def test_processing_errors_keep_openeo_codes(products: Lake, tmp_path: Any, graph: dict, code: str) -> None:
    graph = {"load": load(products), **graph}
    if not any(n.get("result") for n in graph.values()):
        graph["r"]["result"] = True
    with pytest.raises(GraphError) as e:
        run(products, graph, tmp_path)
    assert e.value.code == code, e.value.message


def test_user_defined_processes_run_with_their_parameters(products: Lake, tmp_path: Any) -> None:
    scale = {  # x * factor + offset, offset defaults to 1
        "parameters": [{"name": "x"}, {"name": "factor"}, {"name": "offset", "optional": True, "default": 1}],
        "process_graph": {
            "m": {"process_id": "multiply", "arguments": {"x": {"from_parameter": "x"},
                  "y": {"from_parameter": "factor"}}},
            "a": {"process_id": "add", "arguments": {"x": {"from_node": "m"}, "y": {"from_parameter": "offset"}},
                  "result": True},
        },
    }  # fmt: skip
    twice = {  # uses the other one
        "parameters": [{"name": "x"}],
        "process_graph": {"s": {"process_id": "scale", "arguments": {"x": {"from_parameter": "x"}, "factor": 2},
                          "result": True}},
    }  # fmt: skip
    graph = {"t": {"process_id": "twice", "arguments": {"x": 20}, "result": True}}
    out = LocalStore(tmp_path)
    env = GraphEnv(products.catalog, out, graph_id(graph), user_processes={"scale": scale, "twice": twice})
    (result,) = evaluate(graph, env)
    assert json.loads(out.read_bytes(result.key)) == 41

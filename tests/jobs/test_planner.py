import time

import pytest

from hrlc.jobs.dag import LAND_COVER_PROCESSORS
from hrlc.jobs.planner import PlanError, plan

ARGS = {
    "bbox": {"west": 14.5, "south": 45.8, "east": 14.6, "north": 45.9},
    "year": 2021,
    "source": "catalog.json",
    "training": "training.gpkg",
}


def graph(args: dict, process_id: str = "hrlc_land_cover") -> dict:
    return {
        "process_graph": {
            "lc": {"process_id": process_id, "arguments": args},
            "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "lc"}}, "result": True},
        }
    }


def test_land_cover_graph_plans_the_chain_of_a_tile() -> None:
    dag = plan(graph({**ARGS, "sensor": "sentinel2", "classifier": "rf"}))
    assert [t.processor for t in dag.order()] == list(LAND_COVER_PROCESSORS)
    assert dag.tasks[2].params["method"] == "rf" and dag.tasks[0].params["tile"].startswith("utm33n-109800-")


def test_user_defined_processes_travel_with_the_task() -> None:
    double = {"parameters": [{"name": "x"}], "process_graph": {"m": {"process_id": "multiply", "arguments": {
        "x": {"from_parameter": "x"}, "y": 2}, "result": True}}}  # fmt: skip
    twice_double = {"parameters": [{"name": "x"}], "process_graph": {
        "d": {"process_id": "double", "arguments": {"x": {"from_parameter": "x"}}},
        "e": {"process_id": "double", "arguments": {"x": {"from_node": "d"}}, "result": True}}}  # fmt: skip
    udps = {"double": double, "quadruple": twice_double}
    process = {"process_graph": {"q": {"process_id": "quadruple", "arguments": {"x": 3}, "result": True}}}
    (task,) = plan(process, udps.get).tasks
    assert task.params["user_processes"] == udps  # the used one and the one it uses
    with pytest.raises(PlanError, match="'quadruple' is not supported"):
        plan(process)  # another user (or none) does not have them


def test_training_may_be_a_selection_of_the_training_database() -> None:
    selection = {"area": "slovenia", "year": 2017, "source": "photo-interpreted"}
    dag = plan(graph({**ARGS, "training": selection}))
    params = dag.tasks[2].params
    assert params["training_query"] == selection and "training" not in params
    with pytest.raises(PlanError, match="argument training.selection.colour: Extra inputs are not permitted"):
        plan(graph({**ARGS, "training": {"area": "slovenia", "colour": "red"}}))


def test_graph_of_standard_processes_is_one_process_graph_task() -> None:
    process = {
        "process_graph": {
            "load": {"process_id": "load_collection", "arguments": {"id": "hrlc-optical-composites"}},
            "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "load"}, "format": "GTiff"},
                     "result": True},
        }
    }  # fmt: skip
    (task,) = plan(process).tasks
    assert task.processor == "process-graph" and task.params == {"process_graph": process["process_graph"]}
    assert plan(process).tasks[0].id == task.id  # the same graph, the same task (and lake keys)


@pytest.mark.parametrize(
    ("process", "match"),
    [
        (graph(ARGS, "no_such_process"), "'no_such_process' is not supported"),
        (
            {"process_graph": {**graph(ARGS)["process_graph"], "x": {"process_id": "ndvi", "arguments": {}}}},
            "'ndvi' is not supported in batch jobs: use hrlc_land_cover",
        ),
        (
            {
                "process_graph": {
                    "r": {
                        "process_id": "reduce_dimension",
                        "arguments": {
                            "reducer": {
                                "process_graph": {
                                    "m": {"process_id": "median_of_all", "arguments": {}, "result": True}
                                }
                            }
                        },
                        "result": True,
                    }
                }
            },
            "'median_of_all' is not supported",
        ),
        ({"process_graph": {}}, "no process_graph"),
        (graph({**ARGS, "year": "2021"}), "year"),
        (graph({**ARGS, "bbox": {"west": 1, "south": 1, "east": 0, "north": 2}}), "empty"),
        (graph({**ARGS, "colour": 1}), "unknown"),
        (graph({k: v for k, v in ARGS.items() if k != "training"}), "training"),
        (graph({**ARGS, "classifier": "svm"}), "argument classifier: Input should be 'lightgbm' or 'rf'"),
    ],
)
def test_bad_graphs_raise_plan_error(process: dict, match: str) -> None:
    with pytest.raises(PlanError, match=match):
        plan(process)


def test_an_aoi_of_too_many_tiles_is_refused_before_they_are_listed() -> None:
    t0 = time.perf_counter()
    args = {**{k: v for k, v in ARGS.items() if k not in ("bbox", "spatial_extent")}, "tile_size": 300}
    args["spatial_extent"] = {"west": 10, "south": 40, "east": 16, "north": 50}
    with pytest.raises(PlanError, match="tiles of 300 m, more than 4096: split it"):
        plan(graph(args))
    assert time.perf_counter() - t0 < 10  # millions of tiles are never enumerated

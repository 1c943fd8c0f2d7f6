"""The land-cover request has one definition (`hrlc.jobs.request.LandCoverRequest`): the `hrlc run` options, the
openEO process `hrlc_land_cover`, the planner's validation and the DAG all follow it."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from hrlc import cli
from hrlc.api.openeo import processes
from hrlc.jobs.dag import land_cover_dag
from hrlc.jobs.planner import PlanError, plan
from hrlc.jobs.request import BoundingBox, LandCoverRequest
from hrlc.lake.grid import tiles_of

ARGS: dict[str, Any] = {
    "spatial_extent": {"west": 14.5, "south": 45.8, "east": 14.6, "north": 45.9},
    "year": 2021,
    "source": "catalog.json",
    "training": "training.gpkg",
}


def graph(args: dict[str, Any]) -> dict[str, Any]:
    return {"process_graph": {"lc": {"process_id": "hrlc_land_cover", "arguments": args, "result": True}}}


def _reload_readers() -> None:
    """Load again the modules that read the request when they load (as a restarted process would)."""
    importlib.reload(processes)
    importlib.reload(cli)


@pytest.fixture
def bap_by_default() -> Iterator[None]:
    """The request with `composite` defaulting to `bap` instead of `median`: one edit, in the model only."""
    field = LandCoverRequest.model_fields["composite"]
    before = field.default
    field.default = "bap"
    LandCoverRequest.model_rebuild(force=True)
    _reload_readers()
    try:
        yield
    finally:
        field.default = before
        LandCoverRequest.model_rebuild(force=True)
        _reload_readers()


def _cli_help_line(option: str) -> str:
    result = CliRunner().invoke(cli.app, ["run", "--help"], env={"COLUMNS": "250", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    [line] = [ln for ln in result.output.splitlines() if f" {option} " in ln]
    return line


def _openeo_parameter(name: str) -> dict[str, Any]:
    [parameter] = [p for p in processes.predefined()["hrlc_land_cover"]["parameters"] if p["name"] == name]
    return parameter


def _optical_params(request: LandCoverRequest) -> dict[str, Any]:
    return next(t.params for t in land_cover_dag(request).tasks if t.processor == "optical-preprocessing")


def test_the_default_as_it_is() -> None:
    assert "[default: median]" in _cli_help_line("--composite")
    assert _openeo_parameter("composite")["default"] == "median"
    assert _optical_params(LandCoverRequest.model_validate(ARGS))["method"] == "median"


def test_a_default_changed_in_the_request_changes_the_cli_the_openeo_process_and_the_dag(
    bap_by_default: None,
) -> None:
    assert "[default: bap]" in _cli_help_line("--composite")
    assert _openeo_parameter("composite") == {
        "name": "composite",
        "description": LandCoverRequest.model_fields["composite"].description,
        "schema": {"type": "string", "enum": ["median", "bap"]},
        "optional": True,
        "default": "bap",
    }
    assert _optical_params(LandCoverRequest.model_validate(ARGS))["method"] == "bap"
    assert plan(graph(ARGS)).tasks[0].params["method"] == "bap"


def test_the_openeo_parameters_are_the_fields_of_the_request() -> None:
    parameters = processes.HRLC_LAND_COVER["parameters"]
    fields = LandCoverRequest.model_fields
    assert [p["name"] for p in parameters] == list(fields)
    for p in parameters:
        field = fields[p["name"]]
        assert p["description"] == field.description
        assert p.get("optional", False) is not field.is_required()
        assert field.is_required() or p["default"] == field.default
    by_name = {p["name"]: p["schema"] for p in parameters}
    assert by_name["spatial_extent"]["subtype"] == "bounding-box"
    assert by_name["spatial_extent"]["required"] == ["west", "south", "east", "north"]
    assert by_name["source"] == {"type": "string", "subtype": "uri"}
    assert by_name["training"][0] == {"type": "string", "subtype": "uri"}
    assert by_name["training"][1]["additionalProperties"] is False
    assert by_name["training"][1]["properties"]["bbox"]["items"] == {
        "type": "number"
    }  # draft-07, not prefixItems
    assert {"type": "integer", "subtype": "epsg-code", "minimum": 1000} in by_name["crs"]
    assert by_name["sensor"] == [{"type": "string", "enum": ["sentinel2", "landsat"]}, {"type": "null"}]
    assert all("$ref" not in str(s) and "title': 'Year" not in str(s) for s in by_name.values())


def test_the_dag_gives_each_field_to_the_processor_param_of_its_own_name() -> None:
    request = LandCoverRequest.model_validate(
        {
            **ARGS,
            "composite": "bap",
            "dilate": 2,
            "mask_snow": True,
            "classifier": "rf",
            "seed": 7,
            "crs": 32633,
            "holdout": 0.25,
            "validation_block_m": 500,
            "group_column": "parcel",
        }
    )
    pre, _, cls, _, _ = land_cover_dag(request).order()  # one tile of 109 800 m holds the AOI
    assert (pre.params["method"], pre.params["dilate_px"], pre.params["mask_snow"]) == ("bap", 2, True)
    [tile] = tiles_of((14.5, 45.8, 14.6, 45.9), "EPSG:4326")
    assert (pre.params["tile"], pre.params["resolution"]) == (tile.id, 10)
    assert cls.params["grid"]["crs"] == "EPSG:32633" and cls.params["tile_size"] == 109_800
    untiled, _, _ = land_cover_dag(request, tiled=False).order()
    assert (untiled.params["crs"], untiled.params["bbox_crs"], untiled.params["bbox"]) == (
        "EPSG:32633",
        "EPSG:4326",
        [14.5, 45.8, 14.6, 45.9],
    )
    assert (cls.params["method"], cls.params["seed"], cls.params["training"]) == ("rf", 7, "training.gpkg")
    assert (cls.params["holdout"], cls.params["validation_block_m"], cls.params["group_column"]) == (
        0.25,
        500,
        "parcel",
    )
    selection = {"area": "slovenia", "year": 2017}
    with pytest.raises(ValidationError, match="group_column goes with a training file"):
        LandCoverRequest.model_validate({**ARGS, "training": selection, "group_column": "parcel"})
    cls = land_cover_dag(LandCoverRequest.model_validate({**ARGS, "training": selection})).order()[2]
    assert cls.params["training_query"] == selection and "training" not in cls.params


@pytest.mark.parametrize(
    ("value", "name"),
    [(4326, "EPSG:4326"), ("3035", "EPSG:3035"), (" EPSG:32633 ", "EPSG:32633"), (None, None)],
)
def test_a_crs_is_an_epsg_code_or_a_crs_string(value: object, name: str | None) -> None:
    assert LandCoverRequest.model_validate({**ARGS, "crs": value}).crs == name
    assert BoundingBox.of((0, 0, 1, 1), value or 4326).crs == (name or "EPSG:4326")


def test_bbox_is_an_older_spelling_of_spatial_extent() -> None:
    args = {**{k: v for k, v in ARGS.items() if k != "spatial_extent"}, "bbox": ARGS["spatial_extent"]}
    assert LandCoverRequest.model_validate(args).spatial_extent.bounds == (14.5, 45.8, 14.6, 45.9)
    assert LandCoverRequest.argument_names() == {*LandCoverRequest.model_fields, "bbox"}


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"year": "2021"}, ("year",)),
        ({"year": True}, ("year",)),
        ({"year": 1900}, ("year",)),
        ({"composite": "mean"}, ("composite",)),
        ({"classifier": "svm"}, ("classifier",)),
        ({"sensor": "modis"}, ("sensor",)),
        ({"dilate": -1}, ("dilate",)),
        ({"resolution": 0}, ("resolution",)),
        ({"resolution": "10"}, ("resolution",)),
        ({"crs": 12}, ("crs",)),
        ({"crs": " "}, ("crs",)),
        ({"source": " "}, ("source",)),
        ({"training": 3}, ("training",)),
        ({"training": {"colour": "red"}}, ("training", "selection", "colour")),
        ({"spatial_extent": {"west": 1, "south": 1, "east": 0, "north": 2}}, ("spatial_extent",)),
        ({"colour": "red"}, ("colour",)),
    ],
)
def test_bad_arguments_are_refused_naming_the_argument(
    change: dict[str, Any], where: tuple[str, ...]
) -> None:
    with pytest.raises(ValidationError) as e:
        LandCoverRequest.model_validate({**ARGS, **change})
    assert e.value.errors()[0]["loc"] == where


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"year": "2021"}, "invalid hrlc_land_cover argument year: Input should be a valid integer"),
        (
            {"composite": "mean"},
            "invalid hrlc_land_cover argument composite: Input should be 'median' or 'bap'",
        ),
        ({"crs": 12}, "invalid hrlc_land_cover argument crs: use an EPSG code (from 1000) or 'EPSG:nnnn'"),
        (
            {"spatial_extent": {"west": 1, "south": 1, "east": 0, "north": 2}},
            "invalid hrlc_land_cover argument spatial_extent: bbox is empty: west 1.0 < east 0.0 and south 1.0 "
            "< north 2.0 are required",
        ),
        ({"source": None}, "invalid hrlc_land_cover argument source: Input should be a valid string"),
    ],
)
def test_the_planner_says_what_is_wrong_in_one_line(change: dict[str, Any], message: str) -> None:
    with pytest.raises(PlanError) as e:
        plan(graph({**ARGS, **change}))
    assert str(e.value) == message


def test_the_planner_says_what_a_missing_argument_is() -> None:
    with pytest.raises(PlanError) as e:
        plan(graph({k: v for k, v in ARGS.items() if k != "source"}))
    assert (
        str(e.value) == f"hrlc_land_cover needs source: {LandCoverRequest.model_fields['source'].description}"
    )
    assert "\n" not in str(e.value)

"""The naming convention of spec §3.4.2.1: names parsed into their parts, bad names refused with the reason."""

from __future__ import annotations

import pytest

from hrlc.training.naming import DatasetName, NamingError, parse_name


def test_parts_of_a_name() -> None:
    got = parse_name("amazonia_historic_A02_1995_map-agreement_UniPV", "amazonia")
    assert got == DatasetName("amazonia", "historic", "A02", 1995, "map-agreement", "UniPV")
    assert got.name == "amazonia_historic_A02_1995_map-agreement_UniPV"
    assert got.path() == "amazonia/amazonia_historic_A02_1995_map-agreement_UniPV"


def test_underscores_in_area_and_roi_and_case_of_keywords() -> None:
    got = parse_name("east_sahel_STATIC_tile_36NWL_2019_Photo-Interpreted_Polimi")
    assert (got.area_name, got.type, got.roi, got.source) == (
        "east_sahel",
        "static",
        "tile_36NWL",
        "photo-interpreted",
    )
    assert got.name == "east_sahel_static_tile_36NWL_2019_photo-interpreted_Polimi"


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("africa_dynamic_A01_2019_photo-interpreted_Polimi", "no type"),
        ("africa_static_A01_2019_photointerpreted_Polimi", "no source"),
        ("africa_static_A01_19_photo-interpreted_Polimi", "no 4-digit year"),
        ("africa_static_A01_2019_photo-interpreted_Poli_mi", "provider"),
        ("africa_static_A01_2019_photo-interpreted", "provider"),
        ("static_A01_2019_photo-interpreted_Polimi", "no area name"),
        ("africa_static_2019_photo-interpreted_Polimi", "area name, ROI or order"),
        ("africa_static_A01_1850_photo-interpreted_Polimi", "outside 1900-2100"),
    ],
)
def test_bad_names_say_what_is_wrong(name: str, why: str) -> None:
    with pytest.raises(NamingError, match=why):
        parse_name(name)


def test_a_set_must_sit_in_its_area_folder() -> None:
    with pytest.raises(NamingError, match="in a folder named after its area 'siberia', not in 'incoming'"):
        parse_name("siberia_static_A03_2019_map-agreement_UniTN", "incoming")

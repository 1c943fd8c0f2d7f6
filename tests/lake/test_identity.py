"""Product identity: keys say where and how a product was made (hrlc.lake.identity, hrlc.lake.layout)."""

from __future__ import annotations

import pytest

from hrlc.lake import layout
from hrlc.lake.identity import aoi_space, config_hash
from hrlc.processors.classification import Classification, model_id
from hrlc.processors.optical_preprocessing import OpticalPreprocessing

CFG = "0123456789abcdef"


def test_identity_levels_sit_below_the_spec_folder_and_parse_back() -> None:
    k = layout.key(
        "class-map", kind="optical", year=2021, period="annual", space="aoi-0a1b2c3d4e5f", config=CFG
    )
    assert k == f"classification/2021/final/aoi-0a1b2c3d4e5f/{CFG}/classified_map_optical_2021_annual.tif"
    parsed = layout.parse(k)
    assert parsed.family == "class-map" and parsed["space"] == "aoi-0a1b2c3d4e5f" and parsed["config"] == CFG
    assert layout.key(parsed.family, **parsed.fields) == k
    assert layout.item_id(k) == f"classified_map_optical_2021_annual_aoi-0a1b2c3d4e5f_{CFG}"
    spec = layout.key("class-map", kind="optical", year=2021, period="annual")  # made elsewhere
    assert spec == "classification/2021/final/classified_map_optical_2021_annual.tif"
    assert (
        "space" not in layout.parse(spec).fields
        and layout.item_id(spec) == "classified_map_optical_2021_annual"
    )
    tile = layout.key("optical-composite", sensor="sentinel2", year=2021, period=5, space="32TQM", config=CFG)
    assert layout.parse(tile)["space"] == "32TQM"  # a tile id of the product grid fits the same level


@pytest.mark.parametrize(
    "bad",
    [
        "classification/2021/final/aoi-1/0123/classified_map_optical_2021_annual.tif",  # short config
        "classification/2021/final/aoi-1/classified_map_optical_2021_annual.tif",  # one level only
        f"classification/2021/final/a/b/{CFG}/classified_map_optical_2021_annual.tif",  # three levels
    ],
)
def test_keys_with_partial_identity_do_not_parse(bad: str) -> None:
    with pytest.raises(layout.LayoutError):
        layout.parse(bad)


def test_half_an_identity_is_refused() -> None:
    with pytest.raises(layout.LayoutError, match="config"):
        layout.key("class-map", kind="optical", year=2021, period="annual", space="aoi-1")


def test_config_hash_is_order_free_and_sensitive_to_values_and_major_version() -> None:
    a = config_hash("p", "0.1.0", {"x": 1, "y": [1, 2]})
    assert len(a) == 16 and a == config_hash("p", "0.9.3", {"y": [1, 2], "x": 1})  # minor: same pixels
    assert a != config_hash("p", "1.0.0", {"x": 1, "y": [1, 2]})
    assert a != config_hash("p", "0.1.0", {"x": 2, "y": [1, 2]})
    assert a != config_hash("q", "0.1.0", {"x": 1, "y": [1, 2]})
    s = aoi_space("EPSG:32632", (10, 0, 500000, 0, -10, 5000000), (100, 100))
    assert s.startswith("aoi-") and s != aoi_space("EPSG:32632", (10, 0, 500010, 0, -10, 5000000), (100, 100))


def _pre(**kw: object) -> dict[str, object]:
    base = {
        "bbox": (500000, 4999000, 501000, 5000000),
        "bbox_crs": "EPSG:32632",
        "crs": "EPSG:32632",
        "year": 2021,
    }
    return {**base, "sensor": "sentinel2", "source": "https://earth-search.aws.element84.com/v1", **kw}


def test_every_pixel_changing_parameter_changes_the_composites_config() -> None:
    proc = OpticalPreprocessing()
    base = proc.identity(proc.parse_params(_pre()))
    for change in ({"method": "bap"}, {"dilate_px": 2}, {"mask_snow": True}, {"max_cloud": 50.0},
                   {"source": "https://planetarycomputer.microsoft.com/api/stac/v1"}):  # fmt: skip
        other = proc.identity(proc.parse_params(_pre(**change)))
        assert other.space == base.space and other.config != base.config, change
    moved = proc.identity(proc.parse_params(_pre(bbox=(501000, 4999000, 502000, 5000000))))
    assert moved.space != base.space and moved.config == base.config
    coarser = proc.identity(proc.parse_params(_pre(resolution=20)))
    assert coarser.space != base.space
    # a bbox that snaps to the same grid is the same product
    snapped = proc.identity(proc.parse_params(_pre(bbox=(500000.2, 4999000.1, 500999.9, 4999999.8))))
    assert snapped == base


def test_model_ids_carry_the_identity() -> None:
    proc = Classification()
    p = proc.parse_params(
        {"year": 2021, "sensor": "sentinel2", "training": "t.gpkg", "space": "aoi-1", "features": CFG}
    )
    assert model_id(p).startswith("lc_optical_sentinel2_2021_lightgbm_aoi-1_")
    other = proc.parse_params({**p.model_dump(), "seed": 1})
    assert model_id(other) != model_id(p)
    assert proc.outputs(p)[3] != proc.outputs(other)[3]

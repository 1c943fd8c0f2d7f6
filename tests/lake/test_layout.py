"""The Data Lake layout: every folder of Table 3-1 and every file name of §3.2, built and parsed back."""

import pytest

from hrlc import periods
from hrlc.lake import layout
from hrlc.lake.stac_collections import COLLECTION_TITLES, COLLECTIONS

SPEC_EXAMPLES = {
    # file names quoted in the spec, with their Table 3-1 folders
    "preprocessed/optical/sentinel2/2021/01/optical_sentinel2_2021_01.tif": (
        "optical-composite",
        {"period": "01"},
    ),
    "preprocessed/optical/landsat/2018/season1/optical_landsat_2018_season1.tif": (
        "optical-composite",
        {"sensor": "landsat", "period": "season1"},
    ),
    "preprocessed/optical/sentinel2/2021/01/optical_sentinel2_2021_01_cloudmask.tif": (
        "optical-cloudmask",
        {},
    ),
    "preprocessed/sar/2021/01/sar_sentinel1_2021_01.tif": ("sar-composite", {"month": "01"}),
    "preprocessed/sar/2021/01/sar_sentinel1_2021_01_coherence.tif": ("sar-feature", {"feature": "coherence"}),
    "coregistration/2021/01/coreg_params_2021_01.json": ("coreg-params", {}),
    "coregistration/2021/01/coreg_optical_sar_2021_01.tif": ("coreg-composite", {}),
    "features/2018/features_optical_landsat_2018.nc": ("features", {"stack": "optical_landsat"}),
    "features/2021/features_optical_sar_2021.nc": ("features", {"stack": "optical_sar"}),
    "classification/2021/probabilities/class_probs_2021_01.tif": ("class-probabilities", {"period": "01"}),
    "classification/2021/final/classified_map_optical_sar_2021_annual.tif": (
        "class-map",
        {"kind": "optical_sar"},
    ),
    "fusion/2021/fused_class_map_2021.tif": ("fused-class-map", {}),
    "fusion/2021/fused_class_map_2021_A01.tif": ("fused-class-map-region", {"region": "A01"}),
    "harmonization/2018/harmonization_lookup_2018_to_2021.json": (
        "harmonization-lookup",
        {"refYear": "2021"},
    ),
    "harmonization/2018/harmonized_class_map_2018.tif": ("harmonized-class-map", {"year": "2018"}),
    "changedetection/2021/final_change_map_2015_2021.tif": ("change-map", {"year1": "2015", "year2": "2021"}),
    "models/checkpoints/lc_optical_sentinel2_2021_rf.joblib": ("model-checkpoint", {}),
    "models/metadata/lc_optical_sentinel2_2021_rf.json": ("model-metadata", {}),
    "raw/sentinel2/2021/01/S2B_33TWN_20210105_0_L2A_B04.tif": ("raw-sentinel2", {}),
    "raw/landsat/2018/season2/LC08_x.tif": ("raw-landsat", {}),
    "metadata/stac/hrlc-class-maps/classified_map_optical_2021_annual.json": ("stac-item", {}),
}


@pytest.mark.parametrize("key", sorted(SPEC_EXAMPLES))
def test_spec_names_parse_and_rebuild(key: str) -> None:
    family, expected = SPEC_EXAMPLES[key]
    parsed = layout.parse(key)
    assert parsed.family == family
    for field, value in expected.items():
        assert parsed[field] == value
    assert layout.key(parsed.family, **parsed.fields) == key
    assert layout.parse("/data/" + key).family == family


def test_every_pattern_folder_is_in_table_3_1() -> None:
    for pattern in layout.PATTERNS.values():
        if pattern.family in layout.EXTENSIONS:
            assert pattern.folder not in layout.FOLDERS  # hrlc's own folders are not claimed as the spec's
            continue
        folder = pattern.folder
        # harmonized maps live in harmonization/{pastYear}/ (the year field is the past year)
        folder = folder.replace("harmonization/{year}/", "harmonization/{pastYear}/")
        folder = folder.replace("changedetection/{year2}/", "changedetection/{year}/")
        folder = folder.replace("metadata/stac/{collection}/", "metadata/stac/")
        assert folder in layout.FOLDERS, pattern.family


def test_key_builds_with_ints_and_checks_fields() -> None:
    assert layout.key("optical-composite", sensor="sentinel2", year=2021, period=3).endswith(
        "optical_sentinel2_2021_03.tif"
    )
    with pytest.raises(layout.LayoutError, match="period"):
        layout.key("optical-composite", sensor="sentinel2", year=2021, period="13")
    with pytest.raises(layout.LayoutError, match="needs fields"):
        layout.key("optical-composite", sensor="sentinel2", year=2021)
    with pytest.raises(layout.LayoutError, match="unknown product family"):
        layout.key("nope")


@pytest.mark.parametrize(
    "key", ["results/x.tif", "preprocessed/optical/sentinel2/2021/13/optical_sentinel2_2021_13.tif", ""]
)
def test_foreign_keys_are_refused(key: str) -> None:
    with pytest.raises(layout.LayoutError):
        layout.parse(key)


@pytest.mark.parametrize("key", ["../etc/passwd", "/etc/passwd", "a/../../b", "a//b", "a\\b", "./a"])
def test_check_key_refuses_escapes(key: str) -> None:
    with pytest.raises(layout.LayoutError):
        layout.check_key(key)


def test_period_fields_take_exactly_the_period_labels() -> None:
    for label in periods.LABELS:
        assert (
            layout.parse(f"classification/2021/probabilities/class_probs_2021_{label}.tif")["period"] == label
        )
    for month in periods.MONTHS:
        assert layout.parse(f"preprocessed/sar/2021/{month}/sar_sentinel1_2021_{month}.tif")["month"] == month
    for season in periods.SEASONS:
        assert layout.parse(f"raw/landsat/2018/{season}/LC08_x.tif")["season"] == season
    for bad in ("1", "00", "13", "season0", "season5", "Annual", "annual2"):
        with pytest.raises(layout.LayoutError):
            layout.key("class-probabilities", year=2021, period=bad)
    with pytest.raises(layout.LayoutError):
        layout.key("raw-landsat", year=2018, season="01", name="x.tif")


CFG = "0123456789abcdef"


def test_item_id_is_the_file_stem_plus_the_identity() -> None:
    spec = "classification/2021/final/classified_map_optical_2021_annual.tif"
    assert layout.item_id(spec) == "classified_map_optical_2021_annual"
    made = f"classification/2021/final/aoi-0a1b2c3d4e5f/{CFG}/classified_map_optical_2021_annual.tif"
    assert layout.item_id(made) == f"classified_map_optical_2021_annual_aoi-0a1b2c3d4e5f_{CFG}"
    assert layout.item_id("somewhere/else/file.tif") == "file"  # not a layout key: the stem


def test_item_key_of_a_product_is_in_its_family_collection() -> None:
    composite = layout.key(
        "optical-composite", sensor="sentinel2", year=2021, period="07", space="aoi-1", config=CFG
    )
    expected = f"metadata/stac/hrlc-optical-composites/optical_sentinel2_2021_07_aoi-1_{CFG}.json"
    assert layout.item_key(composite) == layout.item_key_of(composite) == expected
    assert layout.parse(expected).family == "stac-item"
    mask = layout.key("optical-cloudmask", sensor="landsat", year=2018, period="season2")
    assert (
        layout.item_key(mask)
        == "metadata/stac/hrlc-optical-composites/optical_landsat_2018_season2_cloudmask.json"
    )
    for product_key in (k for k in SPEC_EXAMPLES if layout.parse(k).family in COLLECTIONS):
        assert layout.item_key(product_key).startswith(
            f"metadata/stac/{COLLECTIONS[layout.parse(product_key).family]}/"
        )


@pytest.mark.parametrize("key", ["metadata/stac/hrlc-class-maps/x.json", "logs/task_a.json"])
def test_files_without_items_have_no_item_key(key: str) -> None:
    assert layout.item_key_of(key) is None
    with pytest.raises(layout.LayoutError, match="no STAC Item"):
        layout.item_key(key)


def test_item_key_of_refuses_keys_outside_the_layout() -> None:
    with pytest.raises(layout.LayoutError):
        layout.item_key_of("results/x.tif")


def test_log_key_is_one_file_per_task_under_logs() -> None:
    assert layout.log_key("job-1/optical-preprocessing") == "logs/task_job-1_optical-preprocessing.json"
    assert layout.log_key("a b/c..d") == "logs/task_a_b_c..d.json"
    assert layout.parse(layout.log_key("x")).family == "log"


def test_every_family_collection_has_a_title_and_every_family_is_in_the_layout() -> None:
    assert set(COLLECTIONS) <= set(layout.PATTERNS)
    assert set(COLLECTIONS.values()) == set(COLLECTION_TITLES)
    assert "stac-item" not in COLLECTIONS and "log" not in COLLECTIONS

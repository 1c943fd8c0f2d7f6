"""The Data Lake layout: every folder of Table 3-1 and every file name of §3.2, built and parsed back."""

import pytest

from hrlc.lake import layout

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


def test_periods() -> None:
    assert layout.periods_of("sentinel2") == tuple(f"{m:02d}" for m in range(1, 13))
    assert layout.periods_of("landsat") == ("season1", "season2", "season3", "season4")
    assert [layout.optical_period("landsat", m) for m in (1, 3, 4, 9, 10, 12)] == [
        "season1",
        "season1",
        "season2",
        "season3",
        "season4",
        "season4",
    ]

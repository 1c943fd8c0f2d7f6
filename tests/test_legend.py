import numpy as np

from hrlc import legend


def test_legend_codes_and_colours_match_legend_md(shared) -> None:
    rows = [
        line.split("|")[1:4]
        for line in (shared / "LEGEND.md").read_text().splitlines()
        if line.startswith("| ") and line.split("|")[1].strip().isdigit()
    ]
    table = {int(c): (n.strip(), tuple(int(v) for v in rgb.split(","))) for c, n, rgb in rows}
    assert set(table) == set(legend.CLASSES)
    for code, (name, rgb) in table.items():
        assert legend.CLASSES[code].name == name
        assert legend.CLASSES[code].rgb == rgb
    assert 0 not in legend.CODES and len(legend.CODES) == 17


def test_crosswalk_eolearn() -> None:
    lulc = np.array([[0, 1, 2], [3, 4, 8]], np.uint16)
    assert legend.crosswalk(lulc, legend.EOLEARN_LULC_TO_HRLC).tolist() == [[0, 80, 30], [70, 60, 130]]
    assert all(v in legend.CODES or v == 0 for v in legend.WORLDCOVER_TO_HRLC.values())


def test_unknown_codes_and_colormap() -> None:
    assert legend.unknown_codes([10, 20, 7, 0, 999]) == [0, 7, 999]
    cmap = legend.colormap()
    assert cmap[0][3] == 0 and cmap[80] == (255, 255, 100, 255)
    classes = legend.stac_classes([10, 142])
    assert classes[1]["value"] == 142 and classes[1]["color_hint"] == "0046C8"

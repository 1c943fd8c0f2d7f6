"""The product user guide (docs/products.md) says what the files hold (issue 14): its table of products is
read and every product a chain run wrote is compared with it (dtype, nodata, scale); its legend table is the
legend's; the class map explains itself to GDAL (category names and attribute table listed by `gdalinfo`, as
QGIS reads them) and carries its style files and provenance tags."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import netCDF4
import rasterio

from hrlc import legend
from hrlc.lake import layout

from .conftest import ChainRun

GUIDE = Path(__file__).parents[2] / "docs" / "products.md"


def _table(after: str) -> list[list[str]]:
    """The rows (cells, stripped, without backticks) of the first Markdown table after the line `after`."""
    lines = GUIDE.read_text().splitlines()
    start = next(i for i, ln in enumerate(lines) if after in ln)
    rows = []
    for ln in lines[start + 1 :]:
        if not ln.startswith("|"):
            if rows:
                break
            continue
        rows.append([c.strip().strip("`") for c in ln.strip().strip("|").split("|")])
    return [r for r in rows[2:]]  # header and separator dropped


def _family(key: str) -> str | None:
    try:
        return layout.parse(key).family
    except layout.LayoutError:
        return None


def _nodata(text: str) -> float | None:
    return None if text == "none" else float("nan") if text == "NaN" else float(text)


def test_every_product_is_as_the_guide_says(chain: ChainRun) -> None:
    rows = _table("the compliance test reads this table: keep its columns")
    assert {r[0] for r in rows} >= {
        "optical-composite",
        "class-map",
        "class-probabilities",
        "class-confidence",
    }
    keys = [k for k in chain.store.list("") if not k.startswith("metadata/")]
    for family, _file, dtype, nodata, scale, _bands in rows:
        files = [k for k in keys if _family(k) == family]
        assert files, f"the run wrote no {family}"
        for key in files:
            path = chain.store.path(key)
            if key.endswith(".nc"):
                with netCDF4.Dataset(path) as ds:
                    variables = [v for v in ds.variables.values() if v.dimensions[-2:] == ("y", "x")]
                    assert variables and {v.dtype.name for v in variables} == {dtype}, key
                    assert all(math.isnan(v.getncattr("_FillValue")) for v in variables), key
                continue
            with rasterio.open(path) as src:
                assert set(src.dtypes) == {dtype}, key
                want = _nodata(nodata)
                assert src.nodata == want or (want is None and src.nodata is None), key
                assert set(src.scales) == {float(scale)} and set(src.offsets) == {0.0}, key
                assert src.tags()["hrlc_product"] == family, key


def test_the_legend_table_is_the_legend() -> None:
    rows = _table("the compliance test reads this table too")
    assert [int(r[0]) for r in rows] == sorted(legend.CLASSES)
    for code, name, colour, _note in rows:
        c = legend.CLASSES[int(code)]
        assert name == c.name and colour == "#{:02x}{:02x}{:02x}".format(*c.rgb)


def test_gdalinfo_lists_the_class_names_and_the_files_around_the_map(chain: ChainRun) -> None:
    gdalinfo = shutil.which("gdalinfo")
    assert gdalinfo, "gdalinfo missing: scripts/services.sh installs gdal-bin"
    [map_key] = [k for k in chain.store.list("classification/") if "/aoi-" in k and k.endswith("_annual.tif")
                 and "classified_map" in k]  # fmt: skip
    path = chain.store.path(map_key)
    text = subprocess.run([gdalinfo, str(path)], capture_output=True, text=True, check=True).stdout
    categories = text[text.index("Categories:") :]
    for code in (10, 80, 130, 142):
        assert re.search(rf"^\s+{code}: {re.escape(legend.name(code))}$", categories, re.M), code
    info = json.loads(
        subprocess.run([gdalinfo, "-json", str(path)], capture_output=True, text=True, check=True).stdout
    )
    rat = {row["f"][0]: row["f"][1] for row in info["rat"]["row"]}
    assert rat[80] == "Croplands" and rat[141] == "Open water seasonal"
    tags = info["metadata"][""]
    assert tags["hrlc_product"] == "class-map" and tags["license"] == "CC-BY-4.0" and tags["hrlc_version"]
    assert 0 < float(tags["hrlc_overall_accuracy"]) <= 1
    for suffix in (".qml", ".sld"):
        style = path.with_suffix(suffix).read_text()
        assert all(legend.name(c).split(" and")[0] in style for c in (30, 80, 130))
    item = json.loads(chain.store.read_bytes(layout.item_key(map_key)))
    assert {
        "confidence",
        "categories",
        "style-qgis",
        "style-sld",
        "accuracy",
        "accuracy-plot",
        "thumbnail",
    } <= set(item["assets"])
    thumbnail = chain.store.path(chain.store.key_of(item["assets"]["thumbnail"]["href"]))
    with rasterio.open(thumbnail) as png:  # the map, coarser, in the legend's colours, no data transparent
        assert png.count == 4 and max(png.width, png.height) <= 512

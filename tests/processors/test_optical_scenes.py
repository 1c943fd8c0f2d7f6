"""The scenes a composite says it used (its STAC item's inputs and counts) are the scenes of its period, also
where two granules of one solar day (neighbouring Sentinel-2 tiles of one overpass over an AOI across their
overlap) were fused into one date of the cube: the cube's dates are then fewer than the scenes."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from hrlc.catalog import sources
from hrlc.catalog.static import StaticCatalog
from hrlc.lake.store import LocalStore
from hrlc.processors.base import Context
from hrlc.processors.optical_preprocessing import OpticalPreprocessing
from landcover import Reference, chain_dag


def _composites(root: Path, source: Path, repo_params: dict) -> dict[str, dict]:
    """The STAC items of the composites a run over `source` writes, by month (YYYY-MM)."""
    proc = OpticalPreprocessing()
    params = proc.parse_params({**repo_params, "source": str(source)})
    store = LocalStore(root)
    proc.run(params, Context(store=store, catalog=StaticCatalog(store)))
    out = {}
    for key in store.list():
        if key.endswith(".json") and "composite" in key and "cloudmask" not in key:
            doc = json.loads(store.read_bytes(key))
            if doc.get("type") == "Feature":  # not the catalog's collections
                out[doc["properties"]["start_datetime"][:7]] = doc
    return out


def test_a_second_granule_of_the_same_day_is_one_more_scene_of_its_period(
    land_cover_reference: Reference, tmp_path: Path
) -> None:
    repo = land_cover_reference.repo
    [task] = [t for t in chain_dag(repo).tasks if t.processor == "optical-preprocessing"]
    items = sources.search(
        str(repo.catalog),
        sensor="sentinel2",
        bbox=(-180, -90, 180, 90),
        datetime=f"{repo.year}-01-01/{repo.year}-12-31",
    )
    june = [i for i in items if i.datetime is not None and i.datetime.month == 6]
    twin = june[0].clone()  # the same pixels, another granule id, 40 s later: the same solar day
    twin.id = f"{twin.id}-twin"
    assert twin.datetime is not None
    twin.datetime = twin.datetime + dt.timedelta(seconds=40)
    with_twin, alone = tmp_path / "with-twin.json", tmp_path / "alone.json"
    for path, collection in ((with_twin, [*items, twin]), (alone, items)):
        dicts = [i.make_asset_hrefs_absolute().to_dict(transform_hrefs=False) for i in collection]
        path.write_text(json.dumps({"type": "FeatureCollection", "features": dicts}))

    want = _composites(tmp_path / "alone", alone, task.params)
    got = _composites(tmp_path / "twin", with_twin, task.params)

    month = f"{repo.year}-06"
    assert got[month]["properties"]["hrlc:scenes"] == len(june) + 1
    assert set(got[month]["properties"]["hrlc:inputs"]) == {i.id for i in june} | {twin.id}
    for other, doc in got.items():  # every other period as without the twin: scenes and statistics alike
        if other != month:
            for key in ("hrlc:scenes", "hrlc:inputs", "hrlc:cloud_ratio", "eo:cloud_cover"):
                assert doc["properties"][key] == want[other]["properties"][key], (other, key)
    # the twin fused into its day: the same clear observations as without it
    for key in ("hrlc:cloud_ratio", "hrlc:no_clear_ratio"):
        assert got[month]["properties"][key] == want[month]["properties"][key]

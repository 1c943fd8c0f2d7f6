"""The optical preprocessing composites block by block (issue 13): with blocks smaller than the grid (seams;
clouds grown by the dilation and the best-available-pixel distance to clouds, both across the blocks' edges)
its composites, cloud masks and STAC items are byte for byte those of one block over the whole grid."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hrlc.catalog.static import StaticCatalog
from hrlc.lake.store import LocalStore
from hrlc.processors.base import Context
from hrlc.processors.optical_preprocessing import OpticalPreprocessing
from hrlc.settings import Settings
from landcover import Reference, chain_dag


def _run(params: Any, root: Path, chunk_px: int) -> LocalStore:
    store = LocalStore(root, settings=Settings(chunk_px=chunk_px))
    OpticalPreprocessing().run(params, Context(store=store, catalog=StaticCatalog(store)))
    return store


def _contents(store: LocalStore) -> dict[str, Any]:
    """Every object the run wrote: rasters as bytes, JSON without the lake's path and the processing time."""
    out: dict[str, Any] = {}
    for key in store.list():
        raw = store.read_bytes(key)
        if key.endswith(".json"):
            doc = json.loads(raw.decode().replace(str(store.root), "{lake}"))
            doc.get("properties", {}).pop("processing:datetime", None)
            out[key] = doc
        else:
            out[key] = raw
    return out


def test_small_blocks_make_the_products_of_one_block(land_cover_reference: Reference, tmp_path: Path) -> None:
    # best-available-pixel with dilation: the kernels that look past a block's edge (a median composite is
    # pixel by pixel: its blocks are the same but for the margin, which is 0)
    repo = land_cover_reference.repo
    options = {"composite": "bap", "dilate": 2, "mask_snow": True}
    [task] = [t for t in chain_dag(repo, **options).tasks if t.processor == "optical-preprocessing"]
    params = OpticalPreprocessing().parse_params(task.params)

    one = _contents(_run(params, tmp_path / "one", chunk_px=repo.size))
    blocks = _contents(_run(params, tmp_path / "blocks", chunk_px=40))  # 40 + 40 + 16 px a side

    assert sum(k.endswith(".tif") for k in one) == 24  # 12 months x (composite, cloud mask)
    assert blocks.keys() == one.keys()
    for key, want in one.items():
        assert blocks[key] == want, key

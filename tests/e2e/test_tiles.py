"""The tiled chain (issue 13): an AOI cut by the product grid (`hrlc.lake.grid`) gives the map of the AOI made
in one piece, pixel for pixel; tiles are shared between AOIs and jobs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio

from hrlc import sample
from hrlc.jobs.dag import Dag, output_keys, product_key
from hrlc.lake import layout
from hrlc.lake.grid import parse_tile
from hrlc.lake.store import LocalStore
from hrlc.sample.grid import X0, Y0
from landcover import chain_dag, run_chain

from .conftest import SIZE

ORIGIN = (X0, Y0)  # the repository's upper-left corner


def _products(store: LocalStore, dag: Dag) -> dict[str, np.ndarray]:
    """The class map and probabilities of a DAG's run, and its held-out accuracy report's numbers."""
    out = {}
    for family in ("class-map", "class-probabilities"):
        with rasterio.open(store.path(product_key(dag, family))) as src:
            out[family] = src.read()
    report = json.loads(store.read_bytes(product_key(dag, "accuracy-report")))
    out["accuracy"] = np.array([report["overall_accuracy"], report["kappa"], report["n_train"]])
    return out


HALF = SIZE * 10 // 2  # metres: 2 x 2 tiles of HALF hold the repository, their edges cross it in the middle


def test_a_map_made_of_four_tiles_equals_the_map_made_in_one_piece(
    repo: sample.SampleRepository, tmp_path: Path
) -> None:
    tiled = chain_dag(repo, tile_size=HALF)
    tiles = [parse_tile(t.params["tile"]) for t in tiled.tasks if t.processor == "optical-preprocessing"]
    assert len(tiles) == 4 and {t.tile_m for t in tiles} == {HALF}
    whole = chain_dag(repo, tiled=False)
    runs, stores = {}, {}
    for name, dag in (("tiled", tiled), ("whole", whole)):
        stores[name] = store = LocalStore(tmp_path / name)
        run_chain(repo, store, dag=dag)
        runs[name] = _products(store, dag)
    for what in runs["whole"]:  # same samples, same model, same pixels
        np.testing.assert_array_equal(runs["tiled"][what], runs["whole"][what], err_msg=what)
    # the tiles are shared products: the tiled run's composites live under the tiles' spaces
    spaces = {layout.parse(k).fields["space"] for k in _keys(tiled, "optical-composite")}
    assert spaces == {t.id for t in tiles}
    # each tile was mapped by a task of its own; its map is the tile's part of the AOI's map
    store, aoi_map = stores["tiled"], runs["tiled"]["class-map"][0]
    tile_maps = _keys(tiled, "class-map")[:-1]  # the mosaic's is the last
    assert {layout.parse(k).fields["space"] for k in tile_maps} == {t.id for t in tiles}
    for key in tile_maps:
        with rasterio.open(store.path(key)) as src:
            col, row = (-round(v) for v in ~src.transform * ORIGIN)  # the tile's corner in the AOI's pixels
            tile_map = src.read(1)
            assert tile_map.shape == (SIZE // 2, SIZE // 2)  # the whole tile
            np.testing.assert_array_equal(tile_map, aoi_map[row : row + src.height, col : col + src.width])


def test_composites_with_neighbourhoods_join_without_seams(
    repo: sample.SampleRepository, tmp_path: Path
) -> None:
    """Best-available-pixel composites of dilated clouds look past a pixel's neighbours: a tile reads a halo of
    its neighbours (`OpticalPreprocessing.halo`), so its composites join into those of one grid. Compared away
    from the repository's edge, where the tiles see the scenes' nodata beyond it and the one grid does not."""
    options = {"composite": "bap", "dilate": 2}
    tiled, whole = chain_dag(repo, tile_size=HALF, **options), chain_dag(repo, tiled=False, **options)
    runs = {}
    for name, dag in (("tiled", tiled), ("whole", whole)):
        store = LocalStore(tmp_path / name)
        tasks = Dag([t for t in dag.tasks if t.processor == "optical-preprocessing"])
        run_chain(repo, store, dag=tasks)
        runs[name] = {k: _mosaic(store, ks) for k, ks in _by_period(dag).items()}
    halo = 2 + 10  # dilate + BAP's cloud distance
    inner = (slice(None), slice(halo, SIZE - halo), slice(halo, SIZE - halo))
    changed = 0
    for period, want in runs["whole"].items():
        got = runs["tiled"][period]
        np.testing.assert_array_equal(got[inner], want[inner], err_msg=period)
        changed += int((got != want).sum())
    assert changed > 0  # the edge differs: the check above compares what tiling could change


def _keys(dag: Dag, family: str) -> list[str]:
    return [k for k in output_keys(dag) if layout.parse(k).family == family]


def _by_period(dag: Dag) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for k in _keys(dag, "optical-composite"):
        found.setdefault(layout.parse(k).fields["period"], []).append(k)
    return found


def _mosaic(store: LocalStore, keys: list[str]) -> np.ndarray:
    """The COGs of `keys` pasted onto the repository's grid (SIZE² px from its corner)."""
    out: np.ndarray | None = None
    for key in keys:
        with rasterio.open(store.path(key)) as src:
            data = src.read()
            x0, y0 = src.transform.c, src.transform.f
        if out is None:
            out = np.zeros((data.shape[0], SIZE, SIZE), data.dtype)
        col, row = round((x0 - ORIGIN[0]) / 10), round((ORIGIN[1] - y0) / 10)
        r0, c0 = max(row, 0), max(col, 0)
        r1, c1 = min(row + data.shape[1], SIZE), min(col + data.shape[2], SIZE)
        out[:, r0:r1, c0:c1] = data[:, r0 - row : r1 - row, c0 - col : c1 - col]
    assert out is not None
    return out

"""`generate`: write the whole synthetic external repository to a folder, once.

Why: tests, the demo and benchmarks need an "external repository" like Earth Search or the Planetary
Computer, offline and with a known answer. One call writes, under `root`:

    stac/catalog.json                       static self-contained STAC catalogue
    stac/sentinel-2-l2a/<item>/B02.tif ...   73 Sentinel-2 L2A scenes of `year` (10 bands + SCL)
    stac/landsat-c2-l2/<item>/*_SR_B*.TIF    46 Landsat 7/8 C2 L2 scenes of `landsat_year` (6 SR + QA_PIXEL)
    truth/truth_<year>.tif                  truth class map (HRLC codes, colour table)
    training/points.gpkg                    stratified training points (layer "training_points")
    training/polygons.geojson               training polygons (EPSG:4326)
    sample.json                             manifest, written last: its presence means "complete"

The land cover is the same in both years (no change between `landsat_year` and `year`); crop types
rotate per field and year; snow and clouds differ per year and date.

Memory: the landscape is held whole (10 bytes a pixel); everything else is computed and written by strips
of rows (`_strips.STRIP_PIXELS`), with the per-pixel traits in raw files under root/.work while it runs.
A full Sentinel-2 tile (10 980² px) takes ~200 GB of disk: the COGs hardly compress (noise).
"""

from __future__ import annotations

import fcntl
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from affine import Affine

from hrlc.legend import colormap, name
from hrlc.sample import _strips
from hrlc.sample._strips import strips
from hrlc.sample.grid import LANDSAT_PIXEL, X0, Y0, Grid
from hrlc.sample.landscape import Landscape, landscape
from hrlc.sample.samples import sample_points, sample_polygons, write_points, write_polygons
from hrlc.sample.sensors import (
    LANDSAT_FROM_S2,
    LANDSAT_SPECS,
    S2_SPECS,
    LandsatScene,
    S2Scene,
    landsat_acquisitions,
    landsat_shape,
    noise_bank,
    s2_acquisitions,
)
from hrlc.sample.stac import catalog, collection, landsat_band_file, landsat_item, s2_item
from hrlc.sample.surface import SurfaceModel, pixel_traits
from hrlc.sample.writer import CogPool, CogWriter, local_env, write_cog

GENERATOR_VERSION = "1"
MANIFEST = "sample.json"
LOCK = ".sample.lock"
WORK = ".work"
_OWNED = ("stac", "truth", "training", WORK, MANIFEST)


@dataclass(frozen=True)
class SampleRepository:
    """A generated synthetic repository (paths are absolute)."""

    root: Path
    catalog: Path  # root/stac/catalog.json
    truth_map: Path  # COG uint8 HRLC codes of `year`, nodata 0, colour table
    training_points: Path  # GeoPackage, layer "training_points", column class_code, grid CRS
    training_polygons: Path  # GeoJSON (EPSG:4326), column class_code
    bbox: tuple[float, float, float, float]  # lon/lat bbox of the 10 m grid
    epsg: int
    transform: Affine  # 10 m grid
    size: int
    year: int
    landsat_year: int
    seed: int = 42
    cloud_cover: tuple[float, float] = (0.30, 0.50)

    @property
    def grid(self) -> Grid:
        return Grid(
            self.size, epsg=self.epsg, x0=self.transform.c, y0=self.transform.f, pixel=self.transform.a
        )

    @classmethod
    def open(cls, root: Path | str) -> SampleRepository:
        """The repository described by `root/sample.json` (FileNotFoundError if it was never completed)."""
        root = Path(root).resolve()
        m = json.loads((root / MANIFEST).read_text())
        p = m["params"]
        return cls(
            root=root,
            catalog=root / m["files"]["catalog"],
            truth_map=root / m["files"]["truth_map"],
            training_points=root / m["files"]["training_points"],
            training_polygons=root / m["files"]["training_polygons"],
            bbox=(float(m["bbox"][0]), float(m["bbox"][1]), float(m["bbox"][2]), float(m["bbox"][3])),
            epsg=int(m["epsg"]),
            transform=Affine(*m["transform"][:6]),
            size=int(p["size"]),
            year=int(p["year"]),
            landsat_year=int(p["landsat_year"]),
            seed=int(p["seed"]),
            cloud_cover=(float(p["cloud_cover"][0]), float(p["cloud_cover"][1])),
        )


def _params(
    size: int,
    year: int,
    landsat_year: int,
    seed: int,
    cloud_cover: tuple[float, float],
    every: int,
    origin: tuple[float, float],
) -> dict:
    return {
        "size": int(size),
        "origin": [float(origin[0]), float(origin[1])],
        "year": int(year),
        "landsat_year": int(landsat_year),
        "seed": int(seed),
        "cloud_cover": [float(cloud_cover[0]), float(cloud_cover[1])],
        "every": int(every),
    }


def _complete(root: Path, params: dict) -> bool:
    try:
        m = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    if m.get("version") != GENERATOR_VERSION or m.get("params") != params:
        return False
    return all((root / f).exists() for f in m.get("files", {}).values())


def generate(
    root: Path | str,
    *,
    size: int = 1024,
    year: int = 2021,
    landsat_year: int = 2018,
    seed: int = 42,
    cloud_cover: tuple[float, float] = (0.30, 0.50),
    every: int = 1,
    origin: tuple[float, float] = (X0, Y0),
    progress: Callable[[int, int], None] | None = None,
) -> SampleRepository:
    """Generate the synthetic repository under `root` (or return it if already complete, same parameters).

    `size` is the side of the 10 m grid in pixels (>= 64), `cloud_cover` the range of the per-scene cloud
    fraction (0..1), `every` keeps every n-th acquisition of each sensor (1: all 73 Sentinel-2 and 46 Landsat
    dates; 3: 25 and 16; a kept scene is the same as in the full repository), `origin` the upper-left corner
    of the grid in UTM 33N metres, a multiple of 30 m (the default lies at the corner of product-grid tiles of
    any size dividing 61 440 m; (439 200, 5 160 600) is the corner of the Sentinel-2-sized tile
    utm33n-109800-4-46: a repository of 10 980 px is that tile), `progress(done, total)` is called after each
    step. Deterministic for a given seed; the pixels do not depend on the origin.
    """
    lo, hi = cloud_cover
    if not 0.0 <= lo <= hi <= 1.0:
        raise ValueError(f"cloud_cover must satisfy 0 <= low <= high <= 1, got {cloud_cover}")
    if size < 64:
        raise ValueError("size must be at least 64 pixels")
    if any(v % LANDSAT_PIXEL for v in origin):
        raise ValueError(f"origin must be a multiple of {LANDSAT_PIXEL:g} m (the Landsat grid), got {origin}")
    if not 1 <= every <= 12:
        raise ValueError(f"every must be 1..12 (at least one Sentinel-2 date a month), got {every}")
    root = Path(root).resolve()
    params = _params(size, year, landsat_year, seed, cloud_cover, every, origin)
    if _complete(root, params):
        return SampleRepository.open(root)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK, "w") as lock:  # one writer at a time (pytest-xdist workers, parallel demos)
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _complete(root, params):
            return SampleRepository.open(root)
        with local_env():
            return _generate(root, params, progress)


def _generate(root: Path, params: dict, progress: Callable[[int, int], None] | None) -> SampleRepository:
    size, year, landsat_year, seed = params["size"], params["year"], params["landsat_year"], params["seed"]
    cloud_cover = (params["cloud_cover"][0], params["cloud_cover"][1])
    for owned in _OWNED:  # a partial or different earlier run: start again
        p = root / owned
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()

    grid = Grid(size, x0=params["origin"][0], y0=params["origin"][1])
    ls = landscape(size, seed)
    s2_acqs = s2_acquisitions(year)[:: params["every"]]
    ls_acqs = landsat_acquisitions(landsat_year)[:: params["every"]]
    total = len(s2_acqs) + len(ls_acqs) + 2
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    stac_root = root / "stac"
    truth = root / "truth" / f"truth_{year}.tif"
    classes = _class_counts(ls)
    write_cog(
        truth,
        ls.codes,
        crs=grid.crs,
        transform=grid.transform,
        nodata=0,
        colormap=colormap(),
        tags={"hrlc:year": str(year), "hrlc:seed": str(seed), "classes": _class_tag(classes)},
        overview_resampling="mode",
    )
    version = f"{GENERATOR_VERSION}"
    s2_items = []
    ls_items = []
    s2_cover: list[float] = []
    ls_cover: list[float] = []
    with CogPool(workers=2) as pool:
        streamed = size * size > _strips.STRIP_PIXELS  # more than one strip: the traits go to disk
        traits = pixel_traits(ls, root / WORK if streamed else None)
        model = SurfaceModel(ls, year, traits)
        bank = noise_bank(seed, (size, size))
        on_grid = partial(CogWriter, crs=grid.crs, transform=grid.transform, overviews=False)
        for acq in s2_acqs:
            s2 = S2Scene(model, acq, seed, cloud_cover, bank)
            folder = stac_root / acq.collection / acq.item_id
            files = [on_grid(folder / spec.file, s2.shape, np.uint16, nodata=0) for spec in S2_SPECS]
            files.append(on_grid(folder / "SCL.tif", s2.shape, np.uint8, nodata=0))
            _render(s2.rows, strips(size, size), files, pool)
            s2_items.append(s2_item(acq, s2.stats, grid, folder, version))
            s2_cover.append(s2.cover)
            pool.wait_below(len(files) + 1)  # one scene's COGs in the making while the next renders
            step()
        del model, bank
        model = SurfaceModel(ls, landsat_year, traits)
        bank = noise_bank(seed, landsat_shape(size))[list(LANDSAT_FROM_S2)]
        on_grid = partial(CogWriter, crs=grid.crs, transform=grid.landsat_transform, overviews=False)
        for acq in ls_acqs:
            lsat = LandsatScene(model, acq, seed, cloud_cover, bank)
            folder = stac_root / acq.collection / acq.item_id
            files = [
                on_grid(folder / landsat_band_file(acq, lspec.key), lsat.shape, np.uint16, nodata=0)
                for lspec in LANDSAT_SPECS
            ]
            files.append(
                on_grid(folder / landsat_band_file(acq, "qa_pixel"), lsat.shape, np.uint16, nodata=1)
            )
            _render(lsat.rows, strips(lsat.shape[0], 3 * size), files, pool)
            ls_items.append(landsat_item(acq, lsat.stats, grid, folder))
            ls_cover.append(lsat.cover)
            pool.wait_below(len(files) + 1)
            step()
        del model, traits
        shutil.rmtree(root / WORK, ignore_errors=True)
        points = write_points(sample_points(ls.codes, grid, seed), root / "training" / "points.gpkg")
        polygons = write_polygons(
            sample_polygons(ls.codes, grid, seed), root / "training" / "polygons.geojson"
        )
        step()
    cat_path = stac_root / "catalog.json"
    catalog(
        stac_root, [collection("sentinel-2-l2a", s2_items, grid), collection("landsat-c2-l2", ls_items, grid)]
    )
    step()

    t = grid.transform
    manifest = {
        "generator": "hrlc.sample",
        "version": GENERATOR_VERSION,
        "params": params,
        "files": {
            "catalog": str(cat_path.relative_to(root)),
            "truth_map": str(truth.relative_to(root)),
            "training_points": str(points.relative_to(root)),
            "training_polygons": str(polygons.relative_to(root)),
        },
        "bbox": list(grid.bbox()),
        "epsg": grid.epsg,
        "transform": [t.a, t.b, t.c, t.d, t.e, t.f],
        "items": {"sentinel-2-l2a": len(s2_items), "landsat-c2-l2": len(ls_items)},
        "cloud_cover_mean": {
            "sentinel-2-l2a": round(float(np.mean(s2_cover)), 4),
            "landsat-c2-l2": round(float(np.mean(ls_cover)), 4),
        },
        "classes": {str(c): int(n) for c, n in classes.items()},
    }
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return SampleRepository.open(root)


def _render(
    rows: Callable[[int, int], tuple[np.ndarray, np.ndarray]],
    parts: list[tuple[int, int]],
    files: list[CogWriter],
    pool: CogPool,
) -> None:
    """Write a scene strip by strip: `rows(r0, r1)` gives (bands, quality), `files` are the bands' COGs and
    the quality layer's, last; then their COGs are made in the pool."""
    try:
        for r0, r1 in parts:
            data, quality = rows(r0, r1)
            for f, band in zip(files, [*data, quality], strict=True):
                f.write(band, r0)
        for f in files:
            f.close()
    except BaseException:
        for f in files:
            f.discard()
        raise
    for f in files:
        pool.submit(f.finish)


def _class_counts(ls: Landscape) -> dict[int, int]:
    """Pixels of each class code of the truth map (codes present only), counted by strips."""
    counts = np.zeros(256, dtype=np.int64)
    for r0, r1 in strips(ls.size, ls.size):
        counts += np.bincount(ls.codes[r0:r1].ravel(), minlength=256)
    return {int(c): int(counts[c]) for c in np.flatnonzero(counts)}


def _class_tag(classes: dict[int, int]) -> str:
    return json.dumps({c: name(c) for c in classes})

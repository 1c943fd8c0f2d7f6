"""Training samples from a reference land-cover map, for a user with no field data.

Why: the classification needs labelled points, and many users have none; a published map (ESA WorldCover from
`hrlc ancillary get`, or any single-band raster of class codes with a cross-walk to the HRLC legend) can stand
in. :func:`sample_reference` draws a stratified random sample of pixel centres away from class edges and returns
it in the training format :func:`hrlc.training.samples.read_training` reads (`hrlc run --training FILE`).

Conventions
-----------
- Classes are HRLC codes (:data:`hrlc.legend.CODES`) after the cross-walk (raster code -> HRLC code, or None:
  not a class). The raster's nodata value, 0 (unless the cross-walk maps it) and codes cross-walked to None or 0
  are not classes.
- An *interior* pixel of a class lies at least `erode_px` pixels inside a patch of it: its whole
  ``(2 erode_px + 1)²`` neighbourhood holds the class. Pixels outside the raster count as another class (what
  lies beyond the edge is unknown), pixels outside the AOI but inside the raster count as what they are.
- Stratified random sample: for each class with at least `min_pixels` interior pixels, ``min(per_class,
  interior)`` interior pixels drawn uniformly without replacement (rank selection: every pixel gets a
  pseudo-random key from the seed and its position, a bijective 64-bit hash, and each class keeps its
  `per_class` smallest keys). The draw depends on the seed, the raster and the options, not on the windows it
  is read in; a pixel keeps its key whatever the AOI.
- Memory is bounded: the raster is read in windows of `window_px` px plus an `erode_px` margin, never whole;
  what is kept between windows is the `per_class` best candidates of each class and the patch labels along the
  window seams.
- ``patch_id``: the connected patch (4-connectivity, all pixels of the class, not only interior ones) a point
  lies in, labelled across the whole AOI (window labels joined along the seams), numbered 1, 2, ... in the
  order of the output rows; points of one patch share it, so ``--group-column patch_id`` validates whole
  patches. A patch that leaves the AOI and comes back counts as two.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely
from rasterio.errors import RasterioIOError
from rasterio.windows import Window
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from hrlc import legend

__all__ = [
    "CAVEATS",
    "CROSSWALKS",
    "WINDOW_PX",
    "ClassReport",
    "ReferenceMapError",
    "read_crosswalk",
    "sample_reference",
]

#: side (px) of the windows the raster is read in (plus an `erode_px` margin): ~1 Mpx in memory at a time
WINDOW_PX = 1024

#: the built-in cross-walks to the HRLC legend (`hrlc.legend`), by the name `--crosswalk` takes
CROSSWALKS: dict[str, Mapping[int, int]] = {
    "worldcover": legend.WORLDCOVER_TO_HRLC,
    "cci-lc": legend.CCI_LC_TO_HRLC,
    "glc-fcs30": legend.GLC_FCS30_TO_HRLC,
    "cgls-lc100": legend.CGLS_LC100_TO_HRLC,
}

#: what a user must know about samples drawn from a map (printed by `hrlc training sample-reference`)
CAVEATS = (
    "caveats: the map's own errors become training errors; a map of another year or legend adds its "
    "differences; points away from edges favour pure pixels, so the chain's accuracy estimate is optimistic: "
    "assess the result with `hrlc assess` against independent data, not this map"
)

_NOT_A_CLASS = -1  # outside the raster: another class than any, for the erosion
_DENSE_RANGE = 1 << 20  # raster codes spanning at most this many values are cross-walked by a look-up table


class ReferenceMapError(ValueError):
    """A reference map or cross-walk that cannot be sampled, with a one-line reason."""


@dataclass(frozen=True)
class ClassReport:
    """One HRLC class of the sampled raster: its pixels in the AOI, interior pixels, points drawn, and why it was
    skipped (None when it was not)."""

    class_code: int
    class_name: str
    pixels: int
    interior_pixels: int
    points: int
    skipped: str | None = None


def read_crosswalk(spec: str | Path) -> dict[int, int | None]:
    """A cross-walk to the HRLC legend: a name of :data:`CROSSWALKS` (e.g. ``worldcover``) or a JSON file holding
    an object, raster code -> HRLC code or null (not a class), e.g. ``{"10": 30, "95": 90, "0": null}``."""
    text = str(spec)
    if text in CROSSWALKS:
        return {int(k): v for k, v in CROSSWALKS[text].items()}
    path = Path(text)
    if not path.is_file():
        raise ReferenceMapError(
            f"cross-walk {text} is neither a built-in ({', '.join(CROSSWALKS)}) nor an existing JSON file"
        )
    try:
        table = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ReferenceMapError(f"cannot read the cross-walk {path}: {first}") from None
    if not isinstance(table, dict):
        raise ReferenceMapError(
            f"the cross-walk {path} must be a JSON object: raster code -> HRLC code or null"
        )
    out: dict[int, int | None] = {}
    for key, value in table.items():
        try:
            code = int(key)
        except ValueError:
            raise ReferenceMapError(
                f"the cross-walk {path} has a key {key!r} that is not an integer code"
            ) from None
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ReferenceMapError(
                f"the cross-walk {path} maps {key} to {value!r}: give an HRLC code or null"
            )
        out[code] = value
    return out


def sample_reference(
    raster: str | Path,
    *,
    aoi: tuple[float, float, float, float] | None = None,
    per_class: int = 200,
    erode_px: int = 2,
    min_pixels: int = 50,
    crosswalk: Mapping[int, int | None] | None = None,
    seed: int = 0,
    window_px: int = WINDOW_PX,
) -> gpd.GeoDataFrame:
    """Stratified random training points from a single-band raster of class codes (conventions: module doc).

    Args:
        raster: the reference map (GeoTIFF or anything GDAL reads; band 1, integer codes, a CRS).
        aoi: ``(west, south, east, north)`` in the raster's CRS: the pixels whose centre lies inside; None: all.
        per_class: points per class at most. erode_px: the distance (px) of every point from another class.
        min_pixels: classes with fewer interior pixels are skipped (reported).
        crosswalk: raster code -> HRLC code or None (not a class); None: the codes are HRLC codes already.
        seed: of the draw. window_px: side of the windows the raster is read in.

    Returns:
        Points at pixel centres in the raster's CRS, ordered by class, row, column, with columns ``class_code``
        (int32), ``class_name``, ``source`` (the raster's file name), ``patch_id`` (int64) and the geometry.
        ``attrs["report"]``: a :class:`ClassReport` as a dict per class present in the AOI, ascending by code.

    Raises:
        ReferenceMapError: a missing or unreadable raster, more than one band, non-integer values, no CRS, a
            rotated grid, an AOI outside the raster, a cross-walk to codes outside the HRLC legend, codes of the
            raster missing from the cross-walk or (without one) outside the legend.
    """
    if per_class < 1:
        raise ValueError("per_class must be >= 1")
    if erode_px < 0:
        raise ValueError("erode_px must be >= 0")
    if min_pixels < 0:
        raise ValueError("min_pixels must be >= 0")
    if window_px < 1:
        raise ValueError("window_px must be >= 1")
    name = str(raster)
    if "://" not in name and not name.startswith("/vsi") and not Path(name).is_file():
        raise ReferenceMapError(f"reference map {name} does not exist")
    table = _table(crosswalk)
    try:
        src = rasterio.open(name)
    except RasterioIOError as e:
        raise ReferenceMapError(f"cannot read the reference map {name}: {str(e).splitlines()[0]}") from None
    with src:
        return _sample(
            src,
            Path(name).name,
            table,
            crosswalk is not None,
            aoi,
            per_class,
            erode_px,
            min_pixels,
            seed,
            window_px,
        )


# --- the draw ------------------------------------------------------------------------------------------------


@dataclass
class _Best:
    """The candidates of one class with the smallest keys so far (at most `per_class`)."""

    keys: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    labels: np.ndarray

    @classmethod
    def empty(cls) -> _Best:
        z = np.zeros(0, dtype=np.int64)
        return cls(np.zeros(0, dtype=np.uint64), z, z, z)

    def offer(self, keys: np.ndarray, rows: np.ndarray, cols: np.ndarray, labels: np.ndarray, k: int) -> None:
        if self.keys.size >= k:
            better = keys < self.keys.max()
            keys, rows, cols, labels = keys[better], rows[better], cols[better], labels[better]
        if keys.size == 0:
            return
        self.keys = np.concatenate([self.keys, keys])
        self.rows = np.concatenate([self.rows, rows])
        self.cols = np.concatenate([self.cols, cols])
        self.labels = np.concatenate([self.labels, labels])
        if self.keys.size > k:
            keep = np.argpartition(self.keys, k - 1)[:k]
            self.keys, self.rows = self.keys[keep], self.rows[keep]
            self.cols, self.labels = self.cols[keep], self.labels[keep]


def _sample(
    src: rasterio.io.DatasetReader,
    source: str,
    table: dict[int, int],
    has_crosswalk: bool,
    aoi: tuple[float, float, float, float] | None,
    per_class: int,
    erode_px: int,
    min_pixels: int,
    seed: int,
    window_px: int,
) -> gpd.GeoDataFrame:
    if src.count != 1:
        raise ReferenceMapError(f"reference map {source} has {src.count} bands: give a single-band class map")
    if not np.issubdtype(np.dtype(src.dtypes[0]), np.integer):
        raise ReferenceMapError(
            f"reference map {source} holds {src.dtypes[0]} values, not integer class codes"
        )
    if src.crs is None:
        raise ReferenceMapError(f"reference map {source} has no CRS")
    t = src.transform
    if t.b != 0 or t.d != 0:
        raise ReferenceMapError(f"reference map {source} has a rotated grid: warp it north-up first")
    r0, r1, c0, c1 = _aoi_window(src, aoi, source)
    nodata = src.nodata if src.nodata is not None and float(src.nodata).is_integer() else None

    pixels = np.zeros(256, dtype=np.int64)
    interior = np.zeros(256, dtype=np.int64)
    best: dict[int, _Best] = {}
    unknown: set[int] = set()
    seams: list[np.ndarray] = []
    n_labels = 0
    bottom_cls = np.zeros(c1 - c0, dtype=np.int16)  # the last row of the window row above, its classes ...
    bottom_lab = np.zeros(c1 - c0, dtype=np.int64)  # ... and patch labels
    right_cls: np.ndarray = np.zeros(0, dtype=np.int16)  # the last column of the window to the left ...
    right_lab: np.ndarray = np.zeros(0, dtype=np.int64)
    key_seed = _mix(seed & _MASK)

    for wr0, wc0, h, w in _windows(r0, r1, c0, c1, window_px):
        # the window and its margin, clipped to the raster (beyond it: another class)
        rr0, cc0 = max(wr0 - erode_px, 0), max(wc0 - erode_px, 0)
        rr1, cc1 = min(wr0 + h + erode_px, src.height), min(wc0 + w + erode_px, src.width)
        raw = src.read(1, window=Window(cc0, rr0, cc1 - cc0, rr1 - rr0))
        codes, missing = _lookup(raw, table, nodata)
        if missing:
            unknown |= missing
        if unknown:  # the input is refused: only look for the other unknown codes
            continue
        core = (slice(wr0 - rr0, wr0 - rr0 + h), slice(wc0 - cc0, wc0 - cc0 + w))
        cls = codes[core]
        inner = (cls > 0) & _interior(codes, erode_px)[core]
        pixels += np.bincount(cls.ravel(), minlength=256)
        interior += np.bincount(cls[inner], minlength=256)

        # patches: labels of this window's classes, offset to be unique in the AOI, joined along the seams
        labels = np.zeros(cls.shape, dtype=np.int64)
        for code in np.flatnonzero(np.bincount(cls.ravel(), minlength=256)[1:]) + 1:
            mask = cls == code
            lab, n = ndimage.label(mask)
            labels[mask] = lab[mask] + n_labels
            n_labels += n
            rows, cols = np.nonzero(inner & mask)
            if rows.size:
                rows, cols = rows + wr0, cols + wc0
                keys = _keys(rows.astype(np.uint64) * np.uint64(src.width) + cols.astype(np.uint64), key_seed)
                best.setdefault(int(code), _Best.empty()).offer(
                    keys, rows, cols, labels[rows - wr0, cols - wc0], per_class
                )
        if wc0 > c0:
            seams.append(_joins(right_cls, right_lab, cls[:, 0], labels[:, 0]))
        if wr0 > r0:
            j = slice(wc0 - c0, wc0 - c0 + w)
            seams.append(_joins(bottom_cls[j], bottom_lab[j], cls[0], labels[0]))
        right_cls, right_lab = cls[:, -1].copy(), labels[:, -1].copy()
        bottom_cls[wc0 - c0 : wc0 - c0 + w] = cls[-1]
        bottom_lab[wc0 - c0 : wc0 - c0 + w] = labels[-1]

    if unknown:
        first = sorted(unknown)[:20]
        listed = f"{first}" if len(unknown) <= 20 else f"{first} (and {len(unknown) - 20} more)"
        if has_crosswalk:
            raise ReferenceMapError(
                f"codes {listed} of {source} are not in the cross-walk: map each to an HRLC code or null"
            )
        raise ReferenceMapError(
            f"codes {listed} of {source} are not HRLC classes ({', '.join(str(c) for c in legend.CODES)}): "
            "give a cross-walk (--crosswalk worldcover or a JSON file)"
        )
    return _points(src, source, pixels, interior, best, seams, per_class, min_pixels)


def _points(
    src: rasterio.io.DatasetReader,
    source: str,
    pixels: np.ndarray,
    interior: np.ndarray,
    best: dict[int, _Best],
    seams: list[np.ndarray],
    per_class: int,
    min_pixels: int,
) -> gpd.GeoDataFrame:
    report: list[ClassReport] = []
    drawn: list[_Best] = []
    codes: list[int] = []
    for code in np.flatnonzero(pixels[1:]) + 1:
        c = int(code)
        n_in = int(interior[c])
        skipped = None
        if n_in < max(min_pixels, 1):
            skipped = (
                f"{n_in} interior pixels, fewer than min_pixels {min_pixels}" if n_in else "no interior pixel"
            )
            n = 0
        else:
            chosen = best[c]
            order = np.lexsort((chosen.cols, chosen.rows))
            drawn.append(
                _Best(chosen.keys[order], chosen.rows[order], chosen.cols[order], chosen.labels[order])
            )
            codes.append(c)
            n = chosen.keys.size
            assert n == min(per_class, n_in)
        report.append(ClassReport(c, legend.name(c), int(pixels[c]), n_in, n, skipped))

    rows = np.concatenate([b.rows for b in drawn]) if drawn else np.zeros(0, dtype=np.int64)
    cols = np.concatenate([b.cols for b in drawn]) if drawn else np.zeros(0, dtype=np.int64)
    labels = np.concatenate([b.labels for b in drawn]) if drawn else np.zeros(0, dtype=np.int64)
    class_code = np.repeat(np.array(codes, dtype=np.int32), [b.rows.size for b in drawn])
    t = src.transform
    xs, ys = t * (cols + 0.5, rows + 0.5)
    frame = gpd.GeoDataFrame(
        {
            "class_code": class_code,
            "class_name": [legend.name(c) for c in class_code.tolist()],
            "source": source,
            "patch_id": _patch_ids(labels, seams),
        },
        geometry=shapely.points(np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)),
        crs=src.crs,
    )
    frame.attrs["report"] = [asdict(r) for r in report]
    return frame


# --- machinery -----------------------------------------------------------------------------------------------


def _table(crosswalk: Mapping[int, int | None] | None) -> dict[int, int]:
    """Raster code -> HRLC code (0: not a class): the cross-walk, or the legend's codes unchanged."""
    if crosswalk is None:
        return {c: c for c in legend.CODES}
    table = {legend.NODATA: legend.NODATA}
    bad: set[int] = set()
    for key, value in crosswalk.items():
        target = legend.NODATA if value is None else int(value)
        if target != legend.NODATA and target not in legend.CODES:
            bad.add(target)
        table[int(key)] = target
    if bad:
        raise ReferenceMapError(
            f"the cross-walk maps to {sorted(bad)}, not HRLC classes ({', '.join(str(c) for c in legend.CODES)})"
        )
    return table


def _aoi_window(
    src: rasterio.io.DatasetReader, aoi: tuple[float, float, float, float] | None, source: str
) -> tuple[int, int, int, int]:
    """(first row, end row, first column, end column) of the pixels whose centre lies in `aoi` (all: None)."""
    if aoi is None:
        return 0, src.height, 0, src.width
    west, south, east, north = (float(v) for v in aoi)
    if not (west < east and south < north) or not all(map(math.isfinite, (west, south, east, north))):
        raise ReferenceMapError(f"the bbox {aoi} is not W,S,E,N with W < E and S < N")
    t = src.transform
    fc = sorted(((west - t.c) / t.a, (east - t.c) / t.a))
    fr = sorted(((north - t.f) / t.e, (south - t.f) / t.e))
    c0, c1 = max(math.ceil(fc[0] - 0.5), 0), min(math.floor(fc[1] - 0.5) + 1, src.width)
    r0, r1 = max(math.ceil(fr[0] - 0.5), 0), min(math.floor(fr[1] - 0.5) + 1, src.height)
    if c0 >= c1 or r0 >= r1:
        b = src.bounds
        raise ReferenceMapError(
            f"the bbox {west:g},{south:g},{east:g},{north:g} holds no pixel centre of {source} (bounds "
            f"{b.left:g},{b.bottom:g},{b.right:g},{b.top:g} in {src.crs}): give it in the raster's CRS"
        )
    return r0, r1, c0, c1


def _windows(r0: int, r1: int, c0: int, c1: int, size: int) -> Iterator[tuple[int, int, int, int]]:
    """(row, column, height, width) of the windows tiling rows r0..r1, columns c0..c1, row by row."""
    for r in range(r0, r1, size):
        for c in range(c0, c1, size):
            yield r, c, min(size, r1 - r), min(size, c1 - c)


def _lookup(raw: np.ndarray, table: dict[int, int], nodata: float | None) -> tuple[np.ndarray, set[int]]:
    """(HRLC codes int16, 0 = not a class; raster codes missing from `table`) of a window of raster codes."""
    lo, hi = int(raw.min()), int(raw.max())
    if hi - lo <= _DENSE_RANGE:  # a look-up table over lo..hi
        index = raw.astype(np.int64) - lo
        present = np.flatnonzero(np.bincount(index.ravel(), minlength=hi - lo + 1))
        values, size = present + lo, hi - lo + 1
    else:  # sparse codes (wide integer types): over the values present
        values, inverse = np.unique(raw, return_inverse=True)
        index, present, size = inverse.reshape(raw.shape), np.arange(values.size), values.size
    lut = np.zeros(size, dtype=np.int16)
    missing: set[int] = set()
    for slot, value in zip(present.tolist(), values.tolist(), strict=True):
        if nodata is not None and value == nodata:
            continue
        target = table.get(value)
        if target is None:
            if value != legend.NODATA:
                missing.add(value)
            continue
        lut[slot] = target
    return lut[index], missing


def _interior(codes: np.ndarray, radius: int) -> np.ndarray:
    """True where the (2 radius + 1)² window around a pixel holds its class only; beyond the array: no class."""
    if radius == 0:
        return np.ones(codes.shape, dtype=bool)
    size = 2 * radius + 1
    return (ndimage.maximum_filter(codes, size=size, mode="constant", cval=_NOT_A_CLASS) == codes) & (
        ndimage.minimum_filter(codes, size=size, mode="constant", cval=_NOT_A_CLASS) == codes
    )


def _joins(cls_a: np.ndarray, lab_a: np.ndarray, cls_b: np.ndarray, lab_b: np.ndarray) -> np.ndarray:
    """(n, 2) pairs of labels of the same class facing each other across a seam (4-connectivity)."""
    same = (cls_a == cls_b) & (cls_a > 0)
    if not same.any():
        return np.zeros((0, 2), dtype=np.int64)
    return np.unique(np.stack([lab_a[same], lab_b[same]], axis=1), axis=0)


def _patch_ids(labels: np.ndarray, seams: list[np.ndarray]) -> np.ndarray:
    """Patch ids 1.. (in order of first appearance) of window labels, labels joined across seams being one."""
    if labels.size == 0:
        return np.zeros(0, dtype=np.int64)
    pairs = np.concatenate(seams) if seams else np.zeros((0, 2), dtype=np.int64)
    nodes = np.unique(np.concatenate([pairs.ravel(), labels]))
    a, b = np.searchsorted(nodes, pairs[:, 0]), np.searchsorted(nodes, pairs[:, 1])
    graph = coo_matrix((np.ones(a.size, dtype=np.int8), (a, b)), shape=(nodes.size, nodes.size))
    _, component = connected_components(graph, directed=False)
    patch = component[np.searchsorted(nodes, labels)]
    return (pd.factorize(patch)[0] + 1).astype(np.int64)


_MASK = (1 << 64) - 1


def _mix(value: int) -> int:
    """splitmix64's finaliser on a Python int (a bijection of 64-bit integers)."""
    z = (value + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def _keys(flat: np.ndarray, seed_key: int) -> np.ndarray:
    """The draw's key (uint64) of pixels with flat index ``row * width + col``: splitmix64 of the index and the
    seed; distinct pixels get distinct keys (a bijection), so the smallest keys are a uniform random sample."""
    z = flat.astype(np.uint64) ^ np.uint64(seed_key)
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))

"""Independent accuracy assessment of a class map against reference data (`hrlc assess`).

Why: the accuracy a classifier reports on its own held-out samples says how well it learned its training data;
a map's accuracy and its class areas are properties of the map, estimated from a probability sample of its
pixels with reference labels that had no part in making it (Olofsson et al. 2014, "Good practices for
estimating area and assessing accuracy of land change"). This module draws that sample and feeds the
estimators of `hrlc.chain.accuracy`.

Two designs:

- **reference raster** (any CRS and resolution): a random sample stratified by map class, `min(n_per_class,
  pixels of the class)` map pixels per class, drawn uniformly without replacement (seeded). Each sampled
  pixel's centre is carried into the reference's CRS and the reference pixel under it is its label; points
  outside the reference, or on its nodata, are dropped and counted.
- **reference points** (GeoPackage/GeoJSON with a class column): the user's points are the sample; the map is
  read under each point, and the estimates are post-stratified by map class (valid for a simple random or
  systematic sample of the map; a sample drawn otherwise biases them).

Memory does not grow with the map: it is read twice, window by window (its own blocks when tiled, else 512 px
squares) - once for the class histogram (the weights `W_i`), once to find the drawn pixels. The draw itself
(`draw_ranks`) and the search within one window (`locate_ranks`) are pure functions, so the design can be
simulated on arrays. Codes: the map's and the (cross-walked) reference's are HRLC legend codes; 0 is no data
in both, as is the rasters' declared nodata.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import RasterioIOError
from rasterio.transform import xy as pixel_centres
from rasterio.windows import Window

from hrlc import legend
from hrlc.chain.accuracy import error_matrix, stratified_estimates

__all__ = [
    "AssessError",
    "assess_map",
    "draw_ranks",
    "locate_ranks",
    "read_crosswalk",
]

WINDOW_PX = 512  # side of the windows a map without (reasonable) tiles is read in
MAX_BLOCK_PX = 1024 * 1024  # a tile larger than this is not read whole: 512 px windows instead
SAMPLE_LIST_MAX = 10_000  # the result lists its sample points when it has fewer
ESTIMATOR = "Olofsson et al. 2014"
_RASTER_DESIGN = "stratified random by map class"
_POINTS_DESIGN = "user points, post-stratified by map class"
_DROP = -1  # a reference code the cross-walk maps to None


class AssessError(ValueError):
    """Input an assessment cannot use (a missing or unreadable file, no overlap, no sample): one line."""


# --- the design, pure ----------------------------------------------------------------------------------------


def draw_ranks(
    counts: Mapping[int, int], n_per_class: int, rng: np.random.Generator
) -> dict[int, np.ndarray]:
    """The sample of a map whose class `c` covers `counts[c]` pixels: for each class (ascending code),
    `min(n_per_class, counts[c])` distinct ranks in `0 .. counts[c] - 1`, uniformly without replacement,
    sorted. Rank `r` of class `c` is the `r`-th pixel of class `c` in reading order (windows in order, rows
    within a window), which `locate_ranks` finds."""
    return {
        int(c): np.sort(rng.choice(int(k), size=min(n_per_class, int(k)), replace=False)).astype(np.int64)
        for c, k in sorted(counts.items())
        if k > 0
    }


def locate_ranks(
    block: np.ndarray, ranks: Mapping[int, np.ndarray], seen: dict[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """The drawn pixels inside one window of the map, the windows visited in reading order: `(codes,
    flat indices into block)` of the pixels whose rank within their class (`ranks` of `draw_ranks`) falls in
    this window. `seen` (class -> pixels of it in the windows before) is updated; start with `{}`."""
    codes: list[np.ndarray] = []
    found: list[np.ndarray] = []
    flat = block.reshape(-1)
    present, counts = np.unique(flat, return_counts=True)
    for c, k in zip(present.tolist(), counts.tolist(), strict=True):
        drawn = ranks.get(int(c))
        if drawn is None:
            continue
        before = seen.get(int(c), 0)
        hits = drawn[np.searchsorted(drawn, before) : np.searchsorted(drawn, before + k)] - before
        if hits.size:
            found.append(np.flatnonzero(flat == c)[hits])
            codes.append(np.full(hits.size, c, dtype=np.int64))
        seen[int(c)] = before + k
    if not found:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(codes), np.concatenate(found)


# --- the map, window by window -------------------------------------------------------------------------------


def _windows(src: rasterio.io.DatasetReader) -> Iterator[Window]:
    """The map's windows in reading order: its blocks if tiled (and a block is not huge), else 512 px squares."""
    block_h, block_w = src.block_shapes[0]
    if block_w < src.width and block_h * block_w <= MAX_BLOCK_PX:
        for _, window in src.block_windows(1):
            yield window
        return
    for row in range(0, src.height, WINDOW_PX):
        for col in range(0, src.width, WINDOW_PX):
            yield Window(col, row, min(WINDOW_PX, src.width - col), min(WINDOW_PX, src.height - row))


def _valid(data: np.ndarray, nodata: float | None) -> np.ndarray:
    ok = data != legend.NODATA
    if nodata is not None:
        ok &= data != nodata
    return ok


def _histogram(src: rasterio.io.DatasetReader) -> dict[int, int]:
    """Pixels of each class code of the map (its nodata and 0 excluded), window by window."""
    total: dict[int, int] = {}
    for window in _windows(src):
        data = src.read(1, window=window)
        codes, counts = np.unique(data[_valid(data, src.nodata)], return_counts=True)
        for c, k in zip(codes.tolist(), counts.tolist(), strict=True):
            total[int(c)] = total.get(int(c), 0) + int(k)
    return total


def _find(src: rasterio.io.DatasetReader, ranks: Mapping[int, np.ndarray]) -> tuple[np.ndarray, ...]:
    """(rows, cols, codes) of the drawn pixels, window by window (the windows of `_histogram`, same order)."""
    seen: dict[int, int] = {}
    rows, cols, codes = [], [], []
    for window in _windows(src):
        data = src.read(1, window=window)
        data = np.where(_valid(data, src.nodata), data, legend.NODATA)  # the histogram's pixels only
        c, flat = locate_ranks(data, ranks, seen)
        r, q = np.divmod(flat, data.shape[1])
        rows.append(r + int(window.row_off))
        cols.append(q + int(window.col_off))
        codes.append(c)
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(codes)


def _missing(path: str) -> bool:
    """A local file that is not there (URLs and GDAL virtual paths are left to GDAL)."""
    return "://" not in path and not path.startswith("/vsi") and not Path(path).exists()


def _open_map(map_path: Path) -> rasterio.io.DatasetReader:
    if _missing(str(map_path)):
        raise AssessError(f"class map {map_path} does not exist")
    try:
        src = rasterio.open(map_path)
    except RasterioIOError as e:
        raise AssessError(f"cannot read the class map {map_path}: {_first_line(e)}") from None
    if src.count != 1 or not np.issubdtype(np.dtype(src.dtypes[0]), np.integer):
        what = f"{src.count} bands" if src.count != 1 else f"values of type {src.dtypes[0]}"
        src.close()
        raise AssessError(
            f"the class map {map_path} has {what}: give a single-band raster of integer class codes"
        )
    if src.crs is None:
        src.close()
        raise AssessError(f"the class map {map_path} has no CRS")
    return src


def _pixel_area_m2(crs: CRS, transform: Affine, width: int, height: int) -> tuple[float, str | None]:
    """The area of one map pixel in m² (and a warning for a geographic CRS: at the map's centre)."""
    if not crs.is_geographic:
        unit = crs.linear_units_factor[1]
        return abs(transform.a * transform.e - transform.b * transform.d) * unit**2, None
    from pyproj import Geod

    col, row = width / 2, height / 2
    corners = [transform * (col + dc, row + dr) for dc, dr in ((0, 0), (1, 0), (1, 1), (0, 1))]
    area, _ = Geod(ellps="WGS84").polygon_area_perimeter([p[0] for p in corners], [p[1] for p in corners])
    return abs(area), (
        "the map's CRS is geographic: its pixels differ in area with latitude; areas use the pixel at the "
        "map's centre and the weights count pixels, not m²"
    )


# --- the reference -------------------------------------------------------------------------------------------


def read_crosswalk(spec: str | Path) -> dict[int, int | None]:
    """A cross-walk: a built-in name (`hrlc.training.reference.CROSSWALKS`, e.g. ``worldcover``) or a JSON file,
    an object reference code -> map code or null (drop), e.g. `{"10": 30, "0": null}`; `AssessError` if unusable."""
    from hrlc.training.reference import ReferenceMapError
    from hrlc.training.reference import read_crosswalk as read_table

    try:
        return read_table(spec)
    except ReferenceMapError as e:
        raise AssessError(str(e)) from None


def _crosswalked(
    codes: np.ndarray, crosswalk: Mapping[int, int | None] | None, reference: str
) -> tuple[np.ndarray, np.ndarray]:
    """(map-legend codes, kept): codes through the cross-walk (None drops one; 0, no data, drops one unless the
    cross-walk maps it); AssessError for codes missing from the cross-walk or outside the legend after it."""
    codes = np.asarray(codes, dtype=np.int64)
    if crosswalk is None:
        out = codes.copy()
    else:
        missing = sorted({int(c) for c in np.unique(codes)} - set(crosswalk) - {legend.NODATA})
        if missing:
            raise AssessError(
                f"reference codes {missing} of {reference} are not in the cross-walk: map each to a class or null"
            )
        table = {**{legend.NODATA: legend.NODATA}, **{int(k): v for k, v in crosswalk.items()}}
        out = np.array([_DROP if table[int(c)] is None else table[int(c)] for c in codes], dtype=np.int64)
    kept = (out != _DROP) & (out != legend.NODATA)
    unknown = legend.unknown_codes(np.unique(out[kept]).tolist())
    if unknown:
        after = " after the cross-walk" if crosswalk is not None else ""
        raise AssessError(
            f"reference codes {unknown} of {reference}{after} are not HRLC classes "
            f"({', '.join(str(c) for c in legend.CODES)}): give a cross-walk (--crosswalk)"
        )
    return out, kept


def _overlaps(src: rasterio.io.DatasetReader, ref: rasterio.io.DatasetReader) -> bool:
    from rasterio.warp import transform_bounds

    try:
        left, bottom, right, top = transform_bounds(src.crs, ref.crs, *src.bounds, densify_pts=21)
    except Exception:  # noqa: BLE001 - PROJ fails for bounds outside a CRS's area: no overlap to speak of
        return False
    b = ref.bounds
    return left < b.right and right > b.left and bottom < b.top and top > b.bottom


def _reference_raster(
    ref_path: str, src: rasterio.io.DatasetReader, xs: np.ndarray, ys: np.ndarray
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """(codes, has_reference, drops by reason) of the reference raster under the map points (xs, ys) (map CRS)."""
    from rasterio.warp import transform

    with rasterio.open(ref_path) as ref:
        if ref.crs is None:
            raise AssessError(f"the reference {ref_path} has no CRS")
        if not _overlaps(src, ref):
            raise AssessError(f"the reference {ref_path} does not overlap the class map {src.name}")
        if ref.crs != src.crs and len(xs):
            rx, ry = (np.asarray(v) for v in transform(src.crs, ref.crs, xs.tolist(), ys.tolist()))
        else:
            rx, ry = xs, ys
        inv = ~ref.transform
        col = np.floor(inv.a * rx + inv.b * ry + inv.c)
        row = np.floor(inv.d * rx + inv.e * ry + inv.f)
        inside = np.isfinite(col) & np.isfinite(row)
        inside &= (col >= 0) & (col < ref.width) & (row >= 0) & (row < ref.height)
        values = np.zeros(xs.size, dtype=np.float64)
        masked = np.ones(xs.size, dtype=bool)
        pts = list(zip(rx[inside].tolist(), ry[inside].tolist(), strict=True))
        if pts:
            got = np.ma.stack([v[0] for v in ref.sample(pts, indexes=[1], masked=True)])
            values[inside] = np.ma.getdata(got)
            masked[inside] = np.ma.getmaskarray(got)
    ok = inside & ~masked
    if np.any(values[ok] != np.round(values[ok])):
        raise AssessError(f"the reference {ref_path} holds non-integer values: give a raster of class codes")
    drops = {"outside_reference": int((~inside).sum()), "reference_nodata": int((inside & masked).sum())}
    return values.astype(np.int64), ok, drops


def _reference_points(
    ref_path: str, crosswalk: Mapping[int, int | None] | None, class_column: str | None
) -> tuple[np.ndarray, np.ndarray, Any]:
    """(codes as in the file, the points' x and y, the file's CRS) of a vector reference; AssessError when bad."""
    from hrlc.training.samples import CLASS_COLUMNS, TrainingDataError, read_training

    try:
        if crosswalk is None:  # HRLC codes: read and validated as training samples are
            gdf = read_training(ref_path, class_column=class_column)
            column = "class_code"
        else:  # codes of another legend: read_training would refuse them
            import geopandas as gpd

            gdf = gpd.read_file(ref_path, engine="pyogrio")
            names = [c for c in gdf.columns if c != gdf.geometry.name]
            lower = {c.lower(): c for c in names}
            wanted = [class_column] if class_column else [lower[c] for c in CLASS_COLUMNS if c in lower]
            if not wanted or wanted[0] not in names:
                raise AssessError(
                    f"the reference {ref_path} has no class column {class_column or ''}; columns: {names}"
                )
            column = wanted[0]
            if gdf.crs is None:
                raise AssessError(f"the reference {ref_path} has no CRS")
            gdf = gdf[~(gdf.geometry.isna() | gdf.geometry.is_empty)]
    except TrainingDataError as e:
        raise AssessError(str(e).replace("training file", "reference")) from None
    except AssessError:
        raise
    except Exception as e:  # noqa: BLE001 - pyogrio/GDAL raise several types; one line for the user
        raise AssessError(f"cannot read the reference {ref_path}: {_first_line(e)}") from None
    gdf = gdf.explode(index_parts=False)
    other = sorted(set(gdf.geom_type) - {"Point"})
    if other:
        raise AssessError(f"the reference {ref_path} has {other} geometries: reference data must be points")
    raw = gdf[column]
    codes = np.asarray(raw, dtype=np.float64)
    if np.isnan(codes).any() or np.any(codes != np.round(codes)):
        raise AssessError(f"the reference {ref_path} has missing or non-integer codes in {column!r}")
    return codes.astype(np.int64), np.column_stack([gdf.geometry.x, gdf.geometry.y]), gdf.crs


def _is_raster(path: str) -> bool:
    try:
        with rasterio.open(path):
            return True
    except RasterioIOError:
        return False


# --- the assessment ------------------------------------------------------------------------------------------


def assess_map(
    map_path: Path | str,
    reference: Path | str,
    *,
    n_per_class: int = 100,
    seed: int = 0,
    crosswalk: Mapping[int, int | None] | None = None,
    class_column: str | None = None,
) -> dict[str, Any]:
    """Assess the class map `map_path` (a single-band raster of HRLC codes) against `reference`: a raster
    (sample stratified by map class, `n_per_class` pixels each, seeded) or a vector file of points with a class
    column (`class_column`, else the first of `hrlc.training.samples.CLASS_COLUMNS`). `crosswalk` maps the
    reference's codes to the map's (None: drop the point); without it the reference holds HRLC codes.

    Returns `hrlc.chain.accuracy.stratified_estimates` of the sample (areas in m² of the map's pixels) and
    ``design`` (sampling, n_per_class, seed, reference, estimator, text), ``dropped`` (sample points without a
    reference or off the map) and ``dropped_by`` (by reason), ``map``, ``map_crs`` and, below 10 000 points,
    ``sample`` ([{row, col, x, y, map, reference}], x/y in the map's CRS, reference None where dropped).

    Raises:
        AssessError: a missing or unreadable file, a map that is not one band of integers, reference codes
            outside the legend (after the cross-walk), no overlap, no sample left.
    """
    map_path, ref_name = Path(map_path), str(reference)
    if n_per_class < 2:
        raise AssessError(
            f"n_per_class is {n_per_class}: at least 2 samples a class are needed for a variance"
        )
    if _missing(ref_name):
        raise AssessError(f"reference {ref_name} does not exist")
    with _open_map(map_path) as src:
        histogram = _histogram(src)
        if not histogram:
            raise AssessError(f"the class map {map_path} has no classified pixel (all nodata)")
        unknown = legend.unknown_codes(histogram)
        if unknown:
            raise AssessError(f"the class map {map_path} has codes {unknown} outside the HRLC legend")
        area_m2, area_warning = _pixel_area_m2(src.crs, src.transform, src.width, src.height)
        if _is_raster(ref_name):
            if class_column is not None:
                raise AssessError(f"a class column applies to reference points; {ref_name} is a raster")
            sampling = _RASTER_DESIGN
            rows, cols, mapped = _find(src, draw_ranks(histogram, n_per_class, np.random.default_rng(seed)))
            centres = pixel_centres(src.transform, rows, cols)
            xs, ys = (np.asarray(v, dtype=np.float64).reshape(-1) for v in centres)
            raw, ok, dropped_by = _reference_raster(ref_name, src, xs, ys)
        else:
            sampling = _POINTS_DESIGN
            raw, points, crs = _reference_points(ref_name, crosswalk, class_column)
            rows, cols, mapped, xs, ys, ok, dropped_by = _map_at_points(src, points, crs, ref_name)
        codes, kept = _crosswalked(np.where(ok, raw, legend.NODATA), crosswalk, ref_name)
        dropped_by["crosswalk_null"] = int((ok & (codes == _DROP)).sum())
        dropped_by["reference_nodata"] = dropped_by.get("reference_nodata", 0) + int(
            (ok & (codes == 0)).sum()
        )
        use = ok & kept
        if not use.any():
            raise AssessError(
                f"no sample point has a reference class: all {use.size} are outside {ref_name}, on its nodata, "
                "or dropped by the cross-walk"
            )
        labels = sorted(set(histogram) | {int(c) for c in np.unique(codes[use])})
        n, labs = error_matrix(codes[use], mapped[use], labels)
        result = stratified_estimates(n, [histogram.get(c, 0) for c in labs], labs, pixel_area_m2=area_m2)
        if area_warning:
            result["warnings"].append(area_warning)
        map_crs = src.crs.to_string()
    dropped = int((~use).sum())
    result["design"] = {
        "sampling": sampling,
        "n_per_class": n_per_class if sampling == _RASTER_DESIGN else None,
        "seed": seed if sampling == _RASTER_DESIGN else None,
        "reference": ref_name,
        "crosswalk": None if crosswalk is None else {str(k): v for k, v in crosswalk.items()},
        "estimator": ESTIMATOR,
        "text": _design_text(sampling, result, histogram, n_per_class, seed, ref_name, dropped),
    }
    result["dropped"] = dropped
    result["dropped_by"] = {k: v for k, v in dropped_by.items() if v}
    result["map"] = str(map_path)
    result["map_crs"] = map_crs
    if use.size < SAMPLE_LIST_MAX:
        result["sample"] = [
            {
                "row": int(r),
                "col": int(c),
                "x": float(x),
                "y": float(y),
                "map": int(m),
                "reference": int(v) if u else None,
            }
            for r, c, x, y, m, v, u in zip(rows, cols, xs, ys, mapped, codes, use, strict=True)
        ]
    return result


def _map_at_points(
    src: rasterio.io.DatasetReader, xy: np.ndarray, crs: Any, ref_name: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    """The map under reference points: rows, cols, map codes, x, y (map CRS), on-the-map flags, drops."""
    from rasterio.warp import transform

    if CRS.from_user_input(crs) != src.crs:
        xs, ys = (np.asarray(v) for v in transform(CRS.from_user_input(crs), src.crs, *xy.T.tolist()))
    else:
        xs, ys = xy[:, 0].astype(np.float64), xy[:, 1].astype(np.float64)
    inv = ~src.transform
    cols = np.floor(inv.a * xs + inv.b * ys + inv.c)
    rows = np.floor(inv.d * xs + inv.e * ys + inv.f)
    inside = np.isfinite(cols) & np.isfinite(rows)
    inside &= (cols >= 0) & (cols < src.width) & (rows >= 0) & (rows < src.height)
    if not inside.any():
        raise AssessError(f"no point of the reference {ref_name} falls on the class map {src.name}")
    rows, cols = np.where(inside, rows, 0).astype(np.int64), np.where(inside, cols, 0).astype(np.int64)
    mapped = np.zeros(xs.size, dtype=np.int64)
    pts = list(zip(xs[inside].tolist(), ys[inside].tolist(), strict=True))
    mapped[inside] = [int(v[0]) for v in src.sample(pts, indexes=[1])]
    on_map = inside & _valid(mapped, src.nodata)
    drops = {"outside_map": int((~inside).sum()), "map_nodata": int((inside & ~on_map).sum())}
    return rows, cols, mapped, xs, ys, on_map, drops


def _design_text(
    sampling: str,
    result: Mapping[str, Any],
    histogram: Mapping[int, int],
    n_per_class: int,
    seed: int,
    ref_name: str,
    dropped: int,
) -> str:
    oa = result["overall_accuracy"]
    lo, hi = oa["ci95"] if oa["ci95"] is not None else (math.nan, math.nan)
    n = result["n_samples"]
    without = f"; {dropped} sample points without a reference label were left out" if dropped else ""
    if sampling == _RASTER_DESIGN:
        how = (
            f"The map was assessed with a stratified random sample of {n} pixels: up to {n_per_class} pixels drawn "
            f"without replacement from each of its {len(histogram)} mapped classes (random seed {seed}), labelled "
            f"from the reference {Path(ref_name).name}{without}."
        )
    else:
        how = (
            f"The map was assessed at {n} reference points of {Path(ref_name).name}{without}; the estimates were "
            "post-stratified by map class, which assumes the points are a simple random (or systematic) sample "
            "of the map."
        )
    return (
        f"{how} Overall accuracy, user's and producer's accuracies and class areas were estimated with the "
        f"area-weighted estimators of Olofsson et al. (2014): overall accuracy {oa['estimate']:.3f} "
        f"(95 % confidence interval {lo:.3f}-{hi:.3f})."
    )


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__

"""Training samples from files: read and validate point/polygon training sets, sample a feature cube.

The classification step learns from photo-interpreted or map-agreement samples (spec §3.4.2.1): points
and polygons labelled with HRLC class codes, delivered as GeoPackage, GeoJSON or Shapefile. A bad training
file is the most common reason for a wrong map, so :func:`read_training` refuses what it cannot use with
one clear line (:class:`TrainingDataError`) instead of training on it: no CRS, no features, no class
column, codes outside the HRLC legend, lines or other geometries.

Conventions
-----------
- Class codes are the HRLC legend's (:data:`hrlc.legend.CODES`; 0 = nodata is not a class).
- A *group* is the index (0-based row position) of the source geometry in the GeoDataFrame returned by
  :func:`read_training`: all pixels of one polygon share a group, so held-out samples (:func:`split_holdout`)
  and cross-validation folds never split a polygon between training and test.
- Pixels: ``rowcol`` are ``(row, col)`` of the feature cube's grid; a pixel belongs to a polygon when its
  centre is inside (``rasterio.features.rasterize``, ``all_touched=False``); a polygon smaller than a pixel
  that covers no pixel centre contributes the pixel under its representative point, so no sample is lost.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from affine import Affine
from rasterio import features as rio_features

from hrlc import legend

__all__ = [
    "CLASS_COLUMNS",
    "TrainingDataError",
    "extract_samples",
    "read_training",
    "sample_pixels",
    "split_holdout",
    "validation_groups",
]

#: class columns recognised, in order of preference (case-insensitive)
CLASS_COLUMNS: tuple[str, ...] = ("class_code", "class", "label", "lc_class", "code")

_POINTS = {"Point", "MultiPoint"}
_POLYGONS = {"Polygon", "MultiPolygon"}


class TrainingDataError(ValueError):
    """A training file that cannot be used, with a one-line reason naming the file."""


def _is_local(path: str) -> bool:
    return "://" not in path and not path.startswith("/vsi")


def read_training(
    path: Path | str, *, class_column: str | None = None, group_column: str | None = None
) -> gpd.GeoDataFrame:
    """Read and validate a training file (GeoPackage, GeoJSON, Shapefile; anything OGR reads).

    Returns a GeoDataFrame with columns ``class_code`` (int64), ``geometry`` (points/polygons, the file's
    CRS) and ``sample_id`` (the file's ``sample_id`` column if it has one, else the 0-based feature number
    in the file), indexed 0..n-1. Features with a null or empty geometry are dropped with a warning. With
    `group_column`, also ``group``: that column's values (as text), which :func:`validation_groups` holds out
    together (e.g. the parcel each point lies in).

    Raises:
        TrainingDataError: missing/unreadable file, no features, no CRS, no class column, null or
            non-integer class values, class codes outside the HRLC legend, geometries other than
            points and polygons, a missing `group_column` or a feature without a group.
    """
    name = str(path)
    if _is_local(name) and not Path(name).exists():
        raise TrainingDataError(f"training file {name} does not exist")
    try:
        gdf = gpd.read_file(name, engine="pyogrio")
    except Exception as e:  # noqa: BLE001 - pyogrio/GDAL raise several types; one line for the user
        raise TrainingDataError(f"cannot read training file {name}: {e}") from e
    if len(gdf) == 0:
        raise TrainingDataError(f"training file {name} has no features")
    if gdf.crs is None:
        raise TrainingDataError(f"training file {name} has no CRS")

    column = _class_column(gdf, name, class_column)
    sample_ids = (
        gdf["sample_id"] if "sample_id" in gdf.columns else pd.Series(np.arange(len(gdf)), index=gdf.index)
    )

    bad_geom = gdf.geometry.isna() | gdf.geometry.is_empty
    if bad_geom.all():
        raise TrainingDataError(f"training file {name} has no feature with a geometry")
    if bad_geom.any():
        warnings.warn(
            f"dropped {int(bad_geom.sum())} feature(s) with null or empty geometry from {name}",
            UserWarning,
            stacklevel=2,
        )

    keep = ~bad_geom
    types = set(gdf.geometry[keep].geom_type)
    other = sorted(types - _POINTS - _POLYGONS)
    if other:
        raise TrainingDataError(
            f"training file {name} has unsupported geometry types {other}: only points and polygons"
        )

    raw = gdf.loc[keep, column]
    if raw.isna().any():
        raise TrainingDataError(
            f"{int(raw.isna().sum())} feature(s) of {name} have no class code in {column!r}"
        )
    codes = pd.to_numeric(raw, errors="coerce")
    not_int = codes.isna() | (codes != np.round(codes))
    if not_int.any():
        examples = sorted({str(v) for v in raw[not_int]})[:5]
        raise TrainingDataError(f"non-integer class codes {examples} in column {column!r} of {name}")
    codes = codes.astype(np.int64)
    unknown = legend.unknown_codes(codes.unique())
    if unknown:
        valid = ", ".join(str(c) for c in legend.CODES)
        raise TrainingDataError(f"unknown class codes {unknown} in {name}; valid codes: {valid}")

    columns = {"class_code": codes.to_numpy(), "sample_id": sample_ids[keep].to_numpy()}
    if group_column is not None:
        if group_column not in gdf.columns:
            others = [c for c in gdf.columns if c != gdf.geometry.name]
            raise TrainingDataError(f"training file {name} has no column {group_column!r}; columns: {others}")
        group = gdf.loc[keep, group_column]
        if group.isna().any():
            raise TrainingDataError(
                f"{int(group.isna().sum())} feature(s) of {name} have no group in {group_column!r}"
            )
        columns["group"] = group.astype(str).to_numpy()
    return gpd.GeoDataFrame(columns, geometry=gdf.geometry[keep].to_numpy(), crs=gdf.crs)


def _class_column(gdf: gpd.GeoDataFrame, name: str, class_column: str | None) -> str:
    columns = [c for c in gdf.columns if c != gdf.geometry.name]
    if class_column is not None:
        if class_column not in columns:
            raise TrainingDataError(
                f"training file {name} has no column {class_column!r}; columns: {columns}"
            )
        return class_column
    lower = {c.lower(): c for c in columns}
    for candidate in CLASS_COLUMNS:
        if candidate in lower:
            return lower[candidate]
    raise TrainingDataError(
        f"training file {name} has no class column (one of {list(CLASS_COLUMNS)}); columns: {columns}"
    )


def _rowcol(transform: Affine, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, col) int64 of the pixels containing the points (x, y) (floor: edges belong to the next pixel)."""
    inv = ~transform
    cols = inv.a * x + inv.b * y + inv.c
    rows = inv.d * x + inv.e * y + inv.f
    return np.floor(rows).astype(np.int64), np.floor(cols).astype(np.int64)


def extract_samples(
    training: gpd.GeoDataFrame,
    features: np.ndarray,
    *,
    crs: Any,
    transform: Affine,
    max_pixels_per_polygon: int = 200,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sample the feature cube at the training geometries.

    Geometries are reprojected to `crs`. A point gives the pixel under it (one sample per point of a
    multipoint); a polygon gives the pixels whose centre it contains, at most `max_pixels_per_polygon` of
    them drawn at random (seeded). Samples outside the grid or whose features are all NaN are dropped.
    Where polygons overlap, a pixel belongs to the later one (rasterisation order).

    Args:
        training: from :func:`read_training` (columns ``class_code``, ``geometry``).
        features: ``(n_features, y, x)`` cube (from :func:`hrlc.chain.features.to_matrix`).
        crs: the grid's CRS (anything pyproj understands); transform: its affine transform.

    Returns:
        ``X (n, n_features)`` float32, ``y (n,)`` int64 class codes, ``group (n,)`` int64 index of the
        source geometry in `training` (row position), ``rowcol (n, 2)`` int64; ordered by group, then pixel.
    """
    if features.ndim != 3:
        raise ValueError(f"features must be (n_features, y, x), got shape {features.shape}")
    y, group, rowcol = sample_pixels(
        training,
        shape=(features.shape[1], features.shape[2]),
        crs=crs,
        transform=transform,
        max_pixels_per_polygon=max_pixels_per_polygon,
        seed=seed,
    )
    X = features[:, rowcol[:, 0], rowcol[:, 1]].T.astype(np.float32, copy=False)
    ok = ~np.all(np.isnan(X), axis=1) if X.shape[1] else np.ones(X.shape[0], dtype=bool)
    return np.ascontiguousarray(X[ok]), y[ok], group[ok], rowcol[ok]


#: side (px) of the windows polygons are rasterised in: memory holds one window (16 MiB), whatever the grid
BURN_WINDOW_PX = 2048


def _burn_polygons(
    polygons: np.ndarray, shape: tuple[int, int], transform: Affine, window: int = BURN_WINDOW_PX
) -> tuple[np.ndarray, np.ndarray]:
    """(flat pixel index, polygon position) of the pixel centres inside `polygons` on a grid of `shape`,
    ascending by pixel (a later polygon over an earlier one): the pixels of rasterising them on the whole grid,
    computed window by window over the windows their bounds touch, so memory grows with the polygons' pixels,
    not with the grid."""
    ny, nx = shape
    inv = ~transform
    b = np.asarray(gpd.GeoSeries(polygons).bounds)  # minx, miny, maxx, maxy
    xs, ys = b[:, [0, 2, 0, 2]], b[:, [1, 1, 3, 3]]  # the four corners
    cols, rows = inv.a * xs + inv.b * ys + inv.c, inv.d * xs + inv.e * ys + inv.f
    r_lo, r_hi = np.floor(rows.min(axis=1)), np.ceil(rows.max(axis=1))
    c_lo, c_hi = np.floor(cols.min(axis=1)), np.ceil(cols.max(axis=1))
    flats: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for r0 in range(0, ny, window):
        h = min(window, ny - r0)
        for c0 in range(0, nx, window):
            w = min(window, nx - c0)
            hit = np.flatnonzero((r_hi >= r0) & (r_lo <= r0 + h) & (c_hi >= c0) & (c_lo <= c0 + w))
            if hit.size == 0:
                continue
            burned = rio_features.rasterize(
                ((polygons[k], k + 1) for k in hit),
                out_shape=(h, w),
                transform=transform * Affine.translation(c0, r0),
                fill=0,
                all_touched=False,
                dtype=np.int32 if polygons.size < 2**31 - 1 else np.int64,
            )
            local = np.flatnonzero(burned)
            labels.append(burned.reshape(-1)[local].astype(np.int64) - 1)
            flats.append((r0 + local // w) * nx + c0 + local % w)
            del burned
    if not flats:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    flat, label = np.concatenate(flats), np.concatenate(labels)
    order = np.argsort(flat, kind="stable")
    return flat[order], label[order]


def sample_pixels(
    training: gpd.GeoDataFrame,
    *,
    shape: tuple[int, int],
    crs: Any,
    transform: Affine,
    max_pixels_per_polygon: int = 200,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pixels of a grid of `shape` ``(y, x)`` that :func:`extract_samples` samples, before it drops those
    whose features are all NaN: ``y (n,)`` int64 class codes, ``group (n,)`` int64, ``rowcol (n, 2)`` int64,
    ordered by group, then pixel. Needs no features, so a caller can read only the pixels it needs."""
    if max_pixels_per_polygon < 1:
        raise ValueError("max_pixels_per_polygon must be >= 1")
    ny, nx = shape
    transform = Affine(*list(transform)[:6])
    gdf = training.to_crs(crs) if training.crs is not None else training
    geoms = gdf.geometry.to_numpy()
    codes = gdf["class_code"].to_numpy().astype(np.int64)
    types = np.array([g.geom_type if g is not None else "" for g in geoms])

    groups: list[np.ndarray] = []
    pixels: list[np.ndarray] = []  # flat pixel index = row * nx + col

    # points: the pixel under each point
    pt_idx = np.flatnonzero(np.isin(types, list(_POINTS)))
    if pt_idx.size:
        parts = gpd.GeoSeries(geoms[pt_idx]).explode(index_parts=False)
        src = pt_idx[parts.index.to_numpy()]
        rows, cols = _rowcol(transform, parts.x.to_numpy(), parts.y.to_numpy())
        inside = (rows >= 0) & (rows < ny) & (cols >= 0) & (cols < nx)
        groups.append(src[inside])
        pixels.append(rows[inside] * nx + cols[inside])

    # polygons: pixel centres inside, at most N per polygon
    pg_idx = np.flatnonzero(np.isin(types, list(_POLYGONS)))
    if pg_idx.size:
        flat, label = _burn_polygons(geoms[pg_idx], (ny, nx), transform, BURN_WINDOW_PX)
        rng = np.random.default_rng(seed)
        order = np.lexsort((rng.random(flat.size), label))  # by polygon, random within
        label, flat = label[order], flat[order]
        starts = np.searchsorted(label, label, side="left")
        take = (np.arange(label.size) - starts) < max_pixels_per_polygon
        label, flat = label[take], flat[take]
        groups.append(pg_idx[label])
        pixels.append(flat)
        # polygons covering no pixel centre (smaller than a pixel, or slivers): their representative point
        covered = np.zeros(pg_idx.size, dtype=bool)
        covered[np.unique(label)] = True
        for k in np.flatnonzero(~covered):
            p = geoms[pg_idx[k]].representative_point()
            rr, cc = _rowcol(transform, np.array([p.x]), np.array([p.y]))
            r, c = int(rr[0]), int(cc[0])
            if 0 <= r < ny and 0 <= c < nx:
                groups.append(np.array([pg_idx[k]], dtype=np.int64))
                pixels.append(np.array([r * nx + c], dtype=np.int64))

    if groups:
        group = np.concatenate(groups).astype(np.int64)
        pix = np.concatenate(pixels).astype(np.int64)
    else:
        group = pix = np.zeros(0, dtype=np.int64)
    order = np.lexsort((pix, group))
    group, pix = group[order], pix[order]

    rowcol = np.stack([pix // nx, pix % nx], axis=1).astype(np.int64)
    return codes[group], group, rowcol


def split_holdout(groups: np.ndarray, y: np.ndarray, *, fraction: float = 0.3, seed: int = 0) -> np.ndarray:
    """Boolean mask of held-out samples: whole groups, about `fraction` of the groups holding each class.

    Classes are taken from the one in fewest groups to the one in most; for each, groups holding it are drawn at
    random (seeded) and held out until ``round(fraction * n)`` of the `n` groups holding it are (at least 1 when
    `n` >= 2, none when it is 1), counting those already held out for rarer classes. A group is never held out if
    it would leave one of its classes without a training group. No group is on both sides. With groups of one
    class each (sample geometries) this holds out ``round(fraction * n)`` of each class's groups; with mixed
    groups (spatial blocks) a class that is nowhere the majority is still validated.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    groups = np.asarray(groups)
    y = np.asarray(y)
    if groups.shape != y.shape:
        raise ValueError("groups and y differ in shape")
    if groups.size == 0:
        return np.zeros(0, dtype=bool)
    uniq, ginv = np.unique(groups, return_inverse=True)
    classes, cinv = np.unique(y, return_inverse=True)
    holds = np.zeros((uniq.size, classes.size), dtype=bool)  # group g holds class c
    holds[ginv, cinv] = True
    in_groups = holds.sum(axis=0)
    want = np.where(in_groups < 2, 0, np.minimum(in_groups - 1, np.maximum(1, np.rint(fraction * in_groups))))
    training = in_groups.copy()  # groups of each class left for training
    rng = np.random.default_rng(seed)
    held = np.zeros(uniq.size, dtype=bool)
    done = np.zeros(classes.size, dtype=bool)
    for c in np.argsort(in_groups, kind="stable"):
        candidates = rng.permutation(np.flatnonzero(holds[:, c]))
        # first groups that push no class already done past its share, then any group
        for strict in (True, False):
            for g in candidates:
                if in_groups[c] - training[c] >= want[c]:
                    break
                classes_g = holds[g]
                if held[g] or (training[classes_g] < 2).any():
                    continue
                if strict and (in_groups - training + 1 > want)[classes_g & done].any():
                    continue
                held[g] = True
                training[classes_g] -= 1
        done[c] = True
    return held[ginv]


#: the fewest spatial blocks a validation split should have: `validation_groups` makes the blocks smaller until
#: the samples span this many (a hold-out of 30 % of 3 blocks is one block, and its accuracy one draw)
MIN_VALIDATION_BLOCKS = 20
#: the smallest block `validation_groups` shrinks to, pixels: below it the blocks no longer separate neighbours
MIN_BLOCK_PX = 3


def validation_groups(
    geometry: np.ndarray,
    rowcol: np.ndarray,
    *,
    block_px: int,
    labels: np.ndarray | None = None,
    min_blocks: int = MIN_VALIDATION_BLOCKS,
) -> tuple[np.ndarray, int | None]:
    """The validation group of each sample (int64, 0..n_groups-1): samples of one group are held out together.

    Why: pixels near each other are alike (spatial autocorrelation), so a split that puts neighbours on both
    sides measures how well the model remembers its training data, not how well it maps (Roberts et al. 2017,
    Ecography 40, 913-929; Ploton et al. 2020). Two designs:

    - `labels` given (one value per training geometry, e.g. a parcel id): the geometries sharing a label form
      a group (polygon/parcel-grouped validation);
    - else spatial blocks: every geometry belongs, whole, to the square block of side `block_px` (on the grid
      of `rowcol`) holding the centre of its sample pixels, so a polygon is never cut and its neighbours
      within the block go with it. When the samples span fewer than `min_blocks` blocks the side is halved
      (not below `MIN_BLOCK_PX`) until they do.

    `geometry` is each sample's geometry index (`sample_pixels`' group), `rowcol` its pixel. Returns the groups
    and the block side used (None with `labels`).
    """
    geometry = np.asarray(geometry, dtype=np.int64)
    rowcol = np.asarray(rowcol, dtype=np.int64).reshape(-1, 2)
    if geometry.shape[0] != rowcol.shape[0]:
        raise ValueError("geometry and rowcol differ in length")
    if geometry.size == 0:
        return np.zeros(0, dtype=np.int64), None if labels is not None else block_px
    if labels is not None:
        values = np.asarray(labels)[geometry]
        return np.unique(values, return_inverse=True)[1].astype(np.int64).reshape(-1), None
    if block_px < 1:
        raise ValueError("block_px must be >= 1")
    uniq, inv = np.unique(geometry, return_inverse=True)
    counts = np.bincount(inv).astype(np.float64)
    centre_r = np.floor(np.bincount(inv, weights=rowcol[:, 0] + 0.5) / counts).astype(np.int64)
    centre_c = np.floor(np.bincount(inv, weights=rowcol[:, 1] + 0.5) / counts).astype(np.int64)
    while True:
        blocks = (centre_r // block_px) * (int(centre_c.max()) // block_px + 1) + centre_c // block_px
        found, block_of = np.unique(blocks, return_inverse=True)
        smaller = max(MIN_BLOCK_PX, block_px // 2)
        if found.size >= min_blocks or smaller >= block_px:
            return block_of.astype(np.int64)[inv], block_px
        block_px = smaller

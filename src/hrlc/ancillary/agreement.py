"""Agreement of a class map with a reference land-cover map (both in HRLC codes, on the same grid).

Pure numpy. The reference is first cross-walked to the HRLC legend (`hrlc.legend`, e.g. `WORLDCOVER_TO_HRLC`).
Reference legends rarely know leaf type, phenology or water seasonality, so by default the comparison is made
on the coarse groups of `legend.HRLC_TO_GROUP` (tree, shrub, grass, crop, wetland, moss_lichen, bare, built,
water, snow_ice); ``level="class"`` compares the HRLC codes themselves. Pixels that are nodata (0) in either
map are left out.

Report (JSON): ``overall_agreement`` (share of compared pixels with the same label), ``kappa`` (Cohen),
``per_class`` (for each label: pixels in the map, in the reference, in both; ``users_agreement`` = both / map,
``producers_agreement`` = both / reference, ``f1``), and ``confusion_matrix`` (rows = class map, columns =
reference, in the order of ``labels``).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from hrlc import legend

GROUPS: tuple[str, ...] = tuple(dict.fromkeys(legend.HRLC_TO_GROUP.values()))

Level = Literal["group", "class"]


def _labels_of(codes: np.ndarray, level: Level) -> tuple[np.ndarray, list[str]]:
    """Integer label index per pixel (-1 = not compared) and the label names, for HRLC codes."""
    if level == "group":
        names = list(GROUPS)
        lut_of = {code: names.index(g) for code, g in legend.HRLC_TO_GROUP.items()}
    else:
        names = [str(c) for c in legend.CODES]
        lut_of = {code: i for i, code in enumerate(legend.CODES)}
    lut = np.full(256, -1, dtype=np.int32)
    for code, idx in lut_of.items():
        lut[code] = idx
    return lut[codes.astype(np.intp)], names


def agreement_report(
    class_map: np.ndarray, reference: np.ndarray, *, level: Level = "group"
) -> dict[str, Any]:
    """Agreement of `class_map` with `reference` (same shape, HRLC codes, 0 = nodata); see the module doc.

    ValueError if the shapes differ or the class map holds values outside the legend.
    """
    class_map = np.asarray(class_map)
    reference = np.asarray(reference)
    if class_map.shape != reference.shape:
        raise ValueError(f"class map {class_map.shape} and reference {reference.shape} differ in shape")
    if level not in ("group", "class"):
        raise ValueError(f"level must be 'group' or 'class', not {level!r}")
    present = np.unique(class_map)
    unknown = [int(v) for v in present if v != legend.NODATA and int(v) not in legend.CLASSES]
    if unknown:
        raise ValueError(f"the class map holds values that are not HRLC codes: {unknown}")
    bad_ref = [int(v) for v in np.unique(reference) if v != legend.NODATA and int(v) not in legend.CLASSES]
    if bad_ref:
        raise ValueError(f"the cross-walked reference holds values that are not HRLC codes: {bad_ref}")
    m, names = _labels_of(class_map, level)
    r, _ = _labels_of(reference, level)
    both = (m >= 0) & (r >= 0)
    n = len(names)
    cm = np.bincount(m[both] * n + r[both], minlength=n * n).reshape(n, n).astype(np.int64)
    keep = [i for i in range(n) if cm[i, :].sum() or cm[:, i].sum()]
    cm = cm[np.ix_(keep, keep)]
    labels = [names[i] for i in keep]
    total = int(cm.sum())
    diag = np.diag(cm)
    rows, cols = cm.sum(axis=1), cm.sum(axis=0)
    overall = float(diag.sum() / total) if total else None
    expected = float((rows * cols).sum() / total**2) if total else None
    kappa = (
        (overall - expected) / (1 - expected)
        if overall is not None and expected is not None and expected < 1
        else None
    )

    def ratio(a: int, b: int) -> float | None:
        return float(a / b) if b else None

    per_class: dict[str, dict[str, Any]] = {}
    for i, label in enumerate(labels):
        users, producers = ratio(int(diag[i]), int(rows[i])), ratio(int(diag[i]), int(cols[i]))
        f1 = (
            2 * users * producers / (users + producers)
            if users is not None and producers is not None and users + producers > 0
            else None
        )
        entry: dict[str, Any] = {
            "map_pixels": int(rows[i]),
            "reference_pixels": int(cols[i]),
            "agreement_pixels": int(diag[i]),
            "users_agreement": users,
            "producers_agreement": producers,
            "f1": f1,
        }
        if level == "class":
            entry["name"] = legend.name(int(label))
        per_class[label] = entry
    return {
        "level": level,
        "pixels_compared": total,
        "pixels_excluded": int(class_map.size - total),
        "overall_agreement": overall,
        "kappa": kappa,
        "labels": labels,
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
        "confusion_matrix_axes": {"rows": "class map", "columns": "reference"},
    }

"""Area-weighted accuracy and area estimates of a class map from a stratified sample (Olofsson et al. 2014).

Why: a map's accuracy is a property of the map's pixels, not of the samples: when validation samples are
drawn per mapped class (stratified by the map), a class that covers 1 % of the map and one that covers 60 %
count alike in the raw confusion matrix, and its overall accuracy is not the map's. The good-practice
estimators (Olofsson, Foody, Herold, Stehman, Woodcock, Wulder 2014, "Good practices for estimating area and
assessing accuracy of land change", Remote Sensing of Environment 148, 42-57, eq. 1-10) weight each map
class's row of the error matrix by the share of the map it covers, `W_i`, and give each estimate its standard
error; 95 % confidence intervals are ±1.96 SE (those of accuracies cut to [0, 1]).

Notation as in the paper: the error matrix counts `n[i, j]`, samples mapped as class i whose reference is
class j (rows: map, columns: reference); `n_i.` the samples of map class i; `W_i` the map's area share of
class i; `p[i, j] = W_i n[i, j] / n_i.` the estimated area proportions. Then

- overall accuracy `O = sum_j p[j, j]`, `V(O) = sum_i W_i^2 U_i (1 - U_i) / (n_i. - 1)`;
- user's accuracy `U_i = n[i, i] / n_i.`, `V(U_i) = U_i (1 - U_i) / (n_i. - 1)`;
- producer's accuracy `P_j = p[j, j] / p_.j`, with `V(P_j)` of eq. 7 (via the estimated reference totals);
- the area proportion of reference class j, `p_.j = sum_i p[i, j]`, `SE = sqrt(sum_i (W_i p[i, j] - p[i, j]^2)
  / (n_i. - 1))`, and its area `p_.j` times the map's area.

The estimators assume a sample stratified by map class (simple random within each class); with a simple random
sample of the whole map they still apply (post-stratified by the map). A map class with fewer than 2 samples
has no variance: its terms are left out and the result says so (`"warnings"`). A map class without any sample
cannot be estimated: the estimates then describe the part of the map its sampled classes cover (weights
re-normalised over them, `assessed_map_share` says how much of the map that is) and a warning names the others;
counting their pixels as errors, or as correct, would be a guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["Z95", "error_matrix", "stratified_estimates"]

Z95 = 1.96  # the standard normal's 97.5 % quantile, as the paper rounds it: 95 % intervals are estimate ± Z95 × SE


def error_matrix(
    reference: np.ndarray, mapped: np.ndarray, labels: Sequence[int] | None = None
) -> tuple[np.ndarray, list[int]]:
    """The counts ``n[i, j]`` of samples mapped as `labels[i]` whose reference is `labels[j]` (rows: map), and
    the labels: `labels` first (their order), then any other class of the samples, ascending."""
    ref = np.asarray(reference, dtype=np.int64).reshape(-1)
    map_ = np.asarray(mapped, dtype=np.int64).reshape(-1)
    if ref.shape != map_.shape:
        raise ValueError(f"reference and mapped differ in length: {ref.size} vs {map_.size}")
    given = [int(v) for v in labels] if labels is not None else []
    labs = given + sorted(set(np.union1d(ref, map_).tolist()) - set(given))
    index = {c: k for k, c in enumerate(labs)}
    k = len(labs)
    rows = np.fromiter((index[int(v)] for v in map_), dtype=np.int64, count=map_.size)
    cols = np.fromiter((index[int(v)] for v in ref), dtype=np.int64, count=ref.size)
    return np.bincount(rows * k + cols, minlength=k * k).reshape(k, k), labs


def stratified_estimates(
    n: np.ndarray,
    mapped_pixels: Sequence[float] | np.ndarray,
    labels: Sequence[int],
    *,
    pixel_area_m2: float = 1.0,
) -> dict[str, Any]:
    """The area-weighted estimates of Olofsson et al. (2014) from the error matrix `n` (rows: map class,
    columns: reference class, in the order of `labels`) and the pixels each class covers in the map,
    `mapped_pixels` (same order). Returns plain Python values:

    ``overall_accuracy`` {estimate, se, ci95}, ``users_accuracy`` and ``producers_accuracy`` {class: {estimate,
    se, ci95}}, ``area`` {class: {proportion, proportion_se, m2, m2_ci95, mapped_m2}}, ``weights`` {class: W_i},
    ``assessed_map_share`` (of the map's pixels, those of sampled classes), ``n_samples``,
    ``samples_per_map_class``, ``error_matrix`` (rows map, columns reference), ``labels`` and ``warnings``
    (classes whose estimates are undefined or lack a variance)."""
    n = np.asarray(n, dtype=np.float64)
    mapped = np.asarray(mapped_pixels, dtype=np.float64).reshape(-1)
    labs = [int(c) for c in labels]
    k = len(labs)
    if n.shape != (k, k) or mapped.shape != (k,):
        raise ValueError(f"the error matrix must be {k} x {k} and the mapped pixels {k} long (one per label)")
    if (n < 0).any() or (mapped < 0).any() or mapped.sum() <= 0:
        raise ValueError("counts must be >= 0 and the map must cover some pixels")
    warnings: list[str] = []
    n_i = n.sum(axis=1)  # samples per map class
    sampled = n_i > 0
    covered = mapped * sampled  # the map's pixels in strata with samples: what the estimates describe
    if covered.sum() <= 0:
        raise ValueError("no map class that covers part of the map has a sample")
    assessed_share = float(covered.sum() / mapped.sum())
    W = covered / covered.sum()
    unsampled = [labs[i] for i in range(k) if mapped[i] > 0 and not sampled[i]]
    if unsampled:
        warnings.append(f"map classes {unsampled} cover {1 - assessed_share:.1%} of the map but have no sample: "
                        "the estimates describe the rest of the map only")  # fmt: skip
    row_share = np.divide(n, n_i[:, None], out=np.zeros_like(n), where=sampled[:, None])  # n_ij / n_i.
    p = W[:, None] * row_share
    # the variance terms of a row need n_i. - 1 > 0
    dof = n_i - 1
    varying = dof > 0
    few = [labs[i] for i in range(k) if sampled[i] and not varying[i] and W[i] > 0]
    if few:
        warnings.append(f"map classes {few} have 1 sample: no variance for them (their terms are left out)")
    inv_dof = np.divide(1.0, dof, out=np.zeros_like(dof), where=varying)

    U = np.diag(row_share)  # user's accuracies: n_ii / n_i.
    oa = float(np.trace(p))
    oa_var = float(np.sum(W**2 * U * (1 - U) * inv_dof))
    if oa_var == 0.0:
        warnings.append("every sampled map class has a user's accuracy of 0 or 1: the standard errors are 0 "
                        "and the 95 % intervals say nothing (normal approximation); more samples would show "
                        "the errors the map has")  # fmt: skip

    p_col = p.sum(axis=0)  # estimated reference proportions p_.j
    # estimated reference totals N_.j = sum_i N_i. n_ij / n_i. (eq. 7 in pixels of the map)
    N_i = covered
    N_col = (N_i[:, None] * row_share).sum(axis=0)
    users: dict[str, Any] = {}
    producers: dict[str, Any] = {}
    area: dict[str, Any] = {}
    total_m2 = float(covered.sum() * pixel_area_m2)
    for j, c in enumerate(labs):
        if sampled[j]:
            users[str(c)] = _interval(float(U[j]), float(U[j] * (1 - U[j]) * inv_dof[j]))
        else:
            users[str(c)] = _interval(None, None)
        if p_col[j] > 0:
            P = float(p[j, j] / p_col[j])
            others = [i for i in range(k) if i != j]
            var = (N_i[j] ** 2 * (1 - P) ** 2 * U[j] * (1 - U[j]) * inv_dof[j]) + P**2 * sum(
                N_i[i] ** 2 * row_share[i, j] * (1 - row_share[i, j]) * inv_dof[i] for i in others
            )
            producers[str(c)] = _interval(P, float(var / N_col[j] ** 2))
        else:
            producers[str(c)] = _interval(None, None)
        se = float(np.sqrt(np.sum((W * p[:, j] - p[:, j] ** 2) * inv_dof)))
        area[str(c)] = {
            "proportion": float(p_col[j]),
            "proportion_se": se,
            "m2": float(p_col[j]) * total_m2,
            "m2_ci95": [float(p_col[j] - Z95 * se) * total_m2, float(p_col[j] + Z95 * se) * total_m2],
            "mapped_m2": float(mapped[j] * pixel_area_m2),
        }
    return {
        "overall_accuracy": _interval(oa, oa_var),
        "users_accuracy": users,
        "producers_accuracy": producers,
        "area": area,
        "weights": {str(c): float(w) for c, w in zip(labs, W, strict=True)},
        "assessed_map_share": assessed_share,
        "n_samples": int(n.sum()),
        "samples_per_map_class": {str(c): int(v) for c, v in zip(labs, n_i, strict=True)},
        "error_matrix": n.astype(int).tolist(),
        "error_matrix_axes": {"rows": "class map", "columns": "reference"},
        "labels": labs,
        "warnings": warnings,
    }


def _interval(estimate: float | None, variance: float | None) -> dict[str, Any]:
    if estimate is None or variance is None:
        return {"estimate": None, "se": None, "ci95": None}
    se = float(np.sqrt(max(variance, 0.0)))  # the interval of an accuracy, cut to [0, 1]
    return {
        "estimate": estimate,
        "se": se,
        "ci95": [max(0.0, estimate - Z95 * se), min(1.0, estimate + Z95 * se)],
    }

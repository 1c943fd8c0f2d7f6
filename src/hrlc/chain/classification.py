"""Pixel classification of the land-cover chain: train a classifier, map a feature cube, measure accuracy.

The HRLC classification step (spec §3.2.1) learns the land-cover class of a pixel from its yearly feature
vector (:mod:`hrlc.chain.features`) and training samples (:mod:`hrlc.training.samples`), then labels every
pixel of the AOI and writes class probabilities and a class map. This module holds the science only, on
numpy arrays: no files, no lake, no STAC.

Conventions
-----------
- Training matrix ``X``: ``(n_samples, n_features)`` float32, NaN allowed (a feature without any valid
  observation). Labels ``y``: HRLC class codes (:mod:`hrlc.legend`), any integers; the model's
  ``classes_`` are the sorted codes it was trained on.
- Feature cube: ``(n_features, y, x)`` float32 as from :func:`hrlc.chain.features.to_matrix`; the feature
  order must be the training order.
- Probabilities: ``(n_classes, y, x)`` float32 in ``classes`` order, summing to 1 on valid pixels and 0
  everywhere on invalid ones (``valid`` False, or every feature NaN). Class maps: uint8 codes, nodata 0.
- Methods: ``"rf"`` (scikit-learn random forest; NaN handled by scikit-learn's native missing-value
  support of its trees, >= 1.4) and ``"lightgbm"`` (gradient-boosted trees, NaN handled natively; the
  classification processor's default: more accurate than the forest on noisy, high-dimensional stacks
  and, with the compiled predictor below, faster to map). Both are seeded and deterministic.
- Prediction of whole cubes goes through a compiled (numba) evaluator of the fitted trees of either
  library, 2-3x faster than scikit-learn's own forest prediction and ~8x faster than LightGBM's (see the
  section "compiled ensembles" and ``benchmarks/classify.py``), with identical probabilities.
- Accuracy: the confusion matrix has reference (true) classes in rows and mapped (predicted) classes in
  columns; precision = user's accuracy, recall = producer's accuracy (Olofsson et al. 2014 terms).
"""

from __future__ import annotations

import os
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit, parallel_chunksize, prange

__all__ = [
    "METHODS",
    "accuracy_report",
    "blocked_cross_validation",
    "class_map",
    "predict_proba",
    "spatial_blocks",
    "train",
]

METHODS = ("rf", "lightgbm")

#: defaults of the random forest: 150 fully grown trees, sqrt(n_features) candidates per split
RF_DEFAULTS: dict[str, Any] = {
    "n_estimators": 150,
    "max_features": "sqrt",
    "min_samples_leaf": 1,
    "bootstrap": True,
}

#: defaults of LightGBM. Prediction cost is boosting rounds x classes x tree depth per pixel, so the trees
#: are small (at most 15 leaves, depth <= 4) and the learning rate a little high (0.15) for 100 rounds. On
#: the synthetic benchmark (`benchmarks/classify.py`) and in blocked cross-validation of the eo-learn
#: Slovenia LULC patch this is within 0.3 points of OA of 200 rounds of 31 unbounded leaves at lr 0.1, at
#: about a quarter of the prediction cost. Row/column subsampling regularise and speed up training;
#: `deterministic` + `force_row_wise` give the same model for the same data, seed and thread count.
LGBM_DEFAULTS: dict[str, Any] = {
    "n_estimators": 100,
    "learning_rate": 0.15,
    "num_leaves": 15,
    "max_depth": 4,
    "min_child_samples": 10,
    "colsample_bytree": 0.5,
    "subsample": 0.8,
    "subsample_freq": 1,
    "reg_lambda": 1.0,
    "deterministic": True,
    "force_row_wise": True,
    "verbose": -1,
}


LGBM_SAMPLES_PER_THREAD = 20_000
"""LightGBM trains on one thread per this many samples at most: on a small training set its OpenMP threads
spend their time waiting for each other, and spin-waiting threads of two workers sharing cores slowed each
other's training from seconds to minutes (the soak test's 100 s stalls)."""


def _n_threads(n_jobs: int) -> int:
    """Threads for `n_jobs` (-1 = all cores available to this process)."""
    if n_jobs > 0:
        return n_jobs
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        cores = os.cpu_count() or 1
    return max(1, cores + 1 + n_jobs)


def train(
    X: np.ndarray, y: np.ndarray, *, method: str = "rf", seed: int = 0, n_jobs: int = -1, **params: Any
) -> Any:
    """Fit a classifier of `method` (``"rf"`` or ``"lightgbm"``) on ``X (n, f)`` and class codes ``y (n,)``.

    `params` override the defaults (:data:`RF_DEFAULTS`, :data:`LGBM_DEFAULTS`). Returns a fitted
    scikit-learn compatible estimator (``predict``, ``predict_proba``, ``classes_``) that accepts NaN.
    """
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y)
    if X.ndim != 2:
        raise ValueError(f"X must be (n_samples, n_features), got shape {X.shape}")
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must be ({X.shape[0]},), got shape {y.shape}")
    if np.unique(y).size < 2:
        raise ValueError(f"training needs at least 2 classes, got {np.unique(y).tolist()}")
    if method == "rf":
        from sklearn.ensemble import RandomForestClassifier

        model: Any = RandomForestClassifier(**{**RF_DEFAULTS, **params}, n_jobs=n_jobs, random_state=seed)
    elif method == "lightgbm":
        from lightgbm import LGBMClassifier

        threads = min(_n_threads(n_jobs), max(1, X.shape[0] // LGBM_SAMPLES_PER_THREAD))
        model = LGBMClassifier(**{**LGBM_DEFAULTS, **params}, n_jobs=threads, random_state=seed)
    else:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    model.fit(X, y)
    return model


# ------------------------------------------------------------------------------------ compiled ensembles
#
# Why: mapping an AOI predicts ~10^8 pixels, and scikit-learn and LightGBM both predict a (pixels,
# features) matrix one row and one tree at a time with a data-dependent branch per node (a mispredicted
# branch costs about as much as the rest of the node), plus per-tree (sklearn: a (pixels, classes)
# float64 array per tree) or per-row (LightGBM: a sparse copy of every row) overheads. `predict_proba`
# therefore flattens the fitted trees of either library once into arrays (children of a node adjacent,
# thresholds as the largest float32 not above the library's float64 threshold, so the decisions are
# exactly the library's) and evaluates them in one numba kernel: parallel over blocks of 256 pixels,
# each block transposed once into a small (pixels, features) buffer that stays in cache, every tree
# walked by all pixels of the block in lock-step with a branch-free step (next = left child + (x > t)),
# so the CPU overlaps the walks of many pixels, down to the depth where most training samples reached a
# leaf; the few pixels still inside the tree then finish one by one. The probabilities equal the
# libraries' to float rounding (tested); models the kernel does not know (other estimators, categorical
# or zero-as-missing LightGBM splits) fall back to their own `predict_proba`.

_OUT_MEAN, _OUT_SOFTMAX, _OUT_SIGMOID = 0, 1, 2


class _Unsupported(Exception):
    """A model the compiled kernel cannot evaluate exactly (the caller falls back to the library)."""


@dataclass(frozen=True)
class _Ensemble:
    """The trees of a fitted ensemble as flat arrays, nodes of all trees concatenated.

    Nodes are renumbered breadth-first so the right child of a node is its left child + 1. A leaf points
    to itself with threshold +inf (so a lock-step walk that reached it stays there).
    """

    roots: np.ndarray  # (T,) uint32 root node of each tree
    depth: np.ndarray  # (T,) int64 depth of each tree (steps from the root to its deepest leaf)
    lockstep: np.ndarray  # (T,) int64 levels walked in lock-step: the training samples' mean leaf depth
    tree_class: np.ndarray  # (T,) int64 class a tree's scalar leaves add to (GBM); unused for vector leaves
    child: np.ndarray  # (N,) uint32 left child (right = left + 1); a leaf: itself
    feature: np.ndarray  # (N,) uint32 split feature (0 for leaves)
    threshold: np.ndarray  # (N,) float32: go right iff x > threshold (+inf for leaves)
    nan_left: np.ndarray  # (N,) bool: where NaN goes
    leaf: np.ndarray  # (N,) uint32 row of `values` of a leaf
    values: np.ndarray  # (L, width) float64 leaf outputs (width = n_classes for forests, 1 for GBM)
    output: int  # _OUT_*: mean of class vectors, softmax of class scores, sigmoid of one score
    n_classes: int
    n_features: int


@njit(cache=True)
def _breadth_first(
    roots: np.ndarray, left: np.ndarray, right: np.ndarray, cover: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """New node ids (children adjacent) of every node, the depth of every tree and the mean depth of its
    leaves weighted by `cover` (training samples per node), rounded up."""
    n = left.shape[0]
    new_id = np.full(n, -1, dtype=np.int64)
    depth = np.zeros(roots.shape[0], dtype=np.int64)
    typical = np.zeros(roots.shape[0], dtype=np.int64)
    queue = np.empty(n, dtype=np.int64)
    level = np.empty(n, dtype=np.int64)
    nxt = 0
    for t in range(roots.shape[0]):
        head = tail = 0
        weighted = total = 0.0
        queue[tail] = roots[t]
        level[tail] = 0
        tail += 1
        new_id[roots[t]] = nxt
        nxt += 1
        while head < tail:
            node = queue[head]
            d = level[head]
            head += 1
            if left[node] < 0:
                depth[t] = max(depth[t], d)
                weighted += cover[node] * d
                total += cover[node]
                continue
            new_id[left[node]] = nxt
            new_id[right[node]] = nxt + 1
            nxt += 2
            queue[tail] = left[node]
            queue[tail + 1] = right[node]
            level[tail] = d + 1
            level[tail + 1] = d + 1
            tail += 2
        mean = weighted / total if total > 0 else float(depth[t])
        typical[t] = min(depth[t], int(np.ceil(mean - 1e-9)))
    return new_id, depth, typical


def _assemble(
    roots: np.ndarray,
    feature: np.ndarray,
    threshold: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    nan_left: np.ndarray,
    leaf_row: np.ndarray,
    cover: np.ndarray,
    values: np.ndarray,
    tree_class: np.ndarray,
    output: int,
    n_classes: int,
    n_features: int,
) -> _Ensemble:
    """Renumber breadth-first and convert to the kernel's layout. Leaves have ``left == right == -1``;
    `cover` is the number (or weight) of training samples of each node."""
    new_id, depth, typical = _breadth_first(
        roots.astype(np.int64), left.astype(np.int64), right.astype(np.int64), cover.astype(np.float64)
    )
    if np.any(new_id < 0):
        raise _Unsupported  # nodes not reachable from a root: not a forest we understand
    is_leaf = left < 0
    n = feature.size
    order = np.empty(n, dtype=np.int64)
    order[new_id] = np.arange(n)  # old id of each new id
    with np.errstate(over="ignore"):
        t32 = threshold.astype(np.float32)
    above = t32.astype(np.float64) > threshold  # rounding went up: step down to keep x <= t exact
    t32[above] = np.nextafter(t32[above], np.float32(-np.inf))
    t32[is_leaf] = np.inf
    child = np.where(is_leaf, new_id, new_id[np.where(is_leaf, 0, left)])
    return _Ensemble(
        roots=new_id[roots].astype(np.uint32),
        depth=depth,
        lockstep=typical,
        tree_class=tree_class.astype(np.int64),
        child=child[order].astype(np.uint32),
        feature=np.where(is_leaf, 0, feature)[order].astype(np.uint32),
        threshold=t32[order],
        nan_left=np.where(is_leaf, True, nan_left)[order].astype(np.bool_),
        leaf=np.where(is_leaf, leaf_row, 0)[order].astype(np.uint32),
        values=np.ascontiguousarray(values, dtype=np.float64),
        output=output,
        n_classes=n_classes,
        n_features=n_features,
    )


def _from_sklearn_forest(model: Any) -> _Ensemble:
    trees = [e.tree_ for e in model.estimators_]
    c = len(model.classes_)
    if any(t.n_outputs != 1 or t.value.shape[2] != c for t in trees):
        raise _Unsupported
    roots, feats, thrs, lefts, rights, nanl, rows, cover, vals = [], [], [], [], [], [], [], [], []
    offset = leaf_offset = 0
    for t in trees:
        is_leaf = t.children_left < 0
        v = t.value[is_leaf, 0, :].astype(np.float64)
        vals.append(v / np.maximum(v.sum(axis=1, keepdims=True), np.finfo(np.float64).tiny))
        roots.append(offset)
        feats.append(t.feature)
        thrs.append(t.threshold)
        lefts.append(np.where(is_leaf, -1, t.children_left + offset))
        rights.append(np.where(is_leaf, -1, t.children_right + offset))
        nanl.append(np.asarray(t.missing_go_to_left, dtype=bool))
        rows.append(np.cumsum(is_leaf) - 1 + leaf_offset)
        cover.append(t.n_node_samples)
        offset += t.node_count
        leaf_offset += int(is_leaf.sum())
    return _assemble(
        np.array(roots),
        np.concatenate(feats),
        np.concatenate(thrs),
        np.concatenate(lefts),
        np.concatenate(rights),
        np.concatenate(nanl),
        np.concatenate(rows),
        np.concatenate(cover),
        np.concatenate(vals),
        np.zeros(len(trees), dtype=np.int64),
        _OUT_MEAN,
        c,
        int(model.n_features_in_),
    )


def _from_lightgbm(model: Any) -> _Ensemble:
    dump = model.booster_.dump_model()
    objective = str(dump.get("objective") or "").split(" ")[0]
    per_iter = int(dump["num_tree_per_iteration"])
    c = len(model.classes_)
    if dump.get("average_output"):
        raise _Unsupported
    if objective in ("multiclass", "softmax") and per_iter == c:
        output = _OUT_SOFTMAX
    elif objective in ("binary", "cross_entropy", "xentropy") and per_iter == 1 and c == 2:
        output = _OUT_SIGMOID
    else:
        raise _Unsupported
    best = getattr(model, "best_iteration_", None)
    infos = dump["tree_info"][: best * per_iter] if best else dump["tree_info"]
    feats: list[int] = []
    thrs: list[float] = []
    lefts: list[int] = []
    rights: list[int] = []
    nanl: list[bool] = []
    rows: list[int] = []
    cover: list[float] = []
    vals: list[float] = []

    def add(node: dict[str, Any]) -> int:
        i = len(feats)
        feats.append(0)
        thrs.append(0.0)
        lefts.append(-1)
        rights.append(-1)
        nanl.append(True)
        rows.append(0)
        cover.append(float(node.get("leaf_count", node.get("internal_count", 1.0))))
        if "split_feature" not in node:
            rows[i] = len(vals)
            vals.append(float(node["leaf_value"]))
            return i
        missing = str(node.get("missing_type", "None"))
        if node.get("decision_type", "<=") != "<=" or missing not in ("None", "NaN"):
            raise _Unsupported  # categorical splits, zero-as-missing
        feats[i] = int(node["split_feature"])
        thrs[i] = float(node["threshold"])
        # LightGBM: NaN follows default_left for missing type NaN; else it is replaced by 0.0
        nanl[i] = bool(node["default_left"]) if missing == "NaN" else thrs[i] >= 0.0
        lefts[i] = add(node["left_child"])
        rights[i] = add(node["right_child"])
        return i

    roots = [add(info["tree_structure"]) for info in infos]
    tree_class = np.arange(len(roots)) % per_iter if output == _OUT_SOFTMAX else np.zeros(len(roots), int)
    return _assemble(
        np.array(roots),
        np.array(feats),
        np.array(thrs, dtype=np.float64),
        np.array(lefts),
        np.array(rights),
        np.array(nanl, dtype=bool),
        np.array(rows),
        np.array(cover),
        np.array(vals).reshape(-1, 1),
        tree_class,
        output,
        c,
        int(model.n_features_in_),
    )


# model -> (the fitted trees' container when compiled, ensemble); the container (sklearn's `estimators_`
# list, LightGBM's Booster) is replaced by every `fit`, so a refitted model is compiled again
_COMPILED: weakref.WeakKeyDictionary[Any, tuple[Any, _Ensemble | None]] = weakref.WeakKeyDictionary()


def _trees_of(model: Any) -> tuple[str, Any]:
    """(kind, container of the fitted trees) of a model the kernel may evaluate, else ("", None)."""
    module = type(model).__module__
    if (
        module.startswith("sklearn.ensemble")
        and isinstance(getattr(model, "estimators_", None), list)
        and np.ndim(getattr(model, "classes_", [[]])) == 1
        and all(hasattr(e, "tree_") for e in model.estimators_)
    ):
        return "sklearn", model.estimators_
    if module.startswith("lightgbm") and getattr(model, "fitted_", False):
        return "lightgbm", model.booster_
    return "", None


def _compiled(model: Any) -> _Ensemble | None:
    """The flattened trees of a fitted sklearn forest or LightGBM classifier (cached per fit), else None."""
    kind, trees = _trees_of(model)
    if trees is None:
        return None
    try:
        cached = _COMPILED.get(model)
    except TypeError:  # not weak-referenceable
        return None
    if cached is not None and cached[0] is trees:
        return cached[1]
    try:
        ens = _from_sklearn_forest(model) if kind == "sklearn" else _from_lightgbm(model)
    except _Unsupported:
        ens = None
    _COMPILED[model] = (trees, ens)
    return ens


def _block_px(ens: _Ensemble) -> int:
    """Pixels walked together: 256 (x ~150 features x 4 B stays in L2) unless the trees are so large
    (deep forests grown on many samples) that streaming them through the cache for every block costs more
    than a bigger pixel buffer; measured on 2-core EPYC, 120 features."""
    return 256 if ens.child.size * 14 <= 4_000_000 else 4096


@njit(parallel=True, cache=True)
def _ensemble_kernel(
    x: np.ndarray,
    ok: np.ndarray,
    roots: np.ndarray,
    depth: np.ndarray,
    lockstep: np.ndarray,
    tree_class: np.ndarray,
    child: np.ndarray,
    feature: np.ndarray,
    threshold: np.ndarray,
    nan_left: np.ndarray,
    leaf: np.ndarray,
    values: np.ndarray,
    output: int,
    block: int,
    out: np.ndarray,
) -> None:
    """Probabilities ``out (c, n)`` of the pixels ``x (f, n)`` where `ok`; 0 elsewhere.

    Each tree is walked by all pixels of a block in lock-step for ``lockstep[t]`` levels (the depth at
    which most training samples reach their leaf), then every pixel not yet at a leaf finishes alone: deep,
    unbalanced trees (fully grown forests) do not make every pixel pay for the deepest leaf.
    """
    nf, n = x.shape
    c = out.shape[0]
    n_trees = roots.shape[0]
    width = values.shape[1]
    for blk in prange((n + block - 1) // block):
        lo = blk * block
        hi = min(n, lo + block)
        idx = np.empty(hi - lo, dtype=np.int64)
        m = 0
        for i in range(lo, hi):
            if ok[i]:
                idx[m] = i
                m += 1
            else:
                for j in range(c):
                    out[j, i] = 0.0
        if m == 0:
            continue
        xb = np.empty((m, nf), dtype=np.float32)
        any_nan = False
        for f in range(nf):
            for i in range(m):
                v = x[f, idx[i]]
                xb[i, f] = v
                any_nan |= v != v
        acc = np.zeros((m, c), dtype=np.float64)
        node = np.empty(m, dtype=np.uint32)
        for t in range(n_trees):
            root = roots[t]
            for i in range(m):
                node[i] = root
            if any_nan:  # NaN goes where the library sends it
                for _ in range(lockstep[t]):
                    for i in range(m):
                        nd = node[i]
                        v = xb[i, feature[nd]]
                        node[i] = child[nd] + np.uint32((v > threshold[nd]) | ((v != v) & (not nan_left[nd])))
                if lockstep[t] < depth[t]:
                    for i in range(m):
                        nd = node[i]
                        while child[nd] != nd:
                            v = xb[i, feature[nd]]
                            nd = child[nd] + np.uint32((v > threshold[nd]) | ((v != v) & (not nan_left[nd])))
                        node[i] = nd
            else:  # no NaN in the block: one comparison per step
                for _ in range(lockstep[t]):
                    for i in range(m):
                        nd = node[i]
                        node[i] = child[nd] + np.uint32(xb[i, feature[nd]] > threshold[nd])
                if lockstep[t] < depth[t]:
                    for i in range(m):
                        nd = node[i]
                        while child[nd] != nd:
                            nd = child[nd] + np.uint32(xb[i, feature[nd]] > threshold[nd])
                        node[i] = nd
            if width == 1:
                k = tree_class[t]
                for i in range(m):
                    acc[i, k] += values[leaf[node[i]], 0]
            else:
                for i in range(m):
                    row = leaf[node[i]]
                    for j in range(c):
                        acc[i, j] += values[row, j]
        for i in range(m):
            p = idx[i]
            a = acc[i]
            if output == _OUT_MEAN:
                for j in range(c):
                    out[j, p] = a[j] / n_trees
            elif output == _OUT_SOFTMAX:
                top = a.max()
                total = 0.0
                for j in range(c):
                    a[j] = np.exp(a[j] - top)
                    total += a[j]
                for j in range(c):
                    out[j, p] = a[j] / total
            else:  # sigmoid of one score = P(classes[1])
                q = 1.0 / (1.0 + np.exp(-a[0]))
                out[0, p] = 1.0 - q
                out[1, p] = q


def predict_proba(
    model: Any, features: np.ndarray, *, block_px: int = 262144, valid: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities of every pixel of a feature cube, predicted in blocks of `block_px` pixels.

    Args:
        model: a fitted estimator of :func:`train` (or any classifier with ``predict_proba`` and
            ``classes_``). Random forests / extra trees of scikit-learn and LightGBM classifiers are
            predicted by a compiled kernel reading the cube in place; other models by their own
            ``predict_proba`` on a transposed copy of each block.
        features: ``(n_features, y, x)`` float32.
        block_px: pixels per block; memory beyond the output is at most ``block_px * n_features * 4``
            bytes (the transposed block of the fallback path).
        valid: optional ``(y, x)`` bool; False pixels are not predicted.

    Returns:
        ``probs (n_classes, y, x)`` float32 (all 0 on invalid pixels and on pixels whose features are all
        NaN) and ``classes (n_classes,)`` int64 in the same order.
    """
    if features.ndim != 3:
        raise ValueError(f"features must be (n_features, y, x), got shape {features.shape}")
    if block_px < 1:
        raise ValueError("block_px must be >= 1")
    nf, ny, nx = features.shape
    n_in = getattr(model, "n_features_in_", nf)
    if n_in != nf:
        raise ValueError(f"model expects {n_in} features, the cube has {nf}")
    classes = np.asarray(model.classes_).astype(np.int64)
    flat = np.ascontiguousarray(features, dtype=np.float32).reshape(nf, ny * nx)
    ok = np.zeros(ny * nx, dtype=bool)  # any feature observed; one feature at a time: no (nf, px) temporary
    for row in flat:
        ok |= ~np.isnan(row)
    if valid is not None:
        if valid.shape != (ny, nx):
            raise ValueError(f"valid must be {(ny, nx)}, got {valid.shape}")
        ok &= valid.reshape(-1).astype(bool)
    probs = np.zeros((classes.size, ny * nx), dtype=np.float32)
    ens = _compiled(model)
    for start in range(0, ny * nx, block_px):
        stop = min(ny * nx, start + block_px)
        if ens is not None:
            with parallel_chunksize(4):  # dynamic scheduling: a busy core does not hold back the others
                _ensemble_kernel(
                    flat[:, start:stop],
                    ok[start:stop],
                    ens.roots,
                    ens.depth,
                    ens.lockstep,
                    ens.tree_class,
                    ens.child,
                    ens.feature,
                    ens.threshold,
                    ens.nan_left,
                    ens.leaf,
                    ens.values,
                    ens.output,
                    _block_px(ens),
                    probs[:, start:stop],
                )
            continue
        sel = np.flatnonzero(ok[start:stop]) + start
        if sel.size:
            block = np.ascontiguousarray(flat[:, sel].T)
            probs[:, sel] = np.asarray(model.predict_proba(block), dtype=np.float32).T
    return probs.reshape(classes.size, ny, nx), classes


def class_map(probs: np.ndarray, classes: np.ndarray, nodata: int = 0) -> np.ndarray:
    """uint8 class map: the code of the most probable class (first one on ties); `nodata` where all are 0."""
    classes = np.asarray(classes)
    if probs.shape[0] != classes.size:
        raise ValueError(f"{probs.shape[0]} probability bands for {classes.size} classes")
    if classes.size and (classes.min() < 0 or classes.max() > 255):
        raise ValueError("class codes must fit uint8")
    out = classes.astype(np.uint8)[np.argmax(probs, axis=0)]
    out[probs.sum(axis=0) <= 0] = nodata
    return out


def accuracy_report(y_true: np.ndarray, y_pred: np.ndarray, labels: Any = None) -> dict[str, Any]:
    """Overall accuracy, Cohen's kappa, per-class precision/recall/F1 and the confusion matrix (rows: reference,
    columns: predicted, in `labels` order; the report says so in ``confusion_matrix_axes``).

    `labels` fixes the classes reported (and their order); classes present in the data but missing from
    `labels` are appended in ascending order, so no sample is silently dropped. Per-class values of a class
    without predictions (precision) or references (recall) are 0. All values are plain Python types.
    """
    y_true = np.asarray(y_true).astype(np.int64).reshape(-1)
    y_pred = np.asarray(y_pred).astype(np.int64).reshape(-1)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in length: {y_true.size} vs {y_pred.size}")
    if y_true.size == 0:
        raise ValueError("accuracy_report needs at least one sample")
    given = [] if labels is None else [int(v) for v in np.asarray(labels).reshape(-1)]
    present = np.union1d(y_true, y_pred).tolist()
    labs = given + sorted(set(present) - set(given))
    k = len(labs)
    cm = np.bincount(_lookup(y_true, labs) * k + _lookup(y_pred, labs), minlength=k * k).reshape(k, k)

    n = int(cm.sum())
    diag = np.diag(cm).astype(np.float64)
    rows = cm.sum(axis=1).astype(np.float64)  # reference totals
    cols = cm.sum(axis=0).astype(np.float64)  # map totals
    oa = float(diag.sum() / n)
    pe = float((rows * cols).sum() / (n * n))
    kappa = 1.0 if pe >= 1.0 else float((oa - pe) / (1.0 - pe))
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(cols > 0, diag / cols, 0.0)
        recall = np.where(rows > 0, diag / rows, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return {
        "overall_accuracy": oa,
        "kappa": kappa,
        "per_class_f1": {str(c): float(v) for c, v in zip(labs, f1, strict=True)},
        "per_class_precision": {str(c): float(v) for c, v in zip(labs, precision, strict=True)},
        "per_class_recall": {str(c): float(v) for c, v in zip(labs, recall, strict=True)},
        "confusion_matrix": cm.astype(int).tolist(),
        "confusion_matrix_axes": {"rows": "reference", "columns": "predicted"},
        "labels": [int(c) for c in labs],
        "n_samples": n,
    }


def _lookup(values: np.ndarray, labels: list[int]) -> np.ndarray:
    """Position in `labels` of each value (every value must be in `labels`)."""
    order = np.argsort(labels)
    sorted_labels = np.asarray(labels, dtype=np.int64)[order]
    return order[np.searchsorted(sorted_labels, values)]


def spatial_blocks(rows: np.ndarray, cols: np.ndarray, block_px: int) -> np.ndarray:
    """Group id (int64, 0..n_blocks-1 in row-major block order) of each sample's square block of `block_px`.

    Samples in the same ``block_px x block_px`` pixel block share a group, so a group-aware split keeps
    spatially autocorrelated neighbours on the same side (Roberts et al. 2017).
    """
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    if block_px < 1:
        raise ValueError("block_px must be >= 1")
    if rows.shape != cols.shape:
        raise ValueError("rows and cols differ in shape")
    if rows.size == 0:
        return np.zeros(0, dtype=np.int64)
    if rows.min() < 0 or cols.min() < 0:
        raise ValueError("rows and cols must be >= 0")
    br, bc = rows // block_px, cols // block_px
    block = br * (int(bc.max()) + 1) + bc
    return np.unique(block, return_inverse=True)[1].astype(np.int64).reshape(rows.shape)


def blocked_cross_validation(
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    *,
    method: str = "rf",
    n_splits: int = 5,
    seed: int = 0,
    n_jobs: int = -1,
    **params: Any,
) -> dict[str, Any]:
    """Group k-fold cross-validation: out-of-fold predictions of every sample, no group on both sides.

    Folds come from scikit-learn's ``StratifiedGroupKFold`` (class proportions kept as far as the groups
    allow), shuffled with `seed`; ``n_splits`` is reduced to the number of groups if there are fewer.
    Returns :func:`accuracy_report` of the pooled out-of-fold predictions plus ``"folds"`` (per fold:
    sizes, number of groups, OA and kappa), ``"n_splits"`` and ``"method"``.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y)
    groups = np.asarray(groups)
    n_groups = np.unique(groups).size
    splits = min(n_splits, n_groups)
    if splits < 2:
        raise ValueError(f"cross-validation needs at least 2 groups, got {n_groups}")
    cv = StratifiedGroupKFold(n_splits=splits, shuffle=True, random_state=seed)
    oof = np.zeros_like(y)
    folds = []
    for i, (tr, te) in enumerate(cv.split(X, y, groups)):
        if np.unique(y[tr]).size < 2:  # a degenerate fold: predict its single training class
            oof[te] = y[tr][0]
        else:
            model = train(X[tr], y[tr], method=method, seed=seed, n_jobs=n_jobs, **params)
            oof[te] = model.predict(X[te])
        rep = accuracy_report(y[te], oof[te])
        folds.append(
            {
                "fold": i,
                "n_train": int(tr.size),
                "n_test": int(te.size),
                "test_groups": int(np.unique(groups[te]).size),
                "overall_accuracy": rep["overall_accuracy"],
                "kappa": rep["kappa"],
            }
        )
    report = accuracy_report(y, oof)
    report.update(
        {"folds": folds, "n_splits": splits, "method": method, "validation": "spatially blocked CV"}
    )
    return report

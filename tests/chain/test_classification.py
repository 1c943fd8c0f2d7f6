"""Training, compiled prediction, class maps, accuracy and blocked CV (`hrlc.chain.classification`)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from hrlc.chain import classification as clf

CODES = np.array([10, 30, 80, 142])


def separable(n: int = 600, nf: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Samples of 4 HRLC classes with well separated means; 2 % NaN."""
    rng = np.random.default_rng(seed)
    y = CODES[rng.integers(0, CODES.size, n)]
    centres = rng.uniform(0, 1, (CODES.size, nf))
    X = centres[np.searchsorted(CODES, y)] + 0.05 * rng.standard_normal((n, nf))
    X = X.astype(np.float32)
    X[rng.random(X.shape) < 0.02] = np.nan
    return X, y


@pytest.mark.parametrize("method", ["rf", "lightgbm"])
def test_train_separable_data_oa_above_095(method: str) -> None:
    X, y = separable()
    model = clf.train(X[:400], y[:400], method=method, seed=0, n_jobs=1)
    report = clf.accuracy_report(y[400:], model.predict(X[400:]))
    assert report["overall_accuracy"] > 0.95, report
    assert list(model.classes_) == CODES.tolist()


def test_train_is_deterministic_and_validates() -> None:
    X, y = separable(200)
    a = clf.train(X, y, method="lightgbm", seed=3, n_jobs=1).predict_proba(X)
    b = clf.train(X, y, method="lightgbm", seed=3, n_jobs=1).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="unknown method"):
        clf.train(X, y, method="svm")
    with pytest.raises(ValueError, match="at least 2 classes"):
        clf.train(X, np.full(len(y), 10))
    with pytest.raises(ValueError, match="n_samples"):
        clf.train(X[:, 0], y)


def cube_of(X: np.ndarray, ny: int, nx: int) -> np.ndarray:
    return np.ascontiguousarray(X[: ny * nx].T.reshape(X.shape[1], ny, nx))


MODELS = {
    "rf": lambda X, y: clf.train(X, y, method="rf", n_estimators=20, n_jobs=1),
    "lightgbm": lambda X, y: clf.train(X, y, method="lightgbm", n_estimators=15, n_jobs=1),
    "lightgbm-binary": lambda X, y: clf.train(
        X, np.where(y == 10, 10, 80), method="lightgbm", n_estimators=15, n_jobs=1
    ),
    "lightgbm-no-nan": lambda X, y: clf.train(
        np.nan_to_num(X), y, method="lightgbm", n_estimators=15, n_jobs=1
    ),
    "extra-trees": lambda X, y: ExtraTreesClassifier(10, random_state=0).fit(X, y),
    "logistic (library fallback)": lambda X, y: LogisticRegression(max_iter=200).fit(np.nan_to_num(X), y),
}


@pytest.mark.parametrize("kind", list(MODELS))
def test_predict_proba_equals_library_and_blocks_equal_single_shot(kind: str) -> None:
    X, y = separable(700)
    model = MODELS[kind](X[:300], y[:300])
    Xc = X[300:] if "logistic" not in kind else np.nan_to_num(X[300:])
    cube = cube_of(Xc, 20, 20)
    probs, classes = clf.predict_proba(model, cube)
    assert probs.shape == (len(model.classes_), 20, 20) and probs.dtype == np.float32
    np.testing.assert_array_equal(classes, model.classes_)
    expected = model.predict_proba(Xc[:400]).T.reshape(probs.shape)
    np.testing.assert_allclose(probs, expected, atol=1e-6)
    blocked, _ = clf.predict_proba(model, cube, block_px=37)
    np.testing.assert_allclose(blocked, probs, atol=1e-7)
    clean = np.nan_to_num(Xc[:400])  # blocks without NaN take the kernel's one-comparison path
    probs, _ = clf.predict_proba(model, cube_of(clean, 20, 20))
    np.testing.assert_allclose(probs, model.predict_proba(clean).T.reshape(probs.shape), atol=1e-6)


def test_invalid_pixels_get_zero_probability_and_nodata() -> None:
    X, y = separable(500)
    model = clf.train(X[:300], y[:300], method="lightgbm", n_estimators=10, n_jobs=1)
    cube = cube_of(X[300:], 10, 10)
    cube[:, 0, 0] = np.nan  # never observed
    valid = np.ones((10, 10), dtype=bool)
    valid[5, :] = False
    probs, classes = clf.predict_proba(model, cube, valid=valid, block_px=16)
    assert (probs[:, 0, 0] == 0).all() and (probs[:, 5, :] == 0).all()
    ok = valid.copy()
    ok[0, 0] = False
    np.testing.assert_allclose(probs.sum(axis=0)[ok], 1.0, atol=1e-5)
    cmap = clf.class_map(probs, classes)
    assert cmap.dtype == np.uint8
    assert cmap[0, 0] == 0 and (cmap[5] == 0).all() and set(np.unique(cmap[ok])) <= set(CODES.tolist())
    assert (clf.class_map(probs, classes, nodata=255)[5] == 255).all()


def test_class_map_argmax_and_nodata() -> None:
    probs = np.array([[[0.7, 0.0, 0.2]], [[0.3, 0.0, 0.8]]], dtype=np.float32)
    np.testing.assert_array_equal(clf.class_map(probs, np.array([20, 142])), [[20, 0, 142]])


def test_accuracy_report_known_confusion_matrix() -> None:
    # reference rows, map columns:  [[5, 1], [2, 2]] for classes 10, 20
    y_true = np.array([10] * 6 + [20] * 4)
    y_pred = np.array([10] * 5 + [20] + [10] * 2 + [20] * 2)
    rep = clf.accuracy_report(y_true, y_pred)
    assert (
        rep["confusion_matrix"] == [[5, 1], [2, 2]]
        and rep["labels"] == [10, 20]
        and rep["n_samples"] == 10
        and rep["confusion_matrix_axes"] == {"rows": "reference", "columns": "predicted"}
    )
    assert rep["overall_accuracy"] == pytest.approx(0.7)
    pe = (6 * 7 + 4 * 3) / 100  # 0.54
    assert rep["kappa"] == pytest.approx((0.7 - pe) / (1 - pe))  # 0.3478...
    assert rep["per_class_precision"] == pytest.approx({"10": 5 / 7, "20": 2 / 3})
    assert rep["per_class_recall"] == pytest.approx({"10": 5 / 6, "20": 0.5})
    assert rep["per_class_f1"]["10"] == pytest.approx(2 * (5 / 7) * (5 / 6) / (5 / 7 + 5 / 6))  # 10/13
    assert rep["per_class_f1"]["20"] == pytest.approx(4 / 7)
    json.dumps(rep)  # plain Python types


def test_accuracy_report_labels_order_and_absent_classes() -> None:
    rep = clf.accuracy_report([10, 10, 30], [10, 30, 30], labels=[30, 10, 80])
    assert rep["labels"] == [30, 10, 80]
    assert rep["confusion_matrix"] == [[1, 0, 0], [1, 1, 0], [0, 0, 0]]
    assert rep["per_class_f1"]["80"] == 0.0
    # a class in the data but not in `labels` is appended, never dropped
    rep = clf.accuracy_report([10, 20], [10, 20], labels=[20])
    assert rep["labels"] == [20, 10] and rep["n_samples"] == 2 and rep["overall_accuracy"] == 1.0
    assert clf.accuracy_report([10, 10], [10, 10])["kappa"] == 1.0
    with pytest.raises(ValueError):
        clf.accuracy_report([], [])


def test_spatial_blocks() -> None:
    rows = np.array([0, 0, 9, 10, 10, 25])
    cols = np.array([0, 9, 9, 0, 19, 0])
    g = clf.spatial_blocks(rows, cols, 10)
    assert g[0] == g[1] == g[2]  # block (0, 0)
    assert len({g[0], g[3], g[4], g[5]}) == 4  # blocks (0,0), (1,0), (1,1), (2,0)
    assert g.dtype == np.int64 and g.min() == 0 and g.max() == 3


def test_blocked_cross_validation_never_splits_a_group() -> None:
    X, y = separable(400)
    rng = np.random.default_rng(0)
    rows, cols = rng.integers(0, 100, 400), rng.integers(0, 100, 400)
    groups = clf.spatial_blocks(rows, cols, 25)
    from sklearn.model_selection import StratifiedGroupKFold

    for tr, te in StratifiedGroupKFold(n_splits=4, shuffle=True, random_state=0).split(X, y, groups):
        assert not set(groups[tr]) & set(groups[te])
    rep = clf.blocked_cross_validation(
        X, y, groups, method="rf", n_splits=4, seed=0, n_estimators=30, n_jobs=1
    )
    assert rep["n_samples"] == 400 and len(rep["folds"]) == 4
    assert sum(f["n_test"] for f in rep["folds"]) == 400
    assert rep["overall_accuracy"] > 0.95
    json.dumps(rep)
    with pytest.raises(ValueError, match="2 groups"):
        clf.blocked_cross_validation(X, y, np.zeros(400, int))


def test_compiled_forest_matches_sklearn_with_nan_routing() -> None:
    """NaN seen in training (missing_go_to_left learnt) and unseen (goes to the larger child)."""
    rng = np.random.default_rng(5)
    X = rng.random((300, 4)).astype(np.float32)
    y = np.where(X[:, 0] > 0.5, 10, 20)
    X[:50, 0] = np.nan  # NaN in training, all class 20 -> learnt direction
    y[:50] = 20
    model = RandomForestClassifier(15, random_state=0).fit(X, y)
    test = rng.random((100, 4)).astype(np.float32)
    test[::3, 0] = np.nan
    test[::5, 2] = np.nan  # never NaN in training
    probs, _ = clf.predict_proba(model, cube_of(test, 10, 10))
    np.testing.assert_allclose(probs.reshape(2, -1).T, model.predict_proba(test), atol=1e-6)


@pytest.mark.parametrize("method", ["rf", "lightgbm"])
def test_refitted_model_is_compiled_again(method: str) -> None:
    X, y = separable(500)
    model = clf.train(X[:200], y[:200], method=method, n_jobs=1, n_estimators=10)
    cube = cube_of(X[300:], 10, 10)
    first, _ = clf.predict_proba(model, cube)
    model.fit(X[200:300], np.roll(y[200:300], 1))  # same object, other trees
    second, _ = clf.predict_proba(model, cube)
    np.testing.assert_allclose(second.reshape(len(CODES), -1).T, model.predict_proba(X[300:400]), atol=1e-6)
    assert not np.allclose(first, second)


@pytest.mark.parametrize("block", [7, 4096])
def test_kernel_block_size_does_not_change_probabilities(block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = separable(700)
    model = clf.train(X[:300], y[:300], method="rf", n_estimators=10, n_jobs=1)
    cube = cube_of(X[300:], 20, 20)
    reference, _ = clf.predict_proba(model, cube)
    monkeypatch.setattr(clf, "_block_px", lambda ens: block)
    probs, _ = clf.predict_proba(model, cube)
    np.testing.assert_allclose(probs, reference, atol=1e-7)

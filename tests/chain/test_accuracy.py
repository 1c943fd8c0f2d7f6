"""Area-weighted accuracy and area estimates (`hrlc.chain.accuracy`): the published numerical example of
Olofsson et al. (2014), and the coverage of the 95 % intervals on maps whose true accuracy is known."""

from __future__ import annotations

import numpy as np
import pytest

from hrlc.chain.accuracy import error_matrix, stratified_estimates

# Olofsson et al. 2014, section 5 (tables 8 and 9): rows map class, columns reference class; classes
# deforestation, forest gain, stable forest, stable non-forest; 30 m pixels (0.09 ha)
PAPER_N = [[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]]
PAPER_MAPPED = [200_000, 150_000, 3_200_000, 6_450_000]
HA = 10_000.0


def test_the_numerical_example_of_olofsson_2014() -> None:
    r = stratified_estimates(PAPER_N, PAPER_MAPPED, [1, 2, 3, 4], pixel_area_m2=900.0)

    def half(v: dict) -> float:
        lo, hi = v["ci95"]
        return (hi - lo) / 2

    oa = r["overall_accuracy"]
    assert round(oa["estimate"], 2) == 0.95 and round(half(oa), 2) == 0.02
    users = [(round(v["estimate"], 2), round(half(v), 2)) for v in r["users_accuracy"].values()]
    assert users == [(0.88, 0.07), (0.73, 0.10), (0.93, 0.04), (0.96, 0.02)]
    producers = r["producers_accuracy"]
    assert [round(v["estimate"], 2) for v in producers.values()] == [0.75, 0.85, 0.93, 0.96]
    # the paper's intervals of deforestation and stable forest (those of gain and stable non-forest are printed
    # with a rounding slip there: 0.23 and 0.01 for 0.25 and 0.02 by its own eq. 7)
    assert round(half(producers["1"]), 2) == 0.21 and round(half(producers["3"]), 2) == 0.03
    area_ha = [(round(v["m2"] / HA), round((v["m2_ci95"][1] - v["m2"]) / HA)) for v in r["area"].values()]
    assert area_ha == [(21_158, 6_158), (11_686, 3_756), (285_770, 15_510), (581_386, 16_282)]
    assert r["weights"] == {"1": 0.02, "2": 0.015, "3": 0.32, "4": 0.645}
    assert r["n_samples"] == 640 and r["warnings"] == []


def test_the_error_matrix_has_the_map_in_rows() -> None:
    n, labels = error_matrix(reference=[1, 1, 2, 3], mapped=[1, 2, 2, 2], labels=[2])
    assert labels == [2, 1, 3]
    assert n.tolist() == [[1, 1, 1], [0, 1, 0], [0, 0, 0]]  # mapped 2: references 2, 1, 3


def test_undefined_and_variance_free_classes_are_said() -> None:
    r = stratified_estimates([[5, 0, 0], [0, 1, 0], [0, 0, 0]], [100, 10, 5], [10, 20, 30])
    assert r["users_accuracy"]["30"]["estimate"] is None
    assert r["users_accuracy"]["20"]["se"] == 0.0
    assert any("[30]" in w and "no sample" in w for w in r["warnings"])
    # class 30 (5 of 115 px) is not estimated: the rest of the map is, weighted among itself
    assert r["assessed_map_share"] == pytest.approx(110 / 115)
    assert r["weights"]["30"] == 0.0 and r["weights"]["10"] == pytest.approx(100 / 110)
    assert r["overall_accuracy"]["estimate"] == pytest.approx(1.0)
    assert any("[20]" in w and "1 sample" in w for w in r["warnings"])
    with pytest.raises(ValueError, match="3 x 3"):
        stratified_estimates([[1, 0], [0, 1]], [1, 1, 1], [1, 2, 3])


def test_estimates_of_a_known_map_are_unbiased_with_honest_standard_errors() -> None:
    """A map of 200 000 pixels with known errors (a rare class mapped poorly, a common one well), sampled 400
    times with 200 samples per map class: the overall accuracy and the rare class's area are unbiased, their
    standard errors are the spread of the estimates over the draws (within 10 %), and the 95 % intervals
    hold the truth in at least 90 % of the draws for the accuracy, 80 % for the rare class's area. Normal
    (Wald) intervals run under 95 % when few samples carry the errors: the rare class's area comes mostly from
    the ~1 sample in 200 of the large class that is truly rare (84 % here), and the accuracy's interval holds
    88 % with 50 samples a class. The unweighted accuracy of the same samples is off by 0.1."""
    rng = np.random.default_rng(11)
    size = 200_000
    truth = rng.choice([1, 2, 3, 4], size=size, p=[0.02, 0.08, 0.3, 0.6])
    confuse = {1: 0.4, 2: 0.2, 3: 0.1, 4: 0.03}  # the share of each true class mapped at random
    wrong = rng.random(size) < np.vectorize(confuse.get)(truth)
    mapped = np.where(wrong, rng.choice([1, 2, 3, 4], size=size), truth)
    true = {"oa": float(np.mean(mapped == truth)), "area_1": float(np.mean(truth == 1))}
    labels = [1, 2, 3, 4]
    counts = [int(np.sum(mapped == c)) for c in labels]
    by_class = [np.flatnonzero(mapped == c) for c in labels]
    est: dict[str, list[float]] = {"oa": [], "area_1": []}
    se: dict[str, list[float]] = {"oa": [], "area_1": []}
    naive = []
    for _ in range(400):
        idx = np.concatenate([rng.choice(members, 200, replace=False) for members in by_class])
        n, labs = error_matrix(truth[idx], mapped[idx], labels)
        r = stratified_estimates(n, counts, labs)
        est["oa"].append(r["overall_accuracy"]["estimate"])
        se["oa"].append(r["overall_accuracy"]["se"])
        est["area_1"].append(r["area"]["1"]["proportion"])
        se["area_1"].append(r["area"]["1"]["proportion_se"])
        naive.append(float(np.mean(truth[idx] == mapped[idx])))
    for key, value in true.items():
        e, s_ = np.asarray(est[key]), np.asarray(se[key])
        assert abs(e.mean() - value) < 0.2 * e.std(), key
        assert 0.9 <= s_.mean() / e.std() <= 1.1, key
        assert np.mean(np.abs(e - value) <= 1.96 * s_) >= {"oa": 0.90, "area_1": 0.80}[key], key
    assert abs(np.mean(naive) - true["oa"]) > 0.1  # what the raw matrix of a stratified sample would claim

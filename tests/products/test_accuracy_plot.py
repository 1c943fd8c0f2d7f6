"""The accuracy plot (`hrlc.products.accuracy_plot`): a PNG of the size it promises, for the published example
of Olofsson et al. (2014) and for estimates with classes that have no sample."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from hrlc.chain.accuracy import stratified_estimates
from hrlc.products.accuracy_plot import DPI, FIGSIZE_IN, write_accuracy_plot

# Olofsson et al. 2014, section 5 (as in tests/chain/test_accuracy.py): rows map class, columns reference class
PAPER_N = [[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]]
PAPER_MAPPED = [200_000, 150_000, 3_200_000, 6_450_000]
EXPECTED_PX = (round(FIGSIZE_IN[0] * DPI), round(FIGSIZE_IN[1] * DPI))


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", "not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def test_the_paper_example_as_a_png_of_fixed_size(tmp_path: Path) -> None:
    # the paper's class numbers (not HRLC codes: labelled by number) and the same matrix in HRLC codes
    for labels in ([1, 2, 3, 4], [30, 80, 142, 130]):
        r = stratified_estimates(PAPER_N, PAPER_MAPPED, labels, pixel_area_m2=900.0)
        out = write_accuracy_plot(
            tmp_path / f"plot_{labels[0]}" / "accuracy.png", r, title="Olofsson et al. 2014"
        )
        assert out.is_file() and _png_size(out) == EXPECTED_PX == (1500, 700)


def test_classes_without_sample_do_not_break_it(tmp_path: Path) -> None:
    """Map class 60 covers pixels but has no sample (no user's accuracy) and no sample has it as reference (no
    producer's accuracy): shown as n/a; 16 classes, one without samples, fit the same size."""
    n = np.zeros((5, 5), dtype=int)
    n[:4, :4] = PAPER_N
    r = stratified_estimates(n, [*PAPER_MAPPED, 5_000], [30, 80, 142, 130, 60])
    assert r["users_accuracy"]["60"]["estimate"] is None and r["producers_accuracy"]["60"]["estimate"] is None
    assert _png_size(write_accuracy_plot(tmp_path / "missing.png", r)) == EXPECTED_PX

    rng = np.random.default_rng(0)
    labels = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 141, 142, 150]
    many = rng.integers(0, 20, (16, 16)) + 60 * np.eye(16, dtype=int)
    many[3] = 0
    r = stratified_estimates(many, rng.integers(1_000, 100_000, 16), labels)
    assert _png_size(write_accuracy_plot(tmp_path / "many.png", r, title="16 classes")) == EXPECTED_PX

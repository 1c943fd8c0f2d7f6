"""A PNG of an accuracy assessment: the error matrix and each class's user's and producer's accuracy.

Why: the estimates of `hrlc.chain.accuracy.stratified_estimates` (and of `hrlc assess`) in one picture: where the
map confuses which classes (left), and how accurate each class is and how sure we are of it (right: 95 %
confidence intervals). A class without an estimate (no sample) is marked "n/a", never drawn as 0.

Conventions: the matrix's rows are the class map, its columns the reference (Olofsson et al. 2014); each cell
holds its count and is coloured by its share of the row (of the samples of that map class), so rare and common
classes read alike and the diagonal is the user's accuracy of the sample. Output: 1500 x 700 px, whatever the
number of classes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from hrlc import legend

__all__ = ["FIGSIZE_IN", "DPI", "write_accuracy_plot"]

FIGSIZE_IN = (15.0, 7.0)  # inches
DPI = 100  # so the PNG is 1500 x 700 px
_USERS_COLOUR = "#3b6fb6"
_PRODUCERS_COLOUR = "#e08a2c"
_LABEL_CHARS = 28


def write_accuracy_plot(path: Path, estimates: Mapping[str, Any], *, title: str = "") -> Path:
    """Write the error matrix and the per-class accuracies of `estimates` (the dict of
    `hrlc.chain.accuracy.stratified_estimates`, or of `hrlc.assess.assess_map`) as a PNG at `path`; returns it."""
    labels = [int(c) for c in estimates["labels"]]
    n = np.asarray(estimates["error_matrix"], dtype=np.int64).reshape(len(labels), len(labels))
    oa = estimates["overall_accuracy"]
    # a bare Figure (no pyplot): no global backend switch, so notebooks importing hrlc keep inline plots
    fig = Figure(figsize=FIGSIZE_IN)
    matrix_ax, bars_ax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.25, 1.0]})
    _error_matrix(fig, matrix_ax, n, labels)
    _accuracies(bars_ax, labels, estimates["users_accuracy"], estimates["producers_accuracy"], oa)
    fig.suptitle(title or "Accuracy assessment", fontsize=13, y=0.975)
    fig.text(0.5, 0.915, _subtitle(oa, int(estimates.get("n_samples", n.sum()))), ha="center", fontsize=10.5)
    fig.subplots_adjust(left=0.175, right=0.985, bottom=0.27, top=0.86, wspace=0.5)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)  # no bbox_inches="tight": the size is FIGSIZE_IN x DPI, always
    return path


def _class_label(code: int, chars: int = _LABEL_CHARS) -> str:
    try:
        text = f"{code} {legend.name(code)}"
    except KeyError:
        text = str(code)
    return text if len(text) <= chars else text[: chars - 1] + "…"


def _subtitle(oa: Mapping[str, Any], n_samples: int) -> str:
    if oa.get("estimate") is None:
        return f"overall accuracy: n/a, n = {n_samples} samples"
    text = f"overall accuracy {oa['estimate']:.3f}"
    if oa.get("ci95") is not None:
        lo, hi = oa["ci95"]
        text += f" ± {(hi - lo) / 2:.3f} (95 % CI {lo:.3f}–{hi:.3f})"
    return f"{text}, area-weighted (Olofsson et al. 2014); n = {n_samples} samples"


def _font(k: int, large: float, small: float) -> float:
    """A font size for k classes: `large` up to 6, `small` from 16, between in proportion."""
    return float(np.interp(k, [6, 16], [large, small]))


def _error_matrix(fig: Figure, ax: Axes, n: np.ndarray, labels: Sequence[int]) -> None:
    k = len(labels)
    rows = n.sum(axis=1, keepdims=True)
    share = np.ma.masked_array(
        np.divide(n, rows, out=np.zeros(n.shape), where=rows > 0), mask=np.broadcast_to(rows == 0, n.shape)
    )
    cmap = matplotlib.colormaps["Blues"].with_extremes(bad="0.88")
    image = ax.imshow(share, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest", aspect="auto")
    size = _font(k, 9.5, 6.5)
    for i in range(k):
        for j in range(k):
            if rows[i, 0] == 0:
                text, colour = "–", "0.45"
            else:
                text, colour = str(int(n[i, j])), "white" if share[i, j] > 0.55 else "0.15"
            ax.text(j, i, text, ha="center", va="center", fontsize=size, color=colour)
    names = [_class_label(c) for c in labels]
    ax.set_xticks(range(k), names, rotation=40, ha="right", rotation_mode="anchor", fontsize=size)
    ax.set_yticks(range(k), names, fontsize=size)
    ax.set_xlabel("reference class")
    ax.set_ylabel("class map (mapped class)")
    ax.set_title("error matrix: sample counts (colour: share of the map class's samples)", fontsize=10)
    ax.tick_params(length=0)
    colourbar = fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
    colourbar.set_label("share of the row", fontsize=9)
    colourbar.ax.tick_params(labelsize=8)


def _accuracies(
    ax: Axes,
    labels: Sequence[int],
    users: Mapping[str, Any],
    producers: Mapping[str, Any],
    oa: Mapping[str, Any],
) -> None:
    k = len(labels)
    y = np.arange(k, dtype=float)
    height = 0.38
    size = _font(k, 9.5, 6.5)
    for offset, values, colour, name in (
        (-height / 2, users, _USERS_COLOUR, "user's accuracy (of the map class)"),
        (height / 2, producers, _PRODUCERS_COLOUR, "producer's accuracy (of the reference class)"),
    ):
        have = [i for i, c in enumerate(labels) if (values.get(str(c)) or {}).get("estimate") is not None]
        estimate = np.array([values[str(labels[i])]["estimate"] for i in have], dtype=float)
        ci = [values[str(labels[i])].get("ci95") for i in have]
        lo = np.array([max(0.0, c[0]) if c else e for c, e in zip(ci, estimate, strict=True)])
        hi = np.array([min(1.0, c[1]) if c else e for c, e in zip(ci, estimate, strict=True)])
        ax.barh(y[have] + offset, estimate, height=height, color=colour, label=name)
        ax.errorbar(
            estimate,
            y[have] + offset,
            xerr=np.vstack([estimate - lo, hi - estimate]).clip(min=0.0),
            fmt="none",
            ecolor="0.15",
            elinewidth=1.0,
            capsize=2.5,
        )
        for i in sorted(set(range(k)) - set(have)):
            ax.text(0.01, y[i] + offset, "n/a", va="center", fontsize=size * 0.9, color="0.4", style="italic")
    if oa.get("estimate") is not None:
        ax.axvline(oa["estimate"], color="0.3", linestyle="--", linewidth=1.0, label="overall accuracy")
    ax.set_yticks(y, [_class_label(c, 22) for c in labels], fontsize=size)
    ax.set_ylim(k - 0.5, -0.5)  # the first class on top, as in the matrix
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("accuracy (bars: estimate, whiskers: 95 % confidence interval)")
    ax.set_title("per-class accuracy", fontsize=10)
    ax.grid(axis="x", color="0.9", linewidth=0.8)
    ax.set_axisbelow(True)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), fontsize=8.5, frameon=False, ncol=1)

"""PNG quicklooks of class maps in the HRLC legend colours, side by side with a legend."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from hrlc import legend


def class_rgb(classes: np.ndarray) -> np.ndarray:
    """An (y, x, 3) uint8 RGB image of a class map; unknown codes and nodata are black."""
    lut = np.zeros((256, 3), np.uint8)
    for code, c in legend.CLASSES.items():
        if code < 256:
            lut[code] = c.rgb
    return lut[classes.astype(np.uint8)]


def write_quicklook(
    path: Path, maps: Sequence[np.ndarray], titles: Sequence[str], *, suptitle: str = "", max_px: int = 1024
) -> Path:
    """Write class maps side by side with a legend of the classes present, as PNG."""
    present = sorted({int(v) for m in maps for v in np.unique(m)} - {legend.NODATA})
    # a bare Figure (no pyplot): no global backend switch, so notebooks importing hrlc keep inline plots
    fig = Figure(figsize=(6 * len(maps) + 2.5, 6.2))
    axes = fig.subplots(1, len(maps), squeeze=False)
    for ax, m, title in zip(axes[0], maps, titles, strict=True):
        step = max(1, max(m.shape) // max_px)
        ax.imshow(class_rgb(m[::step, ::step]), interpolation="nearest")
        ax.set_title(title)
        ax.set_axis_off()
    handles = [
        Patch(
            facecolor="#{:02x}{:02x}{:02x}".format(*legend.CLASSES[c].rgb),
            edgecolor="0.4",
            label=f"{c} {legend.name(c)}",
        )
        for c in present
    ]
    fig.legend(handles=handles, loc="center right", fontsize=8, frameon=False)
    if suptitle:
        fig.suptitle(suptitle)
    fig.subplots_adjust(left=0.02, right=0.74, top=0.9, bottom=0.03, wspace=0.05)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def write_thumbnail(path: Path, classes: np.ndarray) -> Path:
    """A bare PNG of a class map in the legend's colours, nodata transparent (a STAC thumbnail)."""
    from PIL import Image

    rgba = np.dstack([class_rgb(classes), np.where(classes == legend.NODATA, 0, 255).astype(np.uint8)])
    Image.fromarray(rgba, mode="RGBA").save(path, format="PNG", optimize=True)
    return path

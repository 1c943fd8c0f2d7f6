"""hrlc.sample: a seeded synthetic "external repository" (Sentinel-2 L2A, Landsat C2 L2, truth, samples).

Why: the chain, its tests and the demo need input data with a known answer, offline. `generate(root)`
writes a static STAC catalogue of realistic-looking scenes (phenology per class, clouds with SCL /
QA_PIXEL, snow, noise) over a seeded landscape, the truth class map and training samples drawn from it.
Design: `landscape` (class map) -> `phenology` (spectra by unit and day of year) -> `surface` (per-pixel
variability, snow) -> `clouds` + `sensors` (one acquisition) -> `writer` / `stac` / `samples` ->
`repository` (the whole folder, idempotent). Memory stays bounded for a full Sentinel-2 tile: past the
landscape (held whole, 10 bytes a pixel), every step computes and writes strips of rows (`_strips`).
"""

from hrlc.sample.landscape import class_map
from hrlc.sample.repository import SampleRepository, generate

__all__ = ["SampleRepository", "class_map", "generate"]

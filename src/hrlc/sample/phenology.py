"""Spectral-temporal profiles of the synthetic land surface: reflectance as a function of (unit, day of year).

Why: the synthetic repository must look like a real year of Sentinel-2 / Landsat data to a classifier, so
each land-cover class has a phenology (crops sown and harvested, deciduous trees leafing out, wetlands
flooding in spring, seasonal water drying out in summer) and a plausible spectrum at every date.

Model: linear spectral mixing. A *surface unit* (a class, or a sub-type of one: five crop types, mown
meadow vs natural grassland, rock vs river gravel) has, for each day of year, cover fractions of ten
*endmembers* (green vegetation, conifer canopy, dry vegetation, soil, rock, clear water, turbid water,
snow, urban materials, rapeseed flowers). Fractions are piecewise linear between knots (periodic over
the year), and the surface reflectance is `fractions @ ENDMEMBERS`. The same function serves both
sensors: the Sentinel-2 MSI bands are the endmember spectra themselves; Landsat OLI / ETM+ bands are
linear functions of the matching MSI bands (`landsat_response`).

Conventions: reflectance is unitless surface reflectance (0..1), float32; day of year is 1..365
(366 folds onto 365).
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

S2_BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")
"""Sentinel-2 L2A reflectance bands modelled, in this order (the rows of every reflectance array)."""

S2_WAVELENGTHS_UM: tuple[float, ...] = (0.49, 0.56, 0.665, 0.704, 0.74, 0.783, 0.842, 0.865, 1.61, 2.19)


class Endmember(IntEnum):
    GREEN = 0  # green broadleaf / herbaceous vegetation
    NEEDLE = 1  # conifer canopy (dark, incl. shade)
    DRY = 2  # non-photosynthetic vegetation: litter, stubble, bark, dry grass
    SOIL = 3  # agricultural soil
    ROCK = 4  # bright bare rock, gravel
    WATER = 5  # clear deep water
    TURBID = 6  # turbid / shallow water, wet mud
    SNOW = 7  # fresh snow
    URBAN = 8  # roofs, asphalt, concrete
    FLOWER = 9  # flowering rapeseed (yellow)


# Reflectance of each endmember in S2_BANDS (rows follow Endmember).
ENDMEMBERS = np.array(
    [
        [0.030, 0.070, 0.035, 0.110, 0.300, 0.380, 0.420, 0.440, 0.220, 0.100],  # GREEN
        [0.020, 0.040, 0.022, 0.065, 0.160, 0.200, 0.230, 0.245, 0.110, 0.050],  # NEEDLE
        [0.070, 0.095, 0.140, 0.170, 0.205, 0.225, 0.240, 0.255, 0.340, 0.250],  # DRY
        [0.065, 0.090, 0.125, 0.150, 0.170, 0.185, 0.200, 0.210, 0.300, 0.240],  # SOIL
        [0.160, 0.200, 0.240, 0.265, 0.285, 0.295, 0.305, 0.315, 0.380, 0.300],  # ROCK
        [0.045, 0.050, 0.030, 0.018, 0.012, 0.010, 0.008, 0.007, 0.004, 0.003],  # WATER
        [0.060, 0.085, 0.075, 0.060, 0.035, 0.030, 0.025, 0.022, 0.010, 0.007],  # TURBID
        [0.880, 0.870, 0.850, 0.830, 0.800, 0.780, 0.760, 0.740, 0.090, 0.060],  # SNOW
        [0.110, 0.120, 0.130, 0.140, 0.155, 0.165, 0.175, 0.180, 0.220, 0.200],  # URBAN
        [0.050, 0.180, 0.200, 0.260, 0.330, 0.380, 0.420, 0.440, 0.250, 0.120],  # FLOWER
    ],
    dtype=np.float32,
)
N_ENDMEMBERS = len(Endmember)


class Unit(IntEnum):
    """Surface units: the classes of the legend, some split into sub-types with their own phenology."""

    BROADLEAF = 0
    NEEDLELEAF = 1
    SHRUB = 2
    GRASS = 3  # natural grassland: summer browning
    MEADOW = 4  # managed grassland: mown twice
    WINTER_CEREAL = 5
    SPRING_CEREAL = 6
    MAIZE = 7
    RAPESEED = 8
    SUGAR_BEET = 9
    WETLAND = 10
    ROCK = 11
    GRAVEL = 12
    BUILT = 13
    SEASONAL_WATER = 14
    WATER = 15
    GLACIER = 16


UNIT_CLASS: dict[Unit, int] = {
    Unit.BROADLEAF: 30,
    Unit.NEEDLELEAF: 20,
    Unit.SHRUB: 60,
    Unit.GRASS: 70,
    Unit.MEADOW: 70,
    Unit.WINTER_CEREAL: 80,
    Unit.SPRING_CEREAL: 80,
    Unit.MAIZE: 80,
    Unit.RAPESEED: 80,
    Unit.SUGAR_BEET: 80,
    Unit.WETLAND: 100,
    Unit.ROCK: 120,
    Unit.GRAVEL: 120,
    Unit.BUILT: 130,
    Unit.SEASONAL_WATER: 141,
    Unit.WATER: 142,
    Unit.GLACIER: 150,
}
"""HRLC class code of every unit."""

CROPS: tuple[Unit, ...] = (Unit.WINTER_CEREAL, Unit.SPRING_CEREAL, Unit.MAIZE, Unit.RAPESEED, Unit.SUGAR_BEET)
CROP_SHARES: tuple[float, ...] = (0.34, 0.16, 0.24, 0.12, 0.14)
"""Crop types of cropland fields and their share of fields (drawn again every year: crop rotation)."""

CROP_CALENDAR: dict[Unit, tuple[int, int]] = {
    Unit.WINTER_CEREAL: (140, 230),
    Unit.SPRING_CEREAL: (170, 235),
    Unit.MAIZE: (225, 320),
    Unit.RAPESEED: (95, 220),
    Unit.SUGAR_BEET: (220, 305),
}
"""(day of peak green canopy, a day after harvest with bare soil or stubble) of each crop type."""

SNOW_SUSCEPTIBILITY: dict[Unit, float] = {
    Unit.BROADLEAF: 0.45,
    Unit.NEEDLELEAF: 0.15,
    Unit.SHRUB: 0.65,
    Unit.GRASS: 0.95,
    Unit.MEADOW: 0.95,
    Unit.WINTER_CEREAL: 0.9,
    Unit.SPRING_CEREAL: 0.95,
    Unit.MAIZE: 0.95,
    Unit.RAPESEED: 0.85,
    Unit.SUGAR_BEET: 0.95,
    Unit.WETLAND: 0.6,
    Unit.ROCK: 0.85,
    Unit.GRAVEL: 0.8,
    Unit.BUILT: 0.4,
    Unit.SEASONAL_WATER: 0.4,
    Unit.WATER: 0.0,
    Unit.GLACIER: 1.0,
}
"""Visible fraction of a snow layer on each unit (canopies hide snow, roads are cleared, water melts it)."""

E = Endmember
# Knots: day of year -> endmember fractions (normalised to 1 when evaluated). Periodic over the year.
_KNOTS: dict[Unit, list[tuple[int, dict[Endmember, float]]]] = {
    Unit.BROADLEAF: [
        (1, {E.DRY: 0.6, E.SOIL: 0.3, E.GREEN: 0.1}),
        (95, {E.DRY: 0.6, E.SOIL: 0.3, E.GREEN: 0.1}),
        (115, {E.GREEN: 0.45, E.DRY: 0.4, E.SOIL: 0.15}),
        (135, {E.GREEN: 0.85, E.DRY: 0.1, E.SOIL: 0.05}),
        (250, {E.GREEN: 0.88, E.DRY: 0.08, E.SOIL: 0.04}),
        (280, {E.GREEN: 0.7, E.DRY: 0.25, E.SOIL: 0.05}),
        (300, {E.GREEN: 0.3, E.DRY: 0.6, E.SOIL: 0.1}),
        (320, {E.GREEN: 0.12, E.DRY: 0.6, E.SOIL: 0.28}),
    ],
    Unit.NEEDLELEAF: [
        (1, {E.NEEDLE: 0.8, E.DRY: 0.12, E.SOIL: 0.08}),
        (120, {E.NEEDLE: 0.85, E.GREEN: 0.05, E.DRY: 0.07, E.SOIL: 0.03}),
        (200, {E.NEEDLE: 0.85, E.GREEN: 0.08, E.DRY: 0.05, E.SOIL: 0.02}),
        (300, {E.NEEDLE: 0.82, E.GREEN: 0.03, E.DRY: 0.1, E.SOIL: 0.05}),
    ],
    Unit.SHRUB: [
        (1, {E.DRY: 0.55, E.SOIL: 0.35, E.GREEN: 0.1}),
        (90, {E.DRY: 0.55, E.SOIL: 0.35, E.GREEN: 0.1}),
        (110, {E.GREEN: 0.35, E.DRY: 0.45, E.SOIL: 0.2}),
        (140, {E.GREEN: 0.6, E.DRY: 0.28, E.SOIL: 0.12}),
        (220, {E.GREEN: 0.55, E.DRY: 0.32, E.SOIL: 0.13}),
        (270, {E.GREEN: 0.45, E.DRY: 0.4, E.SOIL: 0.15}),
        (300, {E.GREEN: 0.15, E.DRY: 0.55, E.SOIL: 0.3}),
    ],
    Unit.GRASS: [
        (1, {E.GREEN: 0.3, E.DRY: 0.45, E.SOIL: 0.25}),
        (75, {E.GREEN: 0.3, E.DRY: 0.45, E.SOIL: 0.25}),
        (110, {E.GREEN: 0.6, E.DRY: 0.28, E.SOIL: 0.12}),
        (150, {E.GREEN: 0.78, E.DRY: 0.16, E.SOIL: 0.06}),
        (190, {E.GREEN: 0.55, E.DRY: 0.35, E.SOIL: 0.1}),
        (215, {E.GREEN: 0.35, E.DRY: 0.52, E.SOIL: 0.13}),
        (245, {E.GREEN: 0.38, E.DRY: 0.5, E.SOIL: 0.12}),
        (275, {E.GREEN: 0.55, E.DRY: 0.35, E.SOIL: 0.1}),
        (320, {E.GREEN: 0.4, E.DRY: 0.42, E.SOIL: 0.18}),
    ],
    Unit.MEADOW: [
        (1, {E.GREEN: 0.35, E.DRY: 0.4, E.SOIL: 0.25}),
        (80, {E.GREEN: 0.4, E.DRY: 0.38, E.SOIL: 0.22}),
        (120, {E.GREEN: 0.75, E.DRY: 0.17, E.SOIL: 0.08}),
        (152, {E.GREEN: 0.88, E.DRY: 0.09, E.SOIL: 0.03}),
        (158, {E.GREEN: 0.3, E.DRY: 0.55, E.SOIL: 0.15}),
        (185, {E.GREEN: 0.75, E.DRY: 0.18, E.SOIL: 0.07}),
        (215, {E.GREEN: 0.8, E.DRY: 0.15, E.SOIL: 0.05}),
        (221, {E.GREEN: 0.3, E.DRY: 0.55, E.SOIL: 0.15}),
        (250, {E.GREEN: 0.65, E.DRY: 0.25, E.SOIL: 0.1}),
        (300, {E.GREEN: 0.6, E.DRY: 0.28, E.SOIL: 0.12}),
        (340, {E.GREEN: 0.4, E.DRY: 0.38, E.SOIL: 0.22}),
    ],
    Unit.WINTER_CEREAL: [
        (1, {E.GREEN: 0.3, E.SOIL: 0.6, E.DRY: 0.1}),
        (60, {E.GREEN: 0.32, E.SOIL: 0.58, E.DRY: 0.1}),
        (90, {E.GREEN: 0.5, E.SOIL: 0.42, E.DRY: 0.08}),
        (120, {E.GREEN: 0.85, E.SOIL: 0.1, E.DRY: 0.05}),
        (150, {E.GREEN: 0.92, E.SOIL: 0.03, E.DRY: 0.05}),
        (170, {E.GREEN: 0.6, E.DRY: 0.37, E.SOIL: 0.03}),
        (190, {E.GREEN: 0.1, E.DRY: 0.85, E.SOIL: 0.05}),
        (200, {E.GREEN: 0.03, E.DRY: 0.85, E.SOIL: 0.12}),
        (206, {E.DRY: 0.5, E.SOIL: 0.5}),
        (235, {E.DRY: 0.45, E.SOIL: 0.5, E.GREEN: 0.05}),
        (245, {E.SOIL: 0.9, E.DRY: 0.1}),
        (285, {E.SOIL: 0.95, E.DRY: 0.05}),
        (305, {E.SOIL: 0.85, E.GREEN: 0.1, E.DRY: 0.05}),
        (335, {E.SOIL: 0.68, E.GREEN: 0.25, E.DRY: 0.07}),
    ],
    Unit.SPRING_CEREAL: [
        (1, {E.SOIL: 0.75, E.DRY: 0.2, E.GREEN: 0.05}),
        (95, {E.SOIL: 0.9, E.DRY: 0.1}),
        (115, {E.SOIL: 0.85, E.GREEN: 0.15}),
        (140, {E.GREEN: 0.6, E.SOIL: 0.38, E.DRY: 0.02}),
        (165, {E.GREEN: 0.9, E.SOIL: 0.06, E.DRY: 0.04}),
        (185, {E.GREEN: 0.7, E.DRY: 0.27, E.SOIL: 0.03}),
        (200, {E.GREEN: 0.15, E.DRY: 0.8, E.SOIL: 0.05}),
        (212, {E.DRY: 0.85, E.SOIL: 0.15}),
        (218, {E.DRY: 0.5, E.SOIL: 0.5}),
        (260, {E.SOIL: 0.7, E.DRY: 0.2, E.GREEN: 0.1}),
        (300, {E.SOIL: 0.6, E.DRY: 0.15, E.GREEN: 0.25}),
        (340, {E.SOIL: 0.65, E.DRY: 0.2, E.GREEN: 0.15}),
    ],
    Unit.MAIZE: [
        (1, {E.SOIL: 0.6, E.DRY: 0.4}),
        (100, {E.SOIL: 0.9, E.DRY: 0.1}),
        (130, {E.SOIL: 0.95, E.DRY: 0.05}),
        (150, {E.SOIL: 0.85, E.GREEN: 0.15}),
        (175, {E.GREEN: 0.45, E.SOIL: 0.55}),
        (200, {E.GREEN: 0.85, E.SOIL: 0.15}),
        (240, {E.GREEN: 0.9, E.SOIL: 0.05, E.DRY: 0.05}),
        (265, {E.GREEN: 0.5, E.DRY: 0.45, E.SOIL: 0.05}),
        (280, {E.GREEN: 0.2, E.DRY: 0.72, E.SOIL: 0.08}),
        (288, {E.DRY: 0.45, E.SOIL: 0.55}),
        (320, {E.SOIL: 0.65, E.DRY: 0.35}),
    ],
    Unit.RAPESEED: [
        (1, {E.GREEN: 0.5, E.SOIL: 0.42, E.DRY: 0.08}),
        (60, {E.GREEN: 0.5, E.SOIL: 0.42, E.DRY: 0.08}),
        (90, {E.GREEN: 0.8, E.SOIL: 0.15, E.DRY: 0.05}),
        (110, {E.GREEN: 0.85, E.SOIL: 0.05, E.FLOWER: 0.1}),
        (120, {E.FLOWER: 0.65, E.GREEN: 0.33, E.SOIL: 0.02}),
        (132, {E.FLOWER: 0.6, E.GREEN: 0.38, E.SOIL: 0.02}),
        (145, {E.GREEN: 0.85, E.FLOWER: 0.1, E.DRY: 0.05}),
        (170, {E.GREEN: 0.55, E.DRY: 0.43, E.SOIL: 0.02}),
        (190, {E.GREEN: 0.08, E.DRY: 0.87, E.SOIL: 0.05}),
        (197, {E.DRY: 0.55, E.SOIL: 0.45}),
        (230, {E.SOIL: 0.85, E.DRY: 0.15}),
        (238, {E.SOIL: 0.95, E.DRY: 0.05}),
        (260, {E.SOIL: 0.75, E.GREEN: 0.25}),
        (300, {E.GREEN: 0.5, E.SOIL: 0.42, E.DRY: 0.08}),
    ],
    Unit.SUGAR_BEET: [
        (1, {E.SOIL: 0.8, E.DRY: 0.2}),
        (100, {E.SOIL: 0.95, E.DRY: 0.05}),
        (125, {E.SOIL: 0.9, E.GREEN: 0.1}),
        (160, {E.GREEN: 0.45, E.SOIL: 0.55}),
        (190, {E.GREEN: 0.92, E.SOIL: 0.08}),
        (260, {E.GREEN: 0.9, E.SOIL: 0.08, E.DRY: 0.02}),
        (280, {E.GREEN: 0.75, E.SOIL: 0.2, E.DRY: 0.05}),
        (290, {E.SOIL: 0.9, E.DRY: 0.1}),
    ],
    Unit.WETLAND: [
        (1, {E.WATER: 0.35, E.DRY: 0.45, E.GREEN: 0.1, E.SOIL: 0.1}),
        (40, {E.WATER: 0.55, E.DRY: 0.3, E.GREEN: 0.08, E.TURBID: 0.07}),
        (75, {E.WATER: 0.6, E.DRY: 0.2, E.GREEN: 0.12, E.TURBID: 0.08}),
        (110, {E.WATER: 0.5, E.GREEN: 0.3, E.DRY: 0.15, E.TURBID: 0.05}),
        (140, {E.GREEN: 0.6, E.WATER: 0.25, E.DRY: 0.15}),
        (170, {E.GREEN: 0.82, E.WATER: 0.1, E.DRY: 0.08}),
        (230, {E.GREEN: 0.78, E.WATER: 0.08, E.DRY: 0.14}),
        (270, {E.GREEN: 0.55, E.DRY: 0.35, E.WATER: 0.1}),
        (300, {E.DRY: 0.55, E.GREEN: 0.2, E.WATER: 0.25}),
        (335, {E.WATER: 0.35, E.DRY: 0.45, E.GREEN: 0.12, E.SOIL: 0.08}),
    ],
    Unit.ROCK: [
        (1, {E.ROCK: 0.88, E.SOIL: 0.12}),
        (150, {E.ROCK: 0.82, E.SOIL: 0.1, E.GREEN: 0.08}),
        (240, {E.ROCK: 0.85, E.SOIL: 0.1, E.GREEN: 0.05}),
    ],
    Unit.GRAVEL: [
        (1, {E.ROCK: 0.72, E.SOIL: 0.18, E.TURBID: 0.1}),
        (180, {E.ROCK: 0.65, E.SOIL: 0.15, E.GREEN: 0.15, E.TURBID: 0.05}),
        (300, {E.ROCK: 0.7, E.SOIL: 0.2, E.TURBID: 0.1}),
    ],
    Unit.BUILT: [
        (1, {E.URBAN: 0.82, E.DRY: 0.1, E.GREEN: 0.04, E.SOIL: 0.04}),
        (120, {E.URBAN: 0.8, E.GREEN: 0.14, E.DRY: 0.04, E.SOIL: 0.02}),
        (250, {E.URBAN: 0.8, E.GREEN: 0.15, E.DRY: 0.05}),
        (310, {E.URBAN: 0.82, E.DRY: 0.1, E.GREEN: 0.06, E.SOIL: 0.02}),
    ],
    Unit.SEASONAL_WATER: [
        (1, {E.WATER: 0.8, E.TURBID: 0.2}),
        (100, {E.WATER: 0.75, E.TURBID: 0.25}),
        (125, {E.WATER: 0.6, E.TURBID: 0.3, E.GREEN: 0.05, E.SOIL: 0.05}),
        (145, {E.WATER: 0.25, E.TURBID: 0.2, E.SOIL: 0.35, E.GREEN: 0.2}),
        (175, {E.SOIL: 0.35, E.GREEN: 0.45, E.DRY: 0.1, E.WATER: 0.1}),
        (220, {E.GREEN: 0.5, E.SOIL: 0.25, E.DRY: 0.15, E.WATER: 0.1}),
        (265, {E.GREEN: 0.3, E.SOIL: 0.3, E.DRY: 0.3, E.WATER: 0.1}),
        (290, {E.WATER: 0.35, E.TURBID: 0.2, E.DRY: 0.25, E.SOIL: 0.2}),
        (310, {E.WATER: 0.7, E.TURBID: 0.25, E.DRY: 0.05}),
    ],
    Unit.WATER: [
        (1, {E.WATER: 0.9, E.TURBID: 0.1}),
        (90, {E.WATER: 0.75, E.TURBID: 0.25}),
        (150, {E.WATER: 0.85, E.TURBID: 0.13, E.GREEN: 0.02}),
        (220, {E.WATER: 0.88, E.TURBID: 0.08, E.GREEN: 0.04}),
        (300, {E.WATER: 0.9, E.TURBID: 0.1}),
    ],
    Unit.GLACIER: [
        (1, {E.SNOW: 1.0}),
        (150, {E.SNOW: 0.95, E.ROCK: 0.05}),
        (200, {E.SNOW: 0.65, E.ROCK: 0.2, E.TURBID: 0.15}),
        (250, {E.SNOW: 0.6, E.ROCK: 0.25, E.TURBID: 0.15}),
        (280, {E.SNOW: 0.9, E.ROCK: 0.1}),
    ],
}
del E

DAYS = 365


def fractions(unit: Unit | int, doy: np.ndarray | int) -> np.ndarray:
    """Endmember cover fractions of `unit` on day(s) of year `doy`: (..., N_ENDMEMBERS), rows sum to 1."""
    knots = _KNOTS[Unit(unit)]
    days = np.array([k[0] for k in knots], dtype=np.float64)
    values = np.zeros((len(knots), N_ENDMEMBERS), dtype=np.float64)
    for i, (_, comp) in enumerate(knots):
        for em, f in comp.items():
            values[i, em] = f
    values /= values.sum(axis=1, keepdims=True)
    d = (np.asarray(doy, dtype=np.float64) - 1) % DAYS + 1
    out = np.stack([np.interp(d, days, values[:, k], period=DAYS) for k in range(N_ENDMEMBERS)], axis=-1)
    return out.astype(np.float32)


def reflectance(unit: Unit | int, doy: np.ndarray | int) -> np.ndarray:
    """Noise-free Sentinel-2 surface reflectance of `unit` on `doy`: shape (..., len(S2_BANDS))."""
    return fractions(unit, doy) @ ENDMEMBERS


def fraction_table() -> np.ndarray:
    """Fractions of every unit on every day: float32 (N_ENDMEMBERS, len(Unit) * 365), column u*365 + doy-1."""
    doys = np.arange(1, DAYS + 1)
    table = np.concatenate([fractions(u, doys) for u in Unit], axis=0)  # (U*365, K)
    return np.ascontiguousarray(table.T)


# Landsat bands modelled and the S2 band each one follows.
LANDSAT_BANDS: tuple[str, ...] = ("blue", "green", "red", "nir08", "swir16", "swir22")
LANDSAT_FROM_S2: tuple[int, ...] = (0, 1, 2, 7, 8, 9)  # B02 B03 B04 B8A B11 B12

# MSI -> OLI bandpass adjustment (HLS v1.4 style): OLI = slope * MSI + intercept.
_OLI_SLOPE = np.array([0.9778, 1.0053, 0.9765, 0.9983, 0.9987, 1.003], dtype=np.float32)
_OLI_INTERCEPT = np.array([-0.004, -0.0009, 0.0009, -0.0001, -0.0011, -0.0012], dtype=np.float32)
# OLI = slope * ETM+ + intercept (reduced major axis, Roy et al. 2016); inverted for ETM+.
_ETM_SLOPE = np.array([0.9785, 0.9542, 0.9825, 1.0073, 1.0171, 0.9949], dtype=np.float32)
_ETM_INTERCEPT = np.array([-0.0095, -0.0016, -0.0022, -0.0021, -0.0030, 0.0029], dtype=np.float32)


def landsat_response(s2: np.ndarray, instrument: str) -> np.ndarray:
    """Landsat reflectance (LANDSAT_BANDS, ...) from S2 reflectance of the matching bands (6, ...).

    `instrument` is "oli" (Landsat 8/9) or "etm" (Landsat 7 ETM+).
    """
    shape = (-1,) + (1,) * (s2.ndim - 1)
    oli = s2 * _OLI_SLOPE.reshape(shape) + _OLI_INTERCEPT.reshape(shape)
    if instrument == "oli":
        return oli
    if instrument == "etm":
        return (oli - _ETM_INTERCEPT.reshape(shape)) / _ETM_SLOPE.reshape(shape)
    raise ValueError(f"unknown Landsat instrument {instrument!r}")

"""The CCI HRLC class legend (Phase 1 products HRLC10 / HRLC30, v1.2) and cross-walks to other legends.

Source: `shared/LEGEND.md`. Codes are uint8; 0 is nodata. 140 (open water) is the parent of 141
(seasonal) and 142 (permanent); maps of this system use the leaves 141/142 where the seasonality is known.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

NODATA = 0


@dataclass(frozen=True)
class LandCoverClass:
    code: int
    name: str
    rgb: tuple[int, int, int]
    parent: int | None = None


CLASSES: dict[int, LandCoverClass] = {
    c.code: c
    for c in [
        LandCoverClass(0, "No data", (0, 0, 0)),
        LandCoverClass(10, "Tree cover evergreen broadleaf", (0, 100, 0)),
        LandCoverClass(20, "Tree cover evergreen needleleaf", (0, 60, 0)),
        LandCoverClass(30, "Tree cover deciduous broadleaf", (0, 160, 0)),
        LandCoverClass(40, "Tree cover deciduous needleleaf", (40, 80, 0)),
        LandCoverClass(50, "Shrub cover evergreen", (150, 100, 0)),
        LandCoverClass(60, "Shrub cover deciduous", (170, 115, 0)),
        LandCoverClass(70, "Grasslands", (255, 180, 50)),
        LandCoverClass(80, "Croplands", (255, 255, 100)),
        LandCoverClass(90, "Woody vegetation aquatic or regularly flooded", (27, 203, 174)),
        LandCoverClass(100, "Grassland vegetation aquatic or regularly flooded", (0, 220, 130)),
        LandCoverClass(110, "Lichens and mosses", (255, 220, 210)),
        LandCoverClass(120, "Bare areas", (255, 245, 215)),
        LandCoverClass(130, "Built-up", (195, 20, 0)),
        LandCoverClass(140, "Open water (parent class)", (0, 70, 200)),
        LandCoverClass(141, "Open water seasonal", (91, 149, 255), parent=140),
        LandCoverClass(142, "Open water permanent", (0, 70, 200), parent=140),
        LandCoverClass(150, "Permanent snow and/or ice", (255, 255, 255)),
    ]
}

CODES: tuple[int, ...] = tuple(c for c in CLASSES if c != NODATA)
"""Every valid class code (nodata excluded), ascending."""

# eo-learn TestEOPatch LULC (GLC30-style) -> HRLC. 7 tundra has no HRLC leaf; mapped to 110 (lichens and mosses).
EOLEARN_LULC_TO_HRLC: dict[int, int] = {
    0: 0,
    1: 80,
    2: 30,
    3: 70,
    4: 60,
    5: 142,
    6: 100,
    7: 110,
    8: 130,
    9: 120,
    10: 150,
}

# ESA WorldCover 2020/2021 -> HRLC (tree cover is mapped to the generic deciduous broadleaf class; shrub to
# deciduous shrub: WorldCover does not separate leaf type or phenology).
WORLDCOVER_TO_HRLC: dict[int, int] = {
    0: 0,
    10: 30,
    20: 60,
    30: 70,
    40: 80,
    50: 130,
    60: 120,
    70: 150,
    80: 142,
    90: 100,
    95: 90,
    100: 110,
}

# ESA CCI Land Cover / C3S (UN LCCS level 1 and 2 codes) -> HRLC. Mosaic classes go to their dominant part
# (30 cropland > 50 % -> crops; 40 natural vegetation > 50 % and 100 tree+shrub > 50 % -> deciduous shrub;
# 110 herbaceous > 50 % -> grassland); mixed and unknown leaf types -> the generic deciduous broadleaf tree;
# sparse vegetation (< 15 % cover) -> bare; flooded trees -> woody aquatic, flooded shrub/herbaceous ->
# grassland aquatic; water -> permanent water (CCI LC does not separate seasonal water).
CCI_LC_TO_HRLC: dict[int, int] = {
    0: 0,
    10: 80,
    11: 80,
    12: 80,
    20: 80,
    30: 80,
    40: 60,
    50: 10,
    60: 30,
    61: 30,
    62: 30,
    70: 20,
    71: 20,
    72: 20,
    80: 40,
    81: 40,
    82: 40,
    90: 30,
    100: 60,
    110: 70,
    120: 60,
    121: 50,
    122: 60,
    130: 70,
    140: 110,
    150: 120,
    151: 120,
    152: 120,
    153: 120,
    160: 90,
    170: 90,
    180: 100,
    190: 130,
    200: 120,
    201: 120,
    202: 120,
    210: 142,
    220: 150,
}

# GLC_FCS30 / GLC_FCS30D (LCCS-based fine classification system) -> HRLC: the CCI LC codes it shares, plus its
# open/closed forest split (51/52, 61/62, 71/72, 81/82, 91/92) and its wetland classes (181-187; 250 = fill).
GLC_FCS30_TO_HRLC: dict[int, int] = {
    **CCI_LC_TO_HRLC,
    51: 10,
    52: 10,
    91: 30,
    92: 30,
    181: 90,  # swamp
    182: 100,  # marsh
    183: 100,  # flooded flat
    184: 100,  # saline
    185: 90,  # mangrove
    186: 100,  # salt marsh
    187: 120,  # tidal flat
    250: 0,
}

# CLMS / CGLS Dynamic Land Cover 100 m (discrete classification) -> HRLC. Closed (11x) and open (12x) forests
# by leaf type and phenology; mixed (115/125) and unknown (116/126) -> the generic deciduous broadleaf tree;
# open sea (200) -> permanent water.
CGLS_LC100_TO_HRLC: dict[int, int] = {
    0: 0,
    111: 20,
    112: 10,
    113: 40,
    114: 30,
    115: 30,
    116: 30,
    121: 20,
    122: 10,
    123: 40,
    124: 30,
    125: 30,
    126: 30,
    20: 60,
    30: 70,
    40: 80,
    50: 130,
    60: 120,
    70: 150,
    80: 142,
    90: 100,
    100: 110,
    200: 142,
}

# GLanCE training data, level-1 classes -> HRLC (trees and shrubs without leaf type: the generic classes).
GLANCE_TO_HRLC: dict[int, int] = {1: 142, 2: 150, 3: 130, 4: 120, 5: 30, 6: 60, 7: 70}

# HRLC -> coarse groups used in agreement reports with legends that lack leaf type / seasonality.
HRLC_TO_GROUP: dict[int, str] = {
    10: "tree",
    20: "tree",
    30: "tree",
    40: "tree",
    50: "shrub",
    60: "shrub",
    70: "grass",
    80: "crop",
    90: "wetland",
    100: "wetland",
    110: "moss_lichen",
    120: "bare",
    130: "built",
    140: "water",
    141: "water",
    142: "water",
    150: "snow_ice",
}


def name(code: int) -> str:
    """The class name of a code; KeyError for a code outside the legend."""
    return CLASSES[int(code)].name


def colormap() -> dict[int, tuple[int, int, int, int]]:
    """A GDAL colour table (code -> RGBA) for class maps; nodata transparent."""
    cmap = {code: (*c.rgb, 255) for code, c in CLASSES.items()}
    cmap[NODATA] = (0, 0, 0, 0)
    return cmap


def unknown_codes(codes: Iterable[int]) -> list[int]:
    """The codes of `codes` that are not valid HRLC classes (nodata counts as unknown), sorted."""
    return sorted({int(c) for c in codes} - set(CODES))


def crosswalk(values: np.ndarray, table: Mapping[int, int], default: int = NODATA) -> np.ndarray:
    """Map an integer array through a cross-walk table; values missing from it become `default`."""
    values = np.asarray(values)
    lut_size = max(int(values.max(initial=0)), max(table)) + 1
    lut = np.full(lut_size, default, dtype=np.uint8)
    for src, dst in table.items():
        lut[src] = dst
    return lut[values]


def stac_classes(codes: Iterable[int] | None = None) -> list[dict[str, object]]:
    """`classification:classes` entries (STAC classification extension) for the given codes."""
    selected = CLASSES if codes is None else {c: CLASSES[c] for c in codes}
    return [
        {
            "value": c.code,
            "name": re.sub(r"[^a-z0-9]+", "-", c.name.lower()).strip("-"),
            "description": c.name,
            "color_hint": "{:02X}{:02X}{:02X}".format(*c.rgb),
            **({"nodata": True} if c.code == NODATA else {}),
        }
        for c in selected.values()
    ]

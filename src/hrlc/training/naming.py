"""The naming convention of training sets (spec §3.4.2.1): `<area>/<area>_<type>_<ROI>_<year>_<source>_<provider>/`.

A training set is a folder named `<area_name>_<type>_<ROI>_<year>_<source>_<provider>` inside a folder
`<area_name>`, holding files of the same name with the extensions of :data:`MEMBER_EXTENSIONS`. The parts:

- ``area_name``: toponym (``africa``, ``amazonia``, ``siberia``): letters, digits, ``-`` (``_`` allowed too);
- ``type``: ``historic`` or ``static``;
- ``ROI``: the region of interest: letters, digits, ``-`` (``_`` allowed too);
- ``year``: four digits;
- ``source``: ``photo-interpreted`` or ``map-agreement``;
- ``provider``: a code of the provider table (``Polimi``, ``UniPV``, ``UniTN``, ...): letters, digits, ``-``.

``type`` and ``source`` are matched case-insensitively and stored in lower case. Since ``type``, ``year``,
``source`` and ``provider`` have fixed shapes, underscores inside ``area_name`` and ``ROI`` stay unambiguous.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["MEMBER_EXTENSIONS", "TYPES", "SOURCES", "DatasetName", "NamingError", "parse_name"]

TYPES = ("historic", "static")
SOURCES = ("photo-interpreted", "map-agreement")
#: the files a training-set folder may hold (spec §3.4.2.1)
MEMBER_EXTENSIONS = (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qml", ".geojson")

_PART = r"[A-Za-z0-9-]+(?:_[A-Za-z0-9-]+)*"
_NAME = re.compile(
    rf"(?P<area_name>{_PART}?)_(?P<type>historic|static)_(?P<roi>{_PART})_(?P<year>\d{{4}})"
    r"_(?P<source>photo-interpreted|map-agreement)_(?P<provider>[A-Za-z0-9-]+)\Z",
    re.IGNORECASE,
)
_PATTERN = "<area_name>_<type>_<ROI>_<year>_<source>_<provider>"


class NamingError(ValueError):
    """A folder name that does not follow the naming convention (one line, says which part is wrong)."""


@dataclass(frozen=True)
class DatasetName:
    area_name: str
    type: str
    roi: str
    year: int
    source: str
    provider: str

    @property
    def name(self) -> str:
        """The folder (and file stem) name."""
        return f"{self.area_name}_{self.type}_{self.roi}_{self.year}_{self.source}_{self.provider}"

    def path(self) -> str:
        """`<area_name>/<name>`: where the set lives below an import root."""
        return f"{self.area_name}/{self.name}"


def parse_name(name: str, parent: str | None = None) -> DatasetName:
    """Parse a training-set folder name; `parent` is the name of the folder holding it (must be the area).

    Raises:
        NamingError: the name does not match the convention, the year is not a plausible year, or the
            folder is not inside a folder named after its area.
    """
    m = _NAME.match(name)
    if not m:
        raise NamingError(f"folder name {name!r} does not match {_PATTERN}: {_diagnose(name)}")
    year = int(m["year"])
    if not 1900 <= year <= 2100:
        raise NamingError(f"folder name {name!r}: year {year} is outside 1900-2100")
    parsed = DatasetName(
        area_name=m["area_name"],
        type=m["type"].lower(),
        roi=m["roi"],
        year=year,
        source=m["source"].lower(),
        provider=m["provider"],
    )
    if parent is not None and parent != parsed.area_name:
        raise NamingError(
            f"training set {name} must be in a folder named after its area {parsed.area_name!r}, "
            f"not in {parent!r}"
        )
    return parsed


def _diagnose(name: str) -> str:
    """Say which part of a bad name is wrong (best effort)."""
    lower = name.lower()
    if any(lower.startswith(f"{t}_") for t in TYPES):
        return "no area name before the type"
    if not any(f"_{t}_" in lower for t in TYPES):
        return f"no type ({' or '.join(TYPES)})"
    if not any(f"_{s}_" in lower for s in SOURCES):
        return f"no source ({' or '.join(SOURCES)})"
    if not re.search(r"_\d{4}_(photo-interpreted|map-agreement)_", lower):
        return "no 4-digit year before the source"
    if not re.search(r"_(photo-interpreted|map-agreement)_[A-Za-z0-9-]+\Z", name, re.IGNORECASE):
        return "the provider (letters, digits, '-') must end the name"
    return "area name, ROI or order of the parts"

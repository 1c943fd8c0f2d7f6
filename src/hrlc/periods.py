"""The periods of a year that hrlc makes products for, and their labels: the calendar of the chain.

A period is a calendar month (`"01"`..`"12"`), a season (`"season1"`..`"season4"`, the calendar quarters
Jan–Mar, Apr–Jun, Jul–Sep, Oct–Dec) or the whole year (`"annual"`). Composites are made per period of one
*kind*: per month for Sentinel-2, per season for Landsat; yearly products (features, class maps) are
`"annual"`. The labels appear in lake keys (§3.2 file names), STAC Items (`hrlc:period`), the `period`
coordinate of composites and feature stacks, and feature names (`ndvi_03`), so they are fixed.
"""

from __future__ import annotations

import datetime as dt

MONTHS: tuple[str, ...] = tuple(f"{m:02d}" for m in range(1, 13))
SEASONS: tuple[str, ...] = ("season1", "season2", "season3", "season4")
ANNUAL = "annual"
LABELS: tuple[str, ...] = (*MONTHS, *SEASONS, ANNUAL)

#: the kinds of composite period and their labels, in calendar order
KINDS: dict[str, tuple[str, ...]] = {"month": MONTHS, "season": SEASONS}


def labels(kind: str) -> tuple[str, ...]:
    """The labels of the periods of one kind (`"month"` or `"season"`), in calendar order."""
    try:
        return KINDS[kind]
    except KeyError:
        raise ValueError(f"period kind must be one of {sorted(KINDS)}, got {kind!r}") from None


def composite_kind(sensor: str) -> str:
    """The kind of the composite periods of an optical sensor: seasons for Landsat, months for Sentinel-2."""
    return "season" if sensor == "landsat" else "month"


def periods_of(sensor: str) -> tuple[str, ...]:
    """The composite periods of one year for an optical sensor."""
    return KINDS[composite_kind(sensor)]


def season_of_month(month: int) -> str:
    """The season label of a calendar month (1..12)."""
    return SEASONS[(month - 1) // 3]


def optical_period(sensor: str, month: int) -> str:
    """The composite period of a calendar month (1..12) for an optical sensor: its season for Landsat, the
    month itself for Sentinel-2."""
    return season_of_month(month) if composite_kind(sensor) == "season" else f"{month:02d}"


def months_of(label: str) -> tuple[int, int]:
    """The first and last calendar month (1..12) of a period. ValueError if `label` is not one."""
    if label == ANNUAL:
        return 1, 12
    if label in SEASONS:
        q = SEASONS.index(label) + 1
        return 3 * q - 2, 3 * q
    if label in MONTHS:
        return int(label), int(label)
    raise ValueError(f"{label!r} is not a period label: 01..12, season1..season4 or annual")


def period_range(year: int, label: str) -> tuple[dt.datetime, dt.datetime]:
    """Start and end (inclusive, to the second) of a period of a year, UTC."""
    first, last = months_of(label)
    start = dt.datetime(year, first, 1, tzinfo=dt.UTC)
    end = (
        dt.datetime(year + 1, 1, 1, tzinfo=dt.UTC)
        if last == 12
        else dt.datetime(year, last + 1, 1, tzinfo=dt.UTC)
    ) - dt.timedelta(seconds=1)
    return start, end

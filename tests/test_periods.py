"""The periods of a year (hrlc.periods): labels, kinds, sensors' composite periods and time ranges."""

from __future__ import annotations

import datetime as dt

import pytest

from hrlc import periods


def test_labels_of_each_kind_in_calendar_order() -> None:
    assert periods.labels("month") == tuple(f"{m:02d}" for m in range(1, 13))
    assert periods.labels("season") == ("season1", "season2", "season3", "season4")
    assert (*periods.MONTHS, *periods.SEASONS, "annual") == periods.LABELS
    with pytest.raises(ValueError, match="period kind"):
        periods.labels("week")


def test_sentinel2_composites_are_monthly_landsat_seasonal() -> None:
    assert periods.composite_kind("sentinel2") == "month" and periods.composite_kind("landsat") == "season"
    assert periods.periods_of("sentinel2") == periods.MONTHS
    assert periods.periods_of("landsat") == periods.SEASONS
    assert [periods.optical_period("landsat", m) for m in (1, 3, 4, 9, 10, 12)] == [
        "season1",
        "season1",
        "season2",
        "season3",
        "season4",
        "season4",
    ]
    assert [periods.optical_period("sentinel2", m) for m in (1, 10, 12)] == ["01", "10", "12"]


def test_seasons_are_calendar_quarters() -> None:
    assert [periods.season_of_month(m) for m in range(1, 13)] == [
        s for s in periods.SEASONS for _ in range(3)
    ]
    assert [periods.months_of(s) for s in periods.SEASONS] == [(1, 3), (4, 6), (7, 9), (10, 12)]
    assert periods.months_of("07") == (7, 7) and periods.months_of("annual") == (1, 12)
    for bad in ("7", "13", "season5", "summer"):
        with pytest.raises(ValueError, match="not a period label"):
            periods.months_of(bad)


def test_period_range_is_inclusive_to_the_second_in_utc() -> None:
    utc = dt.UTC
    assert periods.period_range(2021, "annual") == (
        dt.datetime(2021, 1, 1, tzinfo=utc),
        dt.datetime(2021, 12, 31, 23, 59, 59, tzinfo=utc),
    )
    assert periods.period_range(2020, "02") == (
        dt.datetime(2020, 2, 1, tzinfo=utc),
        dt.datetime(2020, 2, 29, 23, 59, 59, tzinfo=utc),
    )
    assert periods.period_range(2012, "season2") == (
        dt.datetime(2012, 4, 1, tzinfo=utc),
        dt.datetime(2012, 6, 30, 23, 59, 59, tzinfo=utc),
    )
    assert periods.period_range(2012, "season4")[1] == dt.datetime(2012, 12, 31, 23, 59, 59, tzinfo=utc)

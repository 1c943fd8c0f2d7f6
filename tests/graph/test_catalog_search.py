"""The catalogue search `load_collection` uses: pgstac answers as the static catalogue does ([start, end))."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import pytest

from hrlc.catalog.pgstac import PgstacCatalog

from .conftest import Lake

UTC = dt.UTC


@pytest.fixture(scope="module")
def pg(products: Lake, pgstac_db_factory: Callable[[str], str]) -> Iterator[PgstacCatalog]:
    with PgstacCatalog(products.store, pgstac_db_factory("graph_search")) as catalog:
        catalog.load(products.catalog.items())
        yield catalog


@pytest.mark.parametrize(
    ("bbox", "start", "end"),
    [
        (None, None, None),
        ((14.0, 46.3, 14.2, 46.5), dt.datetime(2021, 2, 1, tzinfo=UTC), None),
        (None, None, dt.datetime(2021, 2, 1, tzinfo=UTC)),  # end exclusive: January only
        (None, dt.datetime(2021, 1, 31, 23, 59, 59, tzinfo=UTC), dt.datetime(2021, 3, 1, tzinfo=UTC)),
        ((100.0, 10.0, 100.1, 10.1), None, None),
    ],
)
def test_pgstac_search_equals_static(
    products: Lake, pg: PgstacCatalog, bbox: tuple | None, start: dt.datetime | None, end: dt.datetime | None
) -> None:
    want = [i.id for i in products.catalog.search("hrlc-optical-composites", bbox, start, end)]
    assert [i.id for i in pg.search("hrlc-optical-composites", bbox, start, end)] == want
    both = ["hrlc-class-maps", "hrlc-optical-composites"]
    assert pg.collection_ids() == sorted(products.catalog.collection_ids()) == both

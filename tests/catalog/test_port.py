"""The catalogue port (`hrlc.catalog.port.Catalog`): the static and the pgstac back end answer alike.

One lake with four items of `hrlc-class-maps` (one of them owned by alice's job), catalogued by
`PgstacCatalog.add` (JSON in the lake and rows in pgstac), then read through each back end.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pystac
import pytest

from hrlc.catalog.pgstac import PgstacCatalog
from hrlc.catalog.port import Catalog
from hrlc.catalog.product_collections import collection_document, collection_ids
from hrlc.catalog.static import StaticCatalog
from hrlc.catalog.visibility import Viewer
from hrlc.lake.store import LocalStore

UTC = dt.UTC
MAPS = "hrlc-class-maps"
# id -> (lon, lat of the lower left corner, month of 2021, owners)
ITEMS: dict[str, tuple[float, float, int, list[str] | None]] = {
    "map_a": (14.0, 46.0, 1, None),
    "map_b": (14.0, 46.0, 3, None),
    "map_c": (14.5, 46.5, 5, ["alice"]),
    "map_d": (14.0, 46.0, 7, None),
}
NEAR_A = (14.01, 46.01, 14.02, 46.02)  # inside map_a, map_b, map_d
NEAR_C = (14.51, 46.51, 14.52, 46.52)  # inside map_c only


def _item(item_id: str) -> pystac.Item:
    lon, lat, month, owners = ITEMS[item_id]
    box = [lon, lat, lon + 0.1, lat + 0.1]
    ring = [[lon, lat], [lon + 0.1, lat], [lon + 0.1, lat + 0.1], [lon, lat + 0.1], [lon, lat]]
    start = dt.datetime(2021, month, 1, tzinfo=UTC)
    props: dict[str, Any] = {
        "start_datetime": start.isoformat(),
        "end_datetime": (start + dt.timedelta(days=27)).isoformat(),
    }
    if owners is not None:
        props["hrlc:owners"] = owners
    item = pystac.Item(item_id, {"type": "Polygon", "coordinates": [ring]}, box, start, props)
    item.collection_id = MAPS
    return item


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory, pgstac_db_factory: Callable[[str], str]) -> Iterator[Any]:
    """(store, dsn) of a lake whose items are in its static catalogue and in a pgstac database."""
    store = LocalStore(tmp_path_factory.mktemp("port-lake"))
    dsn = pgstac_db_factory("port")
    with PgstacCatalog(store, dsn) as catalog:
        for item_id in ITEMS:
            catalog.add(_item(item_id))
    yield store, dsn


@pytest.fixture(params=["static", "pgstac"])
def catalog(request: pytest.FixtureRequest, lake: Any) -> Iterator[Catalog]:
    store, dsn = lake
    cat: Catalog = StaticCatalog(store) if request.param == "static" else PgstacCatalog(store, dsn)
    yield cat
    cat.close()


def test_search_by_time_and_latest(catalog: Catalog) -> None:
    assert [i.id for i in catalog.search(MAPS)] == ["map_a", "map_b", "map_c", "map_d"]
    assert [i.id for i in catalog.search(MAPS, NEAR_A)] == ["map_a", "map_b", "map_d"]
    june = dt.datetime(2021, 6, 1, tzinfo=UTC)
    assert [i.id for i in catalog.search(MAPS, end=june)] == ["map_a", "map_b", "map_c"]
    # a sample: the latest items, still oldest first
    assert [i.id for i in catalog.search(MAPS, limit=2)] == ["map_c", "map_d"]
    assert [i.id for i in catalog.search(MAPS, NEAR_A, end=june, limit=1)] == ["map_b"]
    assert [i.id for i in catalog.search(MAPS, limit=10)] == ["map_a", "map_b", "map_c", "map_d"]


def test_has_items_in_an_extent(catalog: Catalog) -> None:
    assert catalog.has_items(MAPS)
    assert not catalog.has_items("hrlc-change-maps")
    assert catalog.has_items(MAPS, NEAR_C)
    assert not catalog.has_items(MAPS, (100.0, 10.0, 100.1, 10.1))
    assert catalog.has_items(
        MAPS, NEAR_A, dt.datetime(2021, 2, 15, tzinfo=UTC), dt.datetime(2021, 4, 1, tzinfo=UTC)
    )
    assert not catalog.has_items(MAPS, None, dt.datetime(2022, 1, 1, tzinfo=UTC), None)
    assert not catalog.has_items(MAPS, NEAR_C, None, dt.datetime(2021, 4, 1, tzinfo=UTC))


def test_has_items_that_the_viewer_may_see(catalog: Catalog) -> None:
    """alice's job product is hers: bob does not see it, an anonymous reader sees published collections only."""
    assert catalog.has_items(MAPS, NEAR_C, viewer=Viewer("alice"))
    assert not catalog.has_items(MAPS, NEAR_C, viewer=Viewer("bob"))
    assert catalog.has_items(MAPS, NEAR_A, viewer=Viewer("bob"))
    assert catalog.has_items(MAPS, NEAR_C, viewer=Viewer("bob", frozenset({"operator"})))
    assert not catalog.has_items(MAPS, viewer=Viewer(None))
    assert catalog.has_items(MAPS, NEAR_C, viewer=Viewer(None, public=(MAPS,)))


def test_collection_ids_hold_items(catalog: Catalog) -> None:
    assert catalog.collection_ids() == [MAPS]


def test_static_collections_are_the_built_in_documents(lake: Any) -> None:
    """What the openEO API listed without pgstac: every product collection, as built in."""
    store, _ = lake
    docs = StaticCatalog(store).collections()
    assert docs == [collection_document(cid) for cid in collection_ids()]
    assert [d["id"] for d in docs] == sorted(d["id"] for d in docs)


def test_pgstac_collections_are_the_table(lake: Any) -> None:
    """pgstac's collections: the product collections, with extents computed from the items."""
    store, dsn = lake
    with PgstacCatalog(store, dsn) as catalog:
        docs = {d["id"]: d for d in catalog.collections()}
    assert list(docs) == sorted(docs) and set(collection_ids()) <= set(docs)
    assert docs[MAPS]["summaries"] == collection_document(MAPS)["summaries"]
    assert docs[MAPS]["extent"]["spatial"]["bbox"][0] == pytest.approx([14.0, 46.0, 14.6, 46.6])
    assert docs["hrlc-change-maps"]["extent"]["temporal"]["interval"] == [[None, None]]


def test_static_close_is_a_no_op(tmp_path: Path) -> None:
    catalog = StaticCatalog(LocalStore(tmp_path))
    catalog.close()
    assert catalog.search(MAPS) == [] and not catalog.has_items(MAPS)

"""The STAC API over pgstac: pystac-client finds every product of a chain run by bbox, datetime and CQL2 on
`hrlc:` properties, downloads assets through presigned hrefs; writes need the token; links honour root_path."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pyproj import Transformer
from pystac_client import Client

from hrlc.catalog.items import item_id
from hrlc.jobs.dag import output_keys
from hrlc.lake import layout
from hrlc.settings import Settings
from landcover import dag_item_id

YEAR = 2021  # the platform run's year


def _lonlat_bbox(run: Any) -> list[float]:
    repo = run.repo
    t = repo.transform
    to_ll = Transformer.from_crs(f"EPSG:{repo.epsg}", "EPSG:4326", always_xy=True)
    left, bottom, right, top = to_ll.transform_bounds(t.c, t.f + t.e * repo.size, t.c + t.a * repo.size, t.f)
    return [left, bottom, right, top]


def _lake_ids(run: Any) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for item in run.catalog.items():
        out.setdefault(str(item.collection_id), set()).add(item.id)
    return out


def test_pystac_client_finds_every_product_by_bbox_and_datetime(stac_api: str, platform_run: Any) -> None:
    client = Client.open(stac_api)
    expected = _lake_ids(platform_run)
    assert {c.id for c in client.get_collections()} >= set(expected)
    bbox = _lonlat_bbox(platform_run)
    found = client.search(bbox=bbox, datetime=f"{YEAR}-01-01/{YEAR}-12-31", max_items=None, limit=7)
    ids: dict[str, set[str]] = {}
    for item in found.items():  # 29 items in pages of 7: token pagination works
        ids.setdefault(str(item.collection_id), set()).add(item.id)
    assert ids == expected
    # nothing elsewhere, nothing in another year
    assert not list(client.search(bbox=[0, 0, 1, 1]).items())
    assert not list(client.search(bbox=bbox, datetime=f"{YEAR - 3}-01-01/{YEAR - 2}-12-31").items())
    # per collection, through collection search and /collections/{id}/items
    for cid, want in expected.items():
        assert {i.id for i in client.search(collections=[cid], max_items=None).items()} == want


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_cql2_filter_on_hrlc_properties(stac_api: str, method: str, platform_run: Any) -> None:
    client = Client.open(stac_api)
    text = f"hrlc:product = 'class-map' and hrlc:year = {YEAR}"
    # CQL2 text travels in GET; POST bodies carry CQL2 JSON (the filter extension's rule; pgstac's too)
    found = sorted(i.id for i in client.search(filter=text, filter_lang="cql2-text", method="GET").items())
    aoi_map = dag_item_id(platform_run.dag, "class-map")
    tile_map = {
        item_id(k) for k in output_keys(platform_run.dag) if layout.parse(k).family == "class-map"
    } - {aoi_map}
    assert found == sorted({aoi_map, *tile_map}) and len(tile_map) == 1  # the AOI's map and its one tile's
    same = {
        "op": "and",
        "args": [
            {"op": "=", "args": [{"property": "hrlc:product"}, "class-map"]},
            {"op": "=", "args": [{"property": "hrlc:year"}, YEAR]},
        ],
    }
    assert sorted(i.id for i in client.search(filter=same, method=method).items()) == found
    as_json = {
        "op": "and",
        "args": [
            {"op": "=", "args": [{"property": "hrlc:product"}, "optical-composite"]},
            {"op": "in", "args": [{"property": "hrlc:period"}, ["06", "07"]]},
        ],
    }
    composites = sorted(i.id for i in client.search(filter=as_json, method=method).items())
    assert composites == [dag_item_id(platform_run.dag, "optical-composite", p) for p in ("06", "07")]
    none = {"op": "=", "args": [{"property": "hrlc:year"}, YEAR + 1]}
    assert not list(client.search(filter=none, method=method).items())
    queryables = httpx.get(f"{stac_api}queryables").json()["properties"]
    assert queryables["hrlc:year"]["type"] == "integer" and "hrlc:product" in queryables


def test_assets_download_through_presigned_hrefs(stac_api: str, platform_run: Any, s3_server: Any) -> None:
    client = Client.open(stac_api)
    item = next(client.search(filter="hrlc:product = 'class-map'").items())
    asset = item.assets["data"]
    original = asset.extra_fields["alternate"]["s3"]["href"]
    assert original.startswith("s3://hrlc-platform-lake/lake/classification/")
    href = asset.href
    assert href.startswith(s3_server.endpoint + "/hrlc-platform-lake/lake/classification/")
    query = parse_qs(urlsplit(href).query)
    assert query["X-Amz-Expires"] == ["600"] and "X-Amz-Signature" in query  # TTL from settings
    body = httpx.get(href).content  # no credentials: the signature is the authorisation
    assert body == platform_run.store.read_bytes(platform_run.store.key_of(original))
    head = httpx.get(href, headers={"Range": "bytes=0-3"})  # COG readers use range requests
    assert head.status_code == 206 and head.content in (b"II*\x00", b"II+\x00")
    # one item by id, and /collections/{id}/items, are presigned as well
    one = httpx.get(f"{stac_api}collections/{item.collection_id}/items/{item.id}").json()
    assert one["assets"]["data"]["href"].startswith(s3_server.endpoint)


def test_only_the_lakes_objects_are_presigned(
    stac_api: str, write_token: str, platform_run: Any, s3_server: Any
) -> None:
    """An item naming another bucket (or a key that climbs out of the lake's prefix) gets no signature made
    with the lake's credentials (issue 10, finding 6)."""
    secret = s3_server.new_bucket("hrlc-other-private")
    s3_server.client().put_object(Bucket=secret, Key="private/secret.txt", Body=b"secret")
    auth = {"Authorization": f"Bearer {write_token}"}
    url = f"{stac_api}collections/hrlc-class-maps/items"
    item = platform_run.catalog.get("hrlc-class-maps", dag_item_id(platform_run.dag, "class-map")).to_dict(
        include_self_link=False, transform_hrefs=False
    )
    lake_href = item["assets"]["data"]["href"]
    outside = {
        "other": f"s3://{secret}/private/secret.txt",
        "climb": "s3://hrlc-platform-lake/lake/../private/secret.txt",
        "sibling": "s3://hrlc-platform-lake/lake-other/secret.txt",
    }
    item = {**copy.deepcopy(item), "id": "presign-probe", "links": []}
    item["assets"] = {"data": item["assets"]["data"]} | {
        k: {"href": v, "roles": ["data"]} for k, v in outside.items()
    }
    assert httpx.post(url, json=item, headers=auth).status_code in (200, 201)
    try:
        got = httpx.get(f"{url}/presign-probe").json()["assets"]
        for key, href in outside.items():
            assert got[key]["href"] == href and "alternate" not in got[key]
        assert got["data"]["href"].startswith(s3_server.endpoint) and "X-Amz-Signature" in got["data"]["href"]
        assert got["data"]["alternate"]["s3"]["href"] == lake_href
    finally:
        httpx.delete(f"{url}/presign-probe", headers=auth)


def test_writes_need_the_token(stac_api: str, write_token: str, platform_run: Any) -> None:
    collection = {
        "type": "Collection",
        "stac_version": "1.1.0",
        "id": "hrlc-test-transactions",
        "description": "written by the API test",
        "license": "CC-BY-4.0",
        "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[None, None]]}},
        "links": [],
    }
    url = f"{stac_api}collections"
    refused = httpx.post(url, json=collection)
    assert refused.status_code == 401
    assert refused.json() == {"code": "Unauthorized", "description": "a bearer token is required for writes"}
    assert refused.headers["www-authenticate"].startswith("Bearer")
    wrong = httpx.post(url, json=collection, headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401 and set(wrong.json()) == {"code", "description"}
    auth = {"Authorization": f"Bearer {write_token}"}
    try:
        assert httpx.post(url, json=collection, headers=auth).status_code in (200, 201)
        item = platform_run.catalog.get(
            "hrlc-class-maps", dag_item_id(platform_run.dag, "class-map")
        ).to_dict(include_self_link=False, transform_hrefs=False)
        item = {**copy.deepcopy(item), "id": "txn-item", "collection": collection["id"], "links": []}
        items_url = f"{url}/{collection['id']}/items"
        assert httpx.post(items_url, json=item).status_code == 401
        assert httpx.post(items_url, json=item, headers=auth).status_code in (200, 201)
        assert httpx.get(f"{items_url}/txn-item").status_code == 401  # a collection nobody published
        assert httpx.get(f"{items_url}/txn-item", headers=auth).status_code == 200
        assert httpx.delete(f"{items_url}/txn-item").status_code == 401
        assert httpx.delete(f"{items_url}/txn-item", headers=auth).status_code in (200, 204)
        # reads of the published collections stay open
        assert httpx.post(f"{stac_api}search", json={"limit": 1}).status_code == 200
    finally:
        httpx.delete(f"{url}/{collection['id']}", headers=auth)


def test_writes_are_refused_without_a_configured_token(
    serve_api: Callable[..., str], pgstac_dsn: str, platform_run: Any
) -> None:
    base = serve_api(Settings(catalog=pgstac_dsn, api_write_token=None))
    r = httpx.post(f"{base}/stac/collections", json={}, headers={"Authorization": "Bearer anything"})
    assert r.status_code == 403 and r.json()["code"] == "Forbidden"


def test_links_behind_a_proxy(serve_api: Callable[..., str], pgstac_dsn: str, platform_run: Any) -> None:
    base = serve_api(
        Settings(catalog=pgstac_dsn, stac_public_collections=["hrlc-class-maps"]), root_path="/hrlc"
    )
    # the proxy strips /hrlc and forwards /stac/...; every link must carry the public prefix
    landing = httpx.get(f"{base}/stac/").json()
    hrefs = [link["href"] for link in landing["links"]]
    assert all(h.startswith(f"{base}/hrlc/stac/") for h in hrefs), hrefs
    assert {"self", "root", "data", "search", "conformance", "service-desc"} <= {
        link["rel"] for link in landing["links"]
    }
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "maps.example.org"}
    items = httpx.get(f"{base}/stac/collections/hrlc-class-maps/items", headers=forwarded).json()
    links = [link["href"] for f in items["features"] for link in f["links"]] + [
        link["href"] for link in items["links"]
    ]
    assert links and all(h.startswith("https://maps.example.org/hrlc/stac/") for h in links), links
    index = httpx.get(f"{base}/").json()
    assert index["links"][0]["href"] == f"{base}/hrlc/stac/"

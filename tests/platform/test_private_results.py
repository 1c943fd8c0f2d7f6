"""Private results through the STAC API (hrlc.catalog.visibility): a job's products are its owners' only.

Three copies of the platform run's class map are put into pgstac: one owned by alice, one by bob, one by both
(a product shared by identity); the run's own items have no owner (the deployment's data). Anonymous callers
see only the published collection; alice and bob see the deployment's data and their own; an operator sees
everything; every read path (search GET/POST with and without a CQL2 filter, items of a collection, one item,
paging) follows the same rule."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from pystac_client import Client

from hrlc.api.openeo.auth import Authenticator
from hrlc.api.openeo.users import User, hash_password, save_users
from hrlc.catalog.pgstac import PgstacCatalog
from hrlc.settings import Settings
from landcover import dag_item_id

SECRET = "private-results-token-secret-of-32-chars"
MAPS = "hrlc-class-maps"
PUBLIC = "hrlc-optical-composites"  # published by this deployment
OWNED = {"alice-map": ["alice"], "bob-map": ["bob"], "shared-map": ["alice", "bob"]}


@pytest.fixture(scope="module")
def private_api(
    platform_run: Any,
    pgstac_dsn: str,
    serve_api: Callable[..., str],
    write_token: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, Authenticator]]:
    users = tmp_path_factory.mktemp("private-users") / "users.json"
    h = hash_password("pw-of-all-three")
    save_users(users, {"alice": User(h), "bob": User(h), "olga": User(h, frozenset({"user", "operator"}))})
    settings = Settings(
        store=platform_run.store.url,
        catalog=pgstac_dsn,
        api_write_token=write_token,
        users_file=str(users),
        token_secret=SECRET,
        stac_public_collections=[PUBLIC],
    )
    template = platform_run.catalog.get(MAPS, dag_item_id(platform_run.dag, "class-map"))
    copies = []
    for item_id, owners in OWNED.items():
        d = copy.deepcopy(template.to_dict(include_self_link=False, transform_hrefs=False))
        d["id"], d["collection"] = item_id, MAPS
        d["properties"]["hrlc:owners"] = owners
        copies.append(d)
    catalog = PgstacCatalog(platform_run.store, pgstac_dsn)
    catalog.load(copies)
    try:
        yield f"{serve_api(settings)}/stac", Authenticator(settings)
    finally:
        catalog.close()
        with psycopg.connect(pgstac_dsn, autocommit=True) as conn:  # leave the run's catalogue as it was
            conn.execute("set search_path to pgstac, public")
            for item_id in OWNED:
                conn.execute("select delete_item(%s, %s)", (item_id, MAPS))


def _as(auth: Authenticator, user: str | None) -> dict[str, str]:
    return {} if user is None else {"Authorization": f"Bearer basic//{auth.issue(user)}"}


def _ids(page: dict[str, Any]) -> set[str]:
    return {f["id"] for f in page["features"]}


EXPECTED_MAPS = {
    "alice": {"alice-map", "shared-map"},
    "bob": {"bob-map", "shared-map"},
    "olga": set(OWNED),
}


@pytest.mark.parametrize("user", ["alice", "bob", "olga"])
def test_users_see_their_own_products_and_the_deployments_data(private_api: Any, user: str) -> None:
    base, auth = private_api
    headers = _as(auth, user)
    search = {"collections": [MAPS], "limit": 100}
    got = httpx.post(f"{base}/search", json=search, headers=headers).json()
    deployment = _ids(got) - set(OWNED)
    assert len(deployment) == 3  # the run's own maps (its AOI's, its tile's) and accuracy report: everyone's
    assert _ids(got) - deployment == EXPECTED_MAPS[user]
    listed = httpx.get(f"{base}/collections/{MAPS}/items", params={"limit": 100}, headers=headers).json()
    assert _ids(listed) == _ids(got)
    text = httpx.get(
        f"{base}/search",
        params={"collections": MAPS, "filter": "hrlc:product = 'class-map'", "filter-lang": "cql2-text"},
        headers=headers,
    ).json()
    assert _ids(text) - deployment == EXPECTED_MAPS[user]  # the caller's filter AND the visibility rule
    either = {
        "op": "or",  # a filter that tries to widen the rule widens nothing
        "args": [
            {"op": "=", "args": [{"property": "id"}, "bob-map"]},
            {"op": "=", "args": [{"property": "id"}, "alice-map"]},
        ],
    }
    widened = httpx.post(f"{base}/search", json={"filter": either, "limit": 100}, headers=headers).json()
    assert _ids(widened) == {"alice-map", "bob-map"} & EXPECTED_MAPS[user]
    for item_id in OWNED:
        r = httpx.get(f"{base}/collections/{MAPS}/items/{item_id}", headers=headers)
        assert r.status_code == (200 if item_id in EXPECTED_MAPS[user] else 404), (item_id, r.text)
    client = Client.open(f"{base}/", headers=headers)  # paging tokens cannot reach past the rule either
    paged = {i.id for i in client.search(collections=[MAPS], limit=1, max_items=None, method="POST").items()}
    assert paged == _ids(got)


def test_anonymous_callers_see_the_published_collections_only(private_api: Any) -> None:
    base, _ = private_api
    collections = httpx.get(f"{base}/collections").json()["collections"]
    assert [c["id"] for c in collections] == [PUBLIC]
    found = httpx.get(f"{base}/search", params={"limit": 100}).json()
    assert found["features"] and {f["collection"] for f in found["features"]} == {PUBLIC}
    for path in (
        f"/collections/{MAPS}",
        f"/collections/{MAPS}/items",
        f"/collections/{MAPS}/items/alice-map",
    ):
        r = httpx.get(f"{base}{path}")
        assert r.status_code == 401 and r.headers["content-type"] == "application/json", (path, r.text)
        assert r.json()["code"] == "Unauthorized"
    r = httpx.post(f"{base}/search", json={"collections": [MAPS]})
    assert r.status_code == 401
    assert httpx.get(f"{base}/").status_code == 200  # the landing page stays open


def test_a_bad_token_is_refused_not_treated_as_anonymous(private_api: Any) -> None:
    base, auth = private_api
    forged = auth.issue("alice")[:-4] + "AAAA"
    for header in (f"Bearer basic//{forged}", "Basic YWxpY2U6eA==", "Bearer", f"Bearer oidc/none/{forged}"):
        r = httpx.get(f"{base}/search", headers={"Authorization": header})
        assert r.status_code == 401 and r.json()["code"] == "Unauthorized", header


def test_without_published_collections_every_read_needs_a_token(
    platform_run: Any, pgstac_dsn: str, serve_api: Callable[..., str], tmp_path: Path
) -> None:
    base = (
        serve_api(Settings(store=platform_run.store.url, catalog=pgstac_dsn, token_secret=SECRET)) + "/stac"
    )
    for path in ("/collections", "/search", f"/collections/{MAPS}/items"):
        assert httpx.get(f"{base}{path}").status_code == 401, path
    assert httpx.get(f"{base}/conformance").status_code == 200

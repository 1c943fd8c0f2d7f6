"""Who may see which catalogue items (docs/security.md, "Private results").

Items a job makes carry `hrlc:owners`: the users whose jobs made or reused them (a product is shared by its
identity, `hrlc.lake.identity`, so several users' jobs can own one product; it is read-only to all of them).
Items without the property are the deployment's own data (ingested archives, ancillary layers, published
products) and visible to every authenticated user. A viewer is anonymous, a user, or an operator/admin:

- anonymous: only the collections the deployment publishes (`HRLC_STAC_PUBLIC_COLLECTIONS`);
- a user: published collections, items without owners, and items they own;
- operator or admin: everything.

`restrict(search, viewer)` adds the rule to a STAC search body as a CQL2-JSON filter (AND with the user's),
which pgstac evaluates, so paging, counts and `GET /collections/{c}/items/{id}` all follow it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

OWNERS = "hrlc:owners"
PRIVILEGED_ROLES = frozenset({"operator", "admin"})


@dataclass(frozen=True)
class Viewer:
    """Who reads the catalogue: `user` None = anonymous."""

    user: str | None
    roles: frozenset[str] = frozenset()
    public: tuple[str, ...] = field(default=())

    @property
    def sees_all(self) -> bool:
        return bool(self.roles & PRIVILEGED_ROLES)

    def may_read_collection(self, collection: str) -> bool:
        return self.user is not None or collection in self.public


def rule(viewer: Viewer) -> dict[str, Any] | None:
    """The CQL2-JSON filter of what `viewer` may see (None: no restriction)."""
    if viewer.sees_all:
        return None
    published: dict[str, Any] = {"op": "in", "args": [{"property": "collection"}, list(viewer.public)]}
    if viewer.user is None:
        return published
    parts = [
        {"op": "isNull", "args": [{"property": OWNERS}]},
        {"op": "a_contains", "args": [{"property": OWNERS}, [viewer.user]]},
    ]
    return {"op": "or", "args": ([published] if viewer.public else []) + parts}


def restrict(filter_expr: Mapping[str, Any] | None, viewer: Viewer) -> dict[str, Any] | None:
    """A CQL2-JSON filter: `filter_expr` AND what `viewer` may see."""
    visible = rule(viewer)
    if visible is None:
        return dict(filter_expr) if filter_expr else None
    if not filter_expr:
        return visible
    return {"op": "and", "args": [dict(filter_expr), visible]}


def visible(collection: str | None, properties: Mapping[str, Any], viewer: Viewer) -> bool:
    """Whether `viewer` may see an item of `collection` with `properties`: the rule of `rule`, in Python."""
    if viewer.sees_all or collection in viewer.public:
        return True
    if viewer.user is None:
        return False
    owners = properties.get(OWNERS)
    return owners is None or viewer.user in owners


def with_owner(owners: Collection[str] | None, user: str) -> list[str]:
    """The owners list with `user` added (sorted, without repeats)."""
    return sorted(set(owners or ()) | {user})

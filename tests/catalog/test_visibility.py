"""The visibility rule (hrlc.catalog.visibility) as a CQL2 filter and in Python agree."""

from __future__ import annotations

import pytest

from hrlc.catalog.visibility import Viewer, restrict, rule, visible, with_owner

ITEMS = [
    ("hrlc-class-maps", {"hrlc:owners": ["alice"]}),
    ("hrlc-class-maps", {"hrlc:owners": ["alice", "bob"]}),
    ("hrlc-class-maps", {}),
    ("published", {"hrlc:owners": ["carol"]}),
]


@pytest.mark.parametrize(
    ("viewer", "expected"),
    [
        (Viewer(None, public=("published",)), [False, False, False, True]),
        (Viewer(None), [False, False, False, False]),
        (Viewer("alice"), [True, True, True, False]),
        (Viewer("bob", public=("published",)), [False, True, True, True]),
        (Viewer("olga", frozenset({"user", "operator"})), [True, True, True, True]),
    ],
)
def test_who_sees_which_item(viewer: Viewer, expected: list[bool]) -> None:
    assert [visible(c, p, viewer) for c, p in ITEMS] == expected


def test_rule_is_anded_with_the_callers_filter() -> None:
    assert rule(Viewer("x", frozenset({"admin"}))) is None
    mine = {"op": "=", "args": [{"property": "id"}, "a"]}
    combined = restrict(mine, Viewer("alice"))
    assert combined is not None and combined["op"] == "and" and combined["args"][0] == mine
    assert restrict(None, Viewer("alice")) == rule(Viewer("alice"))
    assert restrict(mine, Viewer("o", frozenset({"operator"}))) == mine


def test_owners_grow_without_repeats() -> None:
    assert with_owner(None, "bob") == ["bob"]
    assert with_owner(["bob", "alice"], "bob") == ["alice", "bob"]

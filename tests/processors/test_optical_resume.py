"""A killed optical-preprocessing attempt's composites are reused by the next attempt (issue 11's soak: a kill -9
mid-task used to throw the whole task's work away): periods whose composite and cloud mask exist are registered
from the files, the others computed; the products and items equal an uninterrupted run's."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from hrlc.catalog.static import StaticCatalog
from hrlc.lake import layout
from hrlc.lake.store import LocalStore
from hrlc.processors.base import Context
from hrlc.processors.optical_preprocessing import OpticalPreprocessing
from landcover import Reference, chain_dag


class CountingStore(LocalStore):
    """A local lake that remembers the keys written through it."""

    written: list[str]

    def write_bytes(self, key: str, data: bytes) -> None:
        self.written.append(key)
        super().write_bytes(key, data)

    def writing(self, key: str):  # noqa: ANN201 - the base's context manager
        self.written.append(key)
        return super().writing(key)


def _digests(store: LocalStore, keys: list[str]) -> dict[str, str]:
    return {k: hashlib.sha256(store.read_bytes(k)).hexdigest() for k in keys}


def test_a_second_attempt_reuses_the_periods_a_killed_one_wrote(
    land_cover_reference: Reference, tmp_path: Path
) -> None:
    repo = land_cover_reference.repo
    [task] = [t for t in chain_dag(repo).tasks if t.processor == "optical-preprocessing"]
    proc = OpticalPreprocessing()
    params = proc.parse_params(task.params)

    whole = LocalStore(tmp_path / "whole")
    proc.run(params, Context(store=whole, catalog=StaticCatalog(whole)))
    rasters = sorted(k for k in whole.list() if k.endswith(".tif"))
    assert len(rasters) == 24  # 12 months x (composite, cloud mask)

    # a killed attempt: the first five months written whole, nothing registered (items are staged by workers)
    lake = CountingStore(tmp_path / "resumed")
    lake.written = []
    done = [k for k in rasters if layout.parse(k).fields["period"] in {"01", "02", "03", "04", "05"}]
    for k in done:
        lake.write_bytes(k, whole.read_bytes(k))
    lake.written.clear()
    progress: list[str] = []
    hrefs = proc.run(
        params, Context(store=lake, catalog=StaticCatalog(lake), progress=lambda f, m: progress.append(m))
    )

    assert len(hrefs) == 24
    assert not set(lake.written) & set(done)  # the killed attempt's months are not computed again
    assert {k for k in lake.written if k.endswith(".tif")} == set(rasters) - set(done)
    assert sum("earlier attempt reused" in m for m in progress) == 5
    assert _digests(lake, rasters) == _digests(whole, rasters)  # byte-identical products
    for k in rasters:  # and the same items (cloud ratios read back from the cloud mask)
        item_key = layout.key("stac-item", **_item_fields(k))
        want, got = json.loads(whole.read_bytes(item_key)), json.loads(lake.read_bytes(item_key))
        when = {"processing:datetime": None}  # when it was made: the only property that may differ
        assert got["properties"] | when == want["properties"] | when, k


def _item_fields(key: str) -> dict[str, str]:
    from hrlc.catalog.items import COLLECTIONS, item_id

    return {"collection": COLLECTIONS[layout.parse(key).family], "item_id": item_id(key)}

"""The classification gets database training samples only through `ctx.training` (the `TrainingSamples` port,
`hrlc.training.port`): an in-memory fake feeds it with no database at all, a port that finds nothing is one
line, and a selection without the port is one line too, before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pytest
from rich.console import Console

from hrlc.catalog.static import StaticCatalog
from hrlc.jobs.runner import InProcessRunner
from hrlc.lake.store import LocalStore
from hrlc.processors.base import Context, ProcessorError
from hrlc.processors.classification import Classification, ClassificationParams
from hrlc.training.query import TrainingQuery
from hrlc.training.samples import TrainingDataError, read_training
from landcover import Reference, chain_dag, class_map_of

SELECTION = {"area": "synthetic", "year": 2021}


class MemorySamples:
    """A `TrainingSamples` holding one GeoDataFrame: every selection gets it; the queries are recorded."""

    def __init__(self, gdf: gpd.GeoDataFrame, datasets: list[dict[str, object]]):
        self.gdf = gdf
        self.datasets = datasets
        self.queries: list[TrainingQuery] = []

    def select(self, query: TrainingQuery) -> gpd.GeoDataFrame:
        self.queries.append(query)
        out = self.gdf.copy()
        out.attrs["datasets"] = self.datasets
        return out


class NoSamples:
    """A `TrainingSamples` that matches nothing, as the database says it."""

    def select(self, query: TrainingQuery) -> gpd.GeoDataFrame:
        raise TrainingDataError(f"no training set in the database matches {query.describe()}")


def _params() -> ClassificationParams:
    return ClassificationParams(year=2021, sensor="sentinel2", training_query=SELECTION)


def test_a_selection_without_the_port_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "lake")
    with pytest.raises(ProcessorError) as info:
        Classification().run(_params(), Context(store=store, catalog=StaticCatalog(store)))
    message = str(info.value)
    assert "\n" not in message, message
    assert message.startswith("training-db:area=synthetic;year=2021: no training-set database"), message
    assert not [p for p in store.root.rglob("*") if p.is_file()]


def test_a_port_that_finds_nothing_is_the_same_one_line(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "lake")
    ctx = Context(store=store, catalog=StaticCatalog(store), training=NoSamples())
    with pytest.raises(ProcessorError, match=r"^no training set in the database matches training-db:area="):
        Classification().run(_params(), ctx)
    assert not [p for p in store.root.rglob("*") if p.is_file()]


@pytest.mark.slow
def test_in_memory_samples_feed_the_classification(land_cover_reference: Reference, tmp_path: Path) -> None:
    """The reference repository's training points, served by a fake instead of the database, give the class
    map the file gives; the model metadata lists the fake's training sets."""
    repo = land_cover_reference.repo
    samples = MemorySamples(
        read_training(repo.training_points), [{"name": "synthetic_set", "version": 1, "checksum": "0" * 64}]
    )
    dag = chain_dag(repo, training=SELECTION)
    store = LocalStore(tmp_path / "lake")
    runner = InProcessRunner(store, StaticCatalog(store), training=samples, console=Console(quiet=True))
    result = runner.run(dag)

    assert samples.queries == [TrainingQuery(**SELECTION)]
    assert (class_map_of(result.items) == land_cover_reference.class_map).all()
    [meta_path] = (tmp_path / "lake" / "models" / "metadata").glob("*.json")
    meta = json.loads(meta_path.read_text())
    assert meta["training_source"] == "training-db:area=synthetic;year=2021"
    assert [d["name"] for d in meta["training_sets"]] == ["synthetic_set"]

"""The training-samples port: where a classification gets its samples when they come from the training-set
database (spec §3.5) rather than from a file.

`TrainingDb` (`hrlc.training.select`) implements it on PostGIS; the composition root (`hrlc.backends`) builds
it from `HRLC_TRAINING_DSN` and hands it to processors in their `Context`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import geopandas as gpd

    from hrlc.training.query import TrainingQuery


class TrainingSamples(Protocol):
    def select(self, query: TrainingQuery) -> gpd.GeoDataFrame:
        """The samples of the current training sets matching `query`: `class_code` (int64 HRLC codes),
        `sample_id`, `dataset` and the geometry (`hrlc.training.select.select_samples`). Raises
        `TrainingDataError` (`hrlc.training.samples`) with one line when none match or the database cannot
        answer (unreachable, schema behind)."""
        ...

"""Training samples selected from the training-set database, in the shape the classification learns from.

:func:`select_samples` returns what :func:`hrlc.training.samples.read_training` returns for a file: a
GeoDataFrame with ``class_code`` (int64 HRLC codes), ``sample_id`` and the geometry, indexed 0..n-1, from the
*current* version of every training set matching the selection (area, year, type, source, provider, bbox).
:class:`~hrlc.training.query.TrainingQuery` is that selection as the classification processor's parameter.
:class:`TrainingDb` is the database as the processors' `TrainingSamples` port (`hrlc.training.port`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from hrlc.training.query import TrainingQuery, parse_query
from hrlc.training.samples import TrainingDataError

__all__ = ["TrainingDb", "TrainingQuery", "parse_query", "select_samples"]


class TrainingDb:
    """The training-set database at `dsn` as the `TrainingSamples` port: what a classification processor gets
    in its `Context`. Building it opens no connection; each `select` opens one (and checks the schema)."""

    def __init__(self, dsn: str):
        self.dsn = dsn

    def select(self, query: TrainingQuery) -> gpd.GeoDataFrame:
        """:func:`select_samples` of `query` in this database. Every way of not getting samples is a
        `TrainingDataError` with one line: none match, or the database is unreachable or behind (the
        `TrainingDbError`'s message: run `hrlc migrate`), so a caller needs no database driver to name it."""
        from hrlc.training.db import TrainingDbError  # psycopg: the platform extra

        try:
            return select_samples(self.dsn, query=query)
        except TrainingDbError as e:
            raise TrainingDataError(str(e)) from e


def select_samples(
    dsn: str,
    *,
    area: str | None = None,
    year: int | None = None,
    type: str | None = None,  # noqa: A002 - the naming convention's word
    source: str | None = None,
    provider: str | None = None,
    roi: str | None = None,
    bbox: Sequence[float] | None = None,
    query: TrainingQuery | None = None,
) -> gpd.GeoDataFrame:
    """The samples of the current training sets matching every filter given.

    Returns a GeoDataFrame with ``class_code`` (int64), ``sample_id`` (the file's, or ``<set>:<feature>``),
    ``dataset`` (set name) and the geometry, ordered by set name and feature position in the file. The
    geometries are those delivered, in their CRS, when all selected sets share one SRID; else the lon/lat
    copies (EPSG:4326). ``gdf.attrs["datasets"]`` lists the sets used (name, version, checksum).
    `bbox` (lon/lat west, south, east, north) keeps the samples intersecting it.

    Raises:
        TrainingDataError: no sample matches.
        TrainingDbError: the database is unreachable, or its `training` schema is behind or missing (one line:
            run `hrlc migrate`; the selection never changes the schema).
    """
    q = query or TrainingQuery(
        area=area,
        year=year,
        type=type,  # type: ignore[arg-type]
        source=source,  # type: ignore[arg-type]
        provider=provider,
        roi=roi,
        bbox=tuple(bbox) if bbox is not None else None,  # type: ignore[arg-type]
    )
    where: list[str] = ["true"]
    params: dict[str, Any] = {}
    for column, value in (
        ("d.area_name", q.area),
        ("d.year", q.year),
        ("d.type", q.type),
        ("d.source", q.source),
        ("d.roi", q.roi),
    ):
        if value is not None:
            key = column.split(".")[1]
            where.append(f"{column} = %({key})s")
            params[key] = value
    if q.provider is not None:
        where.append("lower(d.provider) = lower(%(provider)s)")
        params["provider"] = q.provider
    sample_filter = ""
    if q.bbox is not None:
        sample_filter = (
            "and s.geom_4326 && st_makeenvelope(%(w)s, %(s)s, %(e)s, %(n)s, 4326) "
            "and st_intersects(s.geom_4326, st_makeenvelope(%(w)s, %(s)s, %(e)s, %(n)s, 4326))"
        )
        params.update(dict(zip(("w", "s", "e", "n"), q.bbox, strict=True)))
        where.append("d.extent && st_makeenvelope(%(w)s, %(s)s, %(e)s, %(n)s, 4326)")
    from hrlc.training.db import connect  # psycopg: the platform extra; checks the schema

    with connect(dsn) as conn:
        datasets = conn.execute(
            f"select d.trainingmetadata_id, d.dataset_name, d.version, d.checksum, d.srid "
            f"from training.dataset d where {' and '.join(where)} order by d.dataset_name",
            params,
        ).fetchall()
        if not datasets:
            raise TrainingDataError(f"no training set in the database matches {q.describe()}")
        srids = {int(r[4]) for r in datasets}
        native = len(srids) == 1
        rows = conn.execute(
            f"""
            select s.class_code, coalesce(s.sample_id, m.dataset_name || ':' || s.feature_index),
                   m.dataset_name, st_asbinary({"s.geom" if native else "s.geom_4326"})
            from training.trainingset s
            join training.trainingmetadata m using (trainingmetadata_id)
            where s.trainingmetadata_id = any(%(ids)s) {sample_filter}
            order by m.dataset_name, s.feature_index
            """,
            {**params, "ids": [int(r[0]) for r in datasets]},
        ).fetchall()
    if not rows:
        raise TrainingDataError(f"no training sample in the database matches {q.describe()}")
    codes, ids, names, wkb = zip(*rows, strict=True)
    gdf = gpd.GeoDataFrame(
        {
            "class_code": np.asarray(codes, dtype=np.int64),
            "sample_id": np.asarray(ids, dtype=object),
            "dataset": np.asarray(names, dtype=object),
        },
        geometry=shapely.from_wkb(np.asarray([bytes(b) for b in wkb], dtype=object)),
        crs=f"EPSG:{srids.pop()}" if native else "EPSG:4326",
    )
    gdf.attrs["datasets"] = [
        {"name": str(r[1]), "version": int(r[2]), "checksum": str(r[3])} for r in datasets
    ]
    gdf.attrs["query"] = q.describe()
    return gdf

"""Import of training sets into the training-set database (spec §3.4.2.3), from a folder or an S3 prefix.

`import_training(source)` walks `source` (a local folder or `s3://bucket/prefix`) for training-set folders
`<area_name>/<area_name>_<type>_<ROI>_<year>_<source>_<provider>/` (:mod:`hrlc.training.naming`) and imports
each one on its own, in ONE transaction, with one of four outcomes recorded in `training.import_outcome`:

- ``imported``: a new training set (version 1);
- ``unchanged``: the same files as its current version (sha256 of every file): nothing is written;
- ``replaced``: changed files: a new version; the rows of the old one stay, marked superseded;
- ``rejected``: the set breaks a rule (the reason, one line, says which); the database is as before.

Rules (in this order): the name follows the convention and the folder sits in its area's folder; the files
carry the set's name and have the extensions of the convention; the provider is in `training.provider`; a
shapefile comes whole (`.shp`, `.shx`, `.dbf`, `.prj`; headers agree with the file sizes, so truncated files
are caught) and its text is valid in the encoding of its `.cpg`; the CRS has an EPSG code known to PostGIS;
every feature has a non-empty point or polygon geometry with finite coordinates; invalid polygons are made
valid when that keeps a polygon (reported), else refused; labels are HRLC codes, or labels of the provider's
mapping (`training.label_mapping`); identical geometries with the same class are kept once (reported),
with different classes refused; `sample_id` values are unique; no other current set has the same files.

The shapefile is the data when a folder has one; a `.geojson` alone is read as the data; when both are there
they must hold the same number of features. Samples go in with PostgreSQL's binary COPY (EWKB geometries, the
lon/lat copy computed here with pyproj), not row by row.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
import logging
import os
import posixpath
import socket
import struct
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pyogrio
import shapely
from pyproj import CRS, Transformer

from hrlc import legend
from hrlc.settings import Settings
from hrlc.training import naming
from hrlc.training.db import IMPORTER_VERSION, TrainingDbError, connect, label_key
from hrlc.training.samples import CLASS_COLUMNS

__all__ = [
    "IMPORTER_VERSION",
    "DatasetOutcome",
    "ImportReport",
    "TrainingDbError",
    "TrainingImportError",
    "discover",
    "import_training",
]

log = logging.getLogger("hrlc.training")


Outcome = Literal["imported", "unchanged", "replaced", "rejected"]
Progress = Callable[[int, int, str], None]
"""`progress(done, total, dataset_name)`: called before each set (and once at the end with done == total)."""

_POINT_TYPES = (0, 4)  # shapely type ids: Point, MultiPoint
_POLYGON_TYPES = (3, 6)  # Polygon, MultiPolygon
_MAX_LISTED = 5


class TrainingImportError(RuntimeError):
    """The import cannot start: the source does not exist, cannot be listed, or holds no training set."""


class Rejected(Exception):
    """A training set that breaks an import rule (the message is the one-line reason)."""


@dataclass
class DatasetOutcome:
    """What an import did with one folder."""

    dataset_name: str
    location: str
    outcome: Outcome
    reason: str | None = None
    version: int | None = None
    n_features: int | None = None
    notes: list[str] = field(default_factory=list)
    trainingmetadata_id: int | None = None
    checksum: str | None = None
    seconds: float = 0.0


@dataclass
class ImportReport:
    """The outcomes of one import run (also in `training.import_run` / `training.import_outcome`)."""

    run_id: int
    source: str
    outcomes: list[DatasetOutcome]

    @property
    def ok(self) -> bool:
        """True when no set was rejected."""
        return all(o.outcome != "rejected" for o in self.outcomes)

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(("imported", "replaced", "unchanged", "rejected"), 0)
        for o in self.outcomes:
            out[o.outcome] += 1
        return out

    def as_frame(self) -> pd.DataFrame:
        return pd.DataFrame([dataclasses.asdict(o) for o in self.outcomes])


# ------------------------------------------------------------------------------------------------ discovery


@dataclass
class _Candidate:
    """A folder holding files: maybe a training set."""

    folder: str
    parent: str | None
    location: str
    files: dict[str, str]  # file name -> local path or S3 key
    store: Any = None  # S3Store for S3 candidates
    bad_names: list[str] = dataclasses.field(default_factory=list)  # names that are not UTF-8 (shown escaped)

    @contextlib.contextmanager
    def local(self) -> Iterator[dict[str, Path]]:
        """The files as local paths (S3 objects are downloaded to a temporary folder)."""
        if self.store is None:
            yield {n: Path(p) for n, p in self.files.items()}
            return
        with tempfile.TemporaryDirectory(prefix="hrlc-training-") as tmp:
            folder = Path(tmp) / self.folder
            folder.mkdir()
            out = {}
            for n, key in self.files.items():
                out[n] = folder / n
                out[n].write_bytes(self.store.read_bytes(key))
            yield out


def _has_member(files: list[str]) -> bool:
    return any(Path(f).suffix.lower() in naming.MEMBER_EXTENSIONS for f in files)


def discover(source: str | Path, settings: Settings | None = None) -> list[_Candidate]:
    """The folders under `source` (local folder or `s3://bucket/prefix`, read with the S3 `settings`) that
    hold files of the convention's extensions, sorted by location. `source` may be the root above the area
    folders, an area folder or one training-set folder."""
    text = str(source)
    if text.startswith("s3://"):
        if settings is None:
            raise TrainingImportError(f"cannot import from {text}: no S3 settings given (HRLC_S3_*)")
        return _discover_s3(text, settings)
    if "://" in text and not text.startswith("file://"):
        raise TrainingImportError(f"cannot import from {text}: give a folder or s3://bucket/prefix")
    if printable_name(text) != text:
        raise TrainingImportError(f"the path {printable_name(text)} is not valid UTF-8: rename it")
    root = Path(text.removeprefix("file://")).expanduser().resolve()
    if not root.exists():
        raise TrainingImportError(f"{root} does not exist")
    if not root.is_dir():
        raise TrainingImportError(f"{root} is a file: give the folder of a training set (or above it)")
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        files = sorted(f for f in filenames if not f.startswith("."))
        if not _has_member(files):
            continue
        d = Path(dirpath)
        bad = [printable_name(n) for n in (d.name, *files) if printable_name(n) != n]
        found.append(
            _Candidate(
                folder=printable_name(d.name),
                parent=printable_name(d.parent.name) or None,
                location=printable_name(d.as_uri()) + "/",
                files={f: str(d / f) for f in files},
                bad_names=bad,
            )
        )
    return sorted(found, key=lambda c: c.location)


def printable_name(name: str) -> str:
    """A file name as text: bytes that are not UTF-8 (surrogate escapes of the file system) as `\\xNN`."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _discover_s3(url: str, settings: Settings) -> list[_Candidate]:
    from hrlc.lake.store import S3Store, StoreError

    try:
        store = S3Store(url, settings)
        keys = list(store.list(""))
    except (StoreError, ValueError) as e:
        raise TrainingImportError(str(e)) from None
    groups: dict[str, list[str]] = {}
    for key in keys:
        full = f"{store.prefix}/{key}" if store.prefix else key
        groups.setdefault(posixpath.dirname(full), []).append(key)
    found = []
    for folder_key, members in groups.items():
        names = {posixpath.basename(k): k for k in members if not posixpath.basename(k).startswith(".")}
        if not folder_key or not _has_member(list(names)):
            continue
        parent = posixpath.dirname(folder_key)
        found.append(
            _Candidate(
                folder=posixpath.basename(folder_key),
                parent=posixpath.basename(parent) if parent else None,
                location=f"s3://{store.bucket}/{folder_key}/",
                files=dict(sorted(names.items())),
                store=store,
            )
        )
    return sorted(found, key=lambda c: c.location)


# ------------------------------------------------------------------------------------------------ the import


def import_training(
    source: str | Path,
    *,
    dsn: str,
    progress: Progress | None = None,
    settings: Settings | None = None,
) -> ImportReport:
    """Import every training set under `source` (a folder, or `s3://bucket/prefix` read with the S3 `settings`);
    see the module doc.

    Checks the database's schema first and applies no migration (`hrlc migrate` does). Returns the outcome of
    each folder found; a rejected set does not stop the others (see :attr:`ImportReport.ok`).

    Raises:
        TrainingImportError: `source` does not exist, cannot be listed or holds no training-set folder.
        TrainingDbError: the database is unreachable, or its `training` schema is behind or missing (one line:
            run `hrlc migrate`); nothing is written then.
    """
    with connect(dsn, autocommit=True) as conn:  # checks the schema version: no DDL here
        candidates = discover(source, settings)
        if not candidates:
            raise TrainingImportError(
                f"no training set under {source}: expected <area_name>/<area_name>_<type>_<ROI>_<year>_"
                f"<source>_<provider>/ folders with {', '.join(naming.MEMBER_EXTENSIONS)} files"
            )
        label = str(source) if str(source).startswith("s3://") else str(Path(source).expanduser().resolve())
        outcomes: list[DatasetOutcome] = []
        row = conn.execute(
            "insert into training.import_run (source, importer_version, client_host) values (%s, %s, %s) "
            "returning import_run_id",
            (label, IMPORTER_VERSION, socket.gethostname()),
        ).fetchone()
        assert row is not None
        run_id = int(row[0])
        try:
            for i, cand in enumerate(candidates):
                if progress:
                    progress(i, len(candidates), cand.folder)
                outcomes.append(_import_one(conn, cand, run_id))
            if progress:
                progress(len(candidates), len(candidates), "")
        finally:
            conn.execute(
                "update training.import_run set finished_at = clock_timestamp() where import_run_id = %s",
                (run_id,),
            )
    return ImportReport(run_id, label, outcomes)


def _import_one(conn: psycopg.Connection[Any], cand: _Candidate, run_id: int) -> DatasetOutcome:
    t0 = time.perf_counter()
    out = DatasetOutcome(cand.folder, cand.location, "rejected")
    try:
        if cand.bad_names:
            raise Rejected(f"names that are not valid UTF-8: {', '.join(cand.bad_names)}: rename them")
        name = naming.parse_name(cand.folder, cand.parent)
        members, ignored = _members(cand, name)
        out.notes += [f"ignored file {f} (not an extension of the convention)" for f in ignored]
        provider = _provider(conn, name.provider)
        name = dataclasses.replace(name, provider=provider["code"])
        out.dataset_name = name.name
        with cand.local() as paths:
            local = {ext: paths[f] for ext, f in members.items()}
            files = [_file_record(paths[f]) for f in members.values()]
            checksum = _checksum(files)
            out.checksum = checksum
            current = _current(conn, name.name)
            if current and current[1] == checksum:
                out.outcome, out.version, out.trainingmetadata_id = "unchanged", current[2], current[0]
            else:
                prepared = _prepare(conn, local, name, provider)
                out.notes += prepared.notes
                _write(conn, out, name, prepared, cand, files, provider, run_id, t0)
    except Rejected as e:
        out.outcome, out.reason = "rejected", str(e)
    except naming.NamingError as e:
        out.outcome, out.reason = "rejected", str(e)
    except Exception as e:  # noqa: BLE001 - one set's failure (S3, database, a reader) must not stop the others
        log.exception("importing %s failed", cand.location)
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        out.outcome, out.reason = "rejected", f"import failed: {type(e).__name__}: {first}".rstrip(": ")
    out.seconds = time.perf_counter() - t0
    if out.outcome in ("rejected", "unchanged"):
        _record(conn, out, run_id)  # imported/replaced were recorded inside their transaction
    return out


def _members(cand: _Candidate, name: naming.DatasetName) -> tuple[dict[str, str], list[str]]:
    """ext -> file name of the set's files; the other files (ignored). Rejects misnamed member files."""
    members: dict[str, str] = {}
    ignored = []
    for f in cand.files:
        stem, ext = f[: -len(Path(f).suffix)] if Path(f).suffix else f, Path(f).suffix.lower()
        if ext not in naming.MEMBER_EXTENSIONS:
            ignored.append(f)
            continue
        if stem != cand.folder:
            raise Rejected(f"file {f} does not carry the set's name {cand.folder}")
        if ext in members:
            raise Rejected(f"two {ext} files: {members[ext]} and {f}")
        members[ext] = f
    if ".shp" not in members and ".geojson" not in members:
        raise Rejected(f"no data file: neither {cand.folder}.shp nor {cand.folder}.geojson")
    if ".shp" in members:
        for ext, why in ((".shx", "the shape index"), (".dbf", "the attributes"), (".prj", "the CRS")):
            if ext not in members:
                raise Rejected(f"{members['.shp']} comes without its {ext} ({why} are missing)")
    return members, ignored


def _provider(conn: psycopg.Connection[Any], code: str) -> dict[str, Any]:
    row = conn.execute(
        "select provider_id, code, class_column from training.provider where lower(code) = lower(%s)", (code,)
    ).fetchone()
    if row is None:
        known = [r[0] for r in conn.execute("select code from training.provider order by lower(code)")]
        raise Rejected(
            f"unknown provider {code!r}; known providers: {', '.join(known) or 'none'} "
            "(add one with `hrlc training provider add`)"
        )
    mapping = {
        str(label): (None if c is None else int(c))
        for label, c in conn.execute(
            "select label, class_code from training.label_mapping where provider_id = %s", (row[0],)
        )
    }
    return {"provider_id": int(row[0]), "code": str(row[1]), "class_column": row[2], "mapping": mapping}


def _file_record(path: Path) -> dict[str, Any]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
            size += len(block)
    return {"name": path.name, "size": size, "sha256": h.hexdigest()}


def _checksum(files: list[dict[str, Any]]) -> str:
    """sha256 over `<extension> <sha256>` lines of the member files, sorted: independent of the set's name."""
    lines = sorted(f"{Path(f['name']).suffix.lower()} {f['sha256']}" for f in files)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _current(conn: psycopg.Connection[Any], dataset_name: str) -> tuple[int, str, int] | None:
    row = conn.execute(
        "select trainingmetadata_id, checksum, version from training.trainingmetadata "
        "where dataset_name = %s and superseded_at is null",
        (dataset_name,),
    ).fetchone()
    return (int(row[0]), str(row[1]), int(row[2])) if row else None


# ------------------------------------------------------------------------------------------------ validation


@dataclass
class _Prepared:
    data_file: str
    srid: int
    class_column: str
    feature_index: np.ndarray
    sample_id: list[str | None]
    class_code: np.ndarray
    label: list[str]
    geom: np.ndarray  # shapely geometries, 2D, valid, in `srid`
    geom_4326: np.ndarray
    repaired: np.ndarray
    attributes: list[bytes | None]
    n_skipped: int
    notes: list[str]
    qml: str | None

    @property
    def geometry_kind(self) -> str:
        types = set(np.unique(shapely.get_type_id(self.geom)).tolist())
        if types <= set(_POINT_TYPES):
            return "point"
        return "polygon" if types <= set(_POLYGON_TYPES) else "mixed"


def _listed(idx: np.ndarray | list[int]) -> str:
    idx = [int(i) for i in idx]
    more = f" and {len(idx) - _MAX_LISTED} more" if len(idx) > _MAX_LISTED else ""
    return ", ".join(str(i) for i in idx[:_MAX_LISTED]) + more


def _prepare(
    conn: psycopg.Connection[Any], files: dict[str, Path], name: naming.DatasetName, provider: dict[str, Any]
) -> _Prepared:
    """Read the set's data file and apply every rule; raises Rejected with the first broken one."""
    notes: list[str] = []
    if ".shp" in files:
        n_records = _check_shapefile(files)
        gdf = _read(files[".shp"], files.get(".cpg"))
        if len(gdf) != n_records:
            raise Rejected(f"{files['.shp'].name} has {n_records} records but {len(gdf)} could be read")
        if ".geojson" in files:
            n_json = _count(files[".geojson"])
            if n_json != len(gdf):
                raise Rejected(
                    f"{files['.geojson'].name} holds {n_json} features, {files['.shp'].name} {len(gdf)}: "
                    "the two must be the same set"
                )
        data_file = files[".shp"].name
    else:
        gdf = _read(files[".geojson"], None)
        data_file = files[".geojson"].name
    if len(gdf) == 0:
        raise Rejected(f"{data_file} has no features")

    srid = _srid(conn, gdf.crs, data_file)
    geoms, repaired, geom_notes = _geometries(gdf.geometry.to_numpy(), data_file)
    notes += geom_notes
    column = _class_column(gdf, provider, data_file)
    labels, codes, keep, label_notes = _labels(gdf[column], provider, data_file)
    notes += label_notes

    sample_col = next((c for c in gdf.columns if c.lower() == "sample_id" and c != column), None)
    sample_ids = pd.Series(
        [None if pd.isna(v) else label_key(v) for v in gdf[sample_col].tolist()]
        if sample_col
        else [None] * len(gdf),
        dtype=object,
    )
    index = np.arange(len(gdf))

    # duplicates: identical geometries (same WKB) with the same class once, with different classes refused
    wkb = shapely.to_wkb(geoms)
    frame = pd.DataFrame({"wkb": wkb, "code": codes})
    frame = frame[keep]
    dup_geom = frame.duplicated("wkb", keep=False)
    if dup_geom.any():
        conflicting = frame[dup_geom].groupby("wkb")["code"].nunique()
        if (conflicting > 1).any():
            bad = frame[dup_geom & frame["wkb"].isin(conflicting[conflicting > 1].index)].index
            raise Rejected(
                f"features {_listed(bad)} of {data_file}: identical geometries with different classes"
            )
        extra = frame.duplicated(["wkb", "code"], keep="first")
        keep = keep.copy()
        keep[frame.index[extra]] = False
        notes.append(f"kept once {int(extra.sum())} feature(s) repeating a geometry and class")
    if sample_col:
        ids = sample_ids[keep & sample_ids.notna().to_numpy()]
        dup_ids = ids[ids.duplicated(keep=False)]
        if len(dup_ids):
            raise Rejected(
                f"{data_file}: sample_id {sorted(set(dup_ids))[:_MAX_LISTED]} used by more than one feature"
            )

    geoms_4326 = _to_4326(geoms[keep], gdf.crs, data_file)
    others = [c for c in gdf.columns if c not in (gdf.geometry.name, column, sample_col)]
    attributes: list[bytes | None] = (
        _attributes(gdf.loc[keep, others]) if others else [None] * int(keep.sum())
    )
    return _Prepared(
        data_file=data_file,
        srid=srid,
        class_column=column,
        feature_index=index[keep],
        sample_id=list(sample_ids[keep]),
        class_code=codes[keep],
        label=[labels[i] for i in np.flatnonzero(keep)],
        geom=geoms[keep],
        geom_4326=geoms_4326,
        repaired=repaired[keep],
        attributes=attributes,
        n_skipped=int(len(gdf) - keep.sum()),
        notes=notes,
        qml=files[".qml"].read_text(encoding="utf-8", errors="replace") if ".qml" in files else None,
    )


def _check_shapefile(files: dict[str, Path]) -> int:
    """Check the .shp/.shx/.dbf headers against the file sizes (truncation); returns the number of records."""

    def header(path: Path) -> tuple[int, int]:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(100)
        if len(head) < 100:
            raise Rejected(f"{path.name} is truncated: {size} bytes, less than its 100-byte header")
        code, length = struct.unpack(">i20xi", head[:28])
        if code != 9994:
            raise Rejected(f"{path.name} is not a shapefile (file code {code}, not 9994)")
        if length * 2 != size:
            raise Rejected(
                f"{path.name} is {size} bytes but its header says {length * 2}: truncated or damaged"
            )
        return size, length * 2

    header(files[".shp"])
    _, shx_len = header(files[".shx"])
    if (shx_len - 100) % 8:
        raise Rejected(
            f"{files['.shx'].name} is damaged: {shx_len - 100} bytes of records, not a multiple of 8"
        )
    n = (shx_len - 100) // 8
    dbf = files[".dbf"]
    size = dbf.stat().st_size
    with dbf.open("rb") as f:
        head = f.read(32)
    if len(head) < 32:
        raise Rejected(f"{dbf.name} is truncated: {size} bytes, less than its header")
    n_dbf, header_len, record_len = struct.unpack("<IHH", head[4:12])
    if size < header_len + n_dbf * record_len:
        raise Rejected(
            f"{dbf.name} is truncated: {size} bytes for {n_dbf} records of {record_len} bytes "
            f"after a {header_len}-byte header"
        )
    if n_dbf != n:
        raise Rejected(f"{dbf.name} has {n_dbf} records, {files['.shx'].name} {n}: not the same set")
    return n


def _read(path: Path, cpg: Path | None) -> gpd.GeoDataFrame:
    try:
        return pyogrio.read_dataframe(path, use_arrow=False)
    except UnicodeDecodeError as e:
        declared = cpg.read_text(errors="replace").strip() if cpg else "ISO-8859-1 (no .cpg)"
        raise Rejected(
            f"{path.name}: text attributes are not valid {declared} as its .cpg declares ({e.reason} at byte "
            f"{e.start}): fix the .cpg or re-encode the .dbf"
        ) from None
    except Exception as e:  # noqa: BLE001 - pyogrio/GDAL raise several types; one line for the user
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise Rejected(f"cannot read {path.name}: {first}") from None


def _count(path: Path) -> int:
    try:
        return int(pyogrio.read_info(path, force_feature_count=True)["features"])
    except Exception as e:  # noqa: BLE001
        raise Rejected(f"cannot read {path.name}: {str(e).strip().splitlines()[0]}") from None


def _srid(conn: psycopg.Connection[Any], crs: Any, data_file: str) -> int:
    if crs is None:
        raise Rejected(f"{data_file} has no CRS")
    epsg = CRS.from_user_input(crs).to_epsg()
    if epsg is None:
        raise Rejected(f"the CRS of {data_file} ({CRS.from_user_input(crs).name}) has no EPSG code")
    known = conn.execute("select 1 from public.spatial_ref_sys where srid = %s", (epsg,)).fetchone()
    if known is None:
        raise Rejected(
            f"the CRS of {data_file} is EPSG:{epsg}, which PostGIS's spatial_ref_sys does not know"
        )
    return int(epsg)


def _geometries(geoms: np.ndarray, data_file: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Check and repair geometries: (2D valid geometries, repaired flags, notes)."""
    notes = []
    empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if empty.any():
        raise Rejected(
            f"features {_listed(np.flatnonzero(empty))} of {data_file} have no or an empty geometry"
        )
    types = shapely.get_type_id(geoms)
    other = ~np.isin(types, _POINT_TYPES + _POLYGON_TYPES)
    if other.any():
        kinds = sorted({str(g.geom_type) for g in geoms[other]})
        raise Rejected(
            f"features {_listed(np.flatnonzero(other))} of {data_file} are {', '.join(kinds)}: "
            "only points and polygons are training samples"
        )
    if shapely.has_z(geoms).any():
        geoms = shapely.force_2d(geoms)
        notes.append("dropped the Z coordinates")
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    bad = ~np.isfinite(coords).all(axis=1)
    if bad.any():
        raise Rejected(
            f"features {_listed(np.unique(owner[bad]))} of {data_file} have non-finite coordinates"
        )
    repaired = np.zeros(len(geoms), dtype=bool)
    invalid = np.flatnonzero(~shapely.is_valid(geoms))
    if invalid.size:
        geoms = geoms.copy()
        reasons = shapely.is_valid_reason(geoms[invalid])
        for i, reason in zip(invalid, reasons, strict=True):
            fixed = _repair(geoms[i])
            if fixed is None:
                raise Rejected(
                    f"feature {i} of {data_file} has an invalid geometry ({reason}) that cannot be repaired "
                    "without losing its area"
                )
            geoms[i] = fixed
            repaired[i] = True
        notes.append(
            f"repaired {invalid.size} invalid polygon(s) with make_valid: features {_listed(invalid)} "
            f"({reasons[0]}{', ...' if invalid.size > 1 else ''})"
        )
    return geoms, repaired, notes


def _repair(geom: Any) -> Any:
    """make_valid of a polygon, kept when its result has polygons (leftover lines/points dropped); else None."""
    if shapely.get_type_id(geom) not in _POLYGON_TYPES:
        return None
    fixed = shapely.make_valid(geom)
    parts = shapely.get_parts(fixed)
    polys = [p for part in parts for p in shapely.get_parts(part) if shapely.get_type_id(p) == 3]
    if not polys:
        return None
    out = polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)
    if out.is_empty or out.area <= 0 or not out.is_valid:
        return None
    return out


def _class_column(gdf: gpd.GeoDataFrame, provider: dict[str, Any], data_file: str) -> str:
    columns = [c for c in gdf.columns if c != gdf.geometry.name]
    lower = {c.lower(): c for c in columns}
    if provider["class_column"]:
        want = str(provider["class_column"])
        if want.lower() not in lower:
            raise Rejected(
                f"{data_file} has no column {want!r} (the class column of provider {provider['code']}); "
                f"columns: {columns}"
            )
        return lower[want.lower()]
    for candidate in CLASS_COLUMNS:
        if candidate in lower:
            return lower[candidate]
    raise Rejected(f"{data_file} has no class column (one of {list(CLASS_COLUMNS)}); columns: {columns}")


def _label_texts(values: pd.Series) -> list[str]:
    if pd.api.types.is_integer_dtype(values):
        return [str(v) for v in values.tolist()]
    if pd.api.types.is_float_dtype(values):
        arr = values.to_numpy(dtype=float)
        if np.all(arr == np.round(arr)):
            return [str(v) for v in arr.astype(np.int64).tolist()]
    return [label_key(v) for v in values.tolist()]


def _labels(
    values: pd.Series, provider: dict[str, Any], data_file: str
) -> tuple[list[str], np.ndarray, np.ndarray, list[str]]:
    """(original labels as text, HRLC codes (0 where skipped), keep mask, notes)."""
    column = values.name
    nulls = values.isna().to_numpy()
    if nulls.any():
        raise Rejected(
            f"features {_listed(np.flatnonzero(nulls))} of {data_file} have no label in {column!r}"
        )
    labels = _label_texts(values)
    mapping: dict[str, int | None] = provider["mapping"]
    notes = []
    if mapping:
        unknown = sorted({lab for lab in labels if lab not in mapping})
        if unknown:
            raise Rejected(
                f"labels {unknown[:_MAX_LISTED]} in {column!r} of {data_file} are not in provider "
                f"{provider['code']}'s label mapping"
            )
        mapped = [mapping[lab] for lab in labels]
        keep = np.array([m is not None for m in mapped], dtype=bool)
        codes = np.array([m or 0 for m in mapped], dtype=np.int16)
        if not keep.all():
            skipped = sorted({lab for lab, k in zip(labels, keep, strict=True) if not k})
            notes.append(f"skipped {int((~keep).sum())} feature(s) whose label {skipped} maps to no class")
        if not keep.any():
            raise Rejected(f"no feature of {data_file} has a label that maps to an HRLC class")
        return labels, codes, keep, notes
    numbers = pd.to_numeric(pd.Series(labels), errors="coerce").to_numpy(dtype=float)
    not_int = np.isnan(numbers) | (numbers != np.round(numbers))
    if not_int.any():
        examples = sorted({labels[i] for i in np.flatnonzero(not_int)})[:_MAX_LISTED]
        raise Rejected(
            f"labels {examples} in {column!r} of {data_file} are not HRLC class codes (provider "
            f"{provider['code']} has no label mapping)"
        )
    codes = numbers.astype(np.int64)
    unknown_codes = legend.unknown_codes(np.unique(codes))
    if unknown_codes:
        raise Rejected(
            f"unknown class codes {unknown_codes} in {column!r} of {data_file}; valid codes: "
            + ", ".join(str(c) for c in legend.CODES)
        )
    return labels, codes.astype(np.int16), np.ones(len(labels), dtype=bool), notes


def _to_4326(geoms: np.ndarray, crs: Any, data_file: str) -> np.ndarray:
    src = CRS.from_user_input(crs)
    if src.to_epsg() == 4326:
        out = geoms
    else:
        tr = Transformer.from_crs(src, 4326, always_xy=True)

        def project(xy: np.ndarray) -> np.ndarray:
            x, y = tr.transform(xy[:, 0], xy[:, 1])
            return np.column_stack([x, y])

        out = shapely.transform(geoms, project)
    coords, owner = shapely.get_coordinates(out, return_index=True)
    bad = (
        ~np.isfinite(coords).all(axis=1)
        | (np.abs(coords[:, 0]) > 180 + 1e-6)
        | (np.abs(coords[:, 1]) > 90 + 1e-6)
    )
    if bad.any():
        raise Rejected(
            f"features {_listed(np.unique(owner[bad]))} of {data_file} fall outside the earth in lon/lat: "
            "is the .prj the right CRS?"
        )
    return out


def _attributes(frame: pd.DataFrame) -> list[bytes | None]:
    """Each row as jsonb's binary input (version byte 1 + JSON text)."""
    text = frame.to_json(orient="records", lines=True, date_format="iso", default_handler=str)
    return [b"\x01" + line.encode() for line in text.splitlines()]


# ------------------------------------------------------------------------------------------------ writing


def _write(
    conn: psycopg.Connection[Any],
    out: DatasetOutcome,
    name: naming.DatasetName,
    p: _Prepared,
    cand: _Candidate,
    files: list[dict[str, Any]],
    provider: dict[str, Any],
    run_id: int,
    t0: float,
) -> None:
    """Write one set in ONE transaction (serialised per set name by an advisory lock)."""
    checksum = out.checksum
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"hrlc.training:{name.name}",))
        current = _current(conn, name.name)
        if current and current[1] == checksum:  # another import committed the same files meanwhile
            out.outcome, out.version, out.trainingmetadata_id = "unchanged", current[2], current[0]
            return
        twin = conn.execute(
            "select dataset_name from training.trainingmetadata "
            "where checksum = %s and superseded_at is null and dataset_name <> %s",
            (checksum, name.name),
        ).fetchone()
        if twin:
            raise Rejected(f"the same files as training set {twin[0]} (imported already)")
        version = current[2] + 1 if current else 1
        if current:
            conn.execute(
                "update training.trainingmetadata set superseded_at = now() where trainingmetadata_id = %s",
                (current[0],),
            )
        minx, miny, maxx, maxy = shapely.total_bounds(p.geom_4326).tolist()
        row = conn.execute(
            """
            insert into training.trainingmetadata (
                dataset_name, area_name, type, roi, year, source, version, location, data_file, checksum,
                files, srid, class_column, geometry_kind, n_features, n_repaired, n_skipped, extent,
                style_qml, import_run_id, importer_version)
            values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                    st_makeenvelope(%s, %s, %s, %s, 4326), %s, %s, %s)
            returning trainingmetadata_id
            """,
            (
                name.name,
                name.area_name,
                name.type,
                name.roi,
                name.year,
                name.source,
                version,
                cand.location,
                p.data_file,
                checksum,
                json.dumps(files),
                p.srid,
                p.class_column,
                p.geometry_kind,
                len(p.geom),
                int(p.repaired.sum()),
                p.n_skipped,
                minx,
                miny,
                maxx,
                maxy,
                p.qml,
                run_id,
                IMPORTER_VERSION,
            ),
        ).fetchone()
        assert row is not None
        mid = int(row[0])
        if current:
            conn.execute(
                "update training.trainingmetadata set superseded_by = %s where trainingmetadata_id = %s",
                (mid, current[0]),
            )
        conn.execute(
            "insert into training.trainingprovider (trainingmetadata_id, provider_id, role) "
            "values (%s, %s, 'producer')",
            (mid, provider["provider_id"]),
        )
        _copy_samples(conn, mid, p)
        out.outcome = "replaced" if current else "imported"
        out.version, out.trainingmetadata_id, out.n_features = version, mid, len(p.geom)
        out.seconds = time.perf_counter() - t0
        _record(conn, out, run_id)


COPY_SQL = (
    "copy training.trainingset (trainingmetadata_id, feature_index, class_code, repaired, sample_id, "
    "original_label, geom, geom_4326, attributes) from stdin (format binary)"
)
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER = struct.pack(">h", -1)
# the fixed-width leading fields of a row: field count, then (length, value) of the 4 fixed-width columns
_FIXED = np.dtype(
    [
        ("nfields", ">i2"),
        ("mid_len", ">i4"),
        ("mid", ">i4"),
        ("index_len", ">i4"),
        ("index", ">i4"),
        ("code_len", ">i4"),
        ("code", ">i2"),
        ("repaired_len", ">i4"),
        ("repaired", "u1"),
    ]
)
_NULL = struct.pack(">i", -1)
_CHUNK_ROWS = 10_000


def _varlen(values: list[bytes | None]) -> list[bytes]:
    """Length-prefixed fields (NULL as length -1)."""
    pack = struct.Struct(">i").pack
    return [_NULL if v is None else pack(len(v)) + v for v in values]


def _copy_rows(mid: int, p: _Prepared, start: int, stop: int) -> bytes:
    """Rows start..stop in PostgreSQL's binary COPY format: geometries as (E)WKB, which is a geometry's binary
    input; the lon/lat copy goes without SRID and takes the column's 4326; attributes as jsonb binary."""
    n = stop - start
    fixed = np.empty(n, dtype=_FIXED)
    fixed["nfields"] = 9
    fixed["mid_len"], fixed["mid"] = 4, mid
    fixed["index_len"], fixed["index"] = 4, p.feature_index[start:stop]
    fixed["code_len"], fixed["code"] = 2, p.class_code[start:stop]
    fixed["repaired_len"], fixed["repaired"] = 1, p.repaired[start:stop]
    raw = fixed.tobytes()
    size = _FIXED.itemsize
    heads = [raw[i : i + size] for i in range(0, len(raw), size)]
    geom = shapely.to_wkb(shapely.set_srid(p.geom[start:stop], p.srid), include_srid=True).tolist()
    geom_4326 = shapely.to_wkb(p.geom_4326[start:stop]).tolist()
    columns = [
        heads,
        _varlen([None if s is None else s.encode() for s in p.sample_id[start:stop]]),
        _varlen([s.encode() for s in p.label[start:stop]]),
        _varlen(geom),
        _varlen(geom_4326),
        _varlen(p.attributes[start:stop]),
    ]
    return b"".join(itertools.chain.from_iterable(zip(*columns, strict=True)))


def _copy_samples(conn: psycopg.Connection[Any], mid: int, p: _Prepared) -> None:
    """Binary COPY of the samples, built here in chunks (no per-row adaptation by the driver)."""
    n = len(p.geom)
    with conn.cursor().copy(COPY_SQL) as cp:
        cp.write(_COPY_HEADER)
        for start in range(0, n, _CHUNK_ROWS):
            cp.write(_copy_rows(mid, p, start, min(n, start + _CHUNK_ROWS)))
        cp.write(_COPY_TRAILER)


def _record(conn: psycopg.Connection[Any], out: DatasetOutcome, run_id: int) -> None:
    conn.execute(
        """
        insert into training.import_outcome (import_run_id, dataset_name, location, outcome, reason, notes,
            trainingmetadata_id, version, n_features, checksum, seconds)
        values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        """,
        (
            run_id,
            out.dataset_name,
            out.location,
            out.outcome,
            out.reason,
            json.dumps(out.notes),
            out.trainingmetadata_id,
            out.version,
            out.n_features,
            out.checksum,
            out.seconds,
        ),
    )

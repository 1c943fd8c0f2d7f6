"""`hrlc training ...`: the training-set database (migrate, providers, import, status) and training samples drawn
from a reference land-cover map (`sample-reference`, no database). Registered in `hrlc.cli`.

Bad input (missing folder, unreachable database or S3, a database whose `training` schema is behind: run
`hrlc migrate`) ends with one line on stderr and exit code 2. An import that rejected a training set prints every
outcome and exits with 1. Only `hrlc training migrate` (like `hrlc migrate`) changes the schema.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hrlc.extras import require
from hrlc.settings import Settings

training_app = typer.Typer(
    name="training",
    help="The training-set database (spec §3.4.2): import training sets from a folder or S3, check the import "
    "status, manage providers and their label mappings (database: --dsn or HRLC_TRAINING_DSN); draw training "
    "samples from a reference land-cover map (sample-reference, no database).",
    no_args_is_help=True,
)
provider_app = typer.Typer(
    name="provider", help="Providers of training sets and their labels.", no_args_is_help=True
)
training_app.add_typer(provider_app, name="provider")

_console = Console(stderr=True)
_out = Console()

DsnOption = Annotated[str | None, typer.Option(help="PostgreSQL + PostGIS DSN (default HRLC_TRAINING_DSN)")]


def _dsn(given: str | None) -> str:
    """The training database of a command: `--dsn`, else `HRLC_TRAINING_DSN` (the entry point reads the
    setting, nothing below it does)."""
    if given:
        return given
    return Settings().training_dsn


def _fail(message: str) -> None:
    _console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _table(rows: list[dict[str, Any]], columns: list[str], title: str | None = None) -> Table:
    table = Table(title=title, show_lines=False)
    for c in columns:
        table.add_column(c, overflow="fold")
    for r in rows:
        table.add_row(*("" if r.get(c) is None else str(r.get(c)) for c in columns))
    return table


@training_app.command()
def migrate(dsn: DsnOption = None) -> None:
    """Create or update the `training` schema (versioned SQL migrations; `hrlc migrate` does it for every schema)."""
    require("platform", "hrlc training migrate")
    from hrlc.training.db import TrainingDbError
    from hrlc.training.db import migrate as run_migrate

    try:
        applied = run_migrate(_dsn(dsn))
    except TrainingDbError as e:
        _fail(str(e))
        return
    typer.echo(json.dumps({"applied": applied}))


@training_app.command(name="import")
def import_(
    source: Annotated[str, typer.Argument(help="Folder or s3://bucket/prefix holding <area>/<set>/ folders")],
    dsn: DsnOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcomes as JSON lines")] = False,
) -> None:
    """Import every training set under SOURCE; unchanged sets are skipped, changed ones become new versions."""
    require("platform", "hrlc training import")
    from hrlc.training.db import TrainingDbError
    from hrlc.training.importer import TrainingImportError, import_training, printable_name

    if printable_name(source) != source:
        _fail(f"the path {printable_name(source)} is not valid UTF-8: rename it")
    if "://" not in source and not Path(source).exists():
        _fail(f"{source} does not exist")
    with Progress(
        TextColumn("[bold]importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=_console,
        transient=True,
    ) as bar:
        task = bar.add_task("", total=None)

        def progress(done: int, total: int, name: str) -> None:
            bar.update(task, completed=done, total=total, description=name)

        try:
            report = import_training(source, dsn=_dsn(dsn), progress=progress, settings=Settings())
        except (TrainingImportError, TrainingDbError) as e:
            bar.stop()
            _fail(str(e))
            return
    if as_json:
        for o in report.outcomes:
            typer.echo(json.dumps({k: v for k, v in vars(o).items()}, default=str))
    else:
        rows = [{**vars(o), "notes": "; ".join(o.notes), "reason": o.reason or ""} for o in report.outcomes]
        _out.print(
            _table(
                rows,
                ["dataset_name", "outcome", "version", "n_features", "reason", "notes"],
                title=f"import run {report.run_id}: {report.source}",
            )
        )
        _out.print(", ".join(f"{k} {v}" for k, v in report.counts().items()))
    if not report.ok:
        raise typer.Exit(1)


@training_app.command()
def status(
    dsn: DsnOption = None,
    run: Annotated[
        int | None, typer.Option(help="Outcomes of this import run instead of the latest per set")
    ] = None,
    runs: Annotated[bool, typer.Option("--runs", help="List the last import runs")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table")] = False,
) -> None:
    """The import status: the last outcome of every training set (or of one run, or the runs)."""
    require("platform", "hrlc training status")
    from hrlc.training import db

    try:
        if runs:
            frame = db.import_runs(_dsn(dsn))
        elif run is not None:
            frame = db.import_outcomes(run, _dsn(dsn))
        else:
            frame = db.import_status(_dsn(dsn))
    except db.TrainingDbError as e:
        _fail(str(e))
        return
    records = json.loads(frame.to_json(orient="records", date_format="iso"))
    if as_json:
        for r in records:
            typer.echo(json.dumps(r))
        return
    columns = [c for c in frame.columns if c not in ("notes", "location")]
    _out.print(_table(records, columns))


@training_app.command()
def retire(
    name: Annotated[
        str, typer.Argument(help="The training set (folder name) whose current version to retire")
    ],
    reason: Annotated[str, typer.Option(help="Why (kept in the import log)")],
    dsn: DsnOption = None,
) -> None:
    """Retire a training set: its current version is no longer selected (its rows stay, the import log says
    who retired it and why); a corrected delivery can then be imported under the right name."""
    require("platform", "hrlc training retire")
    from hrlc.training.db import TrainingDbError
    from hrlc.training.db import retire as retire_set

    try:
        version = retire_set(name, reason, _dsn(dsn))
    except TrainingDbError as e:
        _fail(str(e))
    typer.echo(f"retired {name} version {version}")


@provider_app.command(name="add")
def provider_add(
    code: Annotated[str, typer.Argument(help="Code as in the file names (letters, digits, '-')")],
    name: Annotated[str | None, typer.Option(help="Full name")] = None,
    url: Annotated[str | None, typer.Option(help="Web site")] = None,
    class_column: Annotated[str | None, typer.Option(help="Attribute holding the labels")] = None,
    mapping: Annotated[
        Path | None,
        typer.Option(help="CSV label,class_code: the provider's labels -> HRLC codes (empty = not a class)"),
    ] = None,
    dsn: DsnOption = None,
) -> None:
    """Add a provider (or update it), with its label -> HRLC mapping if it does not deliver HRLC codes."""
    require("platform", "hrlc training provider add")
    from hrlc.training import db

    try:
        table = db.read_mapping_csv(mapping) if mapping is not None else None
        pid = db.add_provider(code, name, dsn=_dsn(dsn), url=url, class_column=class_column, mapping=table)
    except (db.TrainingDbError, OSError) as e:
        _fail(str(e))
        return
    typer.echo(json.dumps({"provider_id": pid, "code": code, "labels": len(table) if table else 0}))


@provider_app.command(name="list")
def provider_list(dsn: DsnOption = None) -> None:
    """The providers, with the size of their label mapping and their current training sets."""
    require("platform", "hrlc training provider list")
    from hrlc.training import db

    try:
        frame = db.providers(_dsn(dsn))
    except db.TrainingDbError as e:
        _fail(str(e))
        return
    _out.print(_table(json.loads(frame.to_json(orient="records")), list(frame.columns)))


@training_app.command(name="sample-reference")
def sample_reference(
    raster: Annotated[
        Path,
        typer.Argument(
            metavar="RASTER", help="Reference land-cover map: a single-band raster of class codes"
        ),
    ],
    out: Annotated[Path, typer.Argument(metavar="OUT.gpkg", help="GeoPackage to write (layer `training`)")],
    per_class: Annotated[int, typer.Option(min=1, help="Points per class at most")] = 200,
    erode: Annotated[
        int, typer.Option(min=0, help="Distance (px) of every point from another class: the erosion radius")
    ] = 2,
    min_pixels: Annotated[
        int, typer.Option(min=0, help="Skip classes with fewer interior (eroded) pixels than this")
    ] = 50,
    crosswalk: Annotated[
        str | None,
        typer.Option(
            help="Raster codes -> HRLC codes: worldcover (also cci-lc, glc-fcs30, cgls-lc100) or a JSON file "
            '{"10": 30, "0": null}; without it the codes must be HRLC codes (WorldCover\'s 10-100 are HRLC codes '
            "too, with other meanings: give --crosswalk worldcover)"
        ),
    ] = None,
    bbox: Annotated[
        str | None, typer.Option(help="W,S,E,N in the raster's CRS: sample only there (default: everywhere)")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random draw")] = 0,
) -> None:
    """Training points for a user with no field data, drawn from a reference map (stratified random, away from
    class edges), in the training format `hrlc run --training` reads.

    Example, on the demo's truth map (`hrlc demo --workdir /tmp/hrlc-demo`), or on ESA WorldCover from
    `hrlc ancillary get esa-worldcover` with --crosswalk worldcover:

        hrlc training sample-reference /tmp/hrlc-demo/external/truth/truth_2021.tif samples.gpkg --per-class 150

    then `hrlc run ... --training samples.gpkg --group-column patch_id`. The map's errors become training
    errors, so assess the result with `hrlc assess` against independent data, not this map. Exit code 2: bad
    input."""
    from hrlc.training.reference import CAVEATS, ReferenceMapError, read_crosswalk
    from hrlc.training.reference import sample_reference as draw

    if out.suffix.lower() != ".gpkg":
        _fail(f"the output {out} must be a GeoPackage (.gpkg)")
    aoi: tuple[float, float, float, float] | None = None
    if bbox is not None:
        parts = bbox.split(",")
        try:
            w, s, e, n = (float(p) for p in parts)
        except ValueError:
            _fail(f"--bbox {bbox!r} is not W,S,E,N (four numbers in the raster's CRS)")
            return
        aoi = (w, s, e, n)
    try:
        table = read_crosswalk(crosswalk) if crosswalk is not None else None
        points = draw(
            raster,
            aoi=aoi,
            per_class=per_class,
            erode_px=erode,
            min_pixels=min_pixels,
            crosswalk=table,
            seed=seed,
        )
    except ReferenceMapError as e:
        _fail(str(e))
        return
    report = points.attrs["report"]
    if len(points) == 0:
        _fail(f"no class of {raster} has {min_pixels} pixels {erode} px inside its patches: nothing to write")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.unlink(missing_ok=True)
        points.to_file(out, layer="training", driver="GPKG", engine="pyogrio")
    except Exception as e:  # noqa: BLE001 - OSError or GDAL's errors: one line for the user
        _fail(f"cannot write {out}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
    table_rows = [
        {
            "class": f"{r['class_code']} {r['class_name']}",
            "pixels": r["pixels"],
            "interior": r["interior_pixels"],
            "points": r["points"],
            "skipped": r["skipped"] or "",
        }
        for r in report
    ]
    _out.print(_table(table_rows, ["class", "pixels", "interior", "points", "skipped"], title=raster.name))
    drawn = sum(1 for r in report if r["points"])
    _out.print(f"wrote {len(points)} points of {drawn} classes to {out} (layer training)", highlight=False)
    _out.print(CAVEATS, highlight=False, soft_wrap=True)

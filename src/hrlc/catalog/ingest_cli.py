"""`hrlc ingest ...`: the ingest watcher and harvest from external STAC APIs (registered in `hrlc.cli`)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from hrlc.extras import require
from hrlc.settings import Settings

if TYPE_CHECKING:
    from hrlc.lake.store import Store

ingest_app = typer.Typer(
    name="ingest",
    help="Catalogue what arrives in the Data Lake (watch) and copy scenes from external STAC APIs (harvest).",
    no_args_is_help=True,
)
_console = Console(stderr=True)


def _fail(message: str) -> None:
    _console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _dsn(dsn: str | None) -> str:
    value = dsn or Settings().catalog
    if not value.startswith(("postgresql://", "postgres://")):
        _fail("ingest needs a pgstac catalogue: give --dsn or set HRLC_CATALOG=postgresql://...")
    return value


def _store(url: str | None) -> Store:
    from hrlc.lake.store import open_store

    settings = Settings()
    try:
        return open_store(url or settings.store, settings)
    except ValueError as e:
        _fail(str(e))
        raise  # unreachable


@ingest_app.command()
def watch(
    store: Annotated[str | None, typer.Option(help="Lake URL (default HRLC_STORE)")] = None,
    dsn: Annotated[str | None, typer.Option(help="pgstac DSN (default HRLC_CATALOG)")] = None,
    prefix: Annotated[str, typer.Option(help="Only keys under this prefix")] = "",
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between polls")] = 10.0,
    batch: Annotated[int, typer.Option(min=1, help="Objects per transaction")] = 1000,
    once: Annotated[bool, typer.Option("--once", help="One scan, then exit")] = False,
    max_scans: Annotated[int | None, typer.Option(help="Stop after this many scans")] = None,
) -> None:
    """Poll the lake and load every new or changed product into pgstac (checkpointed, idempotent)."""
    require("platform", "hrlc ingest watch")
    from hrlc.catalog.ingest import ScanReport
    from hrlc.catalog.ingest import watch as run_watch
    from hrlc.outage import quiet_clients

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    quiet_clients()

    def report(rep: ScanReport) -> None:
        typer.echo(json.dumps(rep.as_dict()))

    run_watch(
        _store(store),
        _dsn(dsn),
        prefix=prefix,
        interval_s=interval,
        once=once,
        batch=batch,
        max_scans=max_scans,
        on_scan=report,
    )


@ingest_app.command()
def harvest(
    stac_url: Annotated[str, typer.Option("--stac-url", help="External STAC API root")],
    collection: Annotated[str, typer.Option(help="Collection of the external API")],
    bbox: Annotated[
        str | None,
        typer.Option(help="left,bottom,right,top in lon/lat"),
    ] = None,
    datetime: Annotated[
        str | None,
        typer.Option(help="RFC 3339 datetime or interval, e.g. 2023-10-01/2023-10-31"),
    ] = None,
    assets: Annotated[
        str | None,
        typer.Option(help="Comma-separated asset keys (default: GeoTIFF data assets)"),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many items")] = None,
    store: Annotated[str | None, typer.Option(help="Lake URL (default HRLC_STORE)")] = None,
    dsn: Annotated[str | None, typer.Option(help="pgstac DSN (default HRLC_CATALOG)")] = None,
) -> None:
    """Copy matching scenes' assets into raw/ of the lake and register them in the hrlc-raw collection."""
    require("platform", "hrlc ingest harvest")
    from hrlc.catalog.harvest import HarvestError
    from hrlc.catalog.harvest import harvest as run_harvest

    box = None
    if bbox:
        try:
            box = [float(v) for v in bbox.split(",")]
        except ValueError:
            _fail(f"--bbox {bbox!r} is not left,bottom,right,top")
        if box is None or len(box) != 4 or not (box[0] < box[2] and box[1] < box[3]):
            _fail(f"--bbox {bbox!r} is not left,bottom,right,top")
    try:
        rep = run_harvest(
            stac_url,
            collection,
            box,
            datetime,
            _store(store),
            _dsn(dsn),
            assets=[a.strip() for a in assets.split(",")] if assets else None,
            limit=limit,
        )
    except HarvestError as e:
        _fail(str(e))
        return
    typer.echo(json.dumps(rep.as_dict()))
    if rep.errors:
        raise typer.Exit(1)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m hrlc.catalog.ingest_cli --store URL --dsn DSN [--once] [--interval S] [--batch N]`: the watcher
    without typer, one JSON line per batch (the fault test kills it between batches)."""
    from hrlc.catalog.ingest import DEFAULT_BATCH, ScanReport, watch
    from hrlc.outage import quiet_clients

    p = argparse.ArgumentParser(prog="python -m hrlc.catalog.ingest_cli", description="The ingest watcher.")
    p.add_argument("--store", default=None, help="lake URL (default HRLC_STORE)")
    p.add_argument("--dsn", default=None, help="pgstac DSN (default HRLC_CATALOG)")
    p.add_argument("--prefix", default="")
    p.add_argument("--interval", type=float, default=10.0)
    p.add_argument("--batch", type=int, default=DEFAULT_BATCH)
    p.add_argument("--once", action="store_true")
    p.add_argument("--max-scans", type=int, default=None)
    a = p.parse_args(argv)
    settings = Settings()
    dsn = a.dsn or settings.catalog
    if not dsn.startswith(("postgresql://", "postgres://")):
        print("error: --dsn (or HRLC_CATALOG) must be a postgresql:// DSN", file=sys.stderr)
        return 2
    from hrlc.lake.store import open_store

    store = open_store(a.store or settings.store, settings)

    def progress(rep: ScanReport) -> None:
        print(json.dumps(rep.as_dict()), flush=True)

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    quiet_clients()
    watch(
        store,
        dsn,
        prefix=a.prefix,
        interval_s=a.interval,
        once=a.once,
        batch=a.batch,
        max_scans=a.max_scans,
        on_batch=progress,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

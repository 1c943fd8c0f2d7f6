"""`hrlc ancillary ...`: the registry of ancillary data (spec §3.4.1) on the command line.

    hrlc ancillary list
    hrlc ancillary get copernicus-dem --aoi 14.50,45.85,14.60,45.90 --resolution 30
    hrlc ancillary put glc-fcs30d GLC_FCS30D_2020_E10N50.tif --year 2020
    hrlc ancillary agreement classified_map_optical_2021_annual.tif --reference esa-worldcover

Results are JSON on stdout. Bad input (unknown dataset, manual dataset not uploaded yet, AOI outside the
data, bad AOI, unreachable database or source, a database whose `ancillary` schema is behind: run
`hrlc migrate`) ends with one line `error: ...` on stderr and exit code 2.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hrlc.extras import require
from hrlc.settings import Settings

if TYPE_CHECKING:
    from hrlc.ancillary.agreement import Level
    from hrlc.ancillary.service import Ancillary

ancillary_app = typer.Typer(
    name="ancillary",
    help="Ancillary data (DEM, reference land-cover maps...): list the registry, get a layer on a product grid "
    "(cached in the Data Lake), put a manually retrieved file, compare a class map with a reference map.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)

PRODUCT_RESOLUTIONS = (10.0, 30.0)


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _echo(data: Any) -> None:
    typer.echo(json.dumps(data, indent=1, default=str))


def _settings() -> Settings:
    """The settings of this command (`HRLC_*`): the entry point reads them, nothing below it does."""
    return Settings()


@contextlib.contextmanager
def _service() -> Iterator[Ancillary]:
    """The ancillary component over the lake, catalogue and database of the settings; closes the catalogue."""
    from hrlc.ancillary.service import Ancillary
    from hrlc.catalog.factory import open_catalog
    from hrlc.lake.store import open_store

    settings = _settings()
    store = open_store(settings.store, settings)
    catalog = open_catalog(store, settings)
    try:
        yield Ancillary(settings, store=store, catalog=catalog)
    finally:
        catalog.close()


@ancillary_app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table")] = False,
) -> None:
    """The registry: every dataset with its roles, licence, access, and what is uploaded and cached."""
    require("platform", "hrlc ancillary list")
    from hrlc.ancillary.db import DatabaseError
    from hrlc.ancillary.service import AncillaryError

    try:
        with _service() as svc:
            rows = svc.status()
    except (AncillaryError, DatabaseError) as e:
        _fail(str(e))
    if as_json:
        _echo(rows)
        return
    table = Table(title="hrlc ancillary datasets (spec §3.4.1)")
    table.add_column("name", no_wrap=True)
    for col in ("kind", "roles", "access", "editions", "uploads", "cached"):
        table.add_column(col)
    for r in rows:
        roles = ", ".join(r["roles"]) + "".join(f", ({p})" for p in r["possible_roles"])
        access = r["access"] + (f": {r['stac_collection']}" if r["stac_collection"] else "")
        editions = r["editions"]
        ed = editions[0] if len(editions) == 1 else f"{editions[0]}..{editions[-1]} ({len(editions)})"
        table.add_row(r["name"], r["kind"], roles, access, ed, str(r["uploads"]), str(r["cached_layers"]))
    Console().print(table)


@ancillary_app.command()
def get(
    name: Annotated[str, typer.Argument(help="Dataset name (see `hrlc ancillary list`)")],
    aoi: Annotated[
        str, typer.Option(help="AOI: 'left,bottom,right,top' in lon/lat (or --aoi-crs), or a GeoJSON file")
    ],
    aoi_crs: Annotated[str, typer.Option(help="CRS of a numeric --aoi")] = "EPSG:4326",
    crs: Annotated[str | None, typer.Option(help="Grid CRS (metres); default: UTM zone of the AOI")] = None,
    resolution: Annotated[float, typer.Option(help="Grid resolution in metres: 10 or 30")] = 30.0,
    year: Annotated[
        int | None, typer.Option(help="Edition of a multi-year dataset; default: the latest")
    ] = None,
    api: Annotated[
        str | None,
        typer.Option(help="STAC API replacing the dataset's own (default: HRLC_ANCILLARY_STAC_API)"),
    ] = None,
    refresh: Annotated[bool, typer.Option(help="Retrieve again even when the layer is cached")] = False,
) -> None:
    """The layer NAME clipped and reprojected to the product grid of the AOI, cached in the Data Lake."""
    require("platform", "hrlc ancillary get")
    from hrlc.ancillary.service import AncillaryError
    from hrlc.aoi import parse_aoi
    from hrlc.errors import InputError

    if resolution not in PRODUCT_RESOLUTIONS:
        _fail(f"--resolution must be 10 or 30 (the HRLC product grids), not {resolution:g}")
    try:
        bbox, bbox_crs = parse_aoi(aoi, aoi_crs)
        with _service() as svc:
            layer = svc.get(
                name,
                aoi=bbox,
                aoi_crs=bbox_crs,
                crs=crs,
                resolution=resolution,
                year=year,
                api=api,
                refresh=refresh,
            )
    except (InputError, AncillaryError) as e:
        _fail(str(e))
    how = (
        "read from the lake cache, no request to the source"
        if layer.cached
        else f"retrieved from {layer.source}"
    )
    console.print(f"{layer.dataset} {layer.edition}: {how}", highlight=False)
    _echo(layer.to_dict())


@ancillary_app.command()
def put(
    name: Annotated[str, typer.Argument(help="A manual dataset of the registry")],
    file: Annotated[
        Path, typer.Argument(help="The file retrieved by hand (GeoTIFF; vector: GeoPackage/GeoJSON)")
    ],
    year: Annotated[
        int | None, typer.Option(help="Edition (year) of the file, for multi-year datasets")
    ] = None,
    source_url: Annotated[
        str | None,
        typer.Option(help="Where the file was downloaded from (recorded with the upload)"),
    ] = None,
) -> None:
    """Upload a manually retrieved file to the shared S3 (the Data Lake) and record it; the same bytes again
    change nothing."""
    require("platform", "hrlc ancillary put")
    from hrlc.ancillary.service import AncillaryError

    try:
        with _service() as svc:
            up = svc.put(name, file, year=year, source_url=source_url)
    except AncillaryError as e:
        _fail(str(e))
    console.print(
        f"{up.dataset} {up.edition}: {'uploaded' if up.created else 'already uploaded, nothing changed'}",
        highlight=False,
    )
    _echo(up.to_dict())


@ancillary_app.command()
def agreement(
    class_map: Annotated[str, typer.Argument(help="Class map (GeoTIFF in HRLC codes; a path or a lake key)")],
    reference: Annotated[str, typer.Option(help="Reference map of the registry")] = "esa-worldcover",
    year: Annotated[int | None, typer.Option(help="Edition of the reference; default: the latest")] = None,
    level: Annotated[str, typer.Option(help="group (coarse groups) or class (HRLC codes)")] = "group",
    output: Annotated[Path | None, typer.Option(help="Write the JSON report here too")] = None,
    api: Annotated[str | None, typer.Option(help="STAC API replacing the reference's own")] = None,
) -> None:
    """Agreement of a class map with a reference land-cover map (cross-walked to the HRLC legend) on the class
    map's grid: overall and per-class agreement, kappa, confusion matrix (JSON)."""
    require("platform", "hrlc ancillary agreement")
    from hrlc.ancillary.service import AncillaryError

    if level not in ("group", "class"):
        _fail(f"--level must be group or class, not {level!r}")
    try:
        with _service() as svc:
            report = svc.agreement(
                class_map, reference=reference, year=year, level=cast("Level", level), api=api
            )
    except AncillaryError as e:
        _fail(str(e))
    if output is not None:
        output.write_text(json.dumps(report, indent=1))
    _echo(report)


@ancillary_app.command()
def migrate() -> None:
    """Create or update the `ancillary` schema in HRLC_TRAINING_DSN (`hrlc migrate` does it for every schema)."""
    require("platform", "hrlc ancillary migrate")
    import psycopg

    from hrlc.ancillary import db
    from hrlc.db.migrations import MigrationError

    dsn = _settings().training_dsn
    try:
        applied = db.migrate(dsn)
    except (MigrationError, psycopg.OperationalError) as e:
        _fail(str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__)
    _echo({"applied": applied})

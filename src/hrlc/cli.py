"""The `hrlc` command line: run the land-cover chain on any STAC source, or the demo on synthetic data.

Bad input ends with one line on stderr (`error: ...`) and exit code 2; nothing half-written stays behind.
The core install runs `demo`, `run` and every `--help`; a command that needs an extra (`serve`, `worker`,
`training ...`) says which one to install, in one line with exit code 2 (`hrlc.extras`).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from hrlc import __version__
from hrlc.aoi import parse_aoi
from hrlc.errors import InputError
from hrlc.extras import MissingExtra, extra_of, require
from hrlc.jobs.request import BoundingBox, LandCoverRequest
from hrlc.settings import Settings

if TYPE_CHECKING:
    pass

app = typer.Typer(
    name="hrlc",
    help="hrlc: land-cover and land-cover-change maps from Sentinel-2, Sentinel-1 and Landsat time series "
    "(ESA CCI High Resolution Land Cover). Runs in-process on a local Data Lake by default.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},  # inherited by every sub-command
)
console = Console(stderr=True)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"hrlc {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(
        False,
        "--version",
        "-V",
        help="Print the hrlc version and exit.",
        callback=_print_version,
        is_eager=True,
    ),
) -> None:
    """The options before any command (the app's help is `app`'s)."""


def _error(message: str) -> None:
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def _fail(message: str, code: int = 2) -> None:
    _error(message)
    raise typer.Exit(code)


def _help(field: str) -> str | None:
    """The help of a `run` option: the description of its field of the land-cover request."""
    return LandCoverRequest.model_fields[field].description


def _default(field: str) -> Any:  # noqa: ANN401 - the field's own type
    """The default of a `run` option: the default of its field of the land-cover request."""
    return LandCoverRequest.model_fields[field].default


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
    )


@app.command()
def run(
    aoi: Annotated[
        str, typer.Option(help="AOI: 'left,bottom,right,top' in lon/lat (or --aoi-crs), or a GeoJSON file")
    ],
    year: Annotated[int, typer.Option(help=_help("year"))],
    source: Annotated[str, typer.Option(help=_help("source"))],
    workdir: Annotated[
        Path, typer.Option(help="Working folder; the Data Lake is DIR/lake unless HRLC_STORE is set")
    ],
    training: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(help="Training samples (GeoPackage/GeoJSON/Shapefile) with HRLC codes"),
    ] = None,
    training_db: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            help="Training samples from the training-set database (HRLC_TRAINING_DSN) instead of --training: "
            "'area=...,year=...,type=...,source=...,provider=...,roi=...,bbox=W,S,E,N' (any subset)"
        ),
    ] = None,
    sensor: Annotated[Optional[str], typer.Option(help=_help("sensor"))] = _default("sensor"),  # noqa: UP045
    aoi_crs: Annotated[str, typer.Option(help="CRS of a numeric --aoi")] = "EPSG:4326",
    crs: Annotated[Optional[str], typer.Option(help=_help("crs"))] = _default("crs"),  # noqa: UP045
    resolution: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option(help=_help("resolution")),
    ] = _default("resolution"),
    composite: Annotated[str, typer.Option(help=_help("composite"))] = _default("composite"),
    dilate: Annotated[int, typer.Option(help=_help("dilate"))] = _default("dilate"),
    mask_snow: Annotated[bool, typer.Option(help=_help("mask_snow"))] = _default("mask_snow"),
    classifier: Annotated[str, typer.Option(help=_help("classifier"))] = _default("classifier"),
    seed: Annotated[int, typer.Option(help=_help("seed"))] = _default("seed"),
    holdout: Annotated[float, typer.Option(help=_help("holdout"))] = _default("holdout"),
    validation_block_m: Annotated[
        float, typer.Option("--validation-block", help=_help("validation_block_m"))
    ] = _default("validation_block_m"),
    group_column: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help=_help("group_column")),
    ] = _default("group_column"),
    tile_size: Annotated[int, typer.Option(help=_help("tile_size"))] = _default("tile_size"),
    resume: Annotated[bool, typer.Option(help="Skip tasks whose outputs already exist")] = True,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Check and plan only, in seconds: scenes per period and their cloud cover, training samples in "
            "the AOI per class, tiles and pixels, estimated time and memory; nothing is computed",
        ),
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print the products (class map, reports, every STAC Item), or the plan, as JSON on stdout",
        ),
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what happens")] = False,
) -> None:
    """Run the optical land-cover chain (composites -> features -> classification) for one AOI and year.

    The options are the arguments of the openEO process `hrlc_land_cover`, with its defaults; --aoi and
    --aoi-crs give its spatial_extent, --training or --training-db its training samples. Ends with a summary
    (the class map, its estimated accuracy, the time taken), or with --json the products as JSON.

    Example, on the demo's synthetic repository (`hrlc demo` made hrlc-demo/external):

        hrlc run --aoi 430080,5149440,440320,5159680 --aoi-crs EPSG:32633 --year 2021 --sensor sentinel2
        --source hrlc-demo/external/stac/catalog.json --training hrlc-demo/external/training/points.gpkg
        --workdir my-run --tile-size 5120

    Exit codes: 0 done, 2 bad input (an option, a file, the source or training data), 1 a failure while running
    (a service down, a disk full)."""
    from hrlc.backends import Backends
    from hrlc.catalog.sources import SourceError
    from hrlc.demo import lake_for
    from hrlc.jobs.dag import NoScenes, choose_sensor, land_cover_dag, product_key, target_pixels
    from hrlc.jobs.preview import preview, training_in_aoi
    from hrlc.jobs.runner import InProcessRunner
    from hrlc.lake.store import S3Store, StoreError
    from hrlc.processors.base import ProcessorError
    from hrlc.training.samples import TrainingDataError, read_training

    _setup_logging(verbose)
    started = time.perf_counter()
    backends: Backends | None = None
    try:
        bbox, bbox_crs = parse_aoi(aoi, aoi_crs)
        if (training is None) == (training_db is None):
            raise InputError("give exactly one of --training FILE and --training-db SELECTION")
        if training is not None:
            if not training.is_file():
                raise InputError(f"training file {training} does not exist")
            read_training(training, group_column=group_column)  # at the edge: CRS, geometries, codes, groups
        else:
            require("platform", "hrlc run --training-db")
            query = _training_query(str(training_db))
        request = LandCoverRequest.model_validate(
            {
                "spatial_extent": BoundingBox.of(bbox, bbox_crs),
                "year": year,
                "source": source,
                "training": str(training.resolve()) if training is not None else query,
                "sensor": sensor,
                "crs": crs,
                "resolution": resolution,
                "composite": composite,
                "dilate": dilate,
                "mask_snow": mask_snow,
                "classifier": classifier,
                "seed": seed,
                "holdout": holdout,
                "validation_block_m": validation_block_m,
                "group_column": group_column,
                "tile_size": tile_size,
            }
        )
        # the cheap checks before anything heavy: samples in the AOI, the sensor the source holds for the year
        if training is not None:
            training_in_aoi(str(training.resolve()), request, group_column)
        request = choose_sensor(request)
        dag = land_cover_dag(request)
        if dry_run:
            plan = preview(request, dag)
            typer.echo(json.dumps(plan, indent=1) if as_json else _preview_text(plan))
            return
        settings = Settings()
        try:
            workdir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(f"cannot create the working folder {workdir}: {e.strerror}") from None
        backends = Backends.from_settings(settings, store=lake_for(workdir, settings))  # no connection yet
        if training_db is not None and backends.training is not None:
            backends.training.select(query)  # validate at the edge: the selection has samples
        if isinstance(backends.store, S3Store):
            backends.store.check()  # unreachable endpoint or missing bucket: one line now, not a traceback later
        runner = InProcessRunner(
            backends.store,
            backends.catalog,
            training=backends.training,
            ancillary=backends.ancillary,
            resume=resume,
            console=console,
        )
        tiles = sum(t.processor == "optical-preprocessing" for t in dag.tasks)
        console.log(
            f"the AOI touches {tiles} tile(s) of {tile_size} m: {target_pixels(dag):,.0f} px of composites and "
            "features to make (each tile whole, kept for later runs)"
        )
        result = runner.run(dag)
        products = {  # the AOI's, among the tiles' products in `items`
            "class_map": backends.store.href(product_key(dag, "class-map")),
            "map_accuracy": backends.store.href(product_key(dag, "map-accuracy")),
            "validation_report": backends.store.href(product_key(dag, "accuracy-report")),
        }
        assessed = json.loads(backends.store.read_bytes(product_key(dag, "map-accuracy")))
    except (InputError, NoScenes, ProcessorError, SourceError, TrainingDataError, StoreError) as e:
        _fail(str(e))
    except ValidationError as e:
        first = e.errors()[0]
        where, what = ".".join(str(p) for p in first["loc"]), first["msg"].removeprefix("Value error, ")
        _fail(f"invalid {where}: {what}")
    finally:
        if backends is not None:
            backends.close()
    if as_json:
        typer.echo(json.dumps({**products, "items": result.items}, indent=1))
        return
    oa, skipped = assessed["overall_accuracy"], sum(t.skipped for t in result.tasks)
    typer.echo(
        f"done in {time.perf_counter() - started:.0f} s: {len(result.tasks) - skipped} tasks run"
        + (f", {skipped} found done in the lake" if skipped else "")
        + f"\nclass map:   {products['class_map']}"
        f"\naccuracy:    {oa['estimate']:.3f} (95 % CI {oa['ci95'][0]:.3f}-{oa['ci95'][1]:.3f}), area-weighted, "
        f"from {assessed['n_samples']} samples in {assessed['validation']['summary']} (docs/accuracy.md)"
        f"\nits report:  {products['map_accuracy']}"
        f"\nSTAC items:  {len(result.items)} (--json lists them)"
    )


def _preview_text(plan: dict[str, Any]) -> str:
    """The human reading of `hrlc run --dry-run`."""
    periods = "  ".join(
        f"{p}: {v['scenes']}"
        + (f" ({v['mean_cloud_cover']:.0f} % cloud)" if v["mean_cloud_cover"] is not None else "")
        for p, v in plan["periods"].items()
    )
    samples = plan["training_samples"]
    if "selection" in samples:
        training = f"selection {samples['selection']} (counted when the run starts)"
    else:
        training = ", ".join(f"{plan['class_names'][c]} ({c}): {n}" for c, n in samples.items())
    lines = [
        f"{plan['sensor']} {plan['year']} from {plan['source']}: {plan['scenes']} scenes over the AOI",
        f"per period: {periods}",
        f"training samples in the AOI: {training}",
        f"to compute: {plan['tiles']} tile(s), {plan['pixels'] / 1e6:.1f} Mpx; about {plan['estimated_seconds']} s "
        f"and at most {plan['estimated_peak_gb']} GB of memory ({plan['estimate_basis']})",
    ]
    if plan["empty_periods"]:
        lines.append(
            f"warning: no scene in {', '.join(plan['empty_periods'])}: those composites will be empty"
        )
    return "\n".join(lines)


def _training_query(text: str):  # noqa: ANN202 - TrainingQuery, imported lazily
    """Parse a --training-db selection (`InputError` with one line)."""
    from hrlc.training.query import parse_query

    try:
        query = parse_query(text)
    except (ValueError, ValidationError) as e:
        first = e.errors()[0]["msg"] if isinstance(e, ValidationError) else str(e)
        raise InputError(f"--training-db {text!r}: {first}") from None
    return query


@app.command()
def demo(
    workdir: Annotated[
        Path, typer.Option(help="Folder for the synthetic repository, the lake and the report")
    ] = Path("hrlc-demo"),
    size: Annotated[int, typer.Option(min=64, max=8192, help="Grid size in pixels (10 m)")] = 1024,
    year: Annotated[int, typer.Option(help="Year of the synthetic Sentinel-2 scenes")] = 2021,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic repository")] = 42,
    classifier: Annotated[str, typer.Option(help=_help("classifier"))] = _default("classifier"),
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Generate a synthetic repository with a known answer, run the whole chain, and report the accuracy."""
    from hrlc.demo import run_demo
    from hrlc.lake.store import StoreError

    _setup_logging(verbose)
    try:
        report = run_demo(
            workdir,
            size=size,
            year=year,
            seed=seed,
            classifier=classifier,
            console=console,
            settings=Settings(),
        )
    except StoreError as e:
        _fail(str(e))
    est, sampled = report["estimated_accuracy"], report["assessed_accuracy"]
    console.print(
        f"[bold green]demo finished[/] in {report['elapsed_s']:.0f} s: overall accuracy "
        f"{report['overall_accuracy']:.3f}, kappa {report['kappa']:.3f} against the truth map (every pixel)\n"
        f"estimated by the chain:  {est['estimate']:.3f} (95 % CI {est['ci95'][0]:.3f}-{est['ci95'][1]:.3f}; "
        f"{est['from']})\n"
        f"assessed independently: {sampled['estimate']:.3f} (95 % CI {sampled['ci95'][0]:.3f}-"
        f"{sampled['ci95'][1]:.3f}; {sampled['from']})\n"
        f"class map: {report['class_map']}\nquicklook: {report['quicklook']}\n"
        f"report:    {workdir / 'demo-report.json'}"
    )


@app.command()
def assess(
    map_path: Annotated[
        Path, typer.Argument(metavar="MAP", help="The class map: a single-band GeoTIFF of HRLC class codes")
    ],
    reference: Annotated[
        Path,
        typer.Argument(
            metavar="REFERENCE",
            help="Reference data: a raster of class codes (any CRS and resolution), or points "
            "(GeoPackage/GeoJSON) with a class column",
        ),
    ],
    n_per_class: Annotated[
        int,
        typer.Option(min=2, help="Sample pixels per map class (a raster reference; fewer if it has fewer)"),
    ] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the random sample")] = 0,
    crosswalk: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            help="Reference legend to HRLC: a built-in (worldcover, cci-lc, glc-fcs30, cgls-lc100) or a JSON file, "
            "an object reference code -> map code, or null to drop the code"
        ),
    ] = None,
    class_column: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Class column of reference points (default: class_code, class, label, ...)"),
    ] = None,
    out: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(help="Write the assessment (estimates, error matrix, design, sample) as JSON here"),
    ] = None,
    plot: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(help="Write a PNG of the error matrix and per-class accuracies here"),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the assessment as JSON on stdout instead of a summary")
    ] = False,
) -> None:
    """Assess a class map against independent reference data: overall, user's and producer's accuracies and
    class areas with 95 % confidence intervals (Olofsson et al. 2014), from a random sample stratified by map
    class (a reference raster) or from your reference points (post-stratified by map class).

    Example, after `hrlc demo` (it prints the class map's path):

        hrlc assess CLASS_MAP.tif hrlc-demo/external/truth/truth_2021.tif --plot assess.png --out assess.json
    """
    from hrlc.assess import AssessError, assess_map, read_crosswalk
    from hrlc.products.accuracy_plot import write_accuracy_plot

    try:
        table = read_crosswalk(crosswalk) if crosswalk is not None else None
        result = assess_map(
            map_path,
            reference,
            n_per_class=n_per_class,
            seed=seed,
            crosswalk=table,
            class_column=class_column,
        )
    except AssessError as e:
        _fail(str(e))
    text = json.dumps(result, indent=1)
    try:
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text + "\n")
        if plot is not None:
            write_accuracy_plot(plot, result, title=f"{map_path.name} against {reference.name}")
    except OSError as e:
        _fail(f"cannot write {e.filename}: {e.strerror}", 1)
    if as_json:
        typer.echo(text)
        return
    _print_assessment(result, out, plot)


def _print_assessment(result: dict[str, Any], out: Path | None, plot: Path | None) -> None:
    """The summary of `hrlc assess` on stdout: overall accuracy, the per-class table, warnings, files written."""
    from rich import box
    from rich.table import Table

    from hrlc import legend

    def pm(value: dict[str, Any]) -> str:
        if value["estimate"] is None:
            return "n/a"
        if value["ci95"] is None:
            return f"{value['estimate']:.3f}"
        return f"{value['estimate']:.3f} ± {(value['ci95'][1] - value['ci95'][0]) / 2:.3f}"

    stdout = Console()
    oa = result["overall_accuracy"]
    stdout.print(
        f"[bold]overall accuracy {pm(oa)}[/] (95 % CI), {result['n_samples']} samples, "
        f"{result['dropped']} dropped ({result['design']['sampling']})",
        highlight=False,
    )
    table = Table(
        "class",
        "n",
        "W",
        "user's acc.",
        "producer's acc.",
        "area (ha)",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for column in table.columns:
        column.no_wrap = True
    table.columns[0].overflow = "ellipsis"
    table.columns[0].max_width = 20
    for code in result["labels"]:
        key = str(code)
        area = result["area"][key]
        half = (area["m2_ci95"][1] - area["m2_ci95"][0]) / 2 / 1e4
        table.add_row(
            f"{key} {legend.name(code)[:22]}" if code in legend.CLASSES else key,
            str(result["samples_per_map_class"][key]),
            f"{result['weights'][key]:.3f}",
            pm(result["users_accuracy"][key]),
            pm(result["producers_accuracy"][key]),
            f"{area['m2'] / 1e4:,.1f} ± {half:,.1f}",
        )
    stdout.print(table)
    stdout.print("n: samples of the map class, W: its share of the map; ±: half the 95 % CI", highlight=False)
    for warning in result["warnings"]:
        stdout.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    for what, path in (("report", out), ("plot", plot)):
        if path is not None:
            stdout.print(f"{what}: {path}", highlight=False, soft_wrap=True)


@app.command()
def version() -> None:
    """Print the hrlc version."""
    typer.echo(__version__)


from hrlc.catalog.ingest_cli import ingest_app  # noqa: E402

app.add_typer(ingest_app, name="ingest")
from hrlc.training.cli import training_app  # noqa: E402

app.add_typer(training_app, name="training")
from hrlc.ancillary.cli import ancillary_app  # noqa: E402

app.add_typer(ancillary_app, name="ancillary")


users_app = typer.Typer(
    name="users",
    help="Users of the openEO API's password login (the users file HRLC_USERS_FILE, or --file): add, change "
    "passwords, remove, list. A new password ends the user's existing tokens.",
    no_args_is_help=True,
)
app.add_typer(users_app, name="users")

UsersFile = Annotated[
    Optional[Path],  # noqa: UP045
    typer.Option("--file", help="The users file (default: HRLC_USERS_FILE)"),
]


def _users_file(file: Path | None) -> Path:
    configured = Settings().users_file
    path = file or (Path(configured) if configured else None)
    if path is None:
        _fail("no users file: give --file or set HRLC_USERS_FILE")
    assert path is not None
    return path


def _read_users(path: Path) -> dict[str, Any]:
    from hrlc.api.openeo.users import load_users

    if not path.exists():
        return {}
    try:
        return dict(load_users(path))
    except (OSError, ValueError) as e:
        _fail(f"cannot read the users file {path}: {e}")
    return {}


def _new_password(password_stdin: bool) -> str:
    import sys

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        _fail("the password needs at least 8 characters")
    return password


PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin (no prompt)")
]


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="User name: letters, digits, _ . @ -")],
    role: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option("--role", help="operator or admin (repeatable); every user has the role user"),
    ] = None,
    password_stdin: PasswordStdin = False,
    file: UsersFile = None,
) -> None:
    """Add a user with a password (asked twice, or from stdin) and roles."""
    require("platform", "hrlc users add")
    from hrlc.api.openeo.users import ROLES, USER_NAME, User, hash_password, save_users

    path = _users_file(file)
    if not USER_NAME.match(name):
        _fail(f"user name {name!r}: use 1 to 64 letters, digits, _ . @ -")
    unknown = sorted(set(role or []) - set(ROLES))
    if unknown:
        _fail(f"unknown role {unknown[0]!r}: use operator or admin")
    users = _read_users(path)
    if name in users:
        _fail(f"user {name} exists: use hrlc users passwd to change the password")
    users[name] = User(hash_password(_new_password(password_stdin)), frozenset({"user", *(role or [])}))
    save_users(path, users)
    typer.echo(f"added {name} ({', '.join(sorted(users[name].roles))}) to {path}")


@users_app.command("passwd")
def users_passwd(
    name: Annotated[str, typer.Argument(help="User name")],
    password_stdin: PasswordStdin = False,
    file: UsersFile = None,
) -> None:
    """Change a user's password; tokens issued before stop working."""
    require("platform", "hrlc users passwd")
    from hrlc.api.openeo.users import User, hash_password, save_users

    path = _users_file(file)
    users = _read_users(path)
    if name not in users:
        _fail(f"no user {name} in {path}")
    users[name] = User(hash_password(_new_password(password_stdin)), users[name].roles)
    save_users(path, users)
    typer.echo(f"changed the password of {name}; their earlier tokens are no longer valid")


@users_app.command("remove")
def users_remove(name: Annotated[str, typer.Argument(help="User name")], file: UsersFile = None) -> None:
    """Remove a user; their tokens stop working at once."""
    require("platform", "hrlc users remove")
    from hrlc.api.openeo.users import save_users

    path = _users_file(file)
    users = _read_users(path)
    if users.pop(name, None) is None:
        _fail(f"no user {name} in {path}")
    save_users(path, users)
    typer.echo(f"removed {name} from {path}")


@users_app.command("list")
def users_list(file: UsersFile = None) -> None:
    """The users and their roles (never the hashes)."""
    require("platform", "hrlc users list")
    for name, user in sorted(_read_users(_users_file(file)).items()):
        typer.echo(f"{name}\t{','.join(sorted(user.roles))}")


MIGRATED = ("pgstac", "api", "ingest", "jobs", "training", "ancillary")


@app.command()
def migrate(
    catalog_dsn: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--catalog", help="DSN of the catalogue database: pgstac, api, ingest (default HRLC_CATALOG)"
        ),
    ] = None,
    jobs_dsn: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--jobs-dsn", help="DSN of the job store: jobs (default HRLC_JOBS_DSN)"),
    ] = None,
    training_dsn: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--training-dsn",
            help="DSN of the PostGIS database: training, ancillary (default HRLC_TRAINING_DSN)",
        ),
    ] = None,
    only: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option("--only", help=f"Only these components (repeat): {', '.join(MIGRATED)}"),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Report versions, apply nothing; exit 1 if one is behind")
    ] = False,
) -> None:
    """Create or upgrade every database schema of hrlc, by versioned migrations (run it after installing a release,
    before starting the services: they check their schema as they start and refuse if it is behind)."""
    require("platform", "hrlc migrate")
    from hrlc.settings import get_settings, pg_dsn

    settings = get_settings()
    chosen = list(only or MIGRATED)
    unknown = sorted(set(chosen) - set(MIGRATED))
    if unknown:
        _fail(f"unknown component {unknown[0]!r}: choose from {', '.join(MIGRATED)}")
    catalog = catalog_dsn or pg_dsn(settings.catalog)
    dsns = {
        "pgstac": catalog,
        "api": catalog,
        "ingest": catalog,
        "jobs": jobs_dsn or settings.jobs_dsn,
        "training": training_dsn or settings.training_dsn,
        "ancillary": training_dsn or settings.training_dsn,
    }
    behind = failed = 0
    for component in chosen:
        dsn = dsns[component]
        if dsn is None:
            console.print(f"{component:<10} skipped: HRLC_CATALOG is the static catalogue (give --catalog)")
            continue
        try:
            line = _migrate_component(component, dsn, check)
        except Exception as e:  # noqa: BLE001 - one line per component, whatever its driver raises
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            console.print(f"{component:<10} [red]failed[/]: {first}", highlight=False, soft_wrap=True)
            failed += 1
            continue
        behind += line.startswith("behind")
        console.print(f"{component:<10} {line}", highlight=False, soft_wrap=True)
    if failed or behind:
        raise typer.Exit(1)


def _migrate_component(component: str, dsn: str, check_only: bool) -> str:
    """Migrate (or check) one component; a line saying what it found or did."""
    from hrlc.db import migrations

    if component == "pgstac":
        from pypgstac import __version__ as want
        from pypgstac.db import PgstacDB
        from pypgstac.migrate import Migrate

        db = PgstacDB(dsn=dsn)
        try:
            have = db.version
            if check_only:
                return f"{'current' if have == want else 'behind'}: {have} (this hrlc: {want})"
            if have == want:
                return f"current: {have}"
            return f"migrated {have or 'nothing'} -> {Migrate(db).run_migration()}"
        finally:
            db.close()
    folders = {
        "api": ("hrlc.api.openeo", "migrations"),
        "ingest": ("hrlc.catalog", "migrations"),
        "jobs": ("hrlc.jobs", "migrations"),
        "training": ("hrlc.training", "migrations"),
        "ancillary": ("hrlc.ancillary", "migrations"),
    }
    from importlib import resources

    import psycopg

    package, name = folders[component]
    folder = resources.files(package) / name
    if check_only:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
            try:
                return f"current: version {migrations.check(conn, component, folder)}"
            except migrations.SchemaBehind as e:
                return f"behind: {e}"
    applied = migrations.migrate(dsn, component, folder)
    version = migrations.current_version(dsn, component)
    return (
        f"migrated to version {version}: {', '.join(applied)}" if applied else f"current: version {version}"
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8080,
    root_path: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Path prefix a proxy serves the API under (default: HRLC_API_ROOT_PATH)"),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
    workers: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            min=1,
            help="Worker processes (default: HRLC_API_WORKERS, 2); with 2 or more a supervisor restarts a worker "
            "that dies, so a crash costs one request, not the service",
        ),
    ] = None,
) -> None:
    """Serve the STAC API (/stac, over HRLC_CATALOG) and the openEO API (/openeo) with uvicorn."""
    require("platform", "hrlc serve")
    import os

    import uvicorn

    from hrlc.api import create_app
    from hrlc.settings import get_settings

    settings = get_settings()
    if root_path is not None:
        os.environ["HRLC_API_ROOT_PATH"] = root_path  # the worker processes read their settings anew
        settings = settings.model_copy(update={"api_root_path": root_path})
    problem = secret_problem(settings, host)
    if problem:
        _fail(problem)
    try:
        unreachable = catalogue_problem(settings)
        if unreachable:  # the STAC API cannot start without its database: one line, exit 1, not a traceback
            _fail(unreachable, 1)
        application = create_app(settings)  # a bad configuration fails here, in one line
    except ValueError as e:
        _fail(str(e))
    processes = workers or settings.api_workers
    if not settings.token_secret:
        # one secret for all worker processes, or a token issued by one is refused by the others
        import secrets

        os.environ["HRLC_TOKEN_SECRET"] = secrets.token_urlsafe(32)
        console.print(
            "[yellow]warning:[/] HRLC_TOKEN_SECRET is not set: openEO tokens are signed with a random secret of "
            "this server and die with it",
            highlight=False,
            soft_wrap=True,
        )
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "root_path": settings.api_root_path.rstrip("/"),
        "log_level": log_level,
        "proxy_headers": True,
    }
    if processes == 1:
        uvicorn.run(application, **options)
    else:
        uvicorn.run("hrlc.cli:api_app", factory=True, workers=processes, **options)


def catalogue_problem(settings: Any) -> str | None:  # noqa: ANN401 - Settings
    """Why the pgstac catalogue the STAC API serves cannot be reached (None when it can): the jobs and API
    databases may be down at start (their requests get 503 until they are back), the catalogue may not."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    from hrlc.api.stac import catalog_dsn

    dsn = catalog_dsn(settings)
    try:
        psycopg.connect(dsn, connect_timeout=5).close()
    except psycopg.Error as e:
        info = conninfo_to_dict(dsn)
        where = f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"
        reason = str(e).strip().splitlines()[0]
        return (
            f"the catalogue database (HRLC_CATALOG, {where}) is unreachable: {reason}; start PostgreSQL "
            "(scripts/services.sh) or point HRLC_CATALOG at a running pgstac"
        )
    return None


def api_app() -> Any:
    """The web application of one `hrlc serve --workers N` process (uvicorn's factory): the settings of this
    process (`HRLC_*`), the back ends they name."""
    from hrlc.api import create_app
    from hrlc.settings import get_settings

    return create_app(get_settings())


MIN_SECRET_CHARS = 32


def secret_problem(settings: Any, host: str) -> str | None:
    """Why the API must not start with these secrets: a short token secret or write token; no token secret on
    an interface other machines reach (a random per-process secret is for a server on loopback only)."""
    import ipaddress

    for name, value in (
        ("HRLC_TOKEN_SECRET", settings.token_secret),
        ("HRLC_API_WRITE_TOKEN", settings.api_write_token),
    ):
        if value and len(value) < MIN_SECRET_CHARS:
            return f"{name} is {len(value)} characters: use at least {MIN_SECRET_CHARS} random ones"
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not settings.token_secret and not loopback:
        return (
            f"HRLC_TOKEN_SECRET is not set: serving on {host} needs a fixed secret shared by every API process "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return None


HealthPort = Annotated[
    Optional[int],  # noqa: UP045
    typer.Option(
        min=1,
        max=65535,
        help="Serve /health/live and /health/ready on this port (default HRLC_HEALTH_PORT; unset: none); with "
        "--concurrency N the processes take this port and the N-1 after it",
        show_default=False,
    ),
]
HealthHost = Annotated[
    str, typer.Option(help="Interface of the health port (0.0.0.0 for probes from outside)")
]


@app.command()
def worker(
    processor: Annotated[str, typer.Option(help="Name of the processor whose queue to consume")],
    concurrency: Annotated[int, typer.Option(min=1, help="Worker processes (each with prefetch 1)")] = 1,
    entry_point: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="module:Class of a processor outside the hrlc.processors entry points"),
    ] = None,
    health_port: HealthPort = None,
    health_host: HealthHost = "127.0.0.1",
) -> None:
    """Consume hrlc.tasks.<processor> from RabbitMQ (HRLC_BROKER_URL) and run the processor."""
    require("platform", "hrlc worker")
    from hrlc.backends import Backends
    from hrlc.jobs.worker import serve as serve_worker

    ports = Backends.from_settings(Settings())
    code = serve_worker(
        processor,
        settings=ports.settings,
        store=ports.store,
        catalog=ports.catalog,
        training=ports.training,
        ancillary=ports.ancillary,
        concurrency=concurrency,
        entry_point=entry_point,
        health_port=health_port,
        health_host=health_host,
    )
    raise typer.Exit(code)


@app.command(name="status-consumer")
def status_consumer(health_port: HealthPort = None, health_host: HealthHost = "127.0.0.1") -> None:
    """Consume hrlc.status and update jobs and tasks in the job store (HRLC_JOBS_DSN)."""
    require("platform", "hrlc status-consumer")
    from hrlc.jobs.status_consumer import serve as serve_status

    raise typer.Exit(serve_status(Settings(), health_port, health_host))


def _command_path(args: list[str]) -> str:
    """`hrlc` and the (sub-)command names at the start of `args`, e.g. 'hrlc training import'."""
    command: Any = typer.main.get_command(app)
    path = ["hrlc"]
    for arg in args:
        if arg not in getattr(command, "commands", {}):  # a command, or not a sub-command's name
            break
        command = command.commands[arg]
        path.append(arg)
    return " ".join(path)


def main() -> None:
    """The `hrlc` console script: the typer app, with a missing extra told in one line (exit code 2), and an
    operating-system error while running (disk full, permission denied) in one line (exit code 1)."""
    import sys

    try:
        app(prog_name="hrlc")
    except MissingExtra as e:
        _error(str(e))
        sys.exit(2)
    except OSError as e:  # a disk full, a folder not writable, a file gone while running: expected, one line
        _error(f"{e.strerror or e}: {e.filename}" if e.filename else str(e))
        sys.exit(1)
    except ModuleNotFoundError as e:  # an import of an extra's module that no `require` announced
        extra = extra_of(e.name)
        if extra is None:
            raise
        _error(str(MissingExtra(extra, _command_path(sys.argv[1:]), e.name)))
        sys.exit(2)


if __name__ == "__main__":
    main()

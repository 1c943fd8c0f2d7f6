"""The optional parts of hrlc (pip extras) and the one message a user meets when one is missing.

`pip install hrlc` is enough for the embedded default: `hrlc demo`, `hrlc run` on a local Data Lake with a
static STAC catalogue, and `--help` of every command. The servers need more:

- `s3` — an S3 Data Lake (`HRLC_STORE=s3://...`): boto3.
- `platform` — pgstac catalogue, STAC and openEO APIs, RabbitMQ workers and status consumer, training-set and
  ancillary databases, ingest and harvest, openEO process graphs (and everything of `s3`).

Modules of an extra are imported where they are used; the code that needs one calls `require(extra, what)`
first, so a missing extra is one `MissingExtra` line, never a traceback from deep inside a library.
"""

from __future__ import annotations

import importlib.util

# Top-level modules each extra brings, as imported by hrlc (tests check this against pyproject.toml).
EXTRAS: dict[str, tuple[str, ...]] = {
    "s3": ("boto3", "botocore"),
    "platform": (
        "boto3",
        "botocore",
        "psycopg",
        "psycopg_pool",
        "pypgstac",
        "stac_fastapi",
        "fastapi",
        "starlette",
        "uvicorn",
        "httpx",
        "pika",
        "jwt",
        "openeo_pg_parser_networkx",
        "openeo_processes_dask",
        "distributed",
        "dask_geopandas",
        "xvec",
        "planetary_computer",
        "rioxarray",
    ),
}


class MissingExtra(ImportError):
    """`what` needs the optional dependencies of `extra`, which are not installed."""

    def __init__(self, extra: str, what: str, module: str | None = None) -> None:
        self.extra = extra
        self.what = what
        super().__init__(f"{what} needs the {extra} extra: pip install 'hrlc[{extra}]'", name=module)


def missing(extra: str) -> list[str]:
    """The modules of `extra` that cannot be imported here (found without importing them)."""
    absent = []
    for module in EXTRAS[extra]:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a broken or hidden (None in sys.modules) module
            found = False
        if not found:
            absent.append(module)
    return absent


def require(extra: str, what: str) -> None:
    """Raise `MissingExtra` unless every module of `extra` can be imported; `what` names the feature."""
    absent = missing(extra)
    if absent:
        raise MissingExtra(extra, what, absent[0])


def extra_of(module: str | None) -> str | None:
    """The smallest extra that provides `module` (a dotted name), or None for a module of no extra."""
    top = (module or "").split(".")[0]
    owners = [name for name, modules in EXTRAS.items() if top in modules]
    return min(owners, key=lambda name: len(EXTRAS[name])) if owners else None

"""Check what a core install of hrlc (`pip install hrlc`, no extras) offers a user, as CI does after the
README's first command:

- the venv really is core-only: no module of the `platform` or `s3` extra can be imported;
- `--help` of every command and sub-command exits 0 and prints its usage;
- every command that needs an extra exits 2 with one line on stderr naming it
  (`error: hrlc serve needs the platform extra: pip install 'hrlc[platform]'`), never a traceback.

    .venv/bin/python scripts/check_core_install.py             # in a core-only venv (CI)
    .venv/bin/python scripts/check_core_install.py --hide-extras # anywhere: hides the extras' modules

`--hide-extras` runs every command with the extras' modules hidden (None in sys.modules: imports fail as
if they were not installed), so the full test venv can check the same (tests/test_extras.py).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

# Hide a module as an uninstalled one: `None` in sys.modules makes its import fail with ModuleNotFoundError.
HIDE = """import sys
from hrlc.extras import EXTRAS
for module in {m for modules in EXTRAS.values() for m in modules}:
    sys.modules[module] = None
"""
RUN = "from hrlc.cli import main\nsys.argv[0] = 'hrlc'\nmain()\n"

AOI = "14.50,45.85,14.60,45.90"


def needs_extra(tmp: Path) -> list[tuple[list[str], dict[str, str], str, str]]:
    """(arguments, environment, feature named in the message, extra) of invocations that must refuse."""
    run = [
        "run",
        "--aoi",
        AOI,
        "--year",
        "2021",
        "--source",
        str(tmp / "catalog.json"),
        "--workdir",
        str(tmp),
    ]
    s3 = {"HRLC_STORE": "s3://bucket/lake"}
    pgstac = {"HRLC_CATALOG": "postgresql://postgres@127.0.0.1:5432/hrlc"}
    return [
        (["serve"], {}, "hrlc serve", "platform"),
        (["migrate"], {}, "hrlc migrate", "platform"),
        (["worker", "--processor", "features"], {}, "hrlc worker", "platform"),
        (["status-consumer"], {}, "hrlc status-consumer", "platform"),
        (["ingest", "watch", "--once"], {}, "hrlc ingest watch", "platform"),
        (
            ["ingest", "harvest", "--stac-url", "https://example.org/stac", "--collection", "x"],
            {},
            "hrlc ingest harvest",
            "platform",
        ),
        (["training", "import", str(tmp)], {}, "hrlc training import", "platform"),
        (["users", "list", "--file", str(tmp / "users.json")], {}, "hrlc users list", "platform"),
        (["training", "status"], {}, "hrlc training status", "platform"),
        (["training", "provider", "list"], {}, "hrlc training provider list", "platform"),
        (["ancillary", "list"], {}, "hrlc ancillary list", "platform"),
        (
            ["ancillary", "get", "copernicus-dem", "--aoi", AOI, "--resolution", "30"],
            {},
            "hrlc ancillary get",
            "platform",
        ),
        ([*run, "--training-db", "area=x"], {}, "hrlc run --training-db", "platform"),
        (["demo", "--workdir", str(tmp / "demo")], s3, "an S3 Data Lake (HRLC_STORE)", "s3"),
        (["demo", "--workdir", str(tmp / "demo")], pgstac, "a pgstac catalogue (HRLC_CATALOG)", "platform"),
    ]


def command_paths() -> list[list[str]]:
    """Every command and group of the `hrlc` CLI, as argument lists (`[]` is `hrlc` itself)."""
    import typer

    from hrlc.cli import app

    paths: list[list[str]] = []

    def walk(command: Any, path: list[str]) -> None:  # a (typer-vendored) click Command or Group
        paths.append(path)
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hide-extras", action="store_true", help="hide the extras' modules from hrlc")
    args = parser.parse_args()
    prefix = HIDE if args.hide_extras else "import sys\n"
    if args.hide_extras:
        exec(HIDE)  # noqa: S102 - this process walks the CLI as a core install sees it
    else:
        from hrlc.extras import EXTRAS, missing

        present = {m for ms in EXTRAS.values() for m in ms} - {m for e in EXTRAS for m in missing(e)}
        if present:
            print(f"not a core-only venv: {', '.join(sorted(present))} importable", file=sys.stderr)
            return 1

    def hrlc(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        import os

        cmd = [sys.executable, "-c", prefix + RUN, *argv]
        return subprocess.run(
            cmd, capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})}
        )

    failures: list[str] = []
    paths = command_paths()
    with ThreadPoolExecutor(4) as pool:
        for path, done in zip(paths, pool.map(lambda p: hrlc([*p, "--help"]), paths), strict=True):
            shown = " ".join(["hrlc", *path, "--help"])
            if done.returncode != 0 or "Usage" not in done.stdout:
                failures.append(f"{shown}: exit {done.returncode}\n{done.stderr[-2000:]}")
        print(f"--help: {len(paths)} commands checked", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            cases = needs_extra(Path(tmp))
            results = pool.map(lambda c: hrlc(c[0], c[1]), cases)
            for (argv, env, what, extra), done in zip(cases, results, strict=True):
                expected = f"error: {what} needs the {extra} extra: pip install 'hrlc[{extra}]'"
                lines = done.stderr.strip().splitlines()
                shown = " ".join([*(f"{k}=..." for k in env), "hrlc", *argv])
                if done.returncode != 2 or lines != [expected]:
                    failures.append(f"{shown}: exit {done.returncode}, stderr:\n{done.stderr[-2000:]}")
                else:
                    print(f"{shown}: exit 2, {lines[0]}")
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

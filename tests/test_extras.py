"""What a core install (`pip install hrlc`, no extras) offers: every `--help`, the embedded default, and for each
command that needs an extra one line naming it (exit 2). CI checks the same in a real core-only venv after the
README's first command; here the extras' modules are hidden (None in sys.modules) from the commands."""

from __future__ import annotations

import importlib.metadata as md
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from hrlc.extras import EXTRAS, MissingExtra, extra_of, missing, require

REPO = Path(__file__).resolve().parents[1]


def test_commands_without_the_extras_help_or_name_the_missing_extra() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "check_core_install.py"), "--hide-extras"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "hrlc serve: exit 2, error: hrlc serve needs the platform extra: pip install 'hrlc[platform]'" in (
        done.stdout
    )


def test_require_names_the_extra_of_a_hidden_module(monkeypatch: pytest.MonkeyPatch) -> None:
    assert missing("platform") == []
    require("platform", "hrlc serve")  # everything is installed in the test venv
    monkeypatch.setitem(sys.modules, "pika", None)
    assert missing("platform") == ["pika"]
    with pytest.raises(
        MissingExtra, match=r"^hrlc worker needs the platform extra: pip install 'hrlc\[platform\]'$"
    ):
        require("platform", "hrlc worker")
    require("s3", "an S3 Data Lake")  # pika is not part of s3


def test_extra_of_picks_the_smallest_extra() -> None:
    assert extra_of("botocore.exceptions") == "s3"
    assert extra_of("psycopg.rows") == "platform"
    assert extra_of("numpy") is None
    assert extra_of(None) is None


def test_an_unannounced_import_of_an_extra_still_ends_in_one_line() -> None:
    """The console script's safety net: a ModuleNotFoundError of an extra's module, raised anywhere, becomes
    the one-line message naming the command and the extra."""
    code = (
        "import sys\n"
        "sys.modules['psycopg'] = None\n"
        "import hrlc.cli as cli\n"
        "@cli.app.command(name='probe')\n"
        "def probe() -> None:\n"
        "    import psycopg  # noqa: F401\n"
        "sys.argv[0] = 'hrlc'\n"
        "cli.main()\n"
    )
    done = subprocess.run([sys.executable, "-c", code, "probe"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: hrlc probe needs the platform extra: pip install 'hrlc[platform]'"


def _closure(requirements: list[Requirement]) -> set[str]:
    """Names of the distributions `requirements` install here, transitively (markers for this Python)."""
    seen: set[str] = set()
    todo: list[tuple[Requirement, set[str]]] = [(r, set()) for r in requirements]
    while todo:
        req, parent_extras = todo.pop()
        if req.marker and not any(req.marker.evaluate({"extra": e}) for e in parent_extras or {""}):
            continue
        key = f"{req.name.lower().replace('_', '-')}[{','.join(sorted(req.extras))}]"
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = md.distribution(req.name)
        except md.PackageNotFoundError:  # a requirement for another platform
            continue
        todo += [(Requirement(r), set(req.extras)) for r in dist.requires or []]
    return {key.split("[")[0] for key in seen}


def _requirements(project: dict, extra: str | None) -> list[Requirement]:
    """The requirements of the core install (`extra` None) or of an extra, `hrlc[...]` inside it expanded."""
    texts = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    out: list[Requirement] = []
    for req in map(Requirement, texts):
        out += [r for e in req.extras for r in _requirements(project, e)] if req.name == "hrlc" else [req]
    return out


def test_the_extras_modules_are_what_pyproject_installs_for_them() -> None:
    """Every module of `EXTRAS[name]` comes with `hrlc[name]`, and none with the core install (else a core
    install would have it, and a missing one would be blamed on the wrong extra)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    core = _closure(_requirements(project, None))
    owners = md.packages_distributions()
    for extra, modules in EXTRAS.items():
        with_extra = _closure(_requirements(project, extra))
        for module in modules:
            dists = {d.lower().replace("_", "-") for d in owners.get(module, [])}
            assert dists, f"{module} of the {extra} extra is not installed in the test venv"
            assert dists & with_extra, f"{module} ({dists}) is not installed by hrlc[{extra}]"
            assert not dists & core, f"{module} ({dists}) comes with the core install, not only with {extra}"

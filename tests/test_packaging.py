"""The locks in requirements/ are what the README's commands and CI install: each must pin every requirement of
its profile within pyproject.toml's ranges, the three must agree, and the README must install through them.
(Refresh with `bash scripts/lock.sh`; see the README's developer section.)"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
PROFILES = {"core": None, "platform": "platform", "test": "test"}


def _lock(profile: str) -> dict[str, str]:
    """name -> pinned version of the lines of `requirements/<profile>.txt` that apply to this interpreter."""
    pins: dict[str, str] = {}
    for line in (REPO / "requirements" / f"{profile}.txt").read_text().splitlines():
        if not line or line[0] in "# -":
            continue
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate():
            (spec,) = req.specifier
            assert spec.operator == "==", line
            pins[req.name.lower().replace("_", "-")] = spec.version
    return pins


def _requirements(project: dict, extra: str | None) -> list[Requirement]:
    texts = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    out: list[Requirement] = []
    for req in map(Requirement, texts):
        if req.name == "hrlc":
            out += _requirements(project, None) + [r for e in req.extras for r in _requirements(project, e)]
        else:
            out.append(req)
    return out if extra is None else _requirements(project, None) + out


@pytest.mark.parametrize("profile", PROFILES)
def test_lock_pins_every_requirement_within_its_range(profile: str) -> None:
    text = (REPO / "requirements" / f"{profile}.txt").read_text()
    assert (
        "uv pip compile pyproject.toml --universal --python-version 3.11" in text
    )  # made by scripts/lock.sh
    pins = _lock(profile)
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for req in _requirements(project, PROFILES[profile]):
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = req.name.lower().replace("_", "-")
        assert name in pins, f"{req} is not in requirements/{profile}.txt: run scripts/lock.sh"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"requirements/{profile}.txt pins {name}=={pins[name]}, outside {req}: run scripts/lock.sh"
        )


def test_the_profiles_agree() -> None:
    """core and platform are resolved inside the test lock: one version of a package in every profile."""
    core, platform, test = _lock("core"), _lock("platform"), _lock("test")
    assert core.items() <= platform.items() <= test.items()


def _readme_commands() -> list[str]:
    """The ```bash blocks of the README's "Set up on a fresh machine" section (as .ci/run reads them)."""
    readme = (REPO / "README.md").read_text()
    section = re.search(r"^## Set up on a fresh machine\n(.*?)(?=^## )", readme, re.S | re.M)
    assert section, "README has no '## Set up on a fresh machine' section"
    return [block.strip() for block in re.findall(r"^```bash\n(.*?)^```", section.group(1), re.S | re.M)]


def test_the_readme_installs_through_the_locks() -> None:
    first, second = _readme_commands()
    assert "\n" not in first and "\n" not in second
    assert "pip install -c requirements/core.txt -e ." in first and first.endswith("hrlc demo")
    assert "pip install -c requirements/test.txt -e '.[test]'" in second and "scripts/services.sh" in second
    ci = (REPO / ".ci" / "run").read_text()
    assert (
        'bash -euo pipefail -c "$(readme_command 1)"' in ci
        and 'bash -euo pipefail -c "$(readme_command 2)"' in ci
    )


def test_serve_refuses_missing_or_weak_secrets_off_loopback() -> None:
    """`hrlc serve` on an interface other machines reach needs HRLC_TOKEN_SECRET; short secrets are refused
    everywhere; both before anything starts, exit 2 with one line."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("HRLC_TOKEN_SECRET", "HRLC_API_WRITE_TOKEN")}
    code = "import sys; from hrlc.cli import main; sys.argv[0] = 'hrlc'; main()"
    for extra, args, fragment in [
        ({}, ["--host", "0.0.0.0"], "HRLC_TOKEN_SECRET is not set: serving on 0.0.0.0"),
        ({"HRLC_TOKEN_SECRET": "short"}, [], "HRLC_TOKEN_SECRET is 5 characters"),
        (
            {"HRLC_TOKEN_SECRET": "s" * 40, "HRLC_API_WRITE_TOKEN": "x"},
            [],
            "HRLC_API_WRITE_TOKEN is 1 characters",
        ),
    ]:
        done = subprocess.run(
            [sys.executable, "-c", code, "serve", "--port", "1", *args],
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2, done.stderr
        assert fragment in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr

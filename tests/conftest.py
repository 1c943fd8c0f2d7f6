"""Shared fixtures: where the shared real samples are, and small deterministic helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """The `shared/` folder beside the project clone (override with HRLC_SHARED)."""
    return Path(os.environ.get("HRLC_SHARED", REPO.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared() -> Path:
    d = shared_dir()
    if not (d / "data").is_dir():
        pytest.fail(f"shared data not found at {d}; set HRLC_SHARED")
    return d

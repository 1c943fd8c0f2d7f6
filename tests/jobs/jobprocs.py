"""A test processor that fails its first attempt (marker file in HRLC_TEST_FLAKY_DIR), then succeeds."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

from hrlc.processors.base import Context, Params, Processor


class FlakyParams(Params):
    name: str


class Flaky(Processor[FlakyParams]):
    name: ClassVar[str] = "flaky"
    version: ClassVar[str] = "1.0.0"
    Params: ClassVar[type[FlakyParams]] = FlakyParams  # type: ignore[assignment]

    def outputs(self, params: FlakyParams) -> list[str]:
        return []

    def run(self, params: FlakyParams, ctx: Context) -> list[str]:
        marker = Path(os.environ["HRLC_TEST_FLAKY_DIR"]) / params.name
        if not marker.exists():
            marker.touch()
            raise RuntimeError("transient failure")
        return []

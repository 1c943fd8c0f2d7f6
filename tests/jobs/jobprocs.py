"""A test processor that fails its first attempt (marker file in HRLC_TEST_FLAKY_DIR), then succeeds."""

from __future__ import annotations

import json
import os
import time
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


class SleepyParams(Params):
    name: str
    steps: int = 3
    step_s: float = 0.2


class Sleepy(Processor[SleepyParams]):
    """Sleeps `steps` times, checking for cancellation and reporting progress between steps; then writes
    `test/<name>.json` into the lake (only at the end: a cancelled task leaves nothing)."""

    name: ClassVar[str] = "sleepy"
    version: ClassVar[str] = "1.0.0"
    Params: ClassVar[type[SleepyParams]] = SleepyParams  # type: ignore[assignment]

    def outputs(self, params: SleepyParams) -> list[str]:
        return []

    def run(self, params: SleepyParams, ctx: Context) -> list[str]:
        for i in range(params.steps):
            ctx.check_cancelled()
            ctx.progress(i / params.steps, f"step {i + 1} of {params.steps}")
            time.sleep(params.step_s)
        ctx.check_cancelled()
        ctx.store.write_bytes(f"test/{params.name}.json", json.dumps({"name": params.name}).encode())
        return []

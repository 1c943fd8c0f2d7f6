"""Test processors: `flaky` fails its first attempt (marker file in HRLC_TEST_FLAKY_DIR), then succeeds;
`sleepy` sleeps in steps, checking for cancellation; `late-writer` writes and registers a product after its last
cancellation check."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path
from typing import ClassVar

from hrlc.catalog.items import file_item
from hrlc.lake import layout
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


class LateParams(Params):
    name: str
    wait_s: float = 2.0


class LateWriter(Processor[LateParams]):
    """Checks for cancellation once, says so (progress message `past its last cancel check`), waits `wait_s`
    without checking again, then writes the product `models/metadata/<name>.json` and registers its STAC item:
    the shape of classification's final write. `outputs` is empty so every task of it runs (a second job with
    the same name rewrites a product another job registered before)."""

    name: ClassVar[str] = "late-writer"
    version: ClassVar[str] = "1.0.0"
    Params: ClassVar[type[LateParams]] = LateParams  # type: ignore[assignment]

    PAST_CHECK: ClassVar[str] = "past its last cancel check"

    @staticmethod
    def key(name: str) -> str:
        return layout.key("model-metadata", model_id=name)

    def outputs(self, params: LateParams) -> list[str]:
        return []

    def run(self, params: LateParams, ctx: Context) -> list[str]:
        ctx.check_cancelled()
        ctx.progress(0.5, self.PAST_CHECK)
        time.sleep(params.wait_s)
        key = self.key(params.name)
        ctx.store.write_bytes(key, json.dumps({"name": params.name}).encode())
        start = dt.datetime(2021, 1, 1, tzinfo=dt.UTC)
        item = file_item(
            ctx.store,
            key,
            geometry={"type": "Point", "coordinates": [14.5, 46.0]},
            bbox=[14.5, 46.0, 14.5, 46.0],
            start=start,
            end=start + dt.timedelta(days=365),
            processor=self.name,
            processor_version=self.version,
            media_type="application/json",
        )
        return [ctx.register(item)]


class Counted(Processor[LateParams]):
    """Waits `wait_s`, then writes and registers `models/metadata/<name>.json` (its declared output, so a task whose
    output is registered is not run again), and counts its runs: one key `test/runs/<name>/<uuid>` per run."""

    name: ClassVar[str] = "counted"
    version: ClassVar[str] = "1.0.0"
    Params: ClassVar[type[LateParams]] = LateParams  # type: ignore[assignment]

    def outputs(self, params: LateParams) -> list[str]:
        return [LateWriter.key(params.name)]

    def run(self, params: LateParams, ctx: Context) -> list[str]:
        import uuid

        ctx.store.write_bytes(f"test/runs/{params.name}/{uuid.uuid4().hex}", b"")
        for i in range(10):
            ctx.progress(i / 10, f"step {i + 1} of 10")
            time.sleep(params.wait_s / 10)
        return LateWriter().run(params.model_copy(update={"wait_s": 0.0}), ctx)

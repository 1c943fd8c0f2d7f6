"""The in-process runner: executes a DAG of tasks in this process, in dependency order, with progress bars.

The embedded default of hrlc: no queue, no database. A rerun resumes: a task whose every output (product
file and its STAC item) already exists is skipped. Bad input stops the run at the first failing task with
the processor's one-line message (`ProcessorError`), and since processors commit each product atomically,
nothing half-written is left behind.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from hrlc.ancillary.port import AncillaryLayers
from hrlc.jobs.dag import Dag
from hrlc.lake.layout import item_key_of, log_key
from hrlc.lake.store import Store
from hrlc.processors.base import Catalog, Context, Processor, registry
from hrlc.training.port import TrainingSamples

log = logging.getLogger("hrlc.runner")


@dataclass
class TaskResult:
    task_id: str
    skipped: bool
    items: list[str]
    seconds: float


@dataclass
class RunResult:
    tasks: list[TaskResult] = field(default_factory=list)

    @property
    def items(self) -> list[str]:
        return [href for t in self.tasks for href in t.items]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class InProcessRunner:
    def __init__(
        self,
        store: Store,
        catalog: Catalog,
        *,
        training: TrainingSamples | None = None,
        ancillary: AncillaryLayers | None = None,
        resume: bool = True,
        console: Console | None = None,
        processors: dict[str, type[Processor[Any]]] | None = None,
    ):
        """`store`, `catalog`, `training` and `ancillary` are the ports every task's `Context` gets (None: the
        processors that need training samples from the database or ancillary layers refuse in one line)."""
        self.store = store
        self.catalog = catalog
        self.training = training
        self.ancillary = ancillary
        self.resume = resume
        self.console = console or Console(stderr=True)
        self.processors = processors or registry()

    def _finished(self, outputs: list[str]) -> bool:
        keys = outputs + [k for k in map(item_key_of, outputs) if k]
        return bool(outputs) and all(self.store.exists(k) for k in keys)

    def _item_hrefs(self, outputs: list[str]) -> list[str]:
        keys = dict.fromkeys(k for k in map(item_key_of, outputs) if k)  # ordered, without repeats
        return [self.store.href(k) for k in keys]

    def _write_log(
        self, task_id: str, proc: Processor[Any], params: Any, started: str, seconds: float, items: list[str]
    ) -> None:
        record = {
            "task_id": task_id,
            "processor": proc.name,
            "processor_version": proc.version,
            "params": params.model_dump(mode="json"),
            "started": started,
            "finished": _now(),
            "seconds": round(seconds, 3),
            "items": items,
            "runner": "in-process",
        }
        self.store.write_bytes(log_key(task_id), json.dumps(record, indent=1).encode())

    def run(self, dag: Dag) -> RunResult:
        result = RunResult()
        order = dag.order()
        unknown = sorted({t.processor for t in order} - set(self.processors))
        if unknown:
            raise ValueError(f"no processor registered for {unknown}; known: {sorted(self.processors)}")
        # validate every task's params before anything runs: bad input must not leave half a job behind
        planned = [(task, self.processors[task.processor]()) for task in order]
        params_of = {task.id: proc.parse_params(task.params) for task, proc in planned}
        with Progress(
            TextColumn("[bold]{task.description:<34}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[note]}"),
            console=self.console,
            transient=False,
        ) as bars:
            for task, proc in planned:
                params = params_of[task.id]
                outputs = proc.outputs(params)
                bar = bars.add_task(task.id, total=1.0, note="")
                t0 = time.perf_counter()
                if self.resume and self._finished(outputs):
                    bars.update(bar, completed=1.0, note="[dim]skipped: outputs exist")
                    log.info("task %s skipped: its %d outputs exist", task.id, len(outputs))
                    result.tasks.append(TaskResult(task.id, True, self._item_hrefs(outputs), 0.0))
                    continue

                def progress(fraction: float, message: str, _bar: Any = bar) -> None:
                    bars.update(_bar, completed=max(0.0, min(1.0, fraction)), note=message)

                ctx = Context(
                    store=self.store,
                    catalog=self.catalog,
                    training=self.training,
                    ancillary=self.ancillary,
                    progress=progress,
                    log=logging.getLogger(f"hrlc.processor.{task.processor}"),
                )
                started = _now()
                items = proc.run(params, ctx)
                seconds = time.perf_counter() - t0
                self._write_log(task.id, proc, params, started, seconds, items)
                bars.update(bar, completed=1.0, note=f"{len(items)} items")
                log.info("task %s finished in %.1f s with %d items", task.id, seconds, len(items))
                result.tasks.append(TaskResult(task.id, False, items, seconds))
        return result

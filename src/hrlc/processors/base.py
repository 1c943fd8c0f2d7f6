"""The processor contract (DESIGN.md §3): every chain step is a processor with a name, a semver version,
pydantic `Params` and `run(params, ctx) -> items`.

A processor knows no queue and no API. It reads its inputs by STAC href through `ctx.catalog`, writes its
outputs under keys from `hrlc.lake.layout` through `ctx.store`, registers one STAC Item per product in
`ctx.catalog`, reads training samples and ancillary layers through `ctx.training` and `ctx.ancillary` (the
ports of `hrlc.training.port` and `hrlc.ancillary.port`), reports progress through `ctx.progress`, and checks
`ctx.cancelled()` between steps. It never reads settings or opens a connection by itself.
Outputs are idempotent: the same params write the same keys, so a repeated or redelivered task is harmless,
and `outputs(params)` tells a runner which keys a task will write (to skip finished tasks on a rerun).
Bad input raises `ProcessorError` with a one-line message, before anything is written.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import pystac
from pydantic import BaseModel, ConfigDict, Field

from hrlc.ancillary.port import AncillaryLayers
from hrlc.catalog.port import Catalog
from hrlc.errors import Cancelled, ProcessorError
from hrlc.lake.identity import CONFIG_REGEX, SPACE_REGEX
from hrlc.lake.store import Store
from hrlc.training.port import TrainingSamples

__all__ = ["Cancelled", "Catalog", "Context", "Params", "Processor", "ProcessorError", "registry"]


@dataclass
class Context:
    """What a processor gets from whoever runs it (in-process runner or queue worker): every port it may use.
    `training` and `ancillary` are None where the runner has none (a core install: no database); a processor
    asked for them then fails with one line. `owner` is the user on whose behalf it runs: what they may read
    (`hrlc.catalog.visibility`) bounds what the processor reads."""

    store: Store
    catalog: Catalog
    training: TrainingSamples | None = None  # the training-set database (`hrlc.training.port`)
    ancillary: AncillaryLayers | None = None  # DEM, reference maps... (`hrlc.ancillary.port`)
    progress: Callable[[float, str], None] = lambda fraction, message: None
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("hrlc.processor"))
    cancelled: Callable[[], bool] = lambda: False
    owner: str | None = None  # the user whose job runs the task (platform); None in the embedded default

    def check_cancelled(self) -> None:
        if self.cancelled():
            raise Cancelled("task cancelled")

    def register(self, item: pystac.Item) -> str:
        """Add an item to the catalogue; returns its href."""
        return self.catalog.add(item)


def space_param(of: str) -> Any:
    """The pydantic field of the `space` of the products a processor reads (`hrlc.lake.identity`)."""
    return Field(
        default=None,
        pattern=f"^(?:{SPACE_REGEX})$",
        description=f"The space (grid) of {of} (hrlc.lake.identity), given with its config. Both omitted: the "
        "spec's exact keys (products made elsewhere).",
    )


def config_param(of: str) -> Any:
    """The pydantic field of the config of the products a processor reads (`hrlc.lake.identity`)."""
    return Field(default=None, pattern=f"^{CONFIG_REGEX}$", description=f"The config of {of} to read")


class Params(BaseModel):
    """Base of processor parameters: strict, JSON-serialisable (they travel in task messages)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


P = TypeVar("P", bound=Params)


class Processor(ABC, Generic[P]):
    name: ClassVar[str]
    version: ClassVar[str]
    Params: ClassVar[type[Params]]

    def parse_params(self, params: dict[str, Any] | P) -> P:
        if isinstance(params, self.Params):
            return params
        return self.Params.model_validate(params)  # type: ignore[return-value]

    @abstractmethod
    def outputs(self, params: P) -> list[str]:
        """The lake keys this task writes (all of them exist once it has finished)."""

    @abstractmethod
    def run(self, params: P, ctx: Context) -> list[str]:
        """Do the work; returns the STAC item hrefs of the products written."""


def registry() -> dict[str, type[Processor[Any]]]:
    """Processors registered under the `hrlc.processors` entry point group, by name."""
    from importlib.metadata import entry_points

    found: dict[str, type[Processor[Any]]] = {}
    for ep in entry_points(group="hrlc.processors"):
        cls = ep.load()
        found[cls.name] = cls
    return found

"""Task and status messages (DESIGN.md §3): versioned JSON, validated at the edge.

The JSON Schemas below are the contract any processor implementation (Python or not) follows; they are
published as `docs/messages/task.schema.json` and `docs/messages/status.schema.json` (a test keeps the copies
equal, `python -m hrlc.jobs.messages DIR` rewrites them). Every message that enters a worker or the status
consumer is checked against its schema first (jsonschema, Draft 2020-12), then parsed into its pydantic
model; anything malformed raises `MessageError` with a one-line reason.

Versions (`message_version`; the AMQP header `message_version` repeats it):
- 1: the first contract, without `run`.
- 2 (current): adds the required `run`, the job's run number (a job started again after a cancel, an error
  or its end gets a new run). A worker copies the task's `run` into every status message, so the status
  consumer ignores status messages and dead-lettered tasks of an older run of the job. Adding a required
  field (and, under `additionalProperties: false`, any field) breaks consumers of version 1, hence the bump.
The schemas accept both versions (`SUPPORTED_VERSIONS`): task messages of version 1 still queued from before an
upgrade are run and answered with version-1 status messages (no run to compare: applied as before), and a
processor written against version 1 (status without `run`) keeps working. New messages are version 2.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any, Final, Literal, Self

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, model_validator

MESSAGE_VERSION: Final = 2
SUPPORTED_VERSIONS = (1, 2)
STATES = ("queued", "running", "finished", "error", "canceled")
TERMINAL = frozenset({"finished", "error", "canceled"})

_ID = {"type": "string", "minLength": 1, "maxLength": 512}
_VERSION = {
    "enum": list(SUPPORTED_VERSIONS),
    "description": "Version of this message contract: 2 (current) or 1 (without run).",
}
_RUN = {
    "type": "integer",
    "minimum": 0,
    "description": "Run number of the job (a new run each time the job is started); required from version 2, "
    "absent in version 1.",
}
_RUN_BY_VERSION = {
    "if": {"properties": {"message_version": {"const": 2}}},
    "then": {"required": ["run"]},
    "else": {"not": {"required": ["run"]}},
}

TASK_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://hrlc.esa-cci/schemas/messages/task/2",
    "title": "hrlc task message",
    "description": "One task of a job, published to the durable quorum queue `hrlc.tasks.<processor>`. "
    "A worker acknowledges it only after the task's outputs are committed and its terminal status "
    "message is confirmed by the broker. A redelivered task must be harmless (idempotent outputs). "
    "Status messages about the task carry its run (and, in version 1, the task's message_version).",
    "type": "object",
    "required": [
        "message_version",
        "job_id",
        "task_id",
        "processor",
        "processor_version",
        "params",
        "inputs",
        "attempt",
    ],
    "additionalProperties": False,
    "properties": {
        "message_version": _VERSION,
        "job_id": _ID,
        "run": _RUN,
        "task_id": _ID,
        "processor": {"type": "string", "pattern": "^[a-z0-9][a-z0-9._-]*$", "maxLength": 128},
        "processor_version": {
            "type": "string",
            "pattern": r"^\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$",
            "description": "Semantic version of the processor the task was planned for.",
        },
        "params": {"type": "object", "description": "The processor's parameters (its Params model)."},
        "inputs": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "description": "STAC item hrefs of the task's inputs (the outputs of the tasks it depends on).",
        },
        "attempt": {
            "type": "integer",
            "minimum": 1,
            "description": "Attempt number when published (redeliveries add the broker's delivery count).",
        },
    },
    **_RUN_BY_VERSION,
}

STATUS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://hrlc.esa-cci/schemas/messages/status/2",
    "title": "hrlc status message",
    "description": "Progress or outcome of a task, published by workers to the durable quorum queue "
    "`hrlc.status`. finished, error and canceled are terminal; a terminal status is published with "
    "publisher confirms before the task message is acknowledged. Duplicates are harmless. A status message "
    "answers a task message in the task's message_version, with the task's run (version 2); the status "
    "consumer ignores a status of another run of the job.",
    "type": "object",
    "required": ["message_version", "job_id", "task_id", "state", "progress", "message", "worker", "time"],
    "additionalProperties": False,
    "properties": {
        "message_version": _VERSION,
        "job_id": _ID,
        "run": _RUN,
        "task_id": _ID,
        "state": {"enum": list(STATES)},
        "progress": {"type": "number", "minimum": 0, "maximum": 1},
        "message": {"type": "string", "maxLength": 4096},
        "outputs": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "description": "STAC item hrefs (or ids) of the products written (state finished).",
        },
        "worker": {"type": "string", "minLength": 1, "maxLength": 256},
        "time": {"type": "string", "format": "date-time"},
        "attempt": {"type": "integer", "minimum": 1},
    },
    **_RUN_BY_VERSION,
}


class MessageError(ValueError):
    """A message that does not follow its schema (one-line reason)."""


class _Versioned(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    message_version: Literal[1, 2] = MESSAGE_VERSION
    job_id: str
    run: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _run_by_version(self) -> Self:
        if self.message_version >= 2 and self.run is None:
            raise ValueError(f"message_version {self.message_version} requires run")
        if self.message_version == 1 and self.run is not None:
            raise ValueError("message_version 1 has no run")
        return self

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


class TaskMessage(_Versioned):
    task_id: str
    processor: str
    processor_version: str
    params: dict[str, Any]
    inputs: list[str] = Field(default_factory=list)
    attempt: int = 1

    def status(self, **fields: Any) -> StatusMessage:
        """A status message about this task: same job, task, run and message version."""
        return StatusMessage(
            message_version=self.message_version,
            job_id=self.job_id,
            run=self.run,
            task_id=self.task_id,
            **fields,
        )


class StatusMessage(_Versioned):
    task_id: str
    state: Literal["queued", "running", "finished", "error", "canceled"]
    progress: float = Field(ge=0.0, le=1.0)
    message: str = ""
    outputs: list[str] = Field(default_factory=list)
    worker: str
    time: str = Field(default_factory=lambda: now_iso())
    attempt: int | None = None

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


@lru_cache(maxsize=2)
def _validator(kind: str) -> jsonschema.protocols.Validator:
    schema = TASK_SCHEMA if kind == "task" else STATUS_SCHEMA
    cls = jsonschema.Draft202012Validator
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def _load(body: bytes | str | dict[str, Any], kind: str) -> dict[str, Any]:
    if isinstance(body, dict):
        data: Any = body
    else:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            raise MessageError(f"{kind} message is not JSON: {e}") from None
    if not isinstance(data, dict):
        raise MessageError(f"{kind} message is not a JSON object")
    error = jsonschema.exceptions.best_match(_validator(kind).iter_errors(data))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise MessageError(f"invalid {kind} message at {where}: {error.message}")
    return data


def parse_task(body: bytes | str | dict[str, Any]) -> TaskMessage:
    """A task message from JSON, validated against `TASK_SCHEMA`; `MessageError` if malformed."""
    try:
        return TaskMessage.model_validate(_load(body, "task"))
    except MessageError:
        raise
    except ValueError as e:  # pydantic ValidationError is a ValueError
        raise MessageError(f"invalid task message: {str(e).splitlines()[0]}") from None


def parse_status(body: bytes | str | dict[str, Any]) -> StatusMessage:
    """A status message from JSON, validated against `STATUS_SCHEMA`; `MessageError` if malformed."""
    try:
        return StatusMessage.model_validate(_load(body, "status"))
    except MessageError:
        raise
    except ValueError as e:
        raise MessageError(f"invalid status message: {str(e).splitlines()[0]}") from None


def write_schemas(folder: str | Path) -> list[Path]:
    """Write the two schemas as `task.schema.json` and `status.schema.json` into `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, schema in (("task", TASK_SCHEMA), ("status", STATUS_SCHEMA)):
        path = folder / f"{name}.schema.json"
        path.write_text(json.dumps(schema, indent=2) + "\n")
        out.append(path)
    return out


if __name__ == "__main__":  # pragma: no cover - maintenance helper
    for p in write_schemas(sys.argv[1] if len(sys.argv) > 1 else "docs/messages"):
        print(p)

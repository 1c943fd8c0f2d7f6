"""Task and status messages (DESIGN.md §3): versioned JSON, validated at the edge.

The JSON Schemas below are the contract any processor implementation (Python or not) follows; they are
published as `docs/messages/task.schema.json` and `docs/messages/status.schema.json` (a test keeps the copies
equal, `python -m hrlc.jobs.messages DIR` rewrites them). Every message that enters a worker or the status
consumer is checked against its schema first (jsonschema, Draft 2020-12), then parsed into its pydantic
model; anything malformed raises `MessageError` with a one-line reason.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import jsonschema
from pydantic import BaseModel, ConfigDict, Field

MESSAGE_VERSION = 1
STATES = ("queued", "running", "finished", "error", "canceled")
TERMINAL = frozenset({"finished", "error", "canceled"})

_ID = {"type": "string", "minLength": 1, "maxLength": 512}

TASK_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://hrlc.esa-cci/schemas/messages/task/1",
    "title": "hrlc task message",
    "description": "One task of a job, published to the durable quorum queue `hrlc.tasks.<processor>`. "
    "A worker acknowledges it only after the task's outputs are committed and its terminal status "
    "message is confirmed by the broker. A redelivered task must be harmless (idempotent outputs).",
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
        "message_version": {"const": MESSAGE_VERSION},
        "job_id": _ID,
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
}

STATUS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://hrlc.esa-cci/schemas/messages/status/1",
    "title": "hrlc status message",
    "description": "Progress or outcome of a task, published by workers to the durable quorum queue "
    "`hrlc.status`. finished, error and canceled are terminal; a terminal status is published with "
    "publisher confirms before the task message is acknowledged. Duplicates are harmless.",
    "type": "object",
    "required": ["message_version", "job_id", "task_id", "state", "progress", "message", "worker", "time"],
    "additionalProperties": False,
    "properties": {
        "message_version": {"const": MESSAGE_VERSION},
        "job_id": _ID,
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
}


class MessageError(ValueError):
    """A message that does not follow its schema (one-line reason)."""


class TaskMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    message_version: Literal[1] = 1
    job_id: str
    task_id: str
    processor: str
    processor_version: str
    params: dict[str, Any]
    inputs: list[str] = Field(default_factory=list)
    attempt: int = 1

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()


class StatusMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    message_version: Literal[1] = 1
    job_id: str
    task_id: str
    state: Literal["queued", "running", "finished", "error", "canceled"]
    progress: float = Field(ge=0.0, le=1.0)
    message: str = ""
    outputs: list[str] = Field(default_factory=list)
    worker: str
    time: str = Field(default_factory=lambda: now_iso())
    attempt: int | None = None

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()

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

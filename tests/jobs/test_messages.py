import json
from pathlib import Path

import pytest

from hrlc.jobs.messages import (
    STATUS_SCHEMA,
    TASK_SCHEMA,
    MessageError,
    StatusMessage,
    TaskMessage,
    parse_status,
    parse_task,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "messages"

TASK = {
    "message_version": 1,
    "job_id": "j1",
    "task_id": "features:sentinel2:2021",
    "processor": "features",
    "processor_version": "1.0.0",
    "params": {"year": 2021, "sensor": "sentinel2"},
    "inputs": ["/lake/metadata/stac/a.json"],
    "attempt": 1,
}


def test_docs_hold_the_schemas() -> None:
    assert json.loads((DOCS / "task.schema.json").read_text()) == TASK_SCHEMA
    assert json.loads((DOCS / "status.schema.json").read_text()) == STATUS_SCHEMA


def test_valid_messages_round_trip() -> None:
    msg = parse_task(json.dumps(TASK).encode())
    assert msg == TaskMessage(**TASK) and parse_task(msg.to_json()) == msg
    status = StatusMessage(
        job_id="j1", task_id="t", state="finished", progress=1.0, outputs=["x"], worker="w"
    )
    assert parse_status(status.to_json()) == status and status.terminal


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"message_version": 2}, "message_version"),
        ({"attempt": 0}, "attempt"),
        ({"params": []}, "params"),
        ({"extra": 1}, "Additional properties"),
        ({"processor_version": "one"}, "processor_version"),
    ],
)
def test_malformed_tasks_are_rejected(change: dict, match: str) -> None:
    with pytest.raises(MessageError, match=match):
        parse_task(json.dumps({**TASK, **change}))


def test_malformed_payloads_are_rejected() -> None:
    with pytest.raises(MessageError, match="not JSON"):
        parse_task(b"\xff{")
    with pytest.raises(MessageError, match="object"):
        parse_task(b"[1]")
    bad = {"message_version": 1, "job_id": "j", "task_id": "t", "state": "done", "progress": 2}
    with pytest.raises(MessageError):
        parse_status(json.dumps({**bad, "message": "", "worker": "w", "time": "2024-01-01T00:00:00Z"}))

import json
from pathlib import Path

import pytest

from hrlc.jobs.messages import (
    MESSAGE_VERSION,
    STATUS_SCHEMA,
    TASK_SCHEMA,
    MessageError,
    TaskMessage,
    parse_status,
    parse_task,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "messages"

TASK = {
    "message_version": 2,
    "job_id": "j1",
    "run": 3,
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
    status = msg.status(state="finished", progress=1.0, outputs=["x"], worker="w")
    assert parse_status(status.to_json()) == status and status.terminal
    assert (status.message_version, status.job_id, status.run, status.task_id) == (
        2,
        "j1",
        3,
        TASK["task_id"],
    )
    assert MESSAGE_VERSION == 2 and TaskMessage(**{**TASK, "message_version": MESSAGE_VERSION}) == msg


def test_version_1_messages_are_still_accepted_and_answered_in_version_1() -> None:
    """Version 1 (no run): task messages queued before an upgrade, processors written against version 1."""
    v1 = {k: v for k, v in TASK.items() if k != "run"} | {"message_version": 1}
    task = parse_task(json.dumps(v1))
    assert task.run is None and json.loads(task.to_json()) == v1
    status = task.status(state="running", progress=0.5, worker="w")
    assert status.message_version == 1 and "run" not in json.loads(status.to_json())
    assert parse_status(status.to_json()) == status


@pytest.mark.parametrize(
    ("version", "run", "match"),
    [(2, None, "run"), (1, 3, "run"), (3, 3, "message_version")],
)
def test_run_goes_with_version_2(version: int, run: int | None, match: str) -> None:
    doc = {k: v for k, v in TASK.items() if k != "run"} | {"message_version": version}
    if run is not None:
        doc["run"] = run
    with pytest.raises(MessageError, match=match):
        parse_task(json.dumps(doc))
    status = {"message_version": version, "job_id": "j", "task_id": "t", "state": "running", "progress": 0}
    status |= {"message": "", "worker": "w", "time": "2024-01-01T00:00:00Z"} | ({"run": run} if run else {})
    with pytest.raises(MessageError, match=match):
        parse_status(json.dumps(status))
    with pytest.raises(ValueError, match=match):
        TaskMessage(**doc)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"message_version": 3}, "message_version"),
        ({"run": -1}, "run"),
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
    bad = {"message_version": 2, "run": 1, "job_id": "j", "task_id": "t", "state": "done", "progress": 2}
    with pytest.raises(MessageError):
        parse_status(json.dumps({**bad, "message": "", "worker": "w", "time": "2024-01-01T00:00:00Z"}))

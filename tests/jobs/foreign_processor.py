"""A processor outside hrlc: it knows only the broker, the two JSON message schemas and the lake's folder.

It imports pika and the standard library, never hrlc. It consumes `<prefix>.tasks.foreign-echo` (declared with
the arguments of docs/architecture.md: quorum, delivery limit 10, dead-letter exchange `<prefix>.dlx`),
writes `params.text` as JSON to `<lake>/<params.key>` with plain file I/O (temporary file, then rename),
publishes `running` then `finished` status messages (docs/messages/status.schema.json) to `<prefix>.status`
with publisher confirms, and only then acknowledges the task. A status answers in the task's `message_version`
and, from version 2, carries the task's `run` (the status consumer ignores statuses of an older run).
With `FOREIGN_TRACE` set it appends every task message it received and every status message it sent to that file
(one JSON document a line) for the test.

Usage: HRLC_BROKER_URL=... HRLC_BROKER_PREFIX=... HRLC_STORE=/lake python foreign_processor.py [MAX_TASKS]
"""

import datetime
import json
import os
import socket
import sys

import pika

NAME = "foreign-echo"
VERSION = "1.0.0"
URL = os.environ.get("HRLC_BROKER_URL") or "amqp://guest:guest@127.0.0.1:5672/%2F"
PREFIX = os.environ.get("HRLC_BROKER_PREFIX") or "hrlc"
LAKE = os.environ["HRLC_STORE"]
TRACE = os.environ.get("FOREIGN_TRACE")
WORKER = f"{socket.gethostname()}:{os.getpid()}:{NAME}"


def trace(kind, doc):
    if TRACE:
        with open(TRACE, "a") as f:
            f.write(json.dumps({"kind": kind, "message": doc}) + "\n")


def status(ch, task, state, progress, message, outputs=None):
    version = task["message_version"]
    doc = {
        "message_version": version,
        "job_id": task["job_id"],
        "task_id": task["task_id"],
        "state": state,
        "progress": progress,
        "message": message,
        "outputs": outputs or [],
        "worker": WORKER,
        "time": datetime.datetime.now(datetime.UTC).isoformat(),
        "attempt": task["attempt"],
    }
    if version >= 2:
        doc["run"] = task["run"]
    props = pika.BasicProperties(
        content_type="application/json", delivery_mode=2, headers={"message_version": version}
    )
    ch.basic_publish("", f"{PREFIX}.status", json.dumps(doc).encode(), props, mandatory=True)
    trace("status", doc)


def main():
    max_tasks = int(sys.argv[1]) if len(sys.argv) > 1 else None
    conn = pika.BlockingConnection(pika.URLParameters(URL))
    ch = conn.channel()
    ch.confirm_delivery()
    queue = f"{PREFIX}.tasks.{NAME}"
    ch.queue_declare(
        queue,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": 10,
            "x-dead-letter-exchange": f"{PREFIX}.dlx",
        },
    )
    ch.basic_qos(prefetch_count=1)
    for handled, (method, _props, body) in enumerate(ch.consume(queue), start=1):
        task = json.loads(body)
        trace("task", task)
        status(ch, task, "running", 0.0, f"echo on {WORKER}")
        path = os.path.join(LAKE, task["params"]["key"])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "w") as f:
            json.dump({"text": task["params"]["text"], "inputs": task["inputs"]}, f)
        os.replace(path + ".tmp", path)
        status(ch, task, "finished", 1.0, "1 file", [path])
        ch.basic_ack(method.delivery_tag)
        if max_tasks is not None and handled >= max_tasks:
            break
    ch.cancel()
    conn.close()


if __name__ == "__main__":
    main()

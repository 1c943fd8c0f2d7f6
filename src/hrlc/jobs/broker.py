"""RabbitMQ topology and publishing (DESIGN.md §3), with pika's blocking client.

Topology, all durable, declared idempotently by whoever connects first:
- `<prefix>.tasks.<processor>`: one quorum queue per processor; `x-delivery-limit` bounds redeliveries
  (a worker killed again and again by a poison task), then the message is dead-lettered;
- `<prefix>.dlx` (fanout exchange) -> `<prefix>.dead`: the dead-letter queue (quorum), kept for operators,
  and `<prefix>.dead.watch` (quorum), a copy the status consumer drains to turn a dead-lettered task (the
  broker's delivery limit reached, or dead-lettered by a worker) into an error of its task and job;
- `<prefix>.status`: the status queue (quorum) the status consumer reads.
The prefix is `hrlc` (`HRLC_BROKER_PREFIX`, `Settings.broker_prefix`, changes it, e.g. to isolate test sessions
on one broker); the broker is `HRLC_BROKER_URL` (`Settings.broker_url`).
Every message is persistent and published with publisher confirms (`Publisher`); a publish that the broker
refuses or cannot route raises, so a caller never believes a lost message was sent.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from hrlc.jobs.messages import MESSAGE_VERSION, StatusMessage, TaskMessage
from hrlc.settings import DEFAULT_BROKER_URL, Settings

log = logging.getLogger("hrlc.broker")

DELIVERY_LIMIT = 10  # broker-side safety net; workers retry application errors HRLC_TASK_MAX_ATTEMPTS times

PERSISTENT = 2
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    pika.exceptions.AMQPConnectionError,
    pika.exceptions.AMQPChannelError,
    pika.exceptions.StreamLostError,
    ConnectionError,
)


@dataclass(frozen=True)
class Topology:
    prefix: str = "hrlc"

    @classmethod
    def from_settings(cls, settings: Settings | None) -> Topology:
        """The topology of `Settings.broker_prefix` (`HRLC_BROKER_PREFIX`); None: the default prefix."""
        return cls(settings.broker_prefix) if settings is not None else cls()

    def task_queue(self, processor: str) -> str:
        return f"{self.prefix}.tasks.{processor}"

    @property
    def status_queue(self) -> str:
        return f"{self.prefix}.status"

    @property
    def dead_queue(self) -> str:
        return f"{self.prefix}.dead"

    @property
    def dead_watch_queue(self) -> str:
        return f"{self.prefix}.dead.watch"

    @property
    def dead_exchange(self) -> str:
        return f"{self.prefix}.dlx"


def connect(
    url: str | None = None, *, heartbeat: int = 30, attempts: int = 1, name: str | None = None
) -> pika.BlockingConnection:
    """A blocking connection (`url` default: the local RabbitMQ as guest); `name` is shown by RabbitMQ
    (management UI, `rabbitmqctl list_connections client_properties`) so an operator sees which process holds
    which connection."""
    params = pika.URLParameters(url or DEFAULT_BROKER_URL)
    if name:
        params.client_properties = {"connection_name": name}
    params.heartbeat = heartbeat
    params.connection_attempts = attempts
    params.retry_delay = 1.0
    params.blocked_connection_timeout = 60
    return pika.BlockingConnection(params)


def declare_common(channel: BlockingChannel, topo: Topology) -> None:
    channel.exchange_declare(topo.dead_exchange, exchange_type="fanout", durable=True)
    channel.queue_declare(topo.dead_queue, durable=True, arguments={"x-queue-type": "quorum"})
    channel.queue_bind(topo.dead_queue, topo.dead_exchange)
    channel.queue_declare(topo.dead_watch_queue, durable=True, arguments={"x-queue-type": "quorum"})
    channel.queue_bind(topo.dead_watch_queue, topo.dead_exchange)
    channel.queue_declare(topo.status_queue, durable=True, arguments={"x-queue-type": "quorum"})


def declare_task_queue(channel: BlockingChannel, topo: Topology, processor: str) -> str:
    name = topo.task_queue(processor)
    channel.queue_declare(
        name,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": topo.dead_exchange,
        },
    )
    return name


def declare(channel: BlockingChannel, topo: Topology, processors: Iterable[str] = ()) -> None:
    """Declare the whole topology (idempotent)."""
    declare_common(channel, topo)
    for p in processors:
        declare_task_queue(channel, topo, p)


def delete(topo: Topology, processors: Iterable[str], url: str | None = None) -> None:
    """Delete the topology of a prefix (tests, benchmarks)."""
    conn = connect(url)
    try:
        ch = conn.channel()
        for q in [topo.task_queue(p) for p in processors] + [
            topo.status_queue,
            topo.dead_queue,
            topo.dead_watch_queue,
        ]:
            ch.queue_delete(q)
        ch.exchange_delete(topo.dead_exchange)
    finally:
        conn.close()


def properties(headers: dict[str, Any] | None = None, version: int = MESSAGE_VERSION) -> pika.BasicProperties:
    """Persistent JSON; the header `message_version` repeats the body's (so a router need not parse it)."""
    return pika.BasicProperties(
        content_type="application/json",
        delivery_mode=PERSISTENT,
        headers={"message_version": version, **(headers or {})},
    )


class Publisher:
    """A confirmed publisher (thread-safe, reconnects once on a lost connection)."""

    def __init__(
        self, url: str | None = None, topo: Topology | None = None, *, settings: Settings | None = None
    ):
        self.url = url or (settings.broker_url if settings is not None else DEFAULT_BROKER_URL)
        self.topo = topo or Topology.from_settings(settings)
        self._lock = threading.Lock()
        self._conn: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._declared: set[str] = set()

    def _ensure(self) -> BlockingChannel:
        if self._conn is None or self._conn.is_closed or self._channel is None or self._channel.is_closed:
            self._close_quietly()
            self._conn = connect(self.url, heartbeat=0)
            self._channel = self._conn.channel()
            self._channel.confirm_delivery()
            declare_common(self._channel, self.topo)
            self._declared = set()
        return self._channel

    def _close_quietly(self) -> None:
        if self._conn is not None and self._conn.is_open:
            with contextlib.suppress(Exception):  # closing a broken connection
                self._conn.close()
        self._conn = self._channel = None

    def _publish(self, routing_key: str, body: bytes, processor: str | None, version: int) -> None:
        with self._lock:
            for attempt in (1, 2):
                try:
                    ch = self._ensure()
                    if processor is not None and processor not in self._declared:
                        declare_task_queue(ch, self.topo, processor)
                        self._declared.add(processor)
                    ch.basic_publish("", routing_key, body, properties(version=version), mandatory=True)
                    return
                except CONNECTION_ERRORS as e:
                    self._close_quietly()
                    if attempt == 2:
                        raise
                    log.warning("broker connection lost (%s); reconnecting", e)

    def publish_task(self, msg: TaskMessage) -> None:
        self._publish(self.topo.task_queue(msg.processor), msg.to_json(), msg.processor, msg.message_version)

    def publish_status(self, msg: StatusMessage) -> None:
        self._publish(self.topo.status_queue, msg.to_json(), None, msg.message_version)

    def close(self) -> None:
        with self._lock:
            self._close_quietly()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

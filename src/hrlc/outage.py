"""Reconnecting to a service that went away: capped, jittered back-off and one log line per outage.

A consumer loop calls `failed(error)` when a connection breaks (it gets the delay to sleep) and `recovered()`
once it works again. The first failure of an outage logs one warning (what, the error, that it retries); further
failures of the same outage log at debug level only; the recovery logs how long the outage lasted. Delays grow
exponentially from `base_s` to `cap_s` (2 s: a service back from a restart is found within 2 s, which the
soak benchmark showed to matter, as every second of it delays every job in flight; a hundred processes retrying
cost RabbitMQ or PostgreSQL some 70 connection attempts a second, which both take in stride), each drawn from
[delay/2, delay] so that many processes reconnecting after a restart do not arrive together.

`quiet_clients()` silences the client libraries' own reports of a failed connection (pika logs a traceback at
ERROR for every attempt; psycopg's pool one warning per attempt): `Outage` says it once, in one line.
"""

from __future__ import annotations

import logging
import random
import time


class Outage:
    def __init__(self, what: str, log: logging.Logger, *, base_s: float = 0.25, cap_s: float = 2.0):
        self.what = what
        self.log = log
        self.base_s = base_s
        self.cap_s = cap_s
        self.since: float | None = None
        self.failures = 0

    def failed(self, error: BaseException) -> float:
        """Note a failure; returns the seconds to wait before the next attempt."""
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if self.since is None:
            self.since = time.monotonic()
            self.log.warning(
                "%s unavailable (%s): retrying with back-off up to %g s", self.what, first, self.cap_s
            )
        else:
            self.log.debug("%s still unavailable after %d attempts: %s", self.what, self.failures + 1, first)
        delay = min(self.cap_s, self.base_s * 2**self.failures)
        self.failures += 1
        return random.uniform(delay / 2, delay)

    def recovered(self) -> None:
        """Note that the connection works (again)."""
        if self.since is not None:
            self.log.warning(
                "%s back after %.1f s (%d failed attempts)",
                self.what,
                time.monotonic() - self.since,
                self.failures,
            )
        self.since = None
        self.failures = 0


def quiet_clients(level: str = "INFO") -> None:
    """Leave connection failures to `Outage` (the clients' own logs stay at DEBUG level)."""
    if level.upper() != "DEBUG":
        for name in ("pika", "psycopg.pool"):
            logging.getLogger(name).setLevel(logging.CRITICAL)

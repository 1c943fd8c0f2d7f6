"""Health of a worker or status consumer for probes: `GET /health/live` and `GET /health/ready` on the port
given by `--health-port` (`HRLC_HEALTH_PORT`; off by default).

- **live**: the process's main loop turned within `stall_s` seconds (a worker's loop turns every second while
  idle and every 50 ms while its processor runs in a thread; the back-off of an outage is at most 2 s). A loop
  that stopped turning is a hung process: an orchestrator restarts it, and the broker redelivers its task.
- **ready**: every connection the process needs is up *as the process itself last used it* (no probe connection of
  its own: what matters is whether this process can work), e.g. `{"broker": "ok", "job store": "down since 12 s:
  connection refused"}`; 503 `ServiceUnavailable` naming what is down, the shape of the API's `/health/ready`.

The server is the standard library's, in a daemon thread: it answers only these two paths (404 otherwise), reads
no request body and gives up on a connection after 5 s, so a probe can never hold up the process's work.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_STALL_S = 120.0
PORT_HELP = (
    "serve /health/live and /health/ready on this port (default HRLC_HEALTH_PORT; unset: none); "
    "a worker with --concurrency N gives its processes this port and the N-1 after it"
)


def _first_line(e: BaseException | str) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else type(e).__name__


class Health:
    """What a long-running process knows about itself: when its loop last turned, which connections are up."""

    def __init__(self, component: str, needs: Iterable[str], *, stall_s: float = DEFAULT_STALL_S):
        self.component = component
        self.stall_s = stall_s
        self._lock = threading.Lock()
        self._tick = time.monotonic()
        self._names = set(needs)
        self._down: dict[str, tuple[float, str]] = {
            n: (time.monotonic(), "not connected yet") for n in self._names
        }
        self._server: ThreadingHTTPServer | None = None

    def tick(self) -> None:
        """The main loop turned."""
        self._tick = time.monotonic()

    def up(self, name: str) -> None:
        with self._lock:
            self._names.add(name)
            self._down.pop(name, None)

    def down(self, name: str, error: BaseException | str) -> None:
        """`name` failed; the first failure of an outage sets its start."""
        with self._lock:
            self._names.add(name)
            since = self._down[name][0] if name in self._down else time.monotonic()
            self._down[name] = (since, _first_line(error))

    def live(self) -> tuple[bool, dict[str, Any]]:
        idle = time.monotonic() - self._tick
        ok = idle <= self.stall_s
        body = {
            "status": "ok" if ok else "stalled",
            "component": self.component,
            "loop_idle_s": round(idle, 1),
        }
        if not ok:
            body["code"] = "ServiceUnavailable"
        return ok, body

    def ready(self) -> tuple[bool, dict[str, Any]]:
        now = time.monotonic()
        with self._lock:
            down, names = dict(self._down), sorted(self._names)
        checks = {
            n: (f"down since {now - down[n][0]:.0f} s: {down[n][1]}" if n in down else "ok") for n in names
        }
        if down:
            body = {"status": "unavailable", "code": "ServiceUnavailable", "component": self.component}
            return False, {**body, "down": sorted(down), "checks": checks}
        return True, {"status": "ok", "component": self.component, "checks": checks}

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Answer probes on host:port in a daemon thread; returns the port (useful with port 0)."""
        health = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 5

            def do_GET(self) -> None:  # noqa: N802 - the standard library's name
                path = self.path.split("?", 1)[0].rstrip("/")
                if path == "/health/live":
                    ok, body = health.live()
                elif path == "/health/ready":
                    ok, body = health.ready()
                else:
                    ok, body = False, {"code": "NotFound", "message": "only /health/live and /health/ready"}
                    self._send(404, body)
                    return
                self._send(200 if ok else 503, body)

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if status == 503:
                    self.send_header("Retry-After", "5")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - probes are not news
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        thread = threading.Thread(target=self._server.serve_forever, name="health", daemon=True)
        thread.start()
        return int(self._server.server_address[1])

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def serve_health(health: Health, port: int, host: str) -> bool:
    """Start `health`'s server for a process's entry point; False (and one line on stderr) when the port cannot be
    had (taken, out of range, an unknown interface): the process should not start half-observable."""
    try:
        health.serve(port, host)
    except (OSError, OverflowError) as e:
        print(f"error: cannot serve health on {host}:{port}: {e}", file=sys.stderr)
        return False
    logging.getLogger("hrlc.health").info("health on http://%s:%d/health/ready", host, port)
    return True

"""Limits every API request meets before any parser or handler sees it, so that no request can take the
service down or hold it for long (docs/security.md, "Limits").

`RequestLimits` is a pure ASGI middleware; each application installs it with its own error format (openEO
error JSON, STAC API error JSON). It refuses:
- a body larger than `max_body_bytes` (413): at once when `Content-Length` says so, else as soon as the
  streamed body passes the limit — nothing larger is ever held in memory;
- a JSON body nested deeper than `max_json_depth` (400): a 10 kB graph argument nested 5 000 arrays deep once
  cost a minute of CPU downstream;
- a JSON body that is not an object (400): every body of both APIs is one (a JSON Patch a list), and a parser
  behind assumed it;
- a body whose `Content-Type` is not JSON (415, or openEO's 400 `ContentTypeInvalid`): a parser behind took
  the raw bytes for an object;
- a NUL character in the path, a query parameter or a string of a JSON body (400): no database stores one;
- a CQL2 filter or free-text query (`filter`, `q`: query parameters, or members of a JSON body) longer than
  `max_filter_chars` or with parentheses nested deeper than `max_filter_depth` (400): the cql2 parser does not
  raise on deep nesting, it crashes the process (a stack overflow at about 1 500 levels).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hrlc.settings import Settings

FILTER_FIELDS = ("filter", "q")  # STAC API: CQL2 (filter extension) and free-text search (collection search)

# (status, code, message) -> JSON body of the application's error format
ErrorBody = Callable[[int, str, str], dict[str, Any]]


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 10 * 1024 * 1024
    max_json_depth: int = 100
    max_filter_chars: int = 20_000
    max_filter_depth: int = 50

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            max_body_bytes=settings.api_max_body_bytes,
            max_json_depth=settings.api_max_json_depth,
            max_filter_chars=settings.api_max_filter_chars,
            max_filter_depth=settings.api_max_filter_depth,
        )


class LimitExceeded(Exception):
    """A request over one of the limits: the HTTP status, an error code and a message for the user."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def json_depth(value: Any) -> int:
    """How deep arrays and objects nest in a parsed JSON value (a scalar: 0); iterative, no recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children: Iterable[Any]
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def has_nul(value: Any) -> bool:
    """Whether a parsed JSON value holds a NUL character in any string or object key; iterative."""
    stack: list[Any] = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def parenthesis_depth(text: str) -> int:
    """How deep parentheses nest in CQL2 text, outside its 'quoted' literals ('' is a quote inside one)."""
    depth = deepest = 0
    quoted = False
    for char in text:
        if char == "'":
            quoted = not quoted  # '' inside a literal toggles twice: still inside
        elif quoted:
            continue
        elif char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif char == ")":
            depth = max(depth - 1, 0)
    return deepest


def check_filter(name: str, value: Any, limits: Limits) -> None:
    """Raise `LimitExceeded` for a `filter`/`q` value (CQL2 text, CQL2 JSON, or free text) over the limits."""
    values = value if isinstance(value, list) else [value]
    for one in values:
        if not isinstance(one, str):  # CQL2 JSON inside a JSON body: the body's depth limit covers it
            continue
        if len(one) > limits.max_filter_chars:
            raise LimitExceeded(
                400, "InvalidQueryParameter", f"{name} is {len(one)} characters long; at most "
                f"{limits.max_filter_chars} are accepted"
            )  # fmt: skip
        if one.lstrip().startswith(("{", "[")):  # CQL2 JSON in a query parameter
            try:
                depth = json_depth(json.loads(one))
            except (ValueError, RecursionError):
                continue  # not JSON after all: the parser behind answers that
            limit, what = limits.max_json_depth, "JSON nesting"
        else:
            depth, limit, what = parenthesis_depth(one), limits.max_filter_depth, "parentheses nested"
        if depth > limit:
            raise LimitExceeded(
                400, "InvalidQueryParameter", f"{name} has {what} {depth} deep; at most {limit} are accepted"
            )


class RequestLimits:
    """ASGI middleware that applies `limits` to every HTTP request of `app`; `error` formats its refusals."""

    def __init__(
        self,
        app: ASGIApp,
        limits: Limits,
        error: ErrorBody,
        unsupported: tuple[int, str] = (415, "UnsupportedMediaType"),
    ):
        self.app = app
        self.limits = limits
        self.error = error
        self.unsupported = unsupported  # status and code of a body that is not JSON

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            if "\x00" in scope["path"]:
                raise LimitExceeded(400, "BadRequest", "the path holds a NUL character")
            for name, value in parse_qsl(scope.get("query_string", b"").decode("latin-1")):
                if "\x00" in name or "\x00" in value:
                    raise LimitExceeded(400, "BadRequest", f"query parameter {name!r} holds a NUL character")
                if name in FILTER_FIELDS:
                    check_filter(name, value, self.limits)
            if scope["method"] in {"POST", "PUT", "PATCH"}:
                body = await self._read_body(scope, receive)
                self._check_json(scope, body)
                receive = _replay(body, receive)
        except LimitExceeded as e:
            await self._refuse(send, e)
            return
        await self.app(scope, receive, send)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        limit = self.limits.max_body_bytes
        too_large = LimitExceeded(413, "PayloadTooLarge", f"the request body is larger than {limit} bytes")
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _check_json(self, scope: Scope, body: bytes) -> None:
        headers = dict(scope.get("headers") or [])
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        if body and content_type and "json" not in content_type:  # every body of both APIs is JSON
            status, code = self.unsupported
            raise LimitExceeded(
                status,
                code,
                f"the media type {content_type.split(';')[0]!r} is not supported. Allowed: application/json",
            )
        if not body or ("json" not in content_type and body.lstrip()[:1] not in (b"{", b"[")):
            return
        try:
            value = json.loads(body)
        except RecursionError:  # deeper than Python's own parser goes
            raise LimitExceeded(
                400, "BadRequest", f"the JSON body nests too deep; at most {self.limits.max_json_depth} levels "
                "are accepted"
            ) from None  # fmt: skip
        except ValueError:
            return  # not JSON: the application answers that in its own words
        depth = json_depth(value)
        if depth > self.limits.max_json_depth:
            raise LimitExceeded(
                400, "BadRequest", f"the JSON body nests {depth} levels deep; at most "
                f"{self.limits.max_json_depth} are accepted"
            )  # fmt: skip
        patch = "json-patch" in content_type  # RFC 6902 (STAC transactions' PATCH): a list of operations
        if not isinstance(value, list if patch else dict):  # every other body of both APIs is an object
            raise LimitExceeded(
                400, "BadRequest", f"the JSON body must be {'a list' if patch else 'an object'}"
            )
        if has_nul(value):
            raise LimitExceeded(
                400, "BadRequest", "a string of the JSON body holds a NUL character (\\u0000)"
            )
        if isinstance(value, dict):
            for name in FILTER_FIELDS:
                if name in value:
                    check_filter(name, value[name], self.limits)

    async def _refuse(self, send: Send, e: LimitExceeded) -> None:
        body = json.dumps(self.error(e.status, e.code, e.message)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": e.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the application the body already read, then whatever the client sends next."""
    done = False

    async def replayed() -> Message:
        nonlocal done
        if not done:
            done = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


def openeo_error(status: int, code: str, message: str) -> dict[str, Any]:
    """The openEO API's error JSON."""
    return {"id": uuid.uuid4().hex, "code": code, "message": message, "links": []}


def stac_error(status: int, code: str, message: str) -> dict[str, Any]:
    """The STAC API's (stac-fastapi's) error JSON."""
    return {"code": code, "description": message}

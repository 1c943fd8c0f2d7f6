"""Which inputs a job submitted through the platform may name: nothing a user sends makes a worker open a URL
or a path the deployment does not allow (issue 10: server-side request forgery).

- `source` (STAC API or catalogue of the input scenes) must lie under one of `HRLC_JOB_SOURCES`;
- `training` must be a selection of the training-set database, an object under the user's own prefix of the
  lake (`users/<user>/`), or lie under one of `HRLC_JOB_TRAINING`.

Entries and requests are compared in a normal form (scheme, lower-case host, path without `.` segments);
anything with `..` segments, GDAL `/vsi` prefixes, NUL characters, credentials, a query or a fragment, or a
relative path is refused outright. The refusal names what is allowed, never whether the refused path exists.
The embedded default (`hrlc run` on one's own machine) uses no allowlist.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from hrlc.settings import Settings, local_path


class InputRefused(ValueError):
    """A job names an input the deployment does not allow (one line for the user)."""


def normal_form(ref: str) -> str | None:
    """`scheme://host/path` of a URL, or the absolute path of a file; None for anything unsafe to compare."""
    if not isinstance(ref, str) or not ref or "\x00" in ref or "/vsi" in ref.lower() or "\\" in ref:
        return None
    parts = urlsplit(ref)
    scheme = parts.scheme.lower()
    if parts.query or parts.fragment or parts.username or parts.password:
        return None
    if scheme in {"http", "https", "s3"}:
        if not parts.hostname:
            return None
        path = parts.path or "/"
        head = f"{scheme}://{parts.netloc.lower()}"
    elif scheme in {"", "file"}:
        path, head = (parts.path if scheme == "file" else ref), ""
        if not path.startswith("/"):
            return None  # relative: it would mean the server's working directory
    else:
        return None
    if ".." in path.split("/"):
        return None
    return head + posixpath.normpath(path)


def _under(ref: str, prefixes: Iterable[str]) -> bool:
    target = normal_form(ref)
    if target is None:
        return False
    for prefix in prefixes:
        allowed = normal_form(prefix)
        if allowed is not None and (target == allowed or target.startswith(allowed.rstrip("/") + "/")):
            return True
    return False


@dataclass(frozen=True)
class InputAllowlist:
    sources: tuple[str, ...]
    training: tuple[str, ...] = ()
    lake: str | None = None  # the lake's root URL: users may name objects under `users/<user>/` of it

    @classmethod
    def from_settings(cls, settings: Settings) -> InputAllowlist:
        return cls(tuple(settings.job_sources), tuple(settings.job_training), settings.store)

    def user_prefix(self, user: str) -> str | None:
        """The lake's URL (or path) of the user's own prefix, `users/<user>/`."""
        if self.lake is None or not user or "/" in user or user in {".", ".."}:
            return None
        root = self.lake if self.lake.startswith("s3://") else str(local_path(self.lake).absolute())
        return f"{root.rstrip('/')}/users/{user}/"

    def check_source(self, source: str) -> None:
        if not _under(source, self.sources):
            allowed = ", ".join(self.sources) or "none: ask an operator to set HRLC_JOB_SOURCES"
            raise InputRefused(
                f"source {source!r} is not a STAC source of this deployment; allowed: {allowed}"
            )

    def check_training(self, training: str | Mapping[str, Any], user: str) -> None:
        if isinstance(training, Mapping):
            return  # a selection of the training-set database: no URL, no path
        own = self.user_prefix(user)
        if _under(training, [*self.training, *([own] if own else [])]):
            return
        where = ["a training-set selection {area, year, ...}", *(f"files under {p}" for p in self.training)]
        if own:
            where.append(f"your own files under {own}")
        raise InputRefused(f"training {training!r} is not allowed here; use {', or '.join(where)}")

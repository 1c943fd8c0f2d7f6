"""The users file of the openEO API (`HRLC_USERS_FILE`): who may log in with a password, and their roles.

JSON (or TOML, read only) with one entry per user: either the password hash alone (`{"alice": "scrypt$…"}`)
or a table with the roles (`{"ops": {"hash": "scrypt$…", "roles": ["operator"]}}`). Roles: `user` (everyone),
`operator` (sees the workers of the processor registry), `admin`. `hrlc users add/passwd/remove/list` edits
the file (atomically: a reader never sees half of it); hashes come from `hash_password` (salted scrypt).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROLES = ("user", "operator", "admin")
USER_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """A salted scrypt hash of a password, as stored in the users file: `scrypt$n$r$p$salt$hash` (base64)."""
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches a `hash_password` hash (constant-time; False for malformed hashes)."""
    import binascii

    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(want)
        )
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(got, want)


@dataclass(frozen=True)
class User:
    hash: str
    roles: frozenset[str] = field(default_factory=lambda: frozenset({"user"}))

    @property
    def password_version(self) -> str:
        """Changes with the password: tokens carry it, so a new password ends the old tokens."""
        return hashlib.sha256(self.hash.encode()).hexdigest()[:16]


def load_users(path: str | Path) -> dict[str, User]:
    """The users of a JSON or TOML users file; ValueError for anything else."""
    path = Path(path)
    data = path.read_bytes()
    table = tomllib.loads(data.decode()) if path.suffix.lower() == ".toml" else json.loads(data)
    if not isinstance(table, dict):
        raise ValueError(f"{path}: a users file is a table {{user: password hash or {{hash, roles}}}}")
    users: dict[str, User] = {}
    for name, entry in table.items():
        if isinstance(entry, str):
            users[str(name)] = User(entry)
        elif isinstance(entry, dict) and isinstance(entry.get("hash"), str):
            roles = entry.get("roles", [])
            if not isinstance(roles, list) or not set(roles) <= set(ROLES):
                raise ValueError(f"{path}: roles of {name!r} must be a list of {', '.join(ROLES)}")
            users[str(name)] = User(entry["hash"], frozenset({"user", *roles}))
        else:
            raise ValueError(f"{path}: the entry of {name!r} is neither a password hash nor {{hash, roles}}")
    return users


def save_users(path: str | Path, users: dict[str, User]) -> None:
    """Write the users file as JSON, atomically (a temporary file in the same folder, then a rename)."""
    path = Path(path)
    if path.suffix.lower() == ".toml":
        raise ValueError(f"{path}: hrlc writes users files as JSON; convert it to a .json file")
    table = {
        name: u.hash if u.roles == {"user"} else {"hash": u.hash, "roles": sorted(u.roles - {"user"})}
        for name, u in sorted(users.items())
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(table, f, indent=1)
            f.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

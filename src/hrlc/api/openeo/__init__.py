"""The openEO API of hrlc (openEO API 1.2.0): discovery, basic auth, user-defined processes, validation,
batch jobs. `create_openeo_app` builds it; `hash_password` makes the entries of the users file."""

from hrlc.api.openeo.app import create_openeo_app
from hrlc.api.openeo.auth import hash_password

__all__ = ["create_openeo_app", "hash_password"]

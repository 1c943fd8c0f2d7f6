"""pytest plugin for running openeo-test-suite 0.2.2 offline against hrlc (loaded with `-p`, see
`scripts/openeo_test_suite_run.py`). It changes nothing in the suite's tests, only their surroundings:

- **Authentication.** The suite's compliance tests (`tests/general`, `compliance_util.get_access_token`) and
  its HTTP process runner call `Connection.authenticate_oidc()` unconditionally; hrlc offers HTTP Basic only.
  With `OPENEO_AUTH_METHOD=basic` (the variable the suite's own `connection` fixture reads), that call does
  `authenticate_basic(OPENEO_AUTH_BASIC_USERNAME, OPENEO_AUTH_BASIC_PASSWORD)` instead, so the bearer token
  the tests send is `basic//<token>` from `GET /credentials/basic`.
- **Offline schemas.** stac-validator (collection tests, job results) fetches STAC and extension schemas
  from the internet; they are answered from the mirror `$OTS_SCHEMAS` (`shared/schemas`, its
  `url-map.json`), with the hooks of `stac_api_validator_offline.py`. Other non-local hosts fail at once.
- **Payload examples.** `compliance_util.get_examples_path()` is made absolute (`<cwd>/src/openeo_test_suite/
  tests/general/payload_examples`): with the relative path the suite derives from `./assets/openeo-api`,
  `load_payloads_from_directory` joins the directory twice and finds no file.
- **Markers.** The suite's markers (`optional`, `longrunning`, `vv`) are registered (its pyproject.toml does
  that in a git checkout; pytest 9 refuses unregistered markers).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stac_api_validator_offline import SchemaMirror, install  # noqa: E402


def _basic_instead_of_oidc() -> None:
    import openeo.rest.connection as rc

    def authenticate_oidc(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        return self.authenticate_basic(
            username=os.environ["OPENEO_AUTH_BASIC_USERNAME"],
            password=os.environ["OPENEO_AUTH_BASIC_PASSWORD"],
        )

    rc.Connection.authenticate_oidc = authenticate_oidc  # type: ignore[method-assign]


def _absolute_payload_examples() -> None:
    from openeo_test_suite.lib import compliance_util

    root = Path.cwd() / "src" / "openeo_test_suite" / "tests" / "general" / "payload_examples"
    compliance_util.get_examples_path = lambda: root


def pytest_configure(config) -> None:  # noqa: ANN001
    _absolute_payload_examples()
    # the suite's markers (its pyproject.toml registers them; pytest 9 refuses unknown ones)
    for marker in ("optional", "longrunning", "vv"):
        config.addinivalue_line("markers", f"{marker}: openeo-test-suite marker")
    schemas = os.environ.get("OTS_SCHEMAS")
    if schemas:
        install(SchemaMirror(Path(schemas).resolve()))
    if os.environ.get("OPENEO_AUTH_METHOD") == "basic":
        _basic_instead_of_oidc()

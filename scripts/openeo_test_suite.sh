#!/usr/bin/env bash
# Run the official openEO test suite (openeo-test-suite 0.2.2) against a local hrlc stack, offline.
#   bash scripts/openeo_test_suite.sh [--groups general,collections,...] [--keep] [--out DIR] [-- pytest args]
# Makes the suite's own venv (.venv-ots, git-ignored; the suite pins openapi-core==0.18.2, so it stays out of
# .venv) when it is missing, then runs scripts/openeo_test_suite_run.py with hrlc's .venv (see its docstring).
# Needs the services of scripts/services.sh (PostgreSQL + PostGIS) and RabbitMQ (HRLC_BROKER_URL).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
OTS_VENV=${OTS_VENV:-.venv-ots}
OTS_VERSION=0.2.2

if ! "$OTS_VENV/bin/python" -c "import openeo_test_suite" 2>/dev/null; then
  echo "[ots] making $OTS_VENV with openeo-test-suite==$OTS_VERSION" >&2
  python3 -m venv "$OTS_VENV"
  # no [dask] extra: it needs the PyPI gdal package, which does not build here (STACK-NOTES)
  "$OTS_VENV/bin/pip" install -q "openeo-test-suite==$OTS_VERSION"
fi

export OTS_PYTHON="$(cd "$OTS_VENV" && pwd)/bin/python"
exec "$VENV/bin/python" scripts/openeo_test_suite_run.py "$@"

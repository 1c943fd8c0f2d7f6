#!/usr/bin/env bash
# Refresh the locks in requirements/: the exact versions every install profile of hrlc gets on Python 3.11
# (any OS: `uv pip compile --universal`). pyproject.toml keeps ranges for library users; the README's
# commands and .ci/run install through these files (`pip install -c requirements/<profile>.txt ...`), so a
# fresh machine today and next month resolves the same versions.
#
#   bash scripts/lock.sh             # add what pyproject.toml asks for anew, keep every other pin
#   bash scripts/lock.sh --upgrade   # move every pin to the newest release the ranges allow
#
# Profiles: test (hrlc[test], the largest), then platform (hrlc[platform]) and core (hrlc) resolved inside
# the test lock, so the three never disagree on a version. Needs uv (`pip install uv`: it is in the test
# extra, so .venv/bin/uv after the README's second command).
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-$(command -v uv || echo .venv/bin/uv)}
[ -x "$UV" ] || { echo "lock.sh: uv not found; pip install uv (or set UV=/path/to/uv)" >&2; exit 2; }
compile() { "$UV" pip compile pyproject.toml --universal --python-version 3.11 --quiet "$@"; }
mkdir -p requirements
compile --extra test -o requirements/test.txt "$@"
compile --extra platform -c requirements/test.txt -o requirements/platform.txt "$@"
compile -c requirements/test.txt -o requirements/core.txt "$@"
echo "locked: $(grep -c '==' requirements/core.txt) core, $(grep -c '==' requirements/platform.txt) platform," \
  "$(grep -c '==' requirements/test.txt) test packages (requirements/*.txt)"

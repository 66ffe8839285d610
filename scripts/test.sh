#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
mkdir -p artifacts
# Static checks before the suite (settings in pyproject.toml): a type error or a lint regression fails the run here,
# in one line, instead of after the suite's minutes.
.venv/bin/python -m mypy >artifacts/mypy.txt 2>&1 \
  || { cat artifacts/mypy.txt >&2; echo "[test] mypy --strict pbx_codes failed: $(tail -n 1 artifacts/mypy.txt)" >&2; exit 1; }
.venv/bin/python -m ruff check --quiet \
  || { echo "[test] ruff check failed (the findings above)" >&2; exit 1; }
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
[ "$rc" -eq 5 ] && { echo "no tests were collected" >&2; exit 1; }
exit "$rc"

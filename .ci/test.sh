#!/usr/bin/env bash
# The whole test suite: ruff, then pytest. Run through `make test` (which bootstraps first).
set -uo pipefail
cd "$(dirname "$0")/.."

.venv/bin/ruff check . || { echo "ruff found problems (run: .venv/bin/ruff check --fix .)"; exit 1; }

.venv/bin/python -m pytest "$@"
status=$?
if [ "$status" -eq 5 ]; then
    # pytest's 5 means no test was collected: a suite that runs nothing is broken.
    echo "pytest collected no tests: the suite is broken" >&2
    exit 1
fi
exit "$status"

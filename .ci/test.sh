#!/usr/bin/env bash
# The whole test suite: ruff, then pytest. Run through `make test` (which bootstraps first).
set -uo pipefail
cd "$(dirname "$0")/.."

.venv/bin/ruff check . || { echo "ruff found problems (run: .venv/bin/ruff check --fix .)"; exit 1; }

# Two workers (pytest-xdist; TEST_WORKERS=0 runs in one process): each starts its own
# PostgreSQL cluster on a free port; the browser tests share one worker (xdist_group).
.venv/bin/python -m pytest -n "${TEST_WORKERS:-2}" --dist loadgroup "$@"
status=$?
if [ "$status" -eq 5 ]; then
    # pytest's 5 means no test was collected: a suite that runs nothing is broken.
    echo "pytest collected no tests: the suite is broken" >&2
    exit 1
fi
exit "$status"

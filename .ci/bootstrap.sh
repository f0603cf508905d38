#!/usr/bin/env bash
# Creates .venv and installs the project with what its tests need.
# Idempotent: a second run only checks. Installs OS packages (apt) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
    echo "bootstrap: Python >= 3.11 is required (found: $("$PY" --version 2>&1))" >&2
    exit 2
fi

if ! command -v git >/dev/null 2>&1; then
    echo "bootstrap: installing git (apt)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq git >/dev/null
fi

apt_updated=
apt_install() {
    if [ -z "$apt_updated" ]; then apt-get update -qq; apt_updated=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# PostgreSQL server binaries for the test suite's throw-away clusters.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "bootstrap: installing PostgreSQL (apt)"
    apt_install postgresql
fi

# HypoPG (hypothetical indexes for the index advisor) for the installed PostgreSQL major,
# and the sqlite3 shell (its .expert recommender is the advisor benchmark's reference).
pg_major=$(ls /usr/lib/postgresql/ | sort -n | tail -1)
if [ ! -f "/usr/share/postgresql/$pg_major/extension/hypopg.control" ]; then
    echo "bootstrap: installing HypoPG for PostgreSQL $pg_major (apt)"
    apt_install "postgresql-$pg_major-hypopg"
fi
if ! command -v sqlite3 >/dev/null 2>&1; then
    echo "bootstrap: installing the sqlite3 shell (apt)"
    apt_install sqlite3
fi

# Chromium for the browser test (tests/test_browser.py drives it through Playwright;
# never `playwright install`, which downloads a browser).
if [ ! -x /usr/bin/chromium ]; then
    echo "bootstrap: installing Chromium (apt)"
    apt_install chromium
fi

# Node.js builds the JupyterLab extension (labextension/) into the wheel; only at build
# time: an installed wheel never needs it. rspack (through @jupyter/builder) wants >= 20.19.
if ! command -v node >/dev/null 2>&1; then
    echo "bootstrap: installing Node.js (apt)"
    apt_install nodejs
fi
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
    echo "bootstrap: Node.js >= 20.19 is needed to build the lab extension (found $(node --version)); install a newer nodejs package" >&2
    exit 2
fi

if [ ! -x .venv/bin/python ]; then
    echo "bootstrap: creating .venv"
    "$PY" -m venv .venv
fi

stamp=.venv/.conductor-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "bootstrap: installing conductor-magics and test dependencies into .venv"
    .venv/bin/python -m pip install -q --upgrade pip
    # builds the lab extension (hatch-jupyter-builder) and enables both extensions in .venv
    .venv/bin/python -m pip install -q -e '.[test]'
    touch "$stamp"
fi

# Rebuild the lab extension when its sources changed since the last build.
bundle=conductor_magics/labextension/package.json
if [ ! -f "$bundle" ] || [ -n "$(find labextension/package.json labextension/src labextension/schema \
        labextension/style -newer "$bundle" -print -quit 2>/dev/null)" ]; then
    echo "bootstrap: building the lab extension (jlpm build:prod)"
    (cd labextension && export PATH="$PWD/../.venv/bin:$PATH" && jlpm install >/dev/null && jlpm build:prod >/dev/null)
fi
# .venv's JupyterLab loads the bundle from the checkout (a link, as `jupyter labextension
# develop` makes; the editable install copied it), so a rebuild is what it serves.
installed=.venv/share/jupyter/labextensions/conductor-magics
if [ ! -L "$installed" ]; then
    rm -rf "$installed"
    mkdir -p "$(dirname "$installed")"
    ln -s "$PWD/conductor_magics/labextension" "$installed"
fi

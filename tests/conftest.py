"""Shared fixtures: a fresh copy of the example workspace per test, one PostgreSQL cluster per
session (per xdist worker), the per-dialect database fixtures, JupyterLab/Chromium and the
IPython shell. Plain helpers (the CLI runner, sample schemas, ...) live in tests/helpers/;
test modules import from there, never from each other or from this file."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from helpers.workspace import EXAMPLE, without_phase_kind_locks
from hypothesis import settings

# CI runs the same examples every time (a red run does not land: no chance failures there);
# locally, Hypothesis keeps exploring new ones.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder holding a copy of the example storage-conductor/ workspace."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copytree(EXAMPLE, project / "storage-conductor")
    return project


@pytest.fixture
def unlocked_project(project: Path) -> Path:
    """The example project without schema-first locks (see without_phase_kind_locks)."""
    without_phase_kind_locks(project / "storage-conductor")
    return project


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL cluster started for this test session (never skipped)."""
    from helpers.postgres_server import start_server

    server = start_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server) -> str:
    """A fresh, empty database on the session's cluster; dropped afterwards."""
    import secrets

    name = pg_server.create_database(f"t_{secrets.token_hex(5)}")
    try:
        yield pg_server.url(name)
    finally:
        pg_server.drop_database(name)


# --------------------------------------------------------------------------- browser tests


@pytest.fixture
def lab(tmp_path: Path):
    """A real JupyterLab serving an empty project folder (``lab.root_dir``); stopped by PID."""
    from helpers.browser_lab import start_lab

    root = tmp_path / "lab-project"
    root.mkdir()
    server = start_lab(root, tmp_path / "lab-home")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def browser_page(tmp_path: Path):
    """A Playwright page in headless Debian Chromium with a new, empty user-data dir."""
    from helpers.browser_lab import CHROMIUM, CHROMIUM_ARGS, require_tools

    require_tools()
    from playwright.sync_api import sync_playwright

    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000})
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(30_000)
            yield page
        finally:
            context.close()


@pytest.fixture
def url_for(request, tmp_path: Path):
    """``url_for(dialect)``: a fresh, empty database of that dialect (sqlite, duckdb or
    postgresql, the last on the session's cluster)."""
    def make(dialect: str) -> str:
        if dialect == "sqlite":
            return f"sqlite:///{tmp_path / 'live.sqlite'}"
        if dialect == "duckdb":
            return f"duckdb:///{tmp_path / 'live.duckdb'}"
        return request.getfixturevalue("pg_url")
    return make


@pytest.fixture(params=["sqlite", "postgresql"])
def dialect(request) -> str:
    """The dialect of a per-dialect test: sqlite, then postgresql. A module that covers
    duckdb too overrides this fixture with its own ``params``."""
    return request.param


@pytest.fixture
def db_url(dialect: str, url_for) -> str:
    """A fresh, empty database of ``dialect`` (see url_for)."""
    return url_for(dialect)


@pytest.fixture
def db_engine(db_url: str):
    """An engine on ``db_url``, disposed afterwards."""
    from conductor_magics.engine.connection import make_engine

    engine = make_engine(db_url)
    try:
        yield engine
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- IPython shell


@pytest.fixture(scope="session")
def shell():
    """A real IPython shell with the extension loaded (IPython keeps one per process)."""
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "conductor_magics")
    return ip


@pytest.fixture
def ip(shell, project: Path, monkeypatch):
    """The shell pointed at this test's project, every setting back at its default."""
    monkeypatch.delenv("CONDUCTOR_DATABASE_URL", raising=False)
    for setting in (f"root = {str(project)!r}", "user = 'tester'", "variable = 'conductor'",
                    "rich = True", "statement_timeout = None"):
        shell.run_line_magic("config", f"Conductor.{setting}")
    shell.user_ns.pop("conductor", None)
    return shell

"""Shared fixtures: a fresh copy of the example workspace per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "example_notebooks" / "storage-conductor"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder holding a copy of the example storage-conductor/ workspace."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copytree(EXAMPLE, project / "storage-conductor")
    return project


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL cluster started for this test session (never skipped)."""
    from postgres_server import start_server

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

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

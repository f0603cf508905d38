"""The example notebooks execute headless (nbclient) on a copy of the example workspace."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
from conftest import EXAMPLE, REPO
from nbclient import NotebookClient


def test_getting_started_runs_two_phases_with_checked_gates(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("CONDUCTOR_DATABASE_URL", raising=False)
    shutil.copytree(EXAMPLE, tmp_path / "storage-conductor")
    nb = nbformat.read(REPO / "example_notebooks" / "getting_started.ipynb", as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors
    log = json.loads((tmp_path / "storage-conductor/storages/orders_db/verification.json").read_text())
    verdicts = [r for r in log if r["kind"] == "verification"]
    assert [r["phase"] for r in verdicts] == [1, 2]
    for verdict in verdicts:  # each gate ran its automated checks, and they passed
        assert verdict["checks"] and all(c["status"] in ("pass", "skip") for c in verdict["checks"])
    folder = tmp_path / "storage-conductor/storages/orders_db"
    assert (folder / "schema.sql").exists() and list((folder / "migrations/versions").glob("*.py"))
    refused = [o for c in nb.cells for o in c.get("outputs", []) if "refused:" in o.get("text", "")]
    assert refused, "the notebook should show the locked phase 2 being refused"

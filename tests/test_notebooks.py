"""The example notebooks execute headless (nbclient) on a copy of the example workspace."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
from helpers.workspace import EXAMPLE, REPO
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


def test_walkthrough_implements_every_phase_and_completes(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("CONDUCTOR_DATABASE_URL", raising=False)
    shutil.copytree(EXAMPLE, tmp_path / "storage-conductor")
    nb = nbformat.read(REPO / "example_notebooks" / "implement_walkthrough.ipynb", as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    texts = [str(o.get("text") or o.get("data", {}).get("text/plain", "")) for o in outputs]
    assert not [t for t in texts if "FAILED" in t], "a check failed along the way"
    # drift shown once, at the end: spec, schema.sql, revisions, database and verdicts agree
    drift = [c for c in nb.cells if c.cell_type == "code" and c.source.strip() == "%conductor drift"]
    assert len(drift) == 1
    shown = [str(o.get("data", {}).get("text/plain", "")) for o in drift[0].get("outputs", [])]
    assert shown == ["orders_db: no drift (5 comparisons)"], shown
    folder = tmp_path / "storage-conductor/storages/orders_db"
    log = json.loads((folder / "verification.json").read_text())
    assert [r["phase"] for r in log if r["kind"] == "verification"] == list(range(1, 9))
    assert json.loads((folder / "metadata.json").read_text())["status"] == "Completed"
    assert "| orders_db | Orders database | relational | PostgreSQL | Completed |" in \
        (tmp_path / "storage-conductor/tracks.md").read_text()
    # v1, the advisor's index revision (phase 4), v2 (phase 5)
    assert len(list((folder / "migrations/versions").glob("*.py"))) == 3
    checks = {r["phase"]: {c["check"]: c["status"] for c in r.get("checks") or []}
              for r in log if r["kind"] == "verification"}
    assert checks[4] == {"benchmarks of the indexes kept show a speed-up": "pass",
                         "every workload query runs": "pass",
                         "advisor finds nothing left to add": "pass"}, checks[4]
    assert checks[6] and set(checks[6].values()) == {"pass"}, checks[6]
    assert "-- name: customer_orders_by_status" in (folder / "workload.sql").read_text()
    assert len((folder / "benchmarks.jsonl").read_text().splitlines()) == 1
    assert list((folder / "backups").glob("*.manifest.json"))

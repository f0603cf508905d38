"""Hostile inputs to the tuning steps (issue 10, items 6 and 7): each is refused with one
line and its exit code, and changes nothing on disk."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers.hostile import conductor, refused, tree

INTENT = ".advise-apply.json"


@pytest.fixture
def component(project: Path) -> Path:
    folder = project / "storage-conductor" / "storages" / "orders_db"
    assert conductor(project, "implement", "orders_db").returncode == 0
    return folder


def test_abandon_without_an_interrupted_apply(project: Path, component: Path):
    before = tree(project)
    proc = conductor(project, "advise", "--abandon")
    refused(proc, 2, r"no interrupted advise --apply to abandon", before, project)


def test_apply_and_abandon_together(project: Path, component: Path):
    before = tree(project)
    proc = conductor(project, "advise", "--apply", "--abandon")
    refused(proc, 2, r"--apply and --abandon exclude each other", before, project)


@pytest.mark.parametrize("intent", [
    "{not json",
    json.dumps({"kind": "something else"}),
    # a forged revision file outside migrations/versions/ must never be deleted by the undo
    json.dumps({"kind": "advise-apply", "pid": 0, "ddl": ["CREATE INDEX i ON t (a);"],
                "message": "add advisor indexes i", "schema_before": "", "schema_after": "",
                "versions_before": [], "revision": "abc", "revision_file": "../../../tracks.md"}),
    # a message that would match every revision file
    json.dumps({"kind": "advise-apply", "pid": 0, "ddl": [], "message": "",
                "schema_before": "", "schema_after": "", "versions_before": [],
                "revision": None, "revision_file": None}),
], ids=["not-json", "other-kind", "revision-outside", "empty-message"])
@pytest.mark.parametrize("command", [("advise", "--abandon"), ("advise", "--apply"),
                                     ("migrate", "up")], ids=["abandon", "apply", "migrate-up"])
def test_a_forged_intent_file_deletes_nothing(project: Path, component: Path, intent: str,
                                              command: tuple[str, ...]):
    (component / "schema.sql").write_text("CREATE TABLE t (a INTEGER);\n")
    (component / INTENT).write_text(intent)
    before = tree(project)
    proc = conductor(project, *command)
    refused(proc, 2, r"cannot read the advise --apply intent .*\.advise-apply\.json", before,
            project)


def test_lint_reports_a_forged_intent_as_interrupted(project: Path, component: Path):
    shutil.copy(__file__, component / INTENT)  # anything unreadable as an intent
    proc = conductor(project, "lint")
    assert proc.returncode == 1 and "advise --apply was interrupted" in proc.stdout

"""storages/<id>/test_runs.json: every recorded run of a test cell (append-only), for TDD.

In TDD mode a task may be ticked only after a test linked to it was seen failing and
then passing (red → green).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import WorkspaceFormatError
from .files import append_json_record
from .layout import TEST_RUNS_FILE

FILE_NAME = TEST_RUNS_FILE

NONE, RED, GREEN, GREEN_ONLY = "no tests", "red", "green", "green without red"


@dataclass
class TestRuns:
    path: Path
    records: list[dict[str, Any]]

    def for_task(self, task_name: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("task_name") == task_name]

    def state(self, task_name: str) -> str:
        """``red`` (seen failing, not yet passing), ``green`` (failing, then passing, and
        every linked test's latest run passes), ``green without red``, or ``no tests``."""
        runs = self.for_task(task_name)
        if not runs:
            return NONE
        latest: dict[str, bool] = {}
        red_then_green = False
        seen_red: set[str] = set()
        for run in runs:
            name = run.get("name", "")
            if not run.get("passed"):
                seen_red.add(name)
            elif name in seen_red:
                red_then_green = True
            latest[name] = bool(run.get("passed"))
        if not all(latest.values()):
            return RED
        return GREEN if red_then_green else GREEN_ONLY


def read_runs(path: Path) -> TestRuns:
    path = Path(path)
    if not path.exists():
        return TestRuns(path, [])
    return _parse_runs(path.read_bytes(), path)


def _parse_runs(raw: bytes, path: Path) -> TestRuns:
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise WorkspaceFormatError(f"cannot read the test-run log: {exc}", path=path,
                                   line=getattr(exc, "lineno", None),
                                   hint="restore it from git; it is append-only") from exc
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise WorkspaceFormatError("expected a JSON list of test runs", path=path, line=1)
    return TestRuns(path, data)


def append_run(path: Path, record: dict[str, Any]) -> TestRuns:
    """Append one run (caller holds the lock)."""
    path = Path(path)
    records = append_json_record(path, record, lambda raw, p: _parse_runs(raw, p).records)
    return TestRuns(path, records)

"""The example workspace the tests copy, and edits of it several modules make."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "example_notebooks" / "storage-conductor"


def without_phase_kind_locks(workspace: Path) -> None:
    """Drop workflow.md's testing-approach line, so schema-first does not lock the
    implementation phases: for tests of the write machinery, not of the gates."""
    workflow = workspace / "workflow.md"
    lines = workflow.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if "testing approach" not in line.lower()]
    assert len(kept) == len(lines) - 1
    workflow.write_text("".join(kept), encoding="utf-8")

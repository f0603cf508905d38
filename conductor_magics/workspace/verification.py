"""storages/<id>/verification.json: the append-only log of phase verdicts and overrides.

A record names its phase by title (``phase_title``), by position from 1 in file order
(``phase``: what every record has held since the first version, so older files and
older readers agree) and by the number messages show (``phase_number``: the heading's own
number, e.g. 0 for ``## Phase 0: Setup``; absent from older records, where it equalled
``phase``).

``revert`` takes a verdict back by appending a ``revocation`` record for the phase (the
verdict stays in the file): the phase counts as verified again only after a newer verdict.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import WorkspaceFormatError
from .files import append_json_record
from .layout import VERIFICATION_FILE
from .plan import Phase, Plan, _fold

FILE_NAME = VERIFICATION_FILE
#: the kind of record ``revert`` appends to take a phase's verdict back (history is kept)
REVOCATION = "revocation"


def phase_fields(phase: Phase) -> dict[str, Any]:
    """How a record names its phase (see the module docstring)."""
    return {"phase": phase.index + 1, "phase_number": phase.number, "phase_title": phase.title}


@dataclass
class VerificationLog:
    path: Path
    records: list[dict[str, Any]]
    #: the last plan's folded phase titles: asked once per phase, so built once per plan
    _titles: tuple[Any, frozenset[str]] | None = field(default=None, repr=False, compare=False)

    def verdicts(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("kind", "verification") == "verification"]

    def _latest(self, phase: Phase, plan: Plan) -> dict[str, Any] | None:
        """The phase's latest verdict or revocation (see :meth:`verdict_for`)."""
        if self._titles is None or self._titles[0] is not plan:
            self._titles = (plan, frozenset(_fold(p.title) for p in plan.phases))
        titles = self._titles[1]
        own = _fold(phase.title)
        found = None
        for record in self.records:
            if record.get("kind", "verification") not in ("verification", REVOCATION):
                continue
            title = _fold(str(record.get("phase_title", "")))
            if title == own or (
                title not in titles and record.get("phase") == phase.index + 1
            ):
                found = record
        return found

    def verdict_for(self, phase: Phase, plan: Plan) -> dict[str, Any] | None:
        """The latest verdict recorded for a phase, matched by title, else by position
        when the recorded title names no phase of the plan any more; None when a later
        ``revocation`` record (``revert``) took it back."""
        found = self._latest(phase, plan)
        return None if found is None or found.get("kind") == REVOCATION else found

    def revoked(self, phase: Phase, plan: Plan) -> dict[str, Any] | None:
        """The revocation that took the phase's verdict back, while it is the latest record."""
        found = self._latest(phase, plan)
        return found if found is not None and found.get("kind") == REVOCATION else None


def read_log(path: Path) -> VerificationLog:
    path = Path(path)
    if not path.exists():
        return VerificationLog(path, [])
    return _parse_log(path.read_bytes(), path)


def _parse_log(raw: bytes, path: Path) -> VerificationLog:
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        line = getattr(exc, "lineno", None)
        raise WorkspaceFormatError(f"cannot read the verification log: {exc}", path=path, line=line,
                                   hint="restore it from git; it is append-only") from exc
    records = data.get("records") if isinstance(data, dict) else data
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise WorkspaceFormatError("expected a JSON list of records", path=path, line=1,
                                   hint="restore it from git; it is append-only")
    return VerificationLog(path, records)


def append_record(path: Path, record: dict[str, Any]) -> VerificationLog:
    """Append one record (caller holds the lock); earlier records are never rewritten."""
    path = Path(path)
    records = append_json_record(path, record, lambda raw, p: _parse_log(raw, p).records)
    return VerificationLog(path, records)

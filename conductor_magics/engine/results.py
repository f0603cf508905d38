"""The one result row of every check the tool runs, and its status words.

Gate checks (:mod:`.checks`), backup verification and restore drills (:mod:`.backup`)
all report :class:`CheckResult` rows; this module imports nothing of the package, so
both can depend on it without depending on each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PASS, FAIL, SKIP = "pass", "fail", "skip"
#: every status a check row can have
STATUSES = (PASS, FAIL, SKIP)


@dataclass
class CheckResult:
    """One check's outcome: its name, pass/fail/skip, a one-line detail and its duration."""

    name: str
    status: str
    detail: str = ""
    seconds: float = 0.0
    #: files or text the check produced (e.g. an ER diagram) for the caller to keep
    artifacts: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"check": self.name, "status": self.status, "detail": self.detail,
                "seconds": round(self.seconds, 4)}


__all__ = ["FAIL", "PASS", "SKIP", "STATUSES", "CheckResult"]

"""A finding about the workspace's files, with where it is and what to do."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class Problem:
    severity: str  # "error" or "warning"
    path: Path | None
    line: int | None
    code: str
    message: str
    fixable: bool = False

    @property
    def location(self) -> str:
        if self.path is None:
            return ""
        return f"{self.path}:{self.line}" if self.line else str(self.path)

    def __str__(self) -> str:
        where = self.location
        return f"{where}: {self.severity}: {self.message}" if where else f"{self.severity}: {self.message}"

    def to_json(self) -> dict:
        return {
            "severity": self.severity,
            "file": str(self.path) if self.path else None,
            "line": self.line,
            "code": self.code,
            "message": self.message,
            "fixable": self.fixable,
        }

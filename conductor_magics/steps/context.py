"""What every step works with: one component's database and files, and the step result.

:class:`ComponentDatabase` joins a component (workspace/) with its database (engine/):
the connection (embedded SQLite by default), the declared schema in
``storages/<id>/schema.sql``, the migrations folder, workflow.md's preferences and the
workspace lock. It holds the :class:`~conductor_magics.workspace.Workspace`, never the
Session, so that the steps sit below the implement loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from ..engine.connection import Connected, connect
from ..fsio import json_safe
from ..workspace.components import Component, Workspace
from ..workspace.context import read_text_lenient
from ..workspace.files import ensure_gitignore
from ..workspace.layout import (
    EMBEDDED_DATABASE,
    EMBEDDED_FILES,
    MIGRATIONS_FOLDER,
    declared_path,
    read_declared,
)
from ..workspace.workflow import WorkflowPreferences, parse_workflow


def frame_records(frame: pd.DataFrame) -> list[dict]:
    """A data frame as JSON-safe rows (NaN and infinities become null)."""
    return [json_safe(r) for r in frame.to_dict(orient="records")]


@dataclass
class StepResult:
    """An engine step's outcome: a one-line summary, JSON data, tables and Markdown.

    It satisfies :class:`~conductor_magics.results.Result`; the notebook edge renders it
    (tables, the Markdown, a benchmark's styled table and plot from ``value``).
    """

    summary: str
    data: dict[str, Any] = field(default_factory=dict)
    frames: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    markdown: str | None = None
    exit_code: int = 0
    #: the engine's own result object (BenchResult, AdviceReport): plain data the
    #: notebook keeps in the kernel (``bench_result``) and renders; not in JSON
    value: Any = None
    #: the plain-text form, when the engine's report has a better one than the tables
    text: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"summary": self.summary, **json_safe(self.data)}
        for title, frame in self.frames:
            out[title] = frame_records(frame)
        return out

    def to_text(self) -> str:
        if self.text is not None:
            return self.text
        parts = [self.summary]
        for title, frame in self.frames:
            if frame is not None and not frame.empty:
                table = frame.to_string(index=False, max_colwidth=60, float_format="{:.4g}".format)
                parts.append(f"\n{title}:\n{table}")
        return "\n".join(parts)


class ComponentDatabase:
    """One component's database and files, as every step sees them."""

    def __init__(self, workspace: Workspace, component: Component, url: str | None = None,
                 engine: Engine | None = None, progress: Any = None):
        self.workspace = workspace
        self.component = component
        self._url = url
        #: a tqdm-compatible factory for long steps (seeding, benchmarks, backups), or None
        self.progress = progress
        #: seconds each statement of sql, txn, query, bench, advise and seed may run
        #: (None: $CONDUCTOR_STATEMENT_TIMEOUT, else 300; 0: no limit)
        self.timeout: float | None = None
        self._connected: Connected | None = Connected(engine, "jupysql") if engine is not None else None

    # -- connection --------------------------------------------------------------------

    @property
    def connected(self) -> Connected:
        if self._connected is None:
            embedded = self.component.dir / EMBEDDED_DATABASE
            self._connected = connect(self._url, embedded=embedded)
            if self._connected.source == "embedded":
                ensure_gitignore(self.component.dir, EMBEDDED_FILES)
        return self._connected

    @property
    def engine(self) -> Engine:
        return self.connected.engine

    # -- files ---------------------------------------------------------------------------

    @property
    def declared_path(self) -> Path:
        return declared_path(self.component.dir)

    def declared_sql(self) -> str | None:
        """The declared schema (schema.sql), or None when there is none yet."""
        return read_declared(self.component.dir)

    @property
    def migrations_folder(self) -> Path:
        return self.component.dir / MIGRATIONS_FOLDER

    @property
    def workflow_path(self) -> Path:
        return self.workspace.dir / "workflow.md"

    def preferences(self) -> WorkflowPreferences:
        """workflow.md's preferences (defaults when it is missing)."""
        path = self.workflow_path
        return parse_workflow(read_text_lenient(path) if path.is_file() else None)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """The workspace lock, held while a step writes a workspace file."""
        with self.workspace.lock():
            yield

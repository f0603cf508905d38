"""The workspace folder and its components (tracks.md rows and storages/<id>/ folders)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..errors import ComponentNotFound, ConductorError, WorkspaceFormatError, WorkspaceNotFound
from .files import FileEdit, read_with_identity, workspace_lock, write_edits
from .layout import METADATA_FILE, PLAN_FILE, SPEC_FILE, VERIFICATION_FILE
from .metadata import Metadata, edited_metadata_bytes, metadata_from_bytes, read_metadata
from .plan import Plan, read_plan
from .status import STATUSES, can_transition
from .tracks import TrackRow, Tracks, edited_tracks_bytes, parse_tracks, read_tracks

FOLDER = "storage-conductor"
ROOT_ENV = "CONDUCTOR_ROOT"
_SAFE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def is_safe_id(storage_id: str) -> bool:
    """Whether an id can name a folder under storages/ (no separators, no ``..``)."""
    return bool(_SAFE_ID_RE.match(storage_id)) and ".." not in storage_id


@dataclass
class Component:
    """One storage component: its tracks.md row and/or its folder."""

    workspace: Workspace
    id: str
    row: TrackRow | None
    metadata: Metadata | None
    metadata_error: ConductorError | None = None

    @property
    def dir(self) -> Path:
        return self.workspace.storages_dir / self.id

    @property
    def metadata_path(self) -> Path:
        return self.dir / METADATA_FILE

    @property
    def plan_path(self) -> Path:
        return self.dir / PLAN_FILE

    @property
    def spec_path(self) -> Path:
        return self.dir / SPEC_FILE

    @property
    def verification_path(self) -> Path:
        return self.dir / VERIFICATION_FILE

    @property
    def status(self) -> str | None:
        if self.metadata is not None and self.metadata.status:
            return self.metadata.status
        return self.row.status if self.row is not None else None

    def _field(self, meta_field: str, column: str) -> str | None:
        if self.metadata is not None and self.metadata.get(meta_field):
            return str(self.metadata.get(meta_field))
        return self.row.value(column) if self.row is not None else None

    @property
    def title(self) -> str:
        return self._field("title", "title") or self.id

    @property
    def storage_type(self) -> str | None:
        return self._field("storage_type", "storage_type")

    @property
    def backend(self) -> str | None:
        return self._field("backend", "backend")

    @property
    def updated(self) -> datetime | None:
        if self.metadata is not None and self.metadata.updated:
            return self.metadata.updated
        return self.row.updated if self.row is not None else None

    def read_plan(self) -> Plan:
        return read_plan(self.plan_path)

    def require_metadata(self) -> Metadata | None:
        """The metadata, raising its read error if it could not be read."""
        if self.metadata_error is not None:
            raise self.metadata_error
        return self.metadata


class Workspace:
    """A ``storage-conductor/`` folder."""

    def __init__(self, folder: Path):
        self.dir = Path(folder).resolve()

    def __repr__(self) -> str:
        return f"Workspace({str(self.dir)!r})"

    @property
    def root(self) -> Path:
        return self.dir.parent

    @property
    def tracks_path(self) -> Path:
        return self.dir / "tracks.md"

    @property
    def storages_dir(self) -> Path:
        return self.dir / "storages"

    @classmethod
    def locate(cls, root: str | Path | None = None, cwd: str | Path | None = None) -> Workspace:
        """Find the workspace: ``root`` argument, then ``$CONDUCTOR_ROOT``, then walking up
        from ``cwd`` to the first folder that holds ``storage-conductor/``."""
        explicit = root if root is not None else os.environ.get(ROOT_ENV) or None
        if explicit is not None:
            base = Path(explicit).expanduser()
            source = "--root" if root is not None else f"${ROOT_ENV}"
            for candidate in (base / FOLDER, base):
                if candidate.is_dir() and (candidate.name == FOLDER or (candidate / "tracks.md").exists()
                                           or (candidate / "storages").is_dir()):
                    return cls(candidate)
            raise WorkspaceNotFound(f"no {FOLDER}/ folder at {base} (from {source})",
                                    hint="point --root at the project folder that holds storage-conductor/")
        start = Path(cwd or os.getcwd()).resolve()
        for folder in (start, *start.parents):
            if (folder / FOLDER).is_dir():
                return cls(folder / FOLDER)
            if folder.name == FOLDER and folder.is_dir():
                return cls(folder)
        raise WorkspaceNotFound(f"no {FOLDER}/ folder in {start} or any folder above it",
                                hint="pass --root DIR or set CONDUCTOR_ROOT")

    @contextmanager
    def lock(self) -> Iterator[None]:
        with workspace_lock(self.dir):
            yield

    def read_tracks(self) -> Tracks | None:
        """tracks.md parsed, or None when the workspace has none."""
        if not self.tracks_path.is_file():
            return None
        return read_tracks(self.tracks_path)

    def folder_ids(self) -> list[str]:
        if not self.storages_dir.is_dir():
            return []
        return sorted(p.name for p in self.storages_dir.iterdir() if p.is_dir() and is_safe_id(p.name))

    def components(self, tracks: Tracks | None = None) -> list[Component]:
        """Every component with a safe id: tracks.md rows first, then unregistered folders."""
        tracks = tracks if tracks is not None else self.read_tracks()
        found: dict[str, Component] = {}
        for row in tracks.rows if tracks else []:
            if is_safe_id(row.id) and row.id not in found:
                found[row.id] = self._component(row.id, row)
        for folder_id in self.folder_ids():
            if folder_id not in found:
                found[folder_id] = self._component(folder_id, None)
        return list(found.values())

    def _component(self, storage_id: str, row: TrackRow | None) -> Component:
        path = self.storages_dir / storage_id / "metadata.json"
        metadata, error = None, None
        if path.is_file():
            try:
                metadata = read_metadata(path)
            except ConductorError as exc:
                error = exc
        return Component(self, storage_id, row, metadata, error)

    def component(self, storage_id: str) -> Component:
        """A component by id; unsafe ids are refused before any path is built."""
        if not is_safe_id(storage_id):
            raise ComponentNotFound(f"'{storage_id}' is not a valid component id",
                                    hint="ids are folder names under storages/: letters, digits, . _ -")
        for component in self.components():
            if component.id == storage_id:
                return component
        raise self.no_component(f"no component '{storage_id}' in {self.dir}")

    def no_component(self, message: str) -> ComponentNotFound:
        """The one error for a component id that names nothing, or for no id where none
        can be chosen: one line that lists the known ids (exit 2)."""
        known = ", ".join(c.id for c in self.components()) or "none"
        return ComponentNotFound(message, hint=f"known components: {known}")

    def write_status(self, component: Component, status: str | None, moment: datetime) -> None:
        """Set a component's status (and move its updated timestamps) in metadata.json and
        its tracks.md row together: both or neither. The caller holds the lock."""
        write_edits(lambda: self.status_edits(component, status, moment))

    def status_edits(self, component: Component, status: str | None,
                     moment: datetime) -> list[FileEdit]:
        """The new bytes of metadata.json and tracks.md for :meth:`write_status`, computed and
        validated without writing anything, so bad input in either file changes neither (and
        a caller can validate before it writes other files, e.g. plan.md). Each edit names
        the version of the file it was computed from, for :func:`write_edits`."""
        edits: list[FileEdit] = []
        meta_path = component.metadata_path
        if meta_path.is_file():
            raw, identity = read_with_identity(meta_path)
            meta = metadata_from_bytes(raw, meta_path)
            status_raw = meta.get("status")
            if status_raw is not None and meta.status is None:
                raise WorkspaceFormatError(
                    f"unknown status {json.dumps(status_raw, ensure_ascii=False)}",
                    path=meta_path, line=meta.line_of(meta.key_for("status") or "status"),
                    hint="expected " + ", ".join(STATUSES))
            if status is not None and meta.status is not None and not can_transition(meta.status, status):
                raise WorkspaceFormatError(
                    f"component '{component.id}' cannot go from {meta.status} to {status}",
                    path=meta_path, line=meta.line_of(meta.key_for("status") or "status"))
            changes = {"updated": moment}
            if status is not None:
                changes = {"status": status, **changes}
            new = edited_metadata_bytes(raw, meta_path, changes)
            if new != raw:
                edits.append(FileEdit(meta_path, new, raw, identity))
        if self.tracks_path.is_file():
            data, identity = read_with_identity(self.tracks_path)
            _check_row(parse_tracks(data, self.tracks_path), component.id)
            edited = edited_tracks_bytes(data, self.tracks_path, component.id, status=status, updated=moment)
            if edited != data:
                edits.append(FileEdit(self.tracks_path, edited, data, identity))
        return edits


def _check_row(tracks: Tracks, storage_id: str) -> None:
    """Refuse to edit a tracks.md row that is ambiguous or has no readable status."""
    rows = [r for r in tracks.rows if r.id == storage_id]
    if not rows:
        return
    row = rows[0]
    if len(rows) > 1:
        lines = ", ".join(str(r.line) for r in rows)
        raise WorkspaceFormatError(f"id '{storage_id}' appears {len(rows)} times (lines {lines})",
                                   path=tracks.path, line=row.line,
                                   hint="keep one row per component")
    if row.form == "table" and row.status is None:
        missing = next((p for p in tracks.problems if p.code == "tracks-no-status-column"), None)
        if missing is not None:
            raise WorkspaceFormatError(missing.message, path=tracks.path, line=missing.line)
        raise WorkspaceFormatError(f"unknown status '{row.status_text or ''}' for '{storage_id}'",
                                   path=tracks.path, line=row.line,
                                   hint="expected " + ", ".join(STATUSES))

"""lint: every problem in the workspace's files, with file:line, and the safe fixes."""

from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConductorError
from ..fsio import TEMP_GLOB, is_tool_temp
from .components import Component, Workspace, is_safe_id
from .context import SHARED_DOCS
from .files import stale_temp_files
from .intents import interrupted_advise, interrupted_advise_message
from .layout import WRITE_FOLDERS
from .metadata import update_metadata
from .plan import decode_markdown, read_plan
from .problems import Problem
from .status import parse_status
from .tracks import Tracks, read_tracks, update_track
from .verification import read_log


@dataclass
class LintReport:
    problems: list[Problem]
    fixed: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


def _from_error(exc: ConductorError, code: str) -> Problem:
    return Problem("error", exc.path, exc.line, code, exc.message)


def lint_workspace(ws: Workspace) -> list[Problem]:
    """Every problem found; nothing is written."""
    problems: list[Problem] = []
    tracks: Tracks | None = None
    if not ws.tracks_path.is_file():
        problems.append(Problem("warning", ws.tracks_path, None, "tracks-missing",
                                "tracks.md is missing: components are found from storages/ folders only"))
    else:
        try:
            tracks = read_tracks(ws.tracks_path)
        except ConductorError as exc:
            problems.append(_from_error(exc, "tracks-unreadable"))
    if tracks is not None:
        problems.extend(tracks.problems)
        counts = Counter(row.id for row in tracks.rows)
        reported: set[str] = set()
        for row in tracks.rows:
            if not is_safe_id(row.id):
                problems.append(Problem("error", ws.tracks_path, row.line, "unsafe-id",
                                        f"id '{row.id}' is not a safe folder name (letters, digits, . _ -); "
                                        "it is ignored"))
            elif counts[row.id] > 1 and row.id not in reported:
                reported.add(row.id)
                lines = ", ".join(str(r.line) for r in tracks.rows if r.id == row.id)
                problems.append(Problem("error", ws.tracks_path, row.line, "duplicate-id",
                                        f"id '{row.id}' appears {counts[row.id]} times (lines {lines})"))
            if row.form == "table" and row.status is None:
                problems.append(Problem("error", ws.tracks_path, row.line, "unknown-status",
                                        f"unknown status '{row.status_text or ''}' for '{row.id}' "
                                        "(expected Planning, In Progress, Completed, Blocked, "
                                        "Cancelled or Reverted)"))
            if is_safe_id(row.id) and not (ws.storages_dir / row.id).is_dir():
                problems.append(Problem("warning", ws.tracks_path, row.line, "missing-folder",
                                        f"'{row.id}' has no folder storages/{row.id}/"))
    for name, file_name in SHARED_DOCS.items():
        path = ws.dir / file_name
        if not path.is_file():
            problems.append(Problem("warning", path, None, "missing-context",
                                    f"context document '{name}' is missing"))
        else:
            problems.extend(_utf8_problems(path))
    # An unreadable tracks.md is reported above; list the storages/ folders without re-reading it.
    listing = tracks if tracks is not None else Tracks(ws.tracks_path, [], [], None)
    for component in ws.components(listing) if tracks is not None or ws.storages_dir.is_dir() else []:
        problems.extend(lint_component(ws, component, tracks))
    for folder in tool_folders(ws):
        for tmp in stale_temp_files(folder):
            problems.append(Problem("warning", tmp, None, "stale-temp-file",
                                    f"temporary file left by an interrupted write "
                                    f"({_size_of(tmp)}; {TEMP_GLOB} names are the tool's own)",
                                    fixable=True))
    return problems


#: the folders of a component the tool writes into (backups, Alembic migrations)
COMPONENT_WRITE_FOLDERS = WRITE_FOLDERS


def tool_folders(ws: Workspace) -> list[Path]:
    """Every folder under the workspace the tool writes files into, where an interrupted
    write can leave a temporary file."""
    folders = [ws.dir, ws.storages_dir]
    for storage_id in ws.folder_ids():
        base = ws.storages_dir / storage_id
        folders += [base / sub if sub else base for sub in COMPONENT_WRITE_FOLDERS]
    return [folder for folder in folders if folder.is_dir() and not folder.is_symlink()]


def _size_of(path: Path) -> str:
    try:
        return f"{path.lstat().st_size} bytes"
    except OSError:
        return "size unknown"


def _utf8_problems(path: Path) -> list[Problem]:
    try:
        decode_markdown(path.read_bytes(), path)
    except ConductorError as exc:
        return [_from_error(exc, "invalid-utf8")]
    return []


def lint_component(ws: Workspace, component: Component, tracks: Tracks | None) -> list[Problem]:
    problems: list[Problem] = []
    cid = component.id
    if not component.dir.is_dir():
        return problems
    if tracks is not None and component.row is None:
        problems.append(Problem("warning", component.dir, None, "unregistered",
                                f"storages/{cid}/ has no row in tracks.md"))
    meta = None
    if component.metadata_error is not None:
        problems.append(_from_error(component.metadata_error, "metadata-unreadable"))
    elif component.metadata is None:
        problems.append(Problem("warning", component.metadata_path, None, "metadata-missing",
                                "metadata.json is missing"))
    else:
        meta = component.metadata
        if meta.id is not None and meta.id != cid:
            key = meta.key_for("id")
            problems.append(Problem("error", meta.path, meta.line_of(key), "id-mismatch",
                                    f"{key} is '{meta.id}' but the folder is '{cid}'", fixable=True))
        raw_status = meta.get("status")
        if raw_status is None:
            problems.append(Problem("warning", meta.path, None, "status-missing", "no status key"))
        elif parse_status(str(raw_status)) is None:
            problems.append(Problem("error", meta.path, meta.line_of("status"), "unknown-status",
                                    f"unknown status '{raw_status}'"))
        elif component.row is not None and component.row.status and component.row.status != meta.status:
            problems.append(Problem("error", ws.tracks_path, component.row.line, "status-mismatch",
                                    f"tracks.md says {component.row.status} for '{cid}' but "
                                    f"metadata.json says {meta.status}", fixable=True))
    if not component.plan_path.is_file():
        problems.append(Problem("error", component.plan_path, None, "plan-missing",
                                "plan.md is missing"))
    else:
        try:
            plan = read_plan(component.plan_path)
        except ConductorError as exc:
            problems.append(_from_error(exc, "plan-unreadable"))
        else:
            if not plan.phases:
                problems.append(Problem("warning", plan.path, None, "plan-no-phases",
                                        "no phase headings (## Phase N: …) and no tasks"))
            for task in plan.loose_tasks:
                problems.append(Problem("warning", plan.path, task.line, "task-outside-phase",
                                        f"task '{task.name}' is outside any phase and is not counted"))
            for line, text in plan.checkbox_headings:
                problems.append(Problem("warning", plan.path, line, "checkbox-heading",
                                        f"heading '{text}' carries a checkbox: headings are not "
                                        "tasks and it will not be tracked (make it a list item "
                                        "`- [ ] …` under a phase heading)"))
    if not component.spec_path.is_file():
        problems.append(Problem("warning", component.spec_path, None, "spec-missing", "spec.md is missing"))
    else:
        problems.extend(_utf8_problems(component.spec_path))
    try:
        read_log(component.verification_path)
    except ConductorError as exc:
        problems.append(_from_error(exc, "verification-unreadable"))
    intent = interrupted_advise(component.dir)
    if intent is not None:
        problems.append(Problem("error", intent, None, "advise-interrupted",
                                interrupted_advise_message(cid)))
    return problems


def fix_workspace(ws: Workspace, problems: list[Problem]) -> list[str]:
    """Apply the safe fixes (status mismatch → tracks.md follows metadata.json; metadata id →
    folder name; stale temp files removed). The caller holds the lock."""
    fixed: list[str] = []
    by_code = {p.code for p in problems if p.fixable}
    if not by_code:
        return fixed
    for component in ws.components():
        meta = component.metadata
        if meta is None:
            continue
        if "id-mismatch" in by_code and meta.id is not None and meta.id != component.id:
            update_metadata(meta.path, {"id": component.id})
            fixed.append(f"{meta.path}: id set to '{component.id}'")
        if ("status-mismatch" in by_code and component.row is not None and meta.status
                and component.row.status != meta.status):
            update_track(ws.tracks_path, component.id, status=meta.status)
            fixed.append(f"{ws.tracks_path}:{component.row.line}: status set to {meta.status}")
    for problem in problems:
        # only the tool's own temporary names, and only while their process is still gone
        if (problem.code == "stale-temp-file" and problem.path is not None
                and problem.path in stale_temp_files(problem.path.parent)
                and is_tool_temp(problem.path.name) and not problem.path.is_symlink()):
            with contextlib.suppress(FileNotFoundError):
                problem.path.unlink()
            fixed.append(f"{problem.path}: removed")
    return fixed

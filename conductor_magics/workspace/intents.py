"""Intent files: a step that changes several files and the database records what it is
about to do first, so that a run killed midway is seen (``lint``, ``status``) and the next
run finishes or undoes it. Only the names and the file-level test live here; the steps
themselves are in ``steps/tuning.py``."""

from __future__ import annotations

import json
from pathlib import Path

from ..fsio import pid_alive
from .layout import ADVISE_INTENT

#: ``storages/<id>/.advise-apply.json``: an ``advise --apply`` in progress or interrupted


def interrupted_advise(component_dir: Path) -> Path | None:
    """The intent file of an ``advise --apply`` that was interrupted (its process is gone),
    or None when there is none or its process still runs."""
    path = Path(component_dir) / ADVISE_INTENT
    if not path.is_file():
        return None
    try:
        pid = int(json.loads(path.read_text(encoding="utf-8")).get("pid") or 0)
    except (OSError, ValueError, AttributeError, TypeError):
        return path  # unreadable: certainly not a run in progress
    return None if pid_alive(pid) else path


def interrupted_advise_message(component_id: str) -> str:
    """What ``lint`` and ``status`` say about an interrupted ``advise --apply``."""
    return (f"advise --apply was interrupted (storages/{component_id}/{ADVISE_INTENT}): run "
            f"`conductor advise --apply --id {component_id}` to finish it or "
            f"`conductor advise --abandon --id {component_id}` to undo it")

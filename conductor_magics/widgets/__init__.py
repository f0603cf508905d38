"""ipywidgets views over the session: the plan checklist, the verification gate and the
component chooser. This package is the only place that imports ipywidgets.

``checklist_model`` is plain Python (no ipywidgets), so the widget classes are
imported lazily: ``from conductor_magics.widgets import PlanChecklist`` imports
ipywidgets, ``import conductor_magics.widgets.checklist_model`` does not.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "ChecklistModel": "checklist_model",
    "Outcome": "checklist_model",
    "PlanChecklist": "checklist",
    "ComponentChooser": "checklist",
    "GateWidget": "gate",
    "view_for": "display",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

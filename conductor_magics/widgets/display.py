"""Which widget shows a session result in a notebook (used by ``%conductor``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as w

from ..reports import ImplementResult, PlanResult, VerifyResult
from ..session import Session
from .checklist import ComponentChooser, PlanChecklist
from .checklist_model import ChecklistModel
from .gate import GateWidget


def checklist_for(session: Session, storage_id: str, *, url: str | None = None,
                  engine: Any = None, model: ChecklistModel | None = None) -> PlanChecklist:
    """The checklist of a component, whose finished phases can open their gate."""
    def gate(phase: int) -> GateWidget:
        return GateWidget(session, storage_id, phase, url=url, engine=engine)

    return PlanChecklist(model or ChecklistModel(session, storage_id), gate=gate)


def view_for(result: Any, session: Session, *, url: str | None = None, engine: Any = None,
             on_implemented: Callable[[ImplementResult], None] | None = None) -> w.Widget | None:
    """The widget for ``result``, or None when it has none (the HTML view is used).

    - ``plan`` → the checklist;
    - ``implement`` → the checklist, or, when no id was given and other components were
      candidates, a chooser (the picked one's checklist below it; choosing another
      implements that one and calls ``on_implemented`` with its result);
    - ``verify`` without ``--confirm`` → the gate.
    """
    if isinstance(result, PlanResult):
        return checklist_for(session, result.component.id, url=url, engine=engine)
    if isinstance(result, ImplementResult):
        if not result.selection.candidates:
            return checklist_for(session, result.component.id, url=url, engine=engine)

        def choose(storage_id: str) -> ChecklistModel:
            implemented = session.implement(storage_id)
            if on_implemented is not None:
                on_implemented(implemented)
            return ChecklistModel(session, storage_id)

        def make(model: ChecklistModel) -> PlanChecklist:
            return checklist_for(session, model.component_id, url=url, engine=engine, model=model)

        return ComponentChooser(session, result.selection, on_choose=choose, make_checklist=make)
    if isinstance(result, VerifyResult) and result.recorded is None and not result.already:
        return GateWidget(session, result.component.id, result.state.phase.number, url=url,
                          engine=engine, result=result)
    return None

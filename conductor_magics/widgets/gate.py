"""The verification gate of one phase (ipywidgets 8).

Runs the automated checks for the phase's kind (``Session.verify(run_checks=True)``)
against the notebook's connection, shows each result, lets the user waive a failed
check only with a written reason, and records the verdict when Confirm is pressed
with a note. Confirm goes through ``Session.verify`` again (the checks run again),
so what is recorded is what the database says at that moment.

This and ``verify --confirm`` are the only ways a phase becomes verified; ticking
tasks in the checklist never does.

DOM classes: container ``conductor-gate``; each check row ``conductor-check`` plus
``conductor-check-pass|fail|skip``; the waive Text of a failed check
``conductor-waive``; note Textarea ``conductor-note``; Confirm button
``conductor-confirm``; re-run button ``conductor-rerun``; message label
``conductor-gate-message``; recorded verdict ``conductor-verdict``.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

import ipywidgets as w

from ..engine.connection import database_boundary
from ..errors import ChecksFailed, ConductorError, notebook_words
from ..reports import VerifyResult
from ..session import Session

ICONS = {"pass": "✔", "fail": "✘", "skip": "–"}


def _one_line(exc: BaseException) -> str:
    return notebook_words(" ".join(str(exc).split()))


class _CheckRow(w.HBox):
    def __init__(self, check: Any, reason: str = ""):
        self.name = check.name
        self.status = check.status
        cells: list[w.Widget] = [
            w.Label(ICONS.get(check.status, "?"), layout=w.Layout(width="1.5em")),
            w.HTML(f"<b>{escape(check.name)}</b>", layout=w.Layout(width="auto")),
            w.Label(f"{check.seconds:.2f} s", layout=w.Layout(width="auto")),
            w.Label(notebook_words(check.detail or ""), layout=w.Layout(width="auto")),
        ]
        self.waive: w.Text | None = None
        if check.status == "fail":
            self.waive = w.Text(value=reason, placeholder="waive: why this failure is acceptable",
                                layout=w.Layout(width="24em"))
            self.waive.add_class("conductor-waive")
            cells.append(self.waive)
        super().__init__(cells, layout=w.Layout(align_items="center", flex_flow="row wrap"))
        self.add_class("conductor-check")
        self.add_class(f"conductor-check-{check.status}")

    def close(self) -> None:
        for child in self.children:
            child.close()
        super().close()


class GateWidget(w.VBox):
    """The gate of a phase (default: the phase waiting for verification)."""

    def __init__(self, session: Session, storage_id: str | None = None, phase: int | None = None,
                 *, url: str | None = None, engine: Any = None, result: VerifyResult | None = None,
                 run: bool = True):
        self.session = session
        self.component_id = session.active(storage_id).id
        self.phase_number = phase
        self.url = url
        self.engine = engine
        self.result: VerifyResult | None = None
        self.recorded: dict[str, Any] | None = None
        self._callbacks: list[Callable[[VerifyResult], None]] = []
        self.rows: list[_CheckRow] = []
        self.header = w.HTML()
        self.state_line = w.HTML()
        self.checks_box = w.VBox()
        self.note = w.Textarea(placeholder="What did you check? (recorded with the verdict)",
                               layout=w.Layout(width="100%", height="4em"))
        self.note.add_class("conductor-note")
        self.confirm_button = w.Button(description="Confirm verification", button_style="success",
                                       icon="check", layout=w.Layout(width="auto"))
        self.confirm_button.add_class("conductor-confirm")
        self.confirm_button.on_click(lambda _b: self.confirm())
        self.rerun_button = w.Button(description="Re-run checks", icon="refresh",
                                     layout=w.Layout(width="auto"))
        self.rerun_button.add_class("conductor-rerun")
        self.rerun_button.on_click(lambda _b: self.run_checks())
        self.message = w.Label(layout=w.Layout(width="auto"))
        self.message.add_class("conductor-gate-message")
        self.verdict = w.HTML()
        self.verdict.add_class("conductor-verdict")
        super().__init__([self.header, self.state_line, self.checks_box, self.note,
                          w.HBox([self.confirm_button, self.rerun_button]), self.message,
                          self.verdict])
        self.add_class("conductor-gate")
        if result is not None and result.checks is not None:
            self.phase_number = result.state.phase.number
            self._show(result)
        elif run:
            self.run_checks()

    # -- actions -----------------------------------------------------------------------

    def on_verified(self, callback: Callable[[VerifyResult], None]) -> None:
        """Call ``callback(result)`` after a verdict is recorded."""
        self._callbacks.append(callback)

    def _verify(self, **options: Any) -> VerifyResult:
        """``Session.verify`` with the checks run, through the one database-error boundary:
        a locked or lost database is one line here too, never a traceback."""
        with database_boundary("gate checks", self.url, getattr(self.engine, "url", None),
                               hint="nothing was recorded"):
            return self.session.verify(self.component_id, self.phase_number, run_checks=True,
                                       url=self.url, engine=self.engine, **options)

    def run_checks(self) -> VerifyResult | None:
        """Run the phase's automated checks and show them (nothing is recorded)."""
        try:
            result = self._verify()
        except ConductorError as exc:
            self.message.value = "✘ " + _one_line(exc)
            return None
        self.phase_number = result.state.phase.number  # pin it: "the waiting phase" moves on
        self._show(result)
        return result

    def waivers(self) -> dict[str, str]:
        """Failed checks with a non-empty waive reason."""
        return {row.name: row.waive.value.strip() for row in self.rows
                if row.waive is not None and row.waive.value.strip()}

    def confirm(self) -> bool:
        """Record the verdict (as the Confirm button does); False with a message if refused."""
        if self.result is None and self.run_checks() is None:
            return False
        if self.result.state.verified:
            return self._refuse("this phase is already verified")
        note = self.note.value.strip()
        if not note:
            return self._refuse("write a note saying what was checked before confirming")
        unwaived = [row.name for row in self.rows if row.waive is not None and not row.waive.value.strip()]
        if unwaived:
            return self._refuse(f"{len(unwaived)} failed check(s) need a written waive reason "
                                f"(or a fix and a re-run): {', '.join(unwaived)}")
        waivers = self.waivers()
        try:
            result = self._verify(note=note, waivers=waivers)
        except ChecksFailed as exc:
            message = _one_line(exc)
            self.run_checks()  # show the results that refused it
            return self._refuse(message)
        except ConductorError as exc:
            return self._refuse(_one_line(exc))
        if result.already:
            self._show(result)
            return self._refuse("this phase was already verified (by another kernel?)")
        self.recorded = result.recorded
        self._show(result)
        self.message.value = ""
        for callback in self._callbacks:
            callback(result)
        return True

    def _refuse(self, message: str) -> bool:
        self.message.value = "✘ refused: " + message
        return False

    # -- rendering -----------------------------------------------------------------------

    def _show(self, result: VerifyResult) -> None:
        self.result = result
        state = result.state
        phase = state.phase
        self.header.value = (f"<b>Verification gate</b> — <code>{escape(self.component_id)}</code> "
                             f"phase {phase.number} <b>{escape(phase.title)}</b> ({escape(phase.kind)})")
        open_items = [t for t in phase.items() if not t.closed]
        if state.verified:
            line = "✔ verified"
        elif open_items:
            line = (f"{len(open_items)} open task(s): {escape(', '.join(t.number for t in open_items[:10]))}"
                    " — finish or skip them first")
        else:
            line = f"every task is closed; confirming as <b>{escape(self.session.user)}</b>"
        self.state_line.value = line
        reasons = {row.name: row.waive.value for row in self.rows if row.waive is not None}
        old = self.rows
        self.rows = [_CheckRow(c, reasons.get(c.name, result.waivers.get(c.name, "")))
                     for c in result.checks or []]
        if result.checks is not None and not result.checks:
            empty = w.HTML("<i>no automated checks for this kind of phase (manual verification only)</i>")
            self.checks_box.children = [empty]
        else:
            self.checks_box.children = list(self.rows)
        for row in old:
            row.close()
        verdict = self.recorded or (state.verdict if state.verified else None)
        if verdict:
            waived = verdict.get("waivers") or {}
            extra = "".join(f"<br>waived <b>{escape(k)}</b>: {escape(v)}" for k, v in waived.items())
            self.verdict.value = (f"✔ phase {phase.number} verified by <b>{escape(str(verdict.get('by')))}"
                                  f"</b> at {escape(str(verdict.get('at')))}: {escape(str(verdict.get('note', '')))}"
                                  f"{extra}")
        elif state.verified:
            self.verdict.value = f"✔ phase {phase.number} verified (checkpoint {escape(str(phase.checkpoint))})"
        else:
            self.verdict.value = ""
        done = state.verified
        self.note.disabled = done
        self.confirm_button.disabled = done
        for row in self.rows:
            if row.waive is not None:
                row.waive.disabled = done

    def close(self) -> None:
        for row in self.rows:
            row.close()
        super().close()

    def _repr_mimebundle_(self, **kwargs) -> dict[str, Any] | None:
        data = super()._repr_mimebundle_(**kwargs)
        if data is not None and self.result is not None:
            text = self.result.to_text()
            data["text/plain"] = text
            data["text/html"] = f'<pre class="conductor">{escape(text)}</pre>'
        return data

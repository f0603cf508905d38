"""The one result protocol: what every command returns and every edge relies on.

:func:`conductor_magics.commands.run` returns an object satisfying :class:`Result`,
whichever command ran (a workspace report from ``reports.py``, an engine step's
``StepResult``). The edges use only these members: the CLI prints ``to_text()`` or
``to_json()`` and exits with ``exit_code``; the REST edge (``server/``) answers
``to_json()`` with ``exit_code``; the notebook edge renders it in one place,
``notebook_html.notebook_view``. This module imports nothing of the package, so every
layer may satisfy the protocol without depending on an edge.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Result(Protocol):
    """A command's outcome: a text form, a JSON form and the CLI's exit code (0 good,
    1 checks ran and failed)."""

    exit_code: int

    def to_text(self) -> str:
        """The plain-text form (CLI output, notebook text/plain)."""
        ...

    def to_json(self) -> dict[str, Any]:
        """The JSON form (``--json`` and the REST edge): JSON-serialisable values only."""
        ...


#: the members :class:`Result` asks for (Python 3.11 has no typing.get_protocol_members)
MEMBERS = ("exit_code", "to_text", "to_json")


def exit_code(result: Result) -> int:
    """The CLI exit code a result asks for."""
    return int(result.exit_code)


__all__ = ["MEMBERS", "Result", "exit_code"]

"""One result protocol: whatever commands.run returns satisfies results.Result, and the
notebook renders it through notebook_html.notebook_view alone."""

from __future__ import annotations

import ast
import inspect
import typing
from pathlib import Path

from conductor_magics import commands
from conductor_magics.commands import parse, run
from conductor_magics.live_database import LiveDatabase
from conductor_magics.notebook_html import NotebookView, notebook_view
from conductor_magics.results import MEMBERS, Result
from conductor_magics.session import Session


def _called_methods(owner: str) -> set[str]:
    """The methods commands.py calls on ``owner`` (``session.X(...)``, ``db.X(...)``)."""
    tree = ast.parse(Path(inspect.getsourcefile(commands)).read_text(encoding="utf-8"))
    return {node.func.attr for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name) and node.func.value.id == owner}


def result_types() -> set[type]:
    """Every type commands.run can return: the return annotations of the Session and
    LiveDatabase methods it calls."""
    found = set()
    for owner, cls, skip in (("session", Session, {"database"}), ("db", LiveDatabase, set())):
        methods = _called_methods(owner) - skip
        assert methods, owner
        for name in methods:
            returned = typing.get_type_hints(getattr(cls, name))["return"]
            assert isinstance(returned, type), f"{cls.__name__}.{name} returns {returned!r}"
            found.add(returned)
    return found


def test_every_result_type_commands_run_returns_satisfies_the_protocol():
    types = result_types()
    names = {t.__name__ for t in types}
    assert {"StatusReport", "ImplementResult", "NextResult", "ContextResult", "PlanResult",
            "TaskResult", "TestResult", "VerifyResult", "CompleteResult", "LintResult",
            "StepResult"} <= names, names
    for kind in types:
        missing = [m for m in MEMBERS if not hasattr(kind, m)]
        assert not missing, f"{kind.__name__} lacks {missing}"
        assert callable(kind.to_text) and callable(kind.to_json)


def test_the_protocol_check_itself_rejects_an_object_without_exit_code():
    class NoExitCode:
        def to_text(self) -> str:
            return ""

        def to_json(self) -> dict:
            return {}

    assert not isinstance(NoExitCode(), Result)


def test_real_results_are_results_and_have_a_notebook_view(project: Path):
    session = Session.open(root=str(project))
    for argv in (["status"], ["next", "orders_db"], ["plan", "orders_db"],
                 ["context", "orders_db", "spec"], ["lint"], ["implement", "orders_db"],
                 ["verify", "orders_db", "--phase", "1"], ["sql", "--id", "orders_db"]):
        body = "SELECT 1 AS one" if argv[0] == "sql" else None
        result = run(parse(argv), session, body=body)
        assert isinstance(result, Result), argv
        assert isinstance(result.exit_code, int) and isinstance(result.to_json(), dict)
        view = notebook_view(result)
        assert isinstance(view, NotebookView) and view.bundles, argv
        assert all("text/plain" in bundle for bundle in view.bundles), argv

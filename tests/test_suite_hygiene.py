"""The suite's own layout: test modules share code through tests/helpers/ and conftest.py
fixtures, never by importing each other (an import of a test module runs its module-level
code twice and couples tests that look independent)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def forbidden_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in ``path`` (function-level ones too) of a test module
    or of conftest."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.ImportFrom):  # relative: "from . import test_x", "from .test_x import"
            names = [node.module or alias.name for alias in node.names]
        else:
            continue
        for name in names:
            last = name.split(".")[-1]
            if last.startswith("test_") or last == "conftest":
                found.append((node.lineno, name))
    return sorted(found)


def test_no_test_module_imports_another_test_module_or_conftest():
    found = [f"{path.relative_to(TESTS)}:{line}: {name}" for path in sorted(TESTS.rglob("*.py"))
             for line, name in forbidden_imports(path)]
    assert not found, "import shared code from tests/helpers/ instead:\n" + "\n".join(found)


def test_shared_code_lives_in_helpers():
    """Beside conftest.py, every module outside tests/helpers/ is a test module."""
    stray = [str(path.relative_to(TESTS)) for path in sorted(TESTS.rglob("*.py"))
             if "helpers" not in path.relative_to(TESTS).parts
             and path.name != "conftest.py" and not path.name.startswith("test_")]
    assert not stray, f"move these into tests/helpers/: {stray}"


def test_the_check_sees_every_spelling(tmp_path: Path):
    planted = tmp_path / "test_planted.py"
    planted.write_text("import os\nfrom test_a import x\nimport test_b\n"
                       "def f():\n    from conftest import EXAMPLE\n    import helpers.cli\n"
                       "from adversarial.test_c import y\nfrom . import test_d\n", encoding="utf-8")
    assert forbidden_imports(planted) == [(2, "test_a"), (3, "test_b"), (5, "conftest"),
                                          (7, "adversarial.test_c"), (8, "test_d")]

"""The core (workspace/, session, CLI) never imports Jupyter."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

CORE_MODULES = [
    "conductor_magics",
    "conductor_magics.workspace",
    "conductor_magics.session",
    "conductor_magics.commands",
    "conductor_magics.reports",
    "conductor_magics.cli",
    "conductor_magics.notebook_html",
    "conductor_magics.live_database",
    "conductor_magics.steps.context",
    "conductor_magics.steps.schema",
    "conductor_magics.steps.migrate",
    "conductor_magics.steps.sql",
    "conductor_magics.steps.tuning",
    "conductor_magics.steps.backup",
    "conductor_magics.steps.checks",
    "conductor_magics.steps.drift",
    "conductor_magics.engine.bench",
    "conductor_magics.engine.advisor",
    "conductor_magics.engine.backup",
    "conductor_magics.engine.sample",
]
JUPYTER = ["IPython", "ipywidgets", "ipykernel", "traitlets", "jupyter_client", "nbformat"]


def test_core_imports_no_jupyter():
    code = (
        "import sys, importlib\n"
        f"for name in {CORE_MODULES!r}: importlib.import_module(name)\n"
        f"loaded = sorted(m for m in {JUPYTER!r} if m in sys.modules)\n"
        "print(','.join(loaded))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"core imported Jupyter modules: {out.stdout.strip()}"


def test_the_check_itself_detects_a_jupyter_import():
    # Guards against a check that cannot fail: the magics module does import IPython.
    code = "import sys, conductor_magics.magics; print('IPython' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


FORBIDDEN_IN_WORKSPACE = {"IPython", "ipywidgets", "ipykernel", "traitlets", "sqlalchemy",
                          "alembic", "pandas"}


def _imports(path: Path) -> list[tuple[int, str]]:
    """(relative level, module) for every import in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend((0, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or ""))
    return found


def test_workspace_layer_imports_only_files_and_errors():
    folder = Path(__file__).resolve().parent.parent / "conductor_magics" / "workspace"
    files = sorted(folder.glob("*.py"))
    assert len(files) >= 8
    for path in files:
        for level, module in _imports(path):
            top = module.split(".")[0]
            assert top not in FORBIDDEN_IN_WORKSPACE, f"{path.name} imports {module}"
            if level >= 2:  # reaching out of workspace/ into the package
                assert module in ("errors", "fsio"), \
                    f"{path.name} imports ..{module} (only ..errors and ..fsio are allowed)"


def test_engine_layer_knows_databases_only():
    folder = Path(__file__).resolve().parent.parent / "conductor_magics" / "engine"
    files = sorted(folder.glob("*.py"))
    assert len(files) >= 5
    for path in files:
        for level, module in _imports(path):
            top = module.split(".")[0]
            assert top not in {"IPython", "ipywidgets", "ipykernel", "traitlets"}, f"{path.name} imports {module}"
            if level >= 2:
                assert module in ("errors", "fsio"), \
                    f"engine/{path.name} imports ..{module} (only ..errors and ..fsio are allowed)"


# --------------------------------------------------------------------------- import circles

PACKAGE = Path(__file__).resolve().parent.parent / "conductor_magics"

def _module_files(package: Path) -> dict[str, Path]:
    modules = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def import_graph(package: Path) -> dict[str, set[str]]:
    """module -> the package's modules it imports, at module level or inside functions
    (``from . import x`` and ``from .x import name`` alike). A module importing its own
    parent package does not count (that is Python running ``__init__`` first)."""
    modules = _module_files(package)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = module.split(".") if is_package else module.split(".")[:-1]
                if node.level:
                    base = base[:len(base) - (node.level - 1)]
                    prefix = ".".join(base + ([node.module] if node.module else []))
                else:
                    prefix = node.module or ""
                names = [prefix] + [f"{prefix}.{alias.name}" for alias in node.names]
            for name in names:
                if name in modules and name != module and not module.startswith(name + "."):
                    graph[module].add(name)
    return graph


def circles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[frozenset[str]] = set()

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.add(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circles():
    # imports only point down: no circle, counting imports inside functions and
    # under TYPE_CHECKING
    found = circles(import_graph(PACKAGE))
    assert not found, "import circles: " + "; ".join(" ↔ ".join(sorted(c)) for c in found)


def test_the_circle_finder_sees_function_level_imports(tmp_path: Path):
    # Guards against a check that cannot fail: a circle closed only inside a function.
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from .sub import b\n")
    (package / "sub" / "b.py").write_text("def f():\n    from ..a import thing\n")
    (package / "c.py").write_text("from . import a\n")
    assert circles(import_graph(package)) == {frozenset({"pkg.a", "pkg.sub.b"})}


#: steps/ module → the sibling step modules it may import (each only those below it)
STEP_IMPORTS = {
    "__init__": set(),
    "context": set(),
    "backup": {"context"},
    "migrate": {"context", "backup"},
    "schema": {"context"},
    "sql": {"context"},
    "tuning": {"context", "backup", "migrate"},
    "drift": {"context", "backup", "migrate", "tuning"},
    "checks": {"context", "backup", "migrate", "tuning", "drift"},
}


def test_steps_import_only_downward():
    # steps/ sits on workspace/ and engine/; the session, the facade and the edges sit on it.
    folder = Path(__file__).resolve().parent.parent / "conductor_magics" / "steps"
    files = sorted(folder.glob("*.py"))
    assert {p.stem for p in files} == set(STEP_IMPORTS)
    for path in files:
        for level, module in _imports(path):
            if level == 1:
                assert module.split(".")[0] in STEP_IMPORTS[path.stem], \
                    f"steps/{path.name} imports .{module} (allowed: {sorted(STEP_IMPORTS[path.stem])})"
            elif level >= 2:
                top = module.split(".")[0]
                assert top in ("errors", "fsio", "engine", "workspace"), \
                    f"steps/{path.name} imports ..{module} (only errors, fsio, engine, workspace)"
            else:
                assert not module.startswith("conductor_magics"), f"steps/{path.name} imports {module}"


def test_engine_spells_no_workspace_file_name():
    # engine/ takes paths; which files a component has is said once, in workspace/layout.py
    from conductor_magics.workspace import layout

    # file names (with a dot): a folder's name such as "backups" is also an ordinary word
    names = {value for key, value in vars(layout).items()
             if key.isupper() and isinstance(value, str) and "." in value}
    assert {"schema.sql", "benchmarks.jsonl", "workload.sql", "dev.sqlite"} <= names
    folder = Path(__file__).resolve().parent.parent / "conductor_magics" / "engine"
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if (path.name, node.value) == ("workload.py", "workload.sql"):
                    continue  # parse_workload's label for messages when given text, not a path
                assert node.value not in names, f"engine/{path.name}:{node.lineno} spells {node.value!r}"


def _edge_words() -> re.Pattern:
    """A command line in an edge's words: ``conductor <subcommand>``, ``%conductor``,
    ``%%conductor`` or one of the parser's own ``--options`` (other programs' flags, such
    as pg_dump's argv, are not the edges' words)."""
    from conductor_magics.commands import SUBCOMMANDS, build_parser

    options = set()
    parsers = [build_parser()]
    while parsers:
        parser = parsers.pop()
        for action in parser._actions:  # argparse keeps them here
            options.update(o for o in action.option_strings if o.startswith("--"))
            if isinstance(action.choices, dict):  # the subcommands' parsers
                parsers.extend(action.choices.values())
    options -= {"--help"}
    assert {"--confirm", "--to", "--url", "--index", "--timeout"} <= options
    flags = "|".join(re.escape(o) for o in sorted(options, key=len, reverse=True))
    return re.compile(rf"\bconductor (?:{'|'.join(SUBCOMMANDS)})\b|%%?conductor\b"
                      rf"|(?:^|[\s`(])(?:{flags})(?![\w=-])")


def _string_constants(path: Path) -> list[tuple[int, str]]:
    """Every string literal of a module but its docstrings (f-strings' literal parts too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                       ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docstrings]


def test_engine_speaks_no_edge_words():
    # engine/ names a next action with errors.command()/option(); the edges word it
    words = _edge_words()
    folder = Path(__file__).resolve().parent.parent / "conductor_magics" / "engine"
    found = [f"engine/{path.name}:{line}: {text[:80]!r}"
             for path in sorted(folder.glob("*.py"))
             for line, text in _string_constants(path) if words.search(text)]
    assert not found, "edge words in engine/:\n" + "\n".join(found)


def test_the_edge_words_check_itself_finds_them():
    # Guards against a check that cannot fail: the hints engine/ used to spell.
    words = _edge_words()
    for text in ("create the first revision with `conductor migrate new -m MESSAGE`",
                 "declare it with %%conductor schema", "run %conductor bench", "pass --confirm",
                 "--rows must be at least 1", "raise --timeout SECONDS", "(--to DIR)"):
        assert words.search(text), text
    for text in ("pg_dump --format=custom", "--file=", "--no-password", "conductor-magics",
                 "written by conductor ", "migrate new"):
        assert not words.search(text), text


def test_one_sqlite_online_copy_and_one_migration_head_reader():
    # backups, restores and the advisor copy pages through engine/sqlitecopy.py; backups,
    # the gate and migrations read alembic_version through engine/migrations.py
    folder = Path(__file__).resolve().parent.parent / "conductor_magics"
    for path in sorted(folder.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        where = path.relative_to(folder)
        if path.name != "sqlitecopy.py":
            assert not re.search(r"\b(source|raw|conn\w*)\.backup\(", source), \
                f"{where} copies a SQLite database itself"
        if where != Path("engine/migrations.py"):
            assert "FROM alembic_version" not in source and "get_current_heads" not in source, \
                f"{where} reads the migration head itself"

"""Packaging: what ``pip install conductor-magics`` gives a fresh environment.

The fast tests read pyproject.toml and the sources: every module the package imports is
a declared dependency, extras are only optional engines and tests, and the wheel's data
files are wired up. The slow one builds the wheel from a clean copy of the checkout (the
lab extension with Node.js through hatch-jupyter-builder), installs it with JupyterLab
into a new venv and checks both extensions are enabled there and actually serve.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest
from helpers.browser_lab import Lab, free_port, lab_environment

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "conductor_magics"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
LAB_NAME = "conductor-magics"
#: modules imported only for an optional integration, with a clear error when missing,
#: and the extra that provides them
OPTIONAL_IMPORTS = {
    "sql": "test",  # jupysql: `%conductor connect --from-jupysql`
    "psycopg": "postgres",  # bench talks to libpq directly on PostgreSQL
}


def _name(requirement: str) -> str:
    """A requirement's distribution name, normalised (PEP 503)."""
    name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement).group(1)
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_modules(files: list[Path]) -> dict[str, str]:
    """Top-level module → the first ``file:line`` importing it (absolute imports only,
    at module level or inside functions), outside the standard library."""
    found: dict[str, str] = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "conductor_magics":
                    found.setdefault(top, f"{path.name}:{node.lineno}")
    return found


def undeclared(modules: dict[str, str], declared: set[str]) -> list[str]:
    """The imported modules no declared distribution provides (as readable lines)."""
    providers = importlib.metadata.packages_distributions()
    missing = []
    for module, where in sorted(modules.items()):
        dists = {_name(d) for d in providers.get(module, [])}
        if not dists:
            missing.append(f"{module} ({where}): no installed distribution provides it")
        elif not dists & declared:
            missing.append(f"{module} ({where}): from {', '.join(sorted(dists))}, not declared")
    return missing


def test_every_runtime_import_is_a_declared_dependency():
    declared = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    modules = imported_modules(sorted(PACKAGE.rglob("*.py")))
    assert {"IPython", "ipywidgets", "jupyter_server", "sqlalchemy"} <= set(modules)
    extras = PYPROJECT["project"]["optional-dependencies"]
    for module, extra in OPTIONAL_IMPORTS.items():
        assert module in modules, f"{module} is no longer imported: drop it from OPTIONAL_IMPORTS"
        provided = {_name(d) for d in importlib.metadata.packages_distributions()[module]}
        assert provided & {_name(r) for r in extras[extra]}, f"{module} is not in the {extra} extra"
        modules.pop(module)
    assert undeclared(modules, declared) == []
    # what the issue names explicitly, imported or not (nbformat: notebooks are the medium)
    assert {"ipython", "ipywidgets", "jupyter-server", "nbformat"} <= declared


def test_the_import_check_itself_finds_an_undeclared_import(tmp_path: Path):
    # Guards against a check that cannot fail.
    module = tmp_path / "m.py"
    module.write_text("import os\nimport sqlalchemy\n\ndef f():\n    from IPython import display\n")
    modules = imported_modules([module])
    assert modules == {"sqlalchemy": "m.py:2", "IPython": "m.py:5"}
    assert undeclared(modules, {"sqlalchemy"}) == ["IPython (m.py:5): from ipython, not declared"]


def test_extras_are_only_optional_engines_and_tests():
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert set(extras) == {"postgres", "duckdb", "test"}
    test_names = {_name(r) for r in extras["test"]}
    assert {"pytest-jupyter", "jupyterlab", "build"} <= test_names


def test_the_wheel_is_wired_for_both_extensions():
    import conductor_magics

    build = PYPROJECT["tool"]["hatch"]["build"]
    requires = {_name(r) for r in PYPROJECT["build-system"]["requires"]}
    assert requires == {"hatchling", "hatch-jupyter-builder", "jupyterlab"}  # jupyterlab: jlpm
    test_extra = {_name(r) for r in PYPROJECT["project"]["optional-dependencies"]["test"]}
    assert requires <= test_extra  # the packaging test builds without isolation
    hook = build["hooks"]["jupyter-builder"]
    assert hook["build-function"] == "hatch_jupyter_builder.npm_builder"
    kwargs = hook["build-kwargs"]
    assert (kwargs["path"], kwargs["build_cmd"], kwargs["npm"]) == ("labextension", "build:prod", ["jlpm"])
    shared = build["targets"]["wheel"]["shared-data"]
    assert shared["conductor_magics/labextension"] == f"share/jupyter/labextensions/{LAB_NAME}"
    assert shared["install.json"] == f"share/jupyter/labextensions/{LAB_NAME}/install.json"
    assert shared["jupyter-config/jupyter_server_config.d"] == "etc/jupyter/jupyter_server_config.d"

    package = json.loads((REPO / "labextension" / "package.json").read_text(encoding="utf-8"))
    assert package["name"] == LAB_NAME
    assert (REPO / "labextension" / package["jupyterlab"]["outputDir"]).resolve() == \
        PACKAGE / "labextension"
    assert conductor_magics._jupyter_labextension_paths() == [{"src": "labextension", "dest": LAB_NAME}]
    assert json.loads((REPO / "install.json").read_text())["packageName"] == PYPROJECT["project"]["name"]

    enable = json.loads((REPO / "jupyter-config/jupyter_server_config.d/conductor_magics.json").read_text())
    assert enable == {"ServerApp": {"jpserver_extensions": {"conductor_magics": True}}}
    points = conductor_magics._jupyter_server_extension_points()
    assert points == [{"module": "conductor_magics.server"}]
    server = __import__(points[0]["module"], fromlist=["_load_jupyter_server_extension"])
    assert callable(server._load_jupyter_server_extension)


def test_the_built_bundle_is_git_ignored():
    bundle = ["conductor_magics/labextension/package.json",
              "conductor_magics/labextension/static/remoteEntry.js"]
    out = subprocess.run(["git", "check-ignore", *bundle, "conductor_magics/server/handlers.py"],
                         cwd=REPO, capture_output=True, text=True, check=False)
    assert out.stdout.split() == bundle, "conductor_magics/labextension/ (the built bundle) must " \
        "be git-ignored, and nothing else of the package"


# ------------------------------------------------------------------------------ the wheel


def _run(argv: list, timeout: float, **kwargs) -> subprocess.CompletedProcess:
    out = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout,
                         check=False, **kwargs)
    assert out.returncode == 0, f"{' '.join(map(str, argv))} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory) -> tuple[Path, float]:
    """The wheel built from a clean copy of the checkout (tracked and new files, none of
    the ignored ones: no node_modules, no earlier bundle), in an isolated build
    environment as pip would; returns (wheel, seconds)."""
    if shutil.which("node") is None:
        pytest.fail("Node.js is missing: it builds the lab extension into the wheel; "
                    "run `bash .ci/bootstrap.sh` (it installs nodejs with apt)")
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    listed = _run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], 60, cwd=REPO)
    for relative in filter(None, listed.stdout.split("\0")):
        if (REPO / relative).is_file():  # a file deleted but not yet committed is not listed
            target = source / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / relative, target)
    started = time.monotonic()
    # --no-isolation: the build requirements (hatchling, hatch-jupyter-builder, jupyterlab
    # for jlpm) come from the test extra, already installed here, instead of a new build
    # environment per run; test_the_wheel_is_wired_for_both_extensions checks that
    # [build-system] requires them for an isolated build.
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    _run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", work / "dist",
          source], 900, env=env)  # jlpm is in this venv's bin/
    wheels = list((work / "dist").glob("conductor_magics-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0], time.monotonic() - started


@pytest.fixture(scope="session")
def fresh_venv(built_wheel, tmp_path_factory) -> tuple[Path, float]:
    """A new venv with the wheel and JupyterLab installed (nothing else); (bin, seconds)."""
    venv = tmp_path_factory.mktemp("venv") / "env"
    started = time.monotonic()
    _run([sys.executable, "-m", "venv", venv], 120)
    _run([venv / "bin/python", "-m", "pip", "install", "-q", "--disable-pip-version-check",
          built_wheel[0], "jupyterlab"], 900)
    return venv / "bin", time.monotonic() - started


def test_the_wheel_installs_into_a_fresh_venv_with_everything_enabled(
        built_wheel, fresh_venv, project, tmp_path, record_property):
    wheel, build_seconds = built_wheel
    bin_dir, install_seconds = fresh_venv
    record_property("wheel_build_seconds", round(build_seconds, 1))
    record_property("fresh_venv_install_seconds", round(install_seconds, 1))
    print(f"wheel built in {build_seconds:.0f} s; fresh venv installed in {install_seconds:.0f} s")

    names = zipfile.ZipFile(wheel).namelist()
    data = "conductor_magics-0.1.0.data/data/"
    lab = f"{data}share/jupyter/labextensions/{LAB_NAME}/"
    assert f"{lab}package.json" in names and f"{lab}install.json" in names
    assert any(re.fullmatch(rf"{re.escape(lab)}static/remoteEntry\.[0-9a-f]+\.js", n) for n in names)
    # every plugin's settings schema (one per plugin that has settings)
    schemas = sorted(p.name for p in (REPO / "labextension" / "schema").glob("*.json"))
    assert schemas
    assert [s for s in schemas if f"{lab}schemas/{LAB_NAME}/{s}" not in names] == []
    assert f"{data}etc/jupyter/jupyter_server_config.d/conductor_magics.json" in names
    assert "conductor_magics/server/handlers.py" in names
    assert not [n for n in names if "node_modules" in n or n.endswith(".ts") or "/src/" in n]
    assert not [n for n in names if n.startswith("conductor_magics/labextension/")]  # data only

    home = tmp_path / "home"
    env = lab_environment(home)
    env.pop("PYTHONPATH", None)  # the venv's own copy, not this checkout
    env.pop("CONDUCTOR_ROOT", None)
    env["HOME"] = str(home)
    env["PATH"] = f"{bin_dir}:{env['PATH']}"

    listing = _run([bin_dir / "jupyter", "labextension", "list"], 120, env=env)
    lab_lines = [line for line in re.sub(r"\x1b\[[0-9;]*m", "", listing.stdout + listing.stderr)
                 .splitlines() if LAB_NAME in line]
    assert any("enabled" in line and "OK" in line for line in lab_lines), listing.stdout + listing.stderr
    servers = _run([bin_dir / "jupyter", "server", "extension", "list"], 120, env=env)
    text = re.sub(r"\x1b\[[0-9;]*m", "", servers.stdout + servers.stderr)  # colours
    assert re.search(r"conductor_magics\s+enabled", text), text
    assert re.search(r"conductor_magics\s+\S*\s*OK", text), text

    _run([bin_dir / "python", "-c", "import ipywidgets, IPython, jupyter_server, nbformat"], 120,
         env=env, cwd=tmp_path)
    located = _run([bin_dir / "python", "-c", "import conductor_magics; print(conductor_magics.__file__)"],
                   60, env=env, cwd=tmp_path)
    assert located.stdout.strip().startswith(str(bin_dir.parent)), located.stdout
    help_text = _run([bin_dir / "conductor", "--help"], 60, env=env, cwd=tmp_path).stdout
    assert "usage: conductor" in help_text and "verify" in help_text

    # and the installed server serves the routes and announces the lab extension
    port, token = free_port(), secrets.token_hex(16)
    log_path = home / "lab.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [bin_dir / "jupyter", "lab", "--no-browser", f"--port={port}", "--port-retries=0",
             "--ServerApp.ip=127.0.0.1", f"--ServerApp.token={token}", f"--ServerApp.root_dir={project}",
             "--allow-root", "--LabApp.news_url=None",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
            cwd=project, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    server = Lab(root_dir=project, port=port, token=token, process=process, log_path=log_path)
    try:
        status = None
        deadline = time.monotonic() + 60
        while status is None:
            assert process.poll() is None, f"JupyterLab exited:\n{server.log()[-3000:]}"
            assert time.monotonic() < deadline, f"no answer within 60 s:\n{server.log()[-3000:]}"
            try:
                status = server.api("GET", "conductor/api/status", timeout=5)
            except (OSError, urllib.error.URLError, ValueError):
                time.sleep(0.3)
        assert [c["id"] for c in status["components"]] == ["orders_db", "customer_events"]
        with urllib.request.urlopen(server.url("lab"), timeout=20) as response:
            page = response.read().decode()
        assert f'"name": "{LAB_NAME}"' in page or f'"name":"{LAB_NAME}"' in page
    finally:
        server.stop()

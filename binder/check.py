"""`make binder-check`: lint binder/, then build and run the Binder demo the way
repo2docker would, without Docker.

1. Lint: the repo2docker files exist, postBuild and start are executable (on disk and in
   git), start ends with ``exec "$@"``, runtime.txt parses as a Python >= 3.11, no
   Dockerfile (repo2docker would use it and ignore everything else).
2. Build, as a non-root user (PostgreSQL's initdb refuses root) with HOME a temporary
   folder holding a copy of the repository, as in a Binder image: a new venv from the
   Python runtime.txt names (or the closest one available), repo2docker's base packages
   (JupyterLab, notebook, ipywidgets), ``pip install -r binder/requirements.txt`` from the
   repository root, then binder/postBuild.
3. Run: ``binder/start python binder/check.py --run-notebooks ...`` executes every
   notebook of example_notebooks/ in its demo folder with nbclient (so the PostgreSQL
   notebook gets the server start runs), then ``jupyter labextension list`` and
   ``jupyter server extension list`` must show the extension enabled and OK.

The PostgreSQL it starts is stopped by PID in every case. Every failure is one line
starting with ``binder-check:``; exit status 1. There are no skips: a missing piece
(Python, a non-root user, PostgreSQL) is a failure.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REQUIRED = ("requirements.txt", "runtime.txt", "apt.txt", "postBuild", "start")
EXECUTABLE = ("postBuild", "start")
MIN_PYTHON = (3, 11)
# What repo2docker's base environment provides next to binder/requirements.txt
# (repo2docker/buildpacks/conda/environment.py-3.11.yml), plus nbclient for the check.
BASE_PACKAGES = ("jupyterlab==4.*", "notebook==7.*", "jupyter_server==2.*", "ipywidgets==8.*",
                 "ipykernel", "nbclient")
LAB_EXTENSION = "conductor-magics"
# jupyter-config/jupyter_server_config.d/conductor_magics.json enables the package itself
# (its _jupyter_server_extension_points name conductor_magics.server).
SERVER_EXTENSION = "conductor_magics"
PG_NOTEBOOK = "postgres_tuning"
# Passed through to the simulated user: how this machine reaches the package registries.
PASS_ENV = re.compile(r"^(PIP_\w+|(?i:https?_proxy|no_proxy)|npm_config_\w+|NPM_CONFIG_\w+|"
                      r"SSL_CERT_FILE|SSL_CERT_DIR|REQUESTS_CA_BUNDLE|CURL_CA_BUNDLE|"
                      r"NODE_EXTRA_CA_CERTS|CI)$")
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
NOTEBOOK_TIMEOUT = 600  # seconds per cell


class CheckFailed(Exception):
    """One step failed; the message is the one line to print."""


# -- lint -------------------------------------------------------------------------------

def parse_runtime(text: str) -> tuple[int, int]:
    """(major, minor) from runtime.txt's ``python-X.Y`` (repo2docker's format, optionally
    with a ``-YYYY-MM-DD`` date); ValueError saying what is wrong otherwise."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    match = re.fullmatch(r"python-(\d+)\.(\d+)(?:-\d{4}-\d{2}-\d{2})?", lines[0]) \
        if len(lines) == 1 else None
    if not match:
        raise ValueError(f"expected one line like python-3.11, found {text.strip()[:40]!r}")
    version = (int(match[1]), int(match[2]))
    if version < MIN_PYTHON:
        raise ValueError(f"python-{version[0]}.{version[1]} is older than the package needs "
                         f"(>= {MIN_PYTHON[0]}.{MIN_PYTHON[1]})")
    return version


def _git_modes(repo: Path, paths: list[str]) -> dict[str, str]:
    """The index modes (``100755``…) of the tracked ones among ``paths``; {} outside git."""
    try:
        done = subprocess.run(["git", "-C", str(repo), "ls-files", "-s", "--", *paths],
                              capture_output=True, text=True, check=False)
    except OSError:
        return {}
    if done.returncode != 0:
        return {}
    return {line.split("\t", 1)[1]: line.split()[0] for line in done.stdout.splitlines()}


def _last_command(script: str) -> str:
    for line in reversed(script.splitlines()):
        line = line.strip()
        if line and not line.startswith("#"):
            return line
    return ""


def lint(repo: Path) -> list[str]:
    """Problems with ``repo``'s binder/ folder, one line each (what, where, what to do)."""
    folder = repo / "binder"
    if not folder.is_dir():
        return ["binder/ is missing: the Binder files live in binder/ at the repository root"]
    problems = [f"binder/{name} is missing: repo2docker needs it (see README, Binder)"
                for name in REQUIRED if not (folder / name).is_file()]
    if (folder / "Dockerfile").exists():
        problems.append("binder/Dockerfile exists: repo2docker would build only from it and ignore "
                        "every other binder/ file; remove it")
    modes = _git_modes(repo, [f"binder/{name}" for name in EXECUTABLE])
    for name in EXECUTABLE:
        path = folder / name
        if not path.is_file():
            continue
        if not path.stat().st_mode & stat.S_IXUSR:
            problems.append(f"binder/{name} is not executable: chmod +x binder/{name}")
        elif modes.get(f"binder/{name}", "100755") != "100755":
            problems.append(f"binder/{name} is not executable in git: "
                            f"git update-index --chmod=+x binder/{name}")
        if not path.read_text(errors="replace").startswith("#!"):
            problems.append(f"binder/{name} has no #! line: start it with #!/usr/bin/env bash")
    start = folder / "start"
    if start.is_file() and _last_command(start.read_text(errors="replace")) != 'exec "$@"':
        problems.append('binder/start does not end with exec "$@": the notebook server would '
                        'never start; make exec "$@" its last line')
    runtime = folder / "runtime.txt"
    if runtime.is_file():
        try:
            parse_runtime(runtime.read_text(errors="replace"))
        except ValueError as exc:
            problems.append(f"binder/runtime.txt does not parse: {exc}")
    requirements = folder / "requirements.txt"
    if requirements.is_file():
        names = [line.split("#")[0].strip() for line in requirements.read_text().splitlines()]
        if not any(re.fullmatch(r"\.(\[[\w,\s-]*\])?", name) for name in names):
            problems.append("binder/requirements.txt does not install this project: "
                            "add the line .[postgres]")
    return problems


# -- the simulated build ----------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def pick_python(version: tuple[int, int], path: str = SYSTEM_PATH) -> str:
    """The interpreter for the venv, from the system folders the simulated user sees (a
    pyenv shim under /root is no use to it): python{X.Y} when installed, else the closest
    version that still meets MIN_PYTHON (newer preferred on a tie)."""
    wanted = f"python{version[0]}.{version[1]}"
    found = {minor: shutil.which(f"python3.{minor}", path=path) for minor in range(MIN_PYTHON[1], 30)}
    found = {minor: where for minor, where in found.items() if where}
    if version[0] == 3 and version[1] in found:
        return found[version[1]]
    if not found:
        raise CheckFailed(f"binder-check: no Python >= 3.{MIN_PYTHON[1]} in {path} for runtime.txt's "
                          f"{wanted}: install one (apt-get install python3)")
    closest = min(found, key=lambda minor: (abs(minor - version[1]), minor < version[1]))
    print(f"binder-check: {wanted} is not installed; using python3.{closest} (the closest)")
    return found[closest]


def copy_repository(repo: Path, target: Path) -> None:
    """What a push would ship: git's tracked and untracked-but-not-ignored files (every
    file but .git, .venv, build/ and node_modules/ outside git)."""
    listed = subprocess.run(["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], capture_output=True, check=False)
    if listed.returncode == 0:
        for name in sorted(set(listed.stdout.decode().split("\0")) - {""}):
            source = repo / name
            if source.is_symlink() or source.is_file():  # a deleted tracked file is skipped
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / name, follow_symlinks=False)
        return
    shutil.copytree(repo, target, symlinks=True, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(".git", ".venv", "build", "node_modules",
                                                  "__pycache__", ".pytest_cache"))


class Simulation:
    """One simulated Binder image in a temporary folder: HOME (the repository copy), the
    venv, and the user every step runs as."""

    def __init__(self, repo: Path, base: Path):
        self.repo = repo
        self.base = base
        self.home = base / "home"
        self.venv = base / "venv"
        self.port = _free_port()
        self.user = None
        if os.geteuid() == 0:
            self.user = os.environ.get("BINDER_CHECK_USER", "nobody")
            if subprocess.run(["id", "-u", self.user], capture_output=True).returncode != 0:
                raise CheckFailed(f"binder-check: no user {self.user!r} to run the build as (PostgreSQL "
                                  f"refuses root): useradd -M {self.user}, or set BINDER_CHECK_USER")
        self.env = {
            "HOME": str(self.home),
            "PATH": f"{self.venv / 'bin'}:{SYSTEM_PATH}",
            "LANG": "C.UTF-8",
            "USER": self.user or os.environ.get("USER", ""),
            "PIP_CACHE_DIR": str(base / "pip-cache"),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "CONDUCTOR_DEMO_PG_PORT": str(self.port),
            **{k: v for k, v in os.environ.items() if PASS_ENV.match(k)},
        }

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` as the simulated user, in exactly the simulated environment."""
        env = ["env", "-i", *(f"{k}={v}" for k, v in self.env.items())]
        return (["runuser", "-u", self.user, "--"] if self.user else []) + env + argv

    def run(self, step: str, argv: list[str], timeout: float, quiet: bool = True) -> str:
        """Run one step in HOME; its output is shown only when it fails."""
        started = time.perf_counter()
        process = subprocess.Popen(self.command(argv), cwd=self.home, text=True,
                                   stdout=subprocess.PIPE if quiet else None,
                                   stderr=subprocess.STDOUT if quiet else None,
                                   start_new_session=True)
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process.pid)
            process.communicate()
            raise CheckFailed(f"binder-check: {step} took longer than {timeout:.0f} s") from None
        finally:
            # The PostgreSQL binder/start ran, by its PID; then whatever else the step left
            # in its process group (a kernel of a failed notebook).
            self.stop_postgres()
            _kill_group(process.pid)
        if process.returncode != 0:
            if output:
                print(output[-6000:], file=sys.stderr)
            raise CheckFailed(f"binder-check: {step} failed (exit {process.returncode}; output above)")
        print(f"binder-check: {step}: {time.perf_counter() - started:.1f} s", flush=True)
        return output or ""

    def prepare(self) -> None:
        self.home.mkdir(parents=True)
        copy_repository(self.repo, self.home)
        (self.base / "pip-cache").mkdir()
        if self.user:
            subprocess.run(["chown", "-R", f"{self.user}:", str(self.base)], check=True)

    def stop_postgres(self) -> None:
        """Stop the PostgreSQL binder/start ran, by the PID its data folder records."""
        stop_postgres(self.home / ".conductor-demo" / "pgdata")


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def stop_postgres(data: Path, wait: float = 20.0) -> bool:
    """Stop the postmaster of ``data`` by the PID in its postmaster.pid (fast shutdown,
    then SIGKILL). True when one was running."""
    try:
        lines = (data / "postmaster.pid").read_text().splitlines()
    except OSError:
        return False
    if len(lines) < 2 or not lines[0].strip().isdigit() or Path(lines[1]) != data:
        return False
    pid = int(lines[0])
    try:  # the PID file outlives a crash: only signal a postgres process
        if b"postgres" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return False
        os.kill(pid, signal.SIGINT)
    except (OSError, ProcessLookupError):
        return False
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists() or _zombie(pid):
            return True
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    return True


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def extension_problems(lab: str, server: str) -> list[str]:
    """What ``jupyter labextension list`` (``lab``) and ``jupyter server extension list``
    (``server``) output says is wrong with this project's extensions."""
    ansi = re.compile(r"\x1b\[[0-9;]*m")
    lab, server = ansi.sub("", lab), ansi.sub("", server)
    problems = []
    if not re.search(rf"^\s*{re.escape(LAB_EXTENSION)} v\S+ enabled\s+OK", lab, re.M):
        problems.append(f"binder-check: jupyter labextension list does not show {LAB_EXTENSION} "
                        "enabled and OK: the wheel must carry the prebuilt lab extension")
    if not (re.search(rf"^\s*{re.escape(SERVER_EXTENSION)}\s+enabled", server, re.M)
            and re.search(rf"^\s*{re.escape(SERVER_EXTENSION)}\s+\S*\s*OK", server, re.M)):
        problems.append(f"binder-check: jupyter server extension list does not show {SERVER_EXTENSION} "
                        "enabled and OK: the package must enable it (jupyter_server_config.d)")
    return problems


def simulate(repo: Path, keep: bool = False) -> None:
    """The whole simulated Binder build and launch; raises CheckFailed on the first problem."""
    version = parse_runtime((repo / "binder" / "runtime.txt").read_text())
    python = pick_python(version)
    notebooks = sorted(p.stem for p in (repo / "example_notebooks").glob("*.ipynb"))
    if not notebooks:
        raise CheckFailed("binder-check: no notebook in example_notebooks/ to run")
    base = Path(tempfile.mkdtemp(prefix="conductor-binder-"))
    base.chmod(0o755)  # the simulated user owns everything below
    sim = None
    failed = True
    try:
        sim = Simulation(repo, base)
        sim.prepare()
        sim.run(f"venv ({Path(python).name})", [python, "-m", "venv", str(sim.venv)], 120)
        sim.run("pip install (repo2docker's base packages)",
                ["python", "-m", "pip", "install", "-q", *BASE_PACKAGES], 900)
        sim.run("pip install -r binder/requirements.txt",
                ["python", "-m", "pip", "install", "-q", "-r", "binder/requirements.txt"], 900)
        sim.run("binder/postBuild", ["binder/postBuild"], 300)
        for name in notebooks:
            if not (sim.home / "demo" / name / f"{name}.ipynb").is_file():
                raise CheckFailed(f"binder-check: binder/postBuild made no demo/{name}/{name}.ipynb")
        sim.run(f"binder/start + {len(notebooks)} notebooks",
                ["binder/start", "python", "binder/check.py", "--run-notebooks",
                 str(sim.home / "demo"), *notebooks], 1800, quiet=False)
        lab = sim.run("jupyter labextension list", ["jupyter", "labextension", "list"], 120)
        server = sim.run("jupyter server extension list", ["jupyter", "server", "extension", "list"], 120)
        problems = extension_problems(lab, server)
        if problems:
            print(lab, server, sep="\n", file=sys.stderr)
            raise CheckFailed("\n".join(problems))
        failed = False
    finally:
        if sim is not None:
            sim.stop_postgres()
        if keep or (failed and sim is not None and sim.home.exists()):
            print(f"binder-check: the simulated image is in {base} (remove it when done)", file=sys.stderr)
        else:
            shutil.rmtree(base, ignore_errors=True)


# -- inside binder/start ----------------------------------------------------------------

def run_notebooks(demo: Path, names: list[str], timeout: int = NOTEBOOK_TIMEOUT) -> list[str]:
    """Execute demo/<name>/<name>.ipynb for each name with nbclient, in its folder; one
    line per notebook that raised (which cell, which exception)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    failures = []
    for name in names:
        path = demo / name / f"{name}.ipynb"
        nb = nbformat.read(path, as_version=4)
        started = time.perf_counter()
        try:
            NotebookClient(nb, timeout=timeout, kernel_name="python3",
                           resources={"metadata": {"path": str(path.parent)}}).execute()
        except CellExecutionError:
            pass  # the error output is in the notebook: reported below
        except Exception as exc:  # a kernel that died or timed out
            failures.append(f"binder-check: {name}.ipynb did not run: "
                            f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1][:300]}")
            continue
        finally:
            nbformat.write(nb, path)
        errors = [(index, out) for index, cell in enumerate(nb.cells, 1)
                  for out in cell.get("outputs", []) if out.get("output_type") == "error"]
        if errors:
            index, out = errors[0]
            detail = (out.get("evalue") or "").strip().splitlines()[:1] or [""]
            failures.append(f"binder-check: {name}.ipynb cell {index} raised "
                            f"{out.get('ename')}: {detail[0][:300]}")
        else:
            print(f"binder-check: {name}.ipynb ran in {time.perf_counter() - started:.1f} s", flush=True)
    return failures


def main(argv: list[str] | None = None) -> int:
    """Entry point: lint, then (unless --lint-only) the simulation."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=REPO, help="repository root (default: this one)")
    parser.add_argument("--lint-only", action="store_true", help="only lint binder/")
    parser.add_argument("--keep", action="store_true", help="keep the simulated image folder")
    parser.add_argument("--run-notebooks", metavar="DEMO", type=Path,
                        help="(inside binder/start) execute DEMO/<name>/<name>.ipynb for each NAME")
    parser.add_argument("names", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_notebooks:
        failures = run_notebooks(args.run_notebooks, args.names)
        for line in failures:
            print(line, file=sys.stderr)
        return 1 if failures else 0

    started = time.perf_counter()
    problems = lint(args.repo.resolve())
    for line in problems:
        print(f"binder-check: {line}", file=sys.stderr)
    if problems:
        return 1
    print("binder-check: binder/ lint passed")
    if args.lint_only:
        return 0
    try:
        simulate(args.repo.resolve(), keep=args.keep)
    except CheckFailed as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(f"binder-check: passed in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

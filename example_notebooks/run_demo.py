"""The demo: the example workspace implemented end to end on embedded SQLite.

Works on a copy in build/demo/ (a fresh git repository, so workflow.md's per-task
commits show), so the example stays pristine: a few CLI commands on the small
component, then the walkthrough notebook executed headless on orders_db, then the
commits it made. Run by `make demo`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = REPO / "build" / "demo"
NOTEBOOKS = ["implement_walkthrough.ipynb"]
LINES_PER_OUTPUT = 8


def sh(*args: str) -> None:
    """Run one `conductor` command in the demo folder and show it like a terminal."""
    print(f"\n$ conductor {' '.join(args)}", flush=True)
    conductor = Path(sys.executable).with_name("conductor")
    done = subprocess.run([str(conductor), *args], cwd=OUT, check=False)
    if done.returncode not in (0, 1):
        sys.exit(f"demo: `conductor {' '.join(args)}` failed with exit code {done.returncode}")


def run_notebook(name: str) -> None:
    path = OUT / name
    nb = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(OUT)}}).execute()
    nbformat.write(nb, path)
    elapsed = time.perf_counter() - started
    print(f"\nexecuted {name} in {elapsed:.1f} s -> {path.relative_to(REPO)}")
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        print(f"\n[{cell.execution_count}] {cell.source.splitlines()[0] if cell.source else ''}")
        for output in cell.get("outputs", []):
            text = output.get("text") or output.get("data", {}).get("text/plain", "")
            if output.get("output_type") == "error":
                sys.exit(f"demo: cell {cell.execution_count} failed: {output['ename']}: {output['evalue']}")
            if text:
                print("    " + "\n    ".join(str(text).rstrip().splitlines()[:LINES_PER_OUTPUT]))


def git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=OUT, capture_output=True, text=True, check=False)


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    shutil.copytree(HERE / "storage-conductor", OUT / "storage-conductor")
    for name in NOTEBOOKS:
        shutil.copy2(HERE / name, OUT / name)
    for variable in ("CONDUCTOR_ROOT", "CONDUCTOR_DATABASE_URL"):
        os.environ.pop(variable, None)
    if shutil.which("git"):
        git("init", "-q")
        git("config", "user.name", "Conductor Demo")
        git("config", "user.email", "demo@example.com")
        git("add", "-A")
        git("commit", "-q", "-m", "chore: the example storage-conductor workspace")

    print("== The CLI on a copy of the example workspace ==")
    sh("status")
    sh("implement", "customer_events")
    sh("task", "done", "1.1")
    sh("next")
    sh("plan", "customer_events")
    sh("lint")

    print("\n== The notebook, executed headless ==")
    for name in NOTEBOOKS:
        run_notebook(name)
    print("\n== Commits made along the way (workflow.md: per-task, Conventional Commits) ==")
    log = git("log", "--format=%h %s", "-n", "60")
    print(log.stdout if log.returncode == 0 else "(not a git repository)")
    print("\n== Final status ==")
    sh("status")


if __name__ == "__main__":
    main()

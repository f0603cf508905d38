"""Real temporary git repositories for tests: isolated configuration, a committed
workspace, and a byte-for-byte snapshot of everything a command could change."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path

import pytest

SETUP = ["-c", "user.name=Setup", "-c", "user.email=setup@example.com"]


def isolate_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No global/system git configuration, no identity from the environment, and a ceiling
    so git never finds a repository above the test's folder."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL",
                 "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "GIT_COMMITTER_DATE", "EMAIL",
                 "CONDUCTOR_ROOT"):
        monkeypatch.delenv(name, raising=False)


def git(repo: Path, *args: str, check: bool = True, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False,
                          env={**os.environ, **(env or {})})
    if check:
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return proc.stdout


def init_repo(project: Path) -> Path:
    """``git init`` with a local identity, everything in ``project`` committed."""
    git(project, "init", "-q", "-b", "main")
    git(project, "config", "user.name", "Repo Tester")
    git(project, "config", "user.email", "tester@example.com")
    git(project, "config", "commit.gpgsign", "false")
    git(project, "add", "-A")
    git(project, *SETUP, "commit", "-q", "-m", "initial workspace")
    return project


def set_workflow(project: Path, workspace: str = "storage-conductor", **lines: str) -> None:
    """Replace (or add) preference lines of workflow.md and commit the change."""
    path = project / workspace / "workflow.md"
    text = path.read_text()
    for label, value in lines.items():
        label = label.replace("_", " ")
        pattern = re.compile(rf"^- \*\*{label}:\*\*.*$", re.MULTILINE | re.IGNORECASE)
        line = f"- **{label.capitalize()}:** {value}" if value else ""
        text = pattern.sub(line, text) if pattern.search(text) else text.replace(
            "## Preferences\n\n", f"## Preferences\n\n{line}\n", 1)
    path.write_text(text)
    git(project, "add", f"{workspace}/workflow.md")
    if git(project, "diff", "--cached", "--name-only"):  # "per task" is the example's own
        git(project, *SETUP, "commit", "-q", "-m", "workflow")


def commit_all(project: Path, message: str) -> str:
    git(project, "add", "-A")
    git(project, *SETUP, "commit", "-q", "-m", message)
    return git(project, "rev-parse", "HEAD").strip()


def snapshot(project: Path) -> dict[str, object]:
    """Everything a refused command must leave alone: HEAD and every ref, the index file's
    bytes, every working-tree file's bytes (ignored ones too), and no revert, merge or
    worktree state left in .git."""
    gitdir = project / ".git"
    files = {}
    for path in sorted(project.rglob("*")):
        rel = path.relative_to(project)
        if rel.parts[0] == ".git" or not path.is_file():
            continue
        files[rel.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    if not gitdir.exists():  # not a repository: the files are all there is
        return {"files": files}
    state = sorted(p.name for p in gitdir.iterdir()
                   if p.name in ("REVERT_HEAD", "MERGE_HEAD", "CHERRY_PICK_HEAD", "sequencer",
                                 "worktrees", "MERGE_MSG"))
    return {
        "head": git(project, "rev-parse", "HEAD").strip(),
        "refs": git(project, "for-each-ref", "--format=%(refname) %(objectname)"),
        "index": hashlib.sha256((gitdir / "index").read_bytes()).hexdigest(),
        "files": files,
        "state": state,
    }

"""Shared tools of the adversarial corpus (tests/adversarial/test_*.py) and the other
hostile-input tests.

Every hostile case states the exit code it expects, the one-line message it expects (a
regular expression), and that nothing on disk changed: :func:`refused` checks all three.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path

from helpers.cli import CONDUCTOR, clean_env
from helpers.cli import conductor as run_conductor

__all__ = ["CONDUCTOR", "conductor", "env", "one_line_error", "refused", "tree"]


def env(**extra: str) -> dict[str, str]:
    """The test process's environment without CONDUCTOR_* settings or bytecode writing
    (which would change the trees compared), plus ``extra``."""
    return clean_env(PYTHONDONTWRITEBYTECODE="1", **extra)


def conductor(root: Path, *args: str, timeout: float = 120, stdin: str | None = None,
              extra_env: dict[str, str] | None = None, real: bool = False) -> subprocess.CompletedProcess:
    """Run ``conductor --root ROOT ARGS`` from ``root`` (in process unless ``real``)."""
    return run_conductor(*args, root=root, env=env(**(extra_env or {})), stdin=stdin,
                         timeout=timeout, real=real)


def tree(folder: Path) -> dict[str, tuple]:
    """Every entry under ``folder``: (kind, sha256 or link target, mode) by relative path."""
    found: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, folder)
            st = os.lstat(path)
            if os.path.islink(path):
                found[rel] = ("link", os.readlink(path), st.st_mode)
            elif os.path.isdir(path):
                found[rel] = ("dir", "", st.st_mode)
            else:
                with open(path, "rb") as handle:
                    found[rel] = ("file", hashlib.sha256(handle.read()).hexdigest(), st.st_mode)
    return found


def one_line_error(proc: subprocess.CompletedProcess, code: int, pattern: str) -> str:
    """Assert the command failed with ``code``, printed no traceback, and said one line on
    stderr matching ``pattern``; returns that line."""
    out = proc.stdout + proc.stderr
    assert proc.returncode == code, f"exit {proc.returncode}, wanted {code}:\n{out}"
    assert "Traceback" not in out, out
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"wanted one line on stderr, got {len(lines)}:\n{proc.stderr}"
    assert re.search(pattern, lines[0]), f"{lines[0]!r} does not match {pattern!r}"
    return lines[0]


def refused(proc: subprocess.CompletedProcess, code: int, pattern: str, before: dict,
            folder: Path) -> str:
    """:func:`one_line_error`, and nothing under ``folder`` changed since ``before``."""
    line = one_line_error(proc, code, pattern)
    after = tree(folder)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"bad input changed files: {changed}"
    return line

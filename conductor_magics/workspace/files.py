"""Atomic writes and the workspace lock.

Every write goes to a temporary file in the same folder, is fsynced and then
``os.replace``d over the target, so a killed process leaves either the old or
the new file, never half of one. Writers hold one lock per workspace so two
kernels (or a kernel and the CLI) never lose each other's updates.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from ..errors import ConductorError
from ..fsio import FileChanged, FileIdentity, atomic_write_bytes, fsync_dir, stale_temp_files

__all__ = ["FileChanged", "FileIdentity", "atomic_write_bytes", "ensure_gitignore", "fsync_dir",
           "lock_path_for", "stale_temp_files", "workspace_lock"]

LOCK_TIMEOUT_S = 30.0


def lock_path_for(workspace_dir: Path) -> Path:
    """Where the lock of a workspace lives.

    The lock file is kept outside the workspace (in the temp folder, named by
    the workspace's real path) so taking it never adds a file to the user's
    project or to git status.
    """
    real = os.path.realpath(workspace_dir)
    digest = hashlib.sha1(real.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / "conductor-magics-locks"
    folder.mkdir(mode=0o777, exist_ok=True)
    return folder / f"{digest}.lock"


_LOCKS: dict[str, FileLock] = {}


@contextlib.contextmanager
def workspace_lock(workspace_dir: Path, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the workspace's write lock: exclusive between processes, re-entrant within a
    thread (one FileLock object per workspace, which counts nested acquisitions)."""
    path = str(lock_path_for(workspace_dir))
    lock = _LOCKS.setdefault(path, FileLock(path))
    try:
        lock.acquire(timeout=timeout)
    except Timeout as exc:
        raise ConductorError(
            f"another process has held the workspace lock for over {timeout:.0f} s",
            path=workspace_dir,
            hint="wait for the other kernel or command to finish, then retry",
        ) from exc
    try:
        yield
    finally:
        lock.release()


def ensure_gitignore(folder: Path, patterns: tuple[str, ...] | list[str]) -> bool:
    """Add the missing ``patterns`` to ``folder/.gitignore`` (created if needed).

    Returns whether the file changed; lines already there are kept as they are.
    """
    path = Path(folder) / ".gitignore"
    existing = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    missing = [line for line in patterns if line not in existing]
    if not missing:
        return False
    text = "\n".join([*existing, *missing]) + "\n"
    atomic_write_bytes(path, text.encode("utf-8"))
    return True

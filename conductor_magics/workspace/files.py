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
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from ..errors import ConductorError

_TMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[A-Za-z0-9_]+\.tmp$")

LOCK_TIMEOUT_S = 30.0


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically, keeping its permission bits."""
    path = Path(path)
    folder = path.parent
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = None
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def stale_temp_files(folder: Path) -> list[Path]:
    """Temporary files left by writers that were killed (their process is gone)."""
    found = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return found
    for entry in entries:
        match = _TMP_RE.match(entry.name)
        if match and not _pid_alive(int(match["pid"])):
            found.append(entry)
    return found


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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

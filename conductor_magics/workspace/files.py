"""Atomic, checked writes and the workspace lock.

Every write goes to a temporary file in the same folder, is fsynced and then
``os.replace``d over the target (through a symbolic link, to its target), so a killed
process leaves either the old or the new file, never half of one. Writers hold one lock
per workspace so two kernels (or a kernel and the CLI) never lose each other's updates,
and each edit checks, right before its rename, that the file is still the one it read:
an editor's save that landed meanwhile is re-read and the edit re-applied on it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import random
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConductorError
from ..fsio import (
    FileChanged,
    FileIdentity,
    atomic_write_bytes,
    fsync_dir,
    resolve_link,
    stale_temp_files,
)

__all__ = ["FileChanged", "FileEdit", "FileIdentity", "atomic_write_bytes", "check_writable",
           "edit_file", "ensure_gitignore", "fsync_dir", "kept_changing", "lock_path_for", "retry_pause", "read_with_identity",
           "stale_temp_files", "workspace_lock", "write_checked", "write_edits"]

LOCK_TIMEOUT_S = 30.0
#: how often an edit is re-applied when the file keeps changing under it (an editor saving)
WRITE_ATTEMPTS = 100


def retry_pause() -> None:
    """A short random pause before an edit is re-applied on a file another writer just
    replaced: an editor saving at a steady pace would otherwise land in every attempt's
    window (read, write, fsync, rename) in lockstep."""
    time.sleep(random.uniform(0.0, 0.01))


# -- the lock ---------------------------------------------------------------------------------

def lock_dir() -> Path:
    """The folder of this user's workspace locks: ``<temp>/conductor-magics-<uid>``, created
    0700 and checked to be a real folder owned by this user (never a link another user
    planted in the shared temp folder); opened up by mistake, it is made private again.

    Not ``$XDG_RUNTIME_DIR``: a kernel started by a service manager and a shell over ssh of
    the same user can see different values, and two lock folders would let them race."""
    folder = Path(tempfile.gettempdir()) / f"conductor-magics-{os.getuid()}"
    with contextlib.suppress(FileExistsError):
        os.mkdir(folder, 0o700)
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise _lock_folder_error(folder, exc.strerror or str(exc)) from None
    try:
        st = os.fstat(fd)
        if st.st_uid != os.getuid():
            raise _lock_folder_error(folder, f"it belongs to uid {st.st_uid}")
        if st.st_mode & 0o077:
            os.fchmod(fd, 0o700)
    finally:
        os.close(fd)
    return folder


def _lock_folder_error(folder: Path, why: str) -> ConductorError:
    return ConductorError(f"the lock folder {folder} is not a private folder of this user ({why})",
                          hint="remove it (it is created again) or point TMPDIR at a private folder")


def lock_path_for(workspace_dir: Path) -> Path:
    """Where the lock of a workspace lives.

    The lock file is kept outside the workspace (in this user's private lock folder,
    named by the workspace's real path) so taking it never adds a file to the user's
    project or to git status.
    """
    real = os.path.realpath(workspace_dir)
    digest = hashlib.sha1(real.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return lock_dir() / f"{digest}.lock"


class _Timeout(Exception):
    pass


class _FlockLock:
    """An exclusive ``flock`` on a lock file opened with ``O_NOFOLLOW``: between processes
    and between threads (each thread opens its own descriptor), re-entrant within a thread."""

    def __init__(self, path: str):
        self.path = path
        self._local = threading.local()

    def acquire(self, timeout: float) -> None:
        import fcntl

        depth = getattr(self._local, "depth", 0)
        if depth:
            self._local.depth = depth + 1
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ConductorError(f"the lock file {self.path} is a symbolic link",
                                     hint="remove it; the tool never creates links there") from None
            raise ConductorError(f"cannot open the lock file {self.path}: {exc.strerror}") from None
        deadline = time.monotonic() + timeout
        pause = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise _Timeout from None
                time.sleep(pause)
                pause = min(pause * 2, 0.02)
        self._local.fd, self._local.depth = fd, 1

    def release(self) -> None:
        import fcntl

        self._local.depth -= 1
        if self._local.depth == 0:
            fd = self._local.fd
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


_LOCKS: dict[str, _FlockLock] = {}
_LOCKS_GUARD = threading.Lock()


@contextlib.contextmanager
def workspace_lock(workspace_dir: Path, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the workspace's write lock: exclusive between processes and threads,
    re-entrant within a thread (nested acquisitions are counted)."""
    path = str(lock_path_for(workspace_dir))
    with _LOCKS_GUARD:
        lock = _LOCKS.setdefault(path, _FlockLock(path))
    try:
        lock.acquire(timeout=timeout)
    except _Timeout as exc:
        raise ConductorError(
            f"another process has held the workspace lock for over {timeout:.0f} s",
            path=workspace_dir,
            hint="wait for the other kernel or command to finish, then retry",
        ) from exc
    try:
        yield
    finally:
        lock.release()


# -- checked writes ---------------------------------------------------------------------------

def read_with_identity(path: Path) -> tuple[bytes, FileIdentity]:
    """A file's bytes (through links) and the identity of exactly that version, for a later
    :func:`write_checked` (raises FileNotFoundError like ``read_bytes``)."""
    for _attempt in range(WRITE_ATTEMPTS):
        with open(path, "rb") as handle:
            st = os.fstat(handle.fileno())
            data = handle.read()
            after = os.fstat(handle.fileno())
        # a writer changing the file in place while it was read: read it again
        if st.st_size == after.st_size == len(data) and st.st_mtime_ns == after.st_mtime_ns:
            return data, FileIdentity(st.st_ino, st.st_size, st.st_mtime_ns)
    return data, FileIdentity(after.st_ino, after.st_size, after.st_mtime_ns)


def write_error(path: Path, exc: OSError) -> ConductorError:
    """The one-line error for a write the system refused."""
    reason = ("permission denied" if isinstance(exc, PermissionError)
              else (exc.strerror or str(exc)).lower())
    return ConductorError(f"cannot write {Path(path).name}: {reason}; nothing was changed",
                          path=path, hint="make the file and its folder writable "
                                          "(chmod u+w, chattr -i), then retry")


def check_writable(paths: list[Path]) -> None:
    """Refuse, before anything is written, when one of ``paths`` (through links) or its
    folder cannot be written: a read-only or immutable file is the user's "do not touch"."""
    for path in paths:
        target = resolve_link(Path(path))
        if target.exists() and not os.access(target, os.W_OK):
            raise write_error(path, PermissionError(errno.EACCES, "permission denied"))
        folder = target.parent
        if folder.exists() and not os.access(folder, os.W_OK | os.X_OK):
            raise write_error(path, PermissionError(errno.EACCES, "permission denied"))


def write_checked(path: Path, data: bytes, expect: FileIdentity | None, *,
                  check: bool = True) -> None:
    """Write ``data`` atomically (through links) if the file is still the version
    ``expect`` names (None: it must not exist); raises :class:`FileChanged` when it is not,
    and a one-line :class:`ConductorError` when the system refuses the write."""
    check_writable([path])
    try:
        atomic_write_bytes(path, data, expect=expect, check_identity=check)
    except OSError as exc:
        raise write_error(path, exc) from None


def edit_file(path: Path, edit: Callable[[bytes | None], bytes | None]) -> bytes | None:
    """Read ``path`` (None when missing), apply ``edit`` and write the result, re-reading and
    re-applying when another writer replaced the file meanwhile. ``edit`` returns the new
    bytes, or None to leave the file as it is. Returns what was written (None: nothing)."""
    for _attempt in range(WRITE_ATTEMPTS):
        try:
            data, identity = read_with_identity(path)
        except FileNotFoundError:
            data, identity = None, None
        new = edit(data)
        if new is None or new == data:
            return None
        try:
            write_checked(path, new, identity)
        except FileChanged:
            retry_pause()
            continue
        return new
    raise kept_changing(path)


def append_json_record(path: Path, record: dict[str, Any],
                       parse: Callable[[bytes, Path], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Append ``record`` to the JSON list in ``path`` (created when missing) through
    :func:`edit_file`; ``parse`` reads the existing bytes into records (raising on bad input,
    so a malformed log is never overwritten). Returns every record now in the file."""
    records: list[dict[str, Any]] = []

    def append(raw: bytes | None) -> bytes:
        nonlocal records
        records = [*(parse(raw, path) if raw is not None else []), record]
        return (json.dumps(records, indent=2, ensure_ascii=False) + "\n").encode("utf-8")

    edit_file(path, append)
    return records


def kept_changing(path: Path) -> ConductorError:
    """The error for an edit that found the file changed on every attempt."""
    return ConductorError(f"{Path(path).name} kept changing while it was written "
                          f"({WRITE_ATTEMPTS} attempts); nothing was changed", path=path,
                          hint="stop the program rewriting it, then retry")


@dataclass
class FileEdit:
    """New bytes for one file, computed from the version ``identity`` names (``old`` are
    that version's bytes, kept to undo the write when a later file of a set fails)."""

    path: Path
    data: bytes
    old: bytes | None
    identity: FileIdentity | None


def write_edits(compute: Callable[[], list[FileEdit]]) -> list[FileEdit]:
    """Write a set of edits (metadata.json and tracks.md of one status change) all or none.

    ``compute`` reads the files and returns the edits still needed; it is called again when
    another writer replaced one of the files meanwhile (an edit already written then computes
    to nothing). When the system refuses a write, the files written before it are put back
    and a one-line error is raised. Returns the edits written.
    """
    done: list[FileEdit] = []
    for _attempt in range(WRITE_ATTEMPTS):
        edits = compute()
        check_writable([e.path for e in edits])
        try:
            for edit in edits:
                write_checked(edit.path, edit.data, edit.identity)
                done.append(edit)
        except FileChanged:
            retry_pause()
            continue
        except ConductorError:
            undo_edits(done)
            raise
        return done
    undo_edits(done)
    raise kept_changing(edits[0].path if edits else Path("."))


def undo_edits(edits: list[FileEdit]) -> None:
    """Put back the bytes ``edits`` replaced, where nobody changed the file since (best
    effort: it runs on the way out of a failed write)."""
    for edit in reversed(edits):
        with contextlib.suppress(ConductorError, OSError):
            def restore(data: bytes | None, edit: FileEdit = edit) -> bytes | None:
                return edit.old if data == edit.data and edit.old is not None else None

            edit_file(edit.path, restore)


def ensure_gitignore(folder: Path, patterns: tuple[str, ...] | list[str]) -> bool:
    """Add the missing ``patterns`` to ``folder/.gitignore`` (created if needed).

    Returns whether the file changed; lines already there are kept as they are.
    """
    path = Path(folder) / ".gitignore"

    def add(data: bytes | None) -> bytes | None:
        existing = data.decode("utf-8", "surrogateescape").splitlines() if data is not None else []
        missing = [line for line in patterns if line not in existing]
        if not missing:
            return None
        return ("\n".join([*existing, *missing]) + "\n").encode("utf-8", "surrogateescape")

    return edit_file(path, add) is not None

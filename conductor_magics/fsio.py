"""File primitives every layer shares: the tool's temporary names and the atomic writer.

**One temporary-name pattern.** Everything the tool writes on its way to a final file
(atomic rewrites, backup artifacts being copied, database snapshots) is named

    .<final name>.conductor-tmp-<pid>-<8 hex>

in the final file's folder. ``lint`` reports such files when their process is gone,
``lint --fix`` and ``backup prune`` remove them, commits never stage them, and nothing
else is ever treated as the tool's own (a user's ``notes.tmp`` is left alone).

**Atomic writes.** :func:`atomic_write_bytes` writes a temporary file in the target's
folder, fsyncs it, renames it over the target and fsyncs the folder, so a killed process
leaves the old or the new file, never half of one. A symbolic link is written through
(its target is replaced, the link stays); an existing file keeps its mode, a new one gets
``0o666 & ~umask`` like any file the user creates.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

TEMP_MARK = "conductor-tmp"
TEMP_RE = re.compile(r"^\.(?P<name>.+)\.conductor-tmp-(?P<pid>\d+)-[0-9a-f]{8}$")
#: the pattern as users read it (README, lint messages, .gitignore)
TEMP_GLOB = ".*.conductor-tmp-*"


def temp_path_for(target: Path) -> Path:
    """A fresh temporary name beside ``target``, in the tool's one pattern."""
    target = Path(target)
    return target.with_name(f".{target.name}.{TEMP_MARK}-{os.getpid()}-{secrets.token_hex(4)}")


def is_tool_temp(name: str) -> bool:
    """Whether a file name (not a path) is one of the tool's temporary names."""
    return TEMP_RE.match(name) is not None


def temp_final_name(name: str) -> str | None:
    """The final file a temporary name was written for, or None for other names."""
    match = TEMP_RE.match(name)
    return match["name"] if match else None


def temp_owner_alive(name: str) -> bool:
    """Whether the process that created temporary file ``name`` still runs (False for
    names that are not the tool's)."""
    match = TEMP_RE.match(name)
    return bool(match) and pid_alive(int(match["pid"]))


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return False
    return True


def stale_temp_files(folder: Path) -> list[Path]:
    """The tool's temporary files in ``folder`` whose process is gone (sorted)."""
    try:
        entries = sorted(Path(folder).iterdir())
    except OSError:
        return []
    return [entry for entry in entries
            if is_tool_temp(entry.name) and not temp_owner_alive(entry.name)]


def new_file_mode() -> int:
    """The mode a new file gets under the process's umask (``0o666 & ~umask``)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def resolve_link(path: Path) -> Path:
    """The file a write to ``path`` must replace: the final target of a symbolic link
    (relative links resolved against their folder), else ``path`` itself."""
    path = Path(path)
    seen = 0
    while path.is_symlink() and seen < 40:
        link = Path(os.readlink(path))
        path = link if link.is_absolute() else path.parent / link
        seen += 1
    return path


@dataclass(frozen=True)
class FileIdentity:
    """What tells one version of a file from another without reading it."""

    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> FileIdentity | None:
        """The identity of ``path`` (through links), or None when it does not exist."""
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        return cls(st.st_ino, st.st_size, st.st_mtime_ns)


class FileChanged(Exception):
    """The target changed on disk after it was read (raised by :func:`atomic_write_bytes`
    when ``expect`` no longer matches); the caller re-reads and re-applies its edit."""


def atomic_write_bytes(path: Path, data: bytes, *, expect: FileIdentity | None = None,
                       check_identity: bool = False) -> None:
    """Replace ``path`` (or, for a symbolic link, its target) with ``data`` atomically.

    With ``check_identity`` the target's identity is compared with ``expect`` (None: the
    file must not exist) right before the rename; :class:`FileChanged` is raised and
    nothing is written when another writer (an editor's save) replaced it meanwhile.
    """
    target = resolve_link(Path(path))
    folder = target.parent
    try:
        mode = os.stat(target).st_mode & 0o7777
    except FileNotFoundError:
        mode = new_file_mode()
    tmp = temp_path_for(target)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        if check_identity and FileIdentity.of(target) != expect:
            raise FileChanged(str(target))
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(folder)


def atomic_write_text(path: Path, text: str, encoding: str = "utf-8") -> None:
    """:func:`atomic_write_bytes` for text (newlines written as given)."""
    atomic_write_bytes(path, text.encode(encoding))


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort where folders cannot be opened)."""
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

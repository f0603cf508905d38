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
import ctypes
import errno
import functools
import math
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConductorError

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
                       check_identity: bool = False, durable: bool = True) -> None:
    """Replace ``path`` (or, for a symbolic link, its target) with ``data`` atomically.

    With ``check_identity`` the target's identity is compared with ``expect`` (None: the
    file must not exist) right before the rename, and again atomically with it where the
    system can exchange files; :class:`FileChanged` is raised and nothing is written when
    another writer (an editor's save) replaced it meanwhile.
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
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        if check_identity and FileIdentity.of(target) != expect:
            raise FileChanged(str(target))
        if not (check_identity and expect is not None and _replace_checked(tmp, target, expect)):
            os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(folder)


def _replace_checked(tmp: Path, target: Path, expect: FileIdentity) -> bool:
    """Put ``tmp`` in place of ``target`` only if ``target`` is still ``expect``, with no
    window between the check and the swap: the two files are exchanged atomically
    (Linux ``renameat2(RENAME_EXCHANGE)``) and the version swapped out is checked; an
    editor's save that landed meanwhile is swapped back and :class:`FileChanged` raised.
    Returns False where exchanging is not supported (the caller then renames, leaving a
    window of microseconds between its check and the rename)."""
    ours = FileIdentity.of(tmp)
    try:
        if not _exchange(tmp, target):
            return False
    except FileNotFoundError:
        raise FileChanged(str(target)) from None
    # ``tmp`` now names what was at ``target`` the instant ours went in
    if FileIdentity.of(tmp) == expect:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        return True
    if FileIdentity.of(target) == ours:
        _exchange(tmp, target)  # give the other writer's version its place back
    raise FileChanged(str(target))


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_NOT_SUPPORTED = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, getattr(errno, "ENOTSUP", -1)}


@functools.cache
def _renameat2():
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap the files at ``a`` and ``b``; False where the system cannot."""
    function = _renameat2()
    if function is None:
        return False
    if function(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in _NOT_SUPPORTED:
        return False
    raise OSError(err, os.strerror(err), str(b))


def atomic_write_text(path: Path, text: str, encoding: str = "utf-8") -> None:
    """:func:`atomic_write_bytes` for text (newlines written as given)."""
    atomic_write_bytes(path, text.encode(encoding))


def decode_utf8(data: bytes, name: Path | str) -> str:
    """``data`` as UTF-8 text (a leading BOM dropped); bytes that are not UTF-8 raise a
    one-line error naming the file, the line and the byte offset (never a traceback)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConductorError(f"not valid UTF-8 (byte {exc.start})", path=name, line=line,
                             hint="save the file as UTF-8") from None


def read_utf8(path: Path | str) -> str:
    """A user's text file (SQL, a cell body) read strictly: see :func:`decode_utf8`."""
    return decode_utf8(Path(path).read_bytes(), path)


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


def json_safe(value: Any) -> Any:
    """``value`` as JSON can hold it: dicts and lists walked, NaN and infinities as null,
    anything that is not a JSON scalar as its ``str``."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)

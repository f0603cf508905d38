"""Helpers several test modules share (not fixtures): hand-written revisions and a watcher
of the PostgreSQL tools' command lines."""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

from conductor_magics.engine.migrations import Migrations


def hand_written(migrations: Migrations, message: str, upgrade: str, downgrade: str = "pass"):
    """An empty revision whose upgrade()/downgrade() bodies are replaced by the given code."""
    info = migrations.new(message, None, empty=True)
    source = info.path.read_text(encoding="utf-8")
    indent = lambda body: "\n".join("    " + line for line in body.strip().splitlines())  # noqa: E731
    source = re.sub(r'(def upgrade\(\) -> None:\n    """[^\n]*"""\n)    pass',
                    lambda m: m.group(1) + indent(upgrade), source)
    source = re.sub(r'(def downgrade\(\) -> None:\n    """[^\n]*"""\n)    pass',
                    lambda m: m.group(1) + indent(downgrade), source)
    assert upgrade.strip().splitlines()[0] in source
    info.path.write_text(source, encoding="utf-8")
    return info


def _descends_from(pid: int, ancestor: int) -> bool:
    """Whether ``ancestor`` started ``pid`` (directly or through a few processes)."""
    for _ in range(8):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        if pid == ancestor:
            return True
        if pid <= 1:
            return False
    return False


class PgToolWatcher:
    """Every distinct pg_dump / pg_restore command line seen while the block runs (what `ps`
    shows), in ``seen``: of this process's children only, not another test worker's."""

    def __init__(self):
        self.seen: list[str] = []
        self._me = os.getpid()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch)

    def _watch(self) -> None:
        while not self._stop.is_set():
            for proc in Path("/proc").iterdir():
                if not proc.name.isdigit():
                    continue
                try:
                    argv = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    continue
                if ("pg_dump" in argv or "pg_restore" in argv) and argv not in self.seen \
                        and _descends_from(int(proc.name), self._me):
                    self.seen.append(argv)
            time.sleep(0.001)

    def __enter__(self) -> PgToolWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

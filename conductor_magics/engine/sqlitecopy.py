"""The one SQLite online-backup copy: backups and restores (:mod:`.backup`) and the
advisor's scratch copy (:mod:`.advisor`) all copy a database's pages through here."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

#: restarts of a stepwise copy before it falls back to one step
MAX_RESTARTS = 3


class _Restarting(Exception):
    """The stepwise page copy keeps restarting because other connections write."""


def online_copy(source: sqlite3.Connection, dest: sqlite3.Connection,
                progress: Callable[[int, int], None] | None = None) -> None:
    """Copy every page of ``source`` into ``dest`` with SQLite's online backup API.

    Without ``progress``: one step (fastest; a read transaction on the source for the
    whole copy). With ``progress(done_pages, total_pages)``: steps of up to 64 MiB, so a
    bar can move. A write by another connection makes SQLite restart a stepwise copy from
    the first page; after a few restarts the copy is done in one step instead, so a busy
    database still gets copied.
    """
    if progress is None:
        source.backup(dest)
        return
    total = source.execute("PRAGMA page_count").fetchone()[0]
    state = {"done": 0, "restarts": 0}

    def moved(_status: int, remaining: int, pages: int) -> None:
        done = pages - remaining
        if done < state["done"]:
            state["restarts"] += 1
            if state["restarts"] >= MAX_RESTARTS:
                raise _Restarting
        state["done"] = done
        progress(done, pages)

    try:
        source.backup(dest, pages=min(max(total // 200, 64), 16384), progress=moved)
    except _Restarting:
        source.backup(dest)
    progress(total, total)


__all__ = ["MAX_RESTARTS", "online_copy"]

"""SQLite hypothetical indexes, and the scratch copy that measures the final set.

What-if (what SQLite's ``.expert`` does): an in-memory database with the live schema and
no rows, where an index costs nothing to create. ``sqlite_stat1`` there holds, for every
table and index (existing or hypothetical), the live row count and the average number of
rows per distinct value of each index prefix, estimated from a random sample of the live
rows (:class:`Sampler`), so ``EXPLAIN QUERY PLAN`` shows the plan the planner would choose
on the real data. :meth:`WhatIf.estimate` turns such a plan into an estimated number of
rows touched, which ranks plans; the final set is measured (:class:`ScratchCopy`).

Nothing here writes to the live database: it is only read (its schema, row counts and the
sample), and every copy is in memory or a temporary file removed when the block ends.
"""

from __future__ import annotations

import math
import os
import random
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import suppress
from typing import Any

from ..errors import DatabaseError
from .explain import Plan, read_sqlite
from .sqlitecopy import online_copy
from .stats import calibrate_loops
from .timeouts import statement_timeout

#: rows sampled per table (the whole table when it is smaller)
SAMPLE_ROWS = 10_000
#: bytes an index entry costs besides its key columns (rowid, cell header and pointer)
ENTRY_OVERHEAD = 12
#: b-tree pages are not full: an index's estimated size is its entries' bytes × this
PAGE_FILL = 1.2
#: a range bound (``a > ?``) keeps this fraction of the rows, as SQLite's planner assumes
RANGE_FRACTION = 0.25
#: SQLite databases larger than this are copied to a temporary file instead of memory
IN_MEMORY_LIMIT = 512 * 1024 * 1024
#: scratch-copy timing: each sample lasts at least this long; the cost is the median of
#: SAMPLES samples (fewer for slow queries)
SAMPLE_SECONDS = 0.02
SAMPLES = 5
#: the scratch copy (in memory, no other client) needs less: samples this long, this many
COPY_SAMPLE_SECONDS = 0.01
COPY_SAMPLES = 3
#: a query this slow is timed once (in memory its noise is small next to its time)
SLOW_SECONDS = 0.05
#: temporary files of the scratch copy start with this
TEMP_PREFIX = "conductor-advise-"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Sampler:
    """Row counts and random samples of live tables, kept in a private in-memory
    database; per-prefix statistics computed from them."""

    def __init__(self, live: sqlite3.Connection, seed: int = 0, rows: int = SAMPLE_ROWS):
        self.live = live
        self.rows = rows
        self.random = random.Random(seed)
        self.db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self.tables: dict[str, tuple[int, int, str]] = {}  # table → (live rows, sampled, sample name)
        self._prefix: dict[tuple[str, tuple[str, ...]], list[int]] = {}
        self._width: dict[tuple[str, str], float] = {}

    def close(self) -> None:
        with suppress(Exception):
            self.db.close()

    def table(self, name: str) -> tuple[int, int, str] | None:
        """(live rows, sampled rows, the sample's table name), sampling on first use; None
        when the live database has no such table."""
        key = name.lower()
        if key in self.tables:
            return self.tables[key]
        try:
            with statement_timeout(self.live, what=f"sampling {name}"):
                total = self.live.execute(f"SELECT count(*) FROM {_quote(name)}").fetchone()[0]
                cursor = self.live.execute(f"SELECT * FROM {_quote(name)} LIMIT 0")
                columns = [d[0] for d in cursor.description]
                rows = self._sample(name, total)
        except sqlite3.Error:
            return None
        sample = f"s{len(self.tables)}"
        self.db.execute(f"CREATE TABLE {sample} ({', '.join(_quote(c) for c in columns)})")
        if rows:
            marks = ", ".join("?" * len(columns))
            self.db.executemany(f"INSERT INTO {sample} VALUES ({marks})", rows)
        self.tables[key] = (int(total), len(rows), sample)
        return self.tables[key]

    def _sample(self, name: str, total: int) -> list[tuple]:
        table = _quote(name)
        if total <= self.rows:
            return self.live.execute(f"SELECT * FROM {table}").fetchall()
        try:
            low, high = self.live.execute(f"SELECT min(rowid), max(rowid) FROM {table}").fetchone()
        except sqlite3.Error:  # WITHOUT ROWID: one pass keeping about every k-th row
            step = max(total // self.rows, 1)
            return self.live.execute(f"SELECT * FROM {table} WHERE abs(random()) % {step} = 0 "
                                     f"LIMIT {self.rows}").fetchall()
        span = high - low + 1
        # draw rowids (more than needed: rowids may have gaps); fetch them in chunks
        wanted = sorted(self.random.sample(range(low, high + 1), min(span, int(self.rows * 1.25))))
        found: list[tuple] = []
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            found += self.live.execute(f"SELECT * FROM {table} WHERE rowid IN "
                                       f"({', '.join('?' * len(chunk))})", chunk).fetchall()
            if len(found) >= self.rows:
                break
        return found[:self.rows]

    def prefix_stats(self, table: str, columns: Sequence[str]) -> list[int]:
        """For each prefix of ``columns``: the average number of live rows per distinct
        prefix value (what ``sqlite_stat1``'s "N a b c" holds after N), estimated from the
        sample with the GEE estimator of distinct values (singletons scaled by √(N/n))."""
        known = self.table(table)
        if known is None:
            return []
        total, sampled, sample = known
        stats: list[int] = []
        for width in range(1, len(columns) + 1):
            key = (table.lower(), tuple(c.lower() for c in columns[:width]))
            if key not in self._prefix:
                if not sampled:
                    self._prefix[key] = [1]
                else:
                    group = ", ".join(_quote(c) for c in columns[:width])
                    try:
                        distinct, singles = self.db.execute(
                            f"SELECT count(*), sum(n = 1) FROM (SELECT count(*) AS n FROM {sample} "
                            f"GROUP BY {group})").fetchone()
                    except sqlite3.Error:  # a column the sample does not have (hidden, generated)
                        return stats
                    estimate = distinct + (singles or 0) * (math.sqrt(total / sampled) - 1)
                    estimate = min(max(estimate, 1.0), float(max(total, 1)))
                    self._prefix[key] = [max(1, round(total / estimate))]
            stats += self._prefix[key]
        return stats

    def selectivity(self, table: str, column: str) -> float:
        """The fraction of rows one equality on ``column`` keeps (1.0 when unknown)."""
        known = self.table(table)
        stats = self.prefix_stats(table, [column])
        if not known or not stats or not known[0]:
            return 1.0
        return min(1.0, stats[0] / known[0])

    def width(self, table: str, column: str) -> float:
        """The average stored size of ``column`` in bytes, from the sample."""
        key = (table.lower(), column.lower())
        if key not in self._width:
            known = self.table(table)
            value = 8.0
            if known and known[1]:
                with suppress(sqlite3.Error):
                    found = self.db.execute(
                        f"SELECT avg(CASE WHEN typeof({_quote(column)}) IN ('integer', 'real') THEN 8 "
                        f"ELSE length(CAST({_quote(column)} AS BLOB)) END) FROM {known[2]}").fetchone()[0]
                    value = float(found) if found is not None else 1.0
            self._width[key] = value
        return self._width[key]

    def index_bytes(self, table: str, columns: Iterable[str]) -> int:
        """An estimate of an index's size: live rows × (key bytes + entry overhead)."""
        known = self.table(table)
        rows = known[0] if known else 0
        key = sum(self.width(table, c) for c in columns)
        return int(rows * (key + ENTRY_OVERHEAD) * PAGE_FILL)


class WhatIf:
    """The live schema without rows, in memory, with sampled ``sqlite_stat1`` rows;
    hypothetical indexes are created and dropped here freely."""

    def __init__(self, live: sqlite3.Connection, sampler: Sampler, tables: Iterable[str]):
        self.sampler = sampler
        self.db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        entries = live.execute("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL "
                               "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'").fetchall()
        order = {"table": 0, "index": 1, "view": 2}
        for kind, _name, _table, sql in sorted(entries, key=lambda e: order.get(e[0], 3)):
            if kind in order:
                with suppress(sqlite3.Error):  # a virtual table's module missing here, say
                    self.db.execute(sql)
        self.db.execute("ANALYZE")  # creates sqlite_stat1 (the tables are empty: no rows in it)
        self.stats: dict[tuple[str, str | None], str] = {}
        self.index_stats: dict[str, list[int]] = {}
        self.index_table: dict[str, str] = {}
        wanted = {t.lower() for t in tables}
        for (table,) in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                        "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'").fetchall():
            if table.lower() not in wanted:
                continue
            known = sampler.table(table)
            if known is None:
                continue
            self.stats[(table, None)] = str(known[0])
            for (index,) in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'index' "
                                            "AND tbl_name = ?", (table,)).fetchall():
                columns = []
                for row in self.db.execute(f"PRAGMA index_info({_quote(index)})").fetchall():
                    if row[2] is None:  # an expression: the prefix statistics stop here
                        break
                    columns.append(row[2])
                self._stat(table, index, columns)
        self._reload()

    def close(self) -> None:
        with suppress(Exception):
            self.db.close()

    def _stat(self, table: str, index: str, columns: Sequence[str]) -> None:
        known = self.sampler.table(table)
        if known is None:
            return
        per_prefix = self.sampler.prefix_stats(table, columns)
        self.index_stats[index.lower()] = per_prefix
        self.index_table[index.lower()] = table
        self.stats[(table, index)] = " ".join(str(v) for v in [known[0], *per_prefix])

    def _reload(self) -> None:
        self.db.execute("DELETE FROM sqlite_stat1")
        self.db.executemany("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?, ?, ?)",
                            [(t, i, s) for (t, i), s in self.stats.items()])
        self.db.execute("ANALYZE sqlite_schema")  # the planner reads sqlite_stat1 again

    def create(self, indexes: Mapping[str, tuple[str, str, Sequence[str]]]) -> dict[str, str]:
        """Create hypothetical indexes ``{name: (ddl, table, columns)}``; returns the names
        that could not be created with SQLite's reason."""
        failed = {}
        for name, (ddl, table, columns) in indexes.items():
            try:
                self.db.execute(ddl)
            except sqlite3.Error as exc:
                failed[name] = str(exc)
                continue
            self._stat(table, name, columns)
        self._reload()
        return failed

    def drop(self, names: Iterable[str]) -> None:
        for name in names:
            self.db.execute(f"DROP INDEX IF EXISTS {_quote(name)}")
            for key in [k for k in self.stats if k[1] is not None and k[1].lower() == name.lower()]:
                del self.stats[key]
        self._reload()

    def plan(self, sql: str, params: Any, aliases: Mapping[str, str] | None = None) -> Plan:
        # EXPLAIN QUERY PLAN reports the plan made when the statement was prepared: the
        # schema version in a comment makes a statement cached before the last change a new one
        version = self.db.execute("PRAGMA schema_version").fetchone()[0]
        rows = self.db.execute(f"/* schema {version} */ EXPLAIN QUERY PLAN {sql}", params).fetchall()
        known = [r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")]
        return read_sqlite(rows, known, aliases)

    def estimate(self, plan: Plan, aliases: Mapping[str, str],
                 filters: Mapping[str, tuple[Sequence[str], Sequence[str]]]) -> float:
        """Rows the plan touches, estimated: each table access costs its rows (a search:
        log N plus the rows its equality prefix leaves, a quarter for a range; a full
        scan: N), times the rows produced by the accesses before it (nested loops);
        residual filters (``filters``: alias → (equality columns, range columns)) narrow
        what an access passes on; a temporary b-tree costs r·log r."""
        total = 0.0
        produced: dict[int, float] = {}
        for step in plan.steps:
            loops = produced.get(step.parent, 1.0)
            if step.op == "SORT":
                total += loops * math.log2(loops + 2)
                continue
            if step.op not in ("SCAN", "SEARCH") or step.name is None:
                continue
            table = aliases.get(step.name.lower(), step.name)
            known = self.sampler.table(table)
            n = float(max(known[0] if known else 1000, 1))
            bound = [c.lower() for c, _ in step.constraint]
            equal = 0
            for _c, op in step.constraint:
                if op != "=":
                    break
                equal += 1
            ranged = any(op != "=" for _, op in step.constraint)
            if "rowid" in bound[:equal]:  # the rowid pins one row, whatever else the index adds
                rows, cost = 1.0, math.log2(n + 1)
            elif step.op == "SEARCH" and step.primary_key:
                rows = 1.0 if not ranged else n * RANGE_FRACTION
                cost = math.log2(n + 1) + rows
            elif step.op == "SEARCH":
                stats = self.index_stats.get((step.index or "").lower(), [])
                rows = float(stats[equal - 1]) if equal and len(stats) >= equal else n if not equal \
                    else max(1.0, n / 10)
                if ranged:
                    rows = max(1.0, rows * RANGE_FRACTION)
                cost = math.log2(n + 1) + rows * (1 if step.covering else 2)
                if step.index is None:  # an automatic index: built for this statement
                    cost += n
            else:
                rows = n
                cost = n if step.index is None or step.covering else 2 * n
            equalities, ranges = filters.get(step.name.lower(), ((), ()))
            for column in equalities:
                if column.lower() not in bound:
                    rows *= self.sampler.selectivity(table, column)
            for column in ranges:
                if column.lower() not in bound:
                    rows *= RANGE_FRACTION
            total += loops * cost
            produced[step.parent] = loops * max(rows, 1.0)
        return total


class ScratchCopy:
    """A full copy of the live database (memory, or a temporary file when large), with
    ``ANALYZE`` run, where real indexes are built and queries are timed."""

    def __init__(self, live: sqlite3.Connection):
        self.tempfile: str | None = None
        self.db: sqlite3.Connection | None = None
        try:
            page_size, pages = (live.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_size", "page_count"))
            target = ":memory:"
            if page_size * pages > IN_MEMORY_LIMIT:
                handle, self.tempfile = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".sqlite")
                os.close(handle)
                target = self.tempfile
            self.db = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
            online_copy(live, self.db)
            # full statistics, as the user's ANALYZE gives: with analysis_limit = 2000 a
            # 1.8 M-row table's index read as 2,000 rows a key and the planner chose plans
            # (TPC-H q19: 0.7 s → 1.9 s) it does not choose on the real statistics
            self.db.execute("ANALYZE")
            # index builds sort on worker threads too (on two cores: up to a fifth faster
            # in some runs, no difference in others; never slower beyond the noise)
            self.db.execute(f"PRAGMA threads = {min(4, os.cpu_count() or 1)}")
        except sqlite3.Error as exc:
            self.close()
            raise DatabaseError(f"cannot copy the SQLite database for the advisor: {exc}",
                                hint="check the database file is readable") from None
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self.db is not None:
            with suppress(Exception):
                self.db.close()
        if self.tempfile:
            for suffix in ("", "-journal", "-wal", "-shm"):
                with suppress(OSError):
                    os.remove(self.tempfile + suffix)

    def plan(self, sql: str, params: Any, aliases: Mapping[str, str] | None = None) -> Plan:
        version = self.db.execute("PRAGMA schema_version").fetchone()[0]
        rows = self.db.execute(f"/* schema {version} */ EXPLAIN QUERY PLAN {sql}", params).fetchall()
        known = [r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")]
        return read_sqlite(rows, known, aliases)

    def time(self, name: str, sql: str, params: Any, cap: float | None = None) -> tuple[float, bool]:
        """Milliseconds per execution (the median of calibrated loops), and whether it is
        only a lower bound: with ``cap`` (seconds) a first execution still running then is
        stopped and its elapsed time returned (the comparison is decided by then)."""
        cursor = self.db.cursor()
        stopped = threading.Event()

        def run(loops: int) -> float | None:
            with statement_timeout(self.db, what=f"query {name}"):
                started = time.perf_counter()
                try:
                    for _ in range(loops):
                        cursor.execute(sql, params).fetchall()
                except sqlite3.OperationalError:
                    if not stopped.is_set():  # our cap did not stop it: a real failure
                        raise
                    return None
                return time.perf_counter() - started

        # the first execution also fills the statement cache; with a cap, a timer stops it
        # (started before the timer: a stopped run then reads at least the cap)
        timer = None
        started = time.perf_counter()
        if cap is not None:
            timer = threading.Timer(cap, lambda: (stopped.set(), self.db.interrupt()))
            timer.start()
        try:
            first = run(1)
        finally:
            if timer is not None:
                timer.cancel()
        if first is None:
            return (time.perf_counter() - started) * 1000, True
        if first >= SLOW_SECONDS:
            # slow queries (big tables, no index yet): in memory their noise is small next
            # to their time, and the first run warmed nothing a second would not
            return first * 1000, False
        loops = 1 if first >= COPY_SAMPLE_SECONDS else calibrate_loops(run, COPY_SAMPLE_SECONDS,
                                                                       max_loops=100_000)
        samples = COPY_SAMPLES if first < COPY_SAMPLE_SECONDS else 2
        return statistics.median(run(loops) / loops for _ in range(samples)) * 1000, False

    def build(self, ddl: str, name: str) -> str | None:
        """Build one index and its statistics; None, or SQLite's reason it failed."""
        try:
            self.db.execute(ddl)
            self.db.execute(f"ANALYZE {_quote(name)}")
        except sqlite3.Error as exc:
            self.db.execute(f"DROP INDEX IF EXISTS {_quote(name)}")
            return str(exc)
        return None

    def drop(self, name: str) -> None:
        self.db.execute(f"DROP INDEX IF EXISTS {_quote(name)}")

    def size(self, name: str) -> int | None:
        """The index's bytes on disk (None without SQLite's dbstat table)."""
        try:
            found = self.db.execute("SELECT sum(pgsize) FROM dbstat WHERE name = ?", (name,)).fetchone()
            return int(found[0]) if found and found[0] is not None else None
        except sqlite3.Error:
            return None


__all__ = ["ENTRY_OVERHEAD", "IN_MEMORY_LIMIT", "SAMPLE_ROWS", "Sampler", "ScratchCopy", "WhatIf"]

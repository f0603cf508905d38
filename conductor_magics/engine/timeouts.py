"""Statement timeouts: every statement a step runs on the user's behalf ends within a bound.

:func:`statement_timeout` wraps a step (an Engine, a Connection, or a raw sqlite3
connection such as the advisor's scratch copy). Each statement may run ``seconds``
(default :data:`DEFAULT_SECONDS`, ``$CONDUCTOR_STATEMENT_TIMEOUT``, 0 = no limit); one
that runs longer is stopped, its transaction rolls back, and the step raises
:class:`StatementTimeout` (one line, exit 1).

How, per dialect:

- **PostgreSQL**: the server's own ``statement_timeout``, set on each connection the step
  checks out (session level, committed before the step's transactions begin, restored
  when the connection goes back to the pool). The server stops the statement even when
  the client is gone (SIGKILL). A Ctrl-C / kernel interrupt is turned by psycopg 3 into
  a cancel request (``connection.wait`` → ``cancel``), so the server stops then too.
- **SQLite**: a progress handler, called every :data:`PROGRESS_STEPS` VM instructions,
  aborts the statement once its deadline has passed. It is also the only Python code that
  runs while ``sqlite3_step`` does, so a SIGINT arriving meanwhile aborts the statement
  there; the step then raises KeyboardInterrupt.
- **DuckDB**: a watchdog thread calls ``connection.interrupt()`` once the deadline has
  passed. DuckDB's Python client does not look at signals while a query runs, so Ctrl-C
  does not stop a DuckDB statement (the timeout does).
- Other dialects: not enforced.

The deadline restarts at every statement SQLAlchemy runs and at every transaction begin
(so a benchmark's raw-cursor sample, which runs in its own rolled-back transaction, gets
the bound per sample).
"""

from __future__ import annotations

import contextvars
import functools
import math
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

from sqlalchemy import Connection, Engine, event

from ..errors import ConductorError, DatabaseError, option
from .connection import error_causes

#: seconds a statement may run when nothing else is configured
DEFAULT_SECONDS = 300.0
#: environment variable that sets the default (seconds; 0 = no limit)
TIMEOUT_ENV = "CONDUCTOR_STATEMENT_TIMEOUT"
#: SQLite VM instructions between deadline checks (~0.1-1 ms of work: negligible overhead)
PROGRESS_STEPS = 10_000
#: how often the DuckDB watchdog looks at the deadline
WATCH_INTERVAL = 0.05

_ACTIVE: contextvars.ContextVar[_Guard | None] = contextvars.ContextVar("conductor_timeout",
                                                                         default=None)


class StatementTimeout(DatabaseError):
    """A statement ran longer than the timeout and was stopped; its transaction rolled back."""


def parse_seconds(value: Any, source: str = option("timeout")) -> float:
    """``value`` as a number of seconds (0 = no limit); ConductorError when it is not one."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise ConductorError(f"{source} takes a number of seconds (0 = no limit), got {value!r}",
                             hint=f"e.g. {option('timeout', '60')}")
    return seconds


def resolve_timeout(seconds: float | str | None = None) -> float:
    """The timeout to use: ``seconds`` when given, else ``$CONDUCTOR_STATEMENT_TIMEOUT``, else
    :data:`DEFAULT_SECONDS`; 0 means no limit."""
    if seconds is not None:
        return parse_seconds(seconds)
    env = os.environ.get(TIMEOUT_ENV, "").strip()
    return parse_seconds(env, TIMEOUT_ENV) if env else DEFAULT_SECONDS


def _shorten(text: str, limit: int = 60) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


class _Guard:
    """The timeout state of one step: its bound, the current deadline, what is running,
    and whether the bound (or a Ctrl-C) stopped a statement."""

    def __init__(self, seconds: float, what: str | None):
        self.seconds = seconds
        self.what = what
        self.statement: str | None = None
        self.timed_out = False
        self.deadline = math.inf
        self.running = False
        self.url: Any = None
        self._engines: dict[Engine, list] = {}
        self._saved: dict[int, str] = {}  # PostgreSQL: id(dbapi connection) → previous setting
        self._duckdb: dict[int, Any] = {}  # DuckDB connections the watchdog may interrupt
        self._stop: threading.Event | None = None

    # -- the deadline ------------------------------------------------------------------

    def restart(self, statement: str | None = None) -> None:
        """A statement (or a transaction) starts now: it gets the full bound."""
        self.deadline = time.monotonic() + self.seconds if self.seconds else math.inf
        if statement is not None:  # the watchdog interrupts statements, not idle connections
            self.statement = statement
            self.running = True

    def _progress(self) -> int:
        # A SIGINT handled on entry to this function escapes it, which also aborts the
        # statement: translate() then tells it from a timeout by `timed_out`.
        try:
            if time.monotonic() > self.deadline:
                self.timed_out = True
                return 1
            return 0
        except KeyboardInterrupt:
            return 1

    # -- per-dialect set-up of one DBAPI connection ---------------------------------------

    @property
    def milliseconds(self) -> int:
        return max(1, round(self.seconds * 1000))

    def attach(self, dbapi_connection: Any, dialect: str) -> None:
        """Bound statements on a DBAPI connection that is in no transaction (just checked
        out of the pool, or a raw sqlite3 connection)."""
        if dbapi_connection is None:
            return
        if dialect == "sqlite" and isinstance(dbapi_connection, sqlite3.Connection):
            # installed even without a limit: it is what lets a Ctrl-C stop the statement
            dbapi_connection.set_progress_handler(self._progress, PROGRESS_STEPS)
        elif dialect == "postgresql" and self.seconds:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("SELECT current_setting('statement_timeout')")
                saved = str(cursor.fetchone()[0])
                cursor.execute(f"SET statement_timeout = {self.milliseconds}")
            finally:
                cursor.close()
            # committed, so the step's own transactions (rolled back or not) keep it
            dbapi_connection.commit()
            self._saved[id(dbapi_connection)] = saved
        elif dialect == "duckdb" and self.seconds and hasattr(dbapi_connection, "interrupt"):
            self._duckdb[id(dbapi_connection)] = dbapi_connection
            self._start_watchdog()

    def detach(self, dbapi_connection: Any, dialect: str) -> None:
        if dbapi_connection is None:
            return
        if dialect == "sqlite" and isinstance(dbapi_connection, sqlite3.Connection):
            dbapi_connection.set_progress_handler(None, 0)
        elif dialect == "postgresql":
            saved = self._saved.pop(id(dbapi_connection), None)
            if saved is not None:
                cursor = dbapi_connection.cursor()
                try:
                    cursor.execute("SET statement_timeout = '{}'".format(saved.replace("'", "''")))
                finally:
                    cursor.close()
                dbapi_connection.commit()
        elif dialect == "duckdb":
            self._duckdb.pop(id(dbapi_connection), None)

    def _start_watchdog(self) -> None:
        if self._stop is not None:
            return
        self._stop = stop = threading.Event()

        def watch() -> None:
            while not stop.wait(WATCH_INTERVAL):
                if self.running and time.monotonic() > self.deadline:
                    self.timed_out = True
                    self.running = False
                    for connection in list(self._duckdb.values()):
                        try:
                            connection.interrupt()
                        except Exception:  # noqa: S112 - closed meanwhile: nothing to stop
                            continue

        threading.Thread(target=watch, name="conductor-timeout", daemon=True).start()

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()
            self._stop = None

    # -- SQLAlchemy events ------------------------------------------------------------

    def listen(self, engine: Engine) -> None:
        """Bound the connections ``engine`` checks out from now on, and restart the
        deadline at each statement and transaction begin on them."""
        dialect = engine.dialect.name

        def checkout(dbapi_connection, _record, _proxy) -> None:
            self.attach(dbapi_connection, dialect)

        def checkin(dbapi_connection, record) -> None:
            try:
                self.detach(dbapi_connection, dialect)
            except Exception as exc:  # broken: never hand it out again with our setting
                record.invalidate(exc)

        def before(_conn, _cursor, statement, _parameters, _context, _many) -> None:
            self.restart(statement)

        def after(*_args) -> None:
            self.running = False

        def begin(_conn) -> None:
            self.restart()

        listeners = [("checkout", checkout), ("checkin", checkin), ("before_cursor_execute", before),
                     ("after_cursor_execute", after), ("handle_error", after), ("begin", begin)]
        for name, function in listeners:
            event.listen(engine, name, function)
        self._engines[engine] = listeners

    def unlisten(self, engine: Engine) -> None:
        for name, function in self._engines.pop(engine):
            event.remove(engine, name, function)

    def covers(self, engine: Engine) -> bool:
        return engine in self._engines

    # -- what the step raises ---------------------------------------------------------

    def error(self) -> StatementTimeout:
        from .connection import first_line, scrub

        what = self.what or (_shorten(first_line(scrub(self.statement, self.url)))
                             if self.statement else "statement")
        return StatementTimeout(
            f"statement timed out after {self.seconds:g} s ({what})",
            hint=f"stopped and rolled back, nothing was changed; raise {option('timeout', 'SECONDS')} "
                 "(0 = no limit) or make it faster")

    def translate(self, exc: BaseException) -> BaseException | None:
        """What the step should raise instead of ``exc``: StatementTimeout when the bound
        stopped the statement, KeyboardInterrupt when a Ctrl-C did; None to keep ``exc``."""
        if isinstance(exc, StatementTimeout | KeyboardInterrupt) or not isinstance(exc, Exception):
            return None
        kind = _stopped_by(exc)
        if kind is None and self.timed_out and re.search(r"\binterrupted\b", str(exc), re.I):
            kind = "interrupted"  # a wrapper that dropped the driver's error but kept its text
        if kind == "server-timeout" or (kind == "interrupted" and self.timed_out):
            return self.error()
        if kind == "interrupted":
            return KeyboardInterrupt()
        return None


def _stopped_by(exc: BaseException) -> str | None:
    """"server-timeout" (PostgreSQL's statement_timeout), "interrupted" (SQLite's progress
    handler or DuckDB's interrupt), or None when ``exc`` is some other failure."""
    for item in error_causes(exc):
        sqlstate = getattr(item, "sqlstate", None) or getattr(item, "pgcode", None)
        if sqlstate == "57014":  # query_canceled: a timeout unless a user asked for it
            return None if "user request" in str(item) else "server-timeout"
        if isinstance(item, sqlite3.OperationalError) and str(item) == "interrupted":
            return "interrupted"
        if type(item).__name__ == "InterruptException":  # duckdb
            return "interrupted"
    if "canceling statement due to statement timeout" in str(exc):  # a wrapper that kept the text
        return "server-timeout"
    return None


@contextmanager
def statement_timeout(target: Engine | Connection | sqlite3.Connection,
                      seconds: float | str | None = None, what: str | None = None) -> Iterator[_Guard]:
    """Bound every statement run on ``target`` inside the block (see the module docstring).

    ``target`` is an Engine (connections checked out inside the block are bounded), a
    Connection (bounded from now on; on PostgreSQL inside its open transaction with
    ``SET LOCAL``), or a raw sqlite3 connection. ``seconds``: None resolves the default
    (:func:`resolve_timeout`), 0 = no limit. ``what`` names the work in the error ("query
    NAME"); otherwise the error quotes the statement. Nested blocks share the outermost
    bound. A statement the bound stopped raises :class:`StatementTimeout`; one a Ctrl-C
    stopped raises KeyboardInterrupt."""
    outer = _ACTIVE.get()
    engine = target.engine if isinstance(target, Connection) else target \
        if isinstance(target, Engine) else None
    if outer is not None:
        guard = outer
    else:
        guard = _Guard(resolve_timeout(seconds), what)
        guard.url = getattr(engine, "url", None)
    token = _ACTIVE.set(guard) if outer is None else None
    previous_what = guard.what
    if what is not None:
        guard.what = what
    listening = engine is not None and not guard.covers(engine)
    attached: tuple[Any, str] | None = None
    try:
        if listening:
            guard.listen(engine)
        if isinstance(target, Connection) and listening:
            if target.dialect.name == "postgresql":
                if guard.seconds:  # in the caller's transaction (begun if need be) until it ends
                    target.exec_driver_sql(f"SET LOCAL statement_timeout = {guard.milliseconds}")
            else:
                attached = (target.connection.dbapi_connection, target.dialect.name)
                guard.attach(*attached)
        elif isinstance(target, sqlite3.Connection):
            attached = (target, "sqlite")
            guard.attach(target, "sqlite")
            guard.restart()
        yield guard
    except BaseException as exc:
        replacement = guard.translate(exc)
        if replacement is not None:
            raise replacement from None
        raise
    finally:
        guard.what = previous_what
        if attached is not None:
            with suppress(Exception):  # a closed connection has nothing to restore
                guard.detach(*attached)
        if listening:
            guard.unlisten(engine)
        if token is not None:
            guard.stop()
            _ACTIVE.reset(token)


def bounded(what: str | None = None) -> Callable:
    """Decorator: the step ``function(bind, ...)`` takes a ``timeout`` keyword (seconds;
    None: the default, 0: no limit) and runs inside :func:`statement_timeout` on ``bind``."""
    def decorate(function: Callable) -> Callable:
        @functools.wraps(function)
        def step(bind, *args, timeout: float | None = None, **kwargs):
            with statement_timeout(bind, timeout, what):
                return function(bind, *args, **kwargs)
        return step
    return decorate

"""One database-error boundary on every path (issue 11).

A database that cannot be used just now (its SQLite file locked by another process, a
PostgreSQL session terminated mid-operation, a lock wait that timed out) ends every path
that touches it in one line naming the operation and what to do: exit 1 on the CLI (the
issue's acceptance command through the real console script, the rest in process),
a one-line message in the gate widget, never a traceback, never a passed gate. All real:
a subprocess holding ``BEGIN EXCLUSIVE``, a real ``pg_terminate_backend``, a real
``ACCESS EXCLUSIVE`` lock with a short ``lock_timeout``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from helpers.hostile import conductor, one_line_error
from helpers.sample_ddl import V1

from conductor_magics.engine.connection import database_error, driver_reason, failure_kind
from conductor_magics.errors import DatabaseUnavailable
from conductor_magics.session import Session
from conductor_magics.widgets.gate import GateWidget
from conductor_magics.workspace import Workspace

LOCKED = r"^conductor: error: {}: the database is locked by another connection; close it .*and retry"
#: seconds a refused command may take in all (CLI start-up on a busy 2-core machine included)
PROMPT = 30


def _migrated(project: Path, url: str | None = None) -> Session:
    session = Session(Workspace(project / "storage-conductor"), user="tester")
    live = session.database("orders_db", url=url)
    live.schema_declare(V1)
    live.migrate("new", message="v1")
    live.migrate("up")
    live.engine.dispose()
    return session


@pytest.fixture
def sqlite_project(project: Path, monkeypatch) -> Path:
    """The example project with orders_db declared and migrated on its embedded SQLite file."""
    monkeypatch.delenv("CONDUCTOR_DATABASE_URL", raising=False)
    _migrated(project)
    return project


def _database_file(project: Path) -> Path:
    return project / "storage-conductor/storages/orders_db/dev.sqlite"


def _short_wait(project: Path) -> str:
    """The component's own SQLite file, with a short busy timeout (the default waits 5 s)."""
    return f"sqlite:///{_database_file(project)}?timeout=0.2"


@contextmanager
def locked_by_another_process(path: Path):
    """A separate process holding ``BEGIN EXCLUSIVE`` on the SQLite file ``path``."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sqlite3, sys\n"
         f"c = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
         "c.execute('BEGIN EXCLUSIVE')\n"
         "print('locked', flush=True)\n"
         "sys.stdin.read()\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield holder
    finally:
        holder.kill()
        holder.wait(timeout=10)


@pytest.mark.parametrize(("args", "operation"), [
    (("verify", "orders_db", "--phase", "3", "--run-checks", "--force"), "core gate checks"),
    (("crud", "--id", "orders_db"), "crud"),
    (("integrity", "orders_db"), "integrity"),
    (("backup", "--id", "orders_db"), r"backup of sqlite:///\S+ failed"),
])
def test_a_locked_sqlite_file_is_one_line_on_the_cli(sqlite_project: Path, args, operation):
    verification = sqlite_project / "storage-conductor/storages/orders_db/verification.json"
    real = args[0] == "verify"  # the acceptance command, once through the console script
    with locked_by_another_process(_database_file(sqlite_project)):
        started = time.monotonic()
        proc = conductor(sqlite_project, *args, "--url", _short_wait(sqlite_project), real=real)
        elapsed = time.monotonic() - started
    one_line_error(proc, 1, LOCKED.format(operation))
    assert elapsed < PROMPT
    assert not verification.exists()  # a gate that could not look is neither passed nor failed
    # the lock gone, the same command works (it was the lock, not the command)
    again = conductor(sqlite_project, *args, "--url", _short_wait(sqlite_project))
    assert "Traceback" not in again.stderr and "locked" not in again.stderr, again.stderr


@pytest.mark.parametrize("phase", [5, 6])
def test_a_locked_sqlite_file_never_passes_or_fails_a_gate(sqlite_project: Path, phase: int):
    with locked_by_another_process(_database_file(sqlite_project)):
        proc = conductor(sqlite_project, "verify", "orders_db", "--phase", str(phase), "--run-checks",
                         "--force", "--confirm", "checked", "--url", _short_wait(sqlite_project))
    one_line_error(proc, 1, LOCKED.format(r"(integrity|backup) gate checks") + r".*no verdict was recorded")
    assert not (sqlite_project / "storage-conductor/storages/orders_db/verification.json").exists()


def test_the_gate_widget_shows_a_locked_database_in_one_line(sqlite_project: Path):
    session = Session(Workspace(sqlite_project / "storage-conductor"), user="tester")
    url = _short_wait(sqlite_project)
    with locked_by_another_process(_database_file(sqlite_project)):
        gate = GateWidget(session, "orders_db", 3, url=url)
        try:
            message = gate.message.value
            assert message.startswith("✘ ") and "\n" not in message, message
            assert "the database is locked by another connection" in message
            assert "Traceback" not in message and gate.rows == []
            gate.note.value = "looked at it"
            assert gate.confirm() is False
            assert "the database is locked by another connection" in gate.message.value
        finally:
            gate.close()
    assert not (sqlite_project / "storage-conductor/storages/orders_db/verification.json").exists()
    gate = GateWidget(session, "orders_db", 3, url=url)  # unlocked: the checks run and show
    try:
        assert gate.rows and all(r.status == "pass" for r in gate.rows), gate.message.value
    finally:
        gate.close()


# --------------------------------------------------------------------------- PostgreSQL


@pytest.fixture
def pg_project(project: Path, pg_url: str, monkeypatch) -> tuple[Path, str]:
    monkeypatch.delenv("CONDUCTOR_DATABASE_URL", raising=False)
    _migrated(project, pg_url)
    return project, pg_url


def _dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


@contextmanager
def table_locked(url: str, table: str = "orders"):
    """Another session holding ACCESS EXCLUSIVE on ``table`` until the block ends."""
    with psycopg.connect(_dsn(url)) as holder:
        holder.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        try:
            yield holder
        finally:
            holder.rollback()


def _terminate_when_waiting(url: str, found: list) -> threading.Thread:
    """Terminate the first other session that waits for a lock (the tool's), once."""
    def run() -> None:
        with psycopg.connect(_dsn(url), autocommit=True) as admin:
            deadline = time.monotonic() + PROMPT
            while time.monotonic() < deadline:
                pid = admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database() AND pid <> pg_backend_pid()").fetchone()
                if pid:
                    found.append(admin.execute("SELECT pg_terminate_backend(%s)", pid).fetchone()[0])
                    return
                time.sleep(0.05)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(("args", "operation"), [
    (("crud", "--id", "orders_db"), "crud"),
    (("verify", "orders_db", "--phase", "5", "--run-checks", "--force"), "integrity (gate checks|probes)"),
])
def test_a_terminated_postgres_session_is_one_line(pg_project, args, operation):
    project, url = pg_project
    terminated: list = []
    with table_locked(url):  # the tool's statement waits on it: terminated mid-operation
        killer = _terminate_when_waiting(url, terminated)
        proc = conductor(project, *args, "--url", url, timeout=PROMPT)
        killer.join(PROMPT)
    assert terminated == [True]
    line = one_line_error(proc, 1, rf"^conductor: error: ({operation}|{args[0]}): connection lost "
                                   r"\(the server terminated the session\); reconnect and retry")
    assert url.split(":")[2].split("@")[0] not in line  # the password


@pytest.mark.parametrize(("args", "operation"), [
    (("crud", "--id", "orders_db"), "crud"),
    (("integrity", "orders_db"), "integrity( probes| checks)?"),
    (("verify", "orders_db", "--phase", "5", "--run-checks", "--force"), "integrity (gate checks|probes)"),
])
def test_a_postgres_lock_timeout_is_one_line(pg_project, args, operation):
    project, url = pg_project
    with table_locked(url):
        started = time.monotonic()
        proc = conductor(project, *args, "--url", url, timeout=PROMPT,
                         extra_env={"PGOPTIONS": "-c lock_timeout=300"})
        elapsed = time.monotonic() - started
    one_line_error(proc, 1, rf"^conductor: error: {operation}: lock timeout: another session holds "
                            r"a lock this needs; wait for that session to finish \(or end it\) and retry")
    assert elapsed < PROMPT
    verification = project / "storage-conductor/storages/orders_db/verification.json"
    assert not verification.exists() or all(
        r.get("kind") != "verification" for r in json.loads(verification.read_text()))


# --------------------------------------------------------------------------- the wording


def test_one_wording_for_every_driver_error(tmp_path: Path):
    import sqlite3

    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    path = tmp_path / "x.sqlite"
    sqlite3.connect(path).close()
    engine = create_engine(f"sqlite:///{path}?timeout=0.1")
    with locked_by_another_process(path), pytest.raises(OperationalError) as raised, \
            engine.connect() as conn:
        conn.execute(text("SELECT * FROM sqlite_master")).all()
    engine.dispose()
    assert failure_kind(raised.value) == "locked"
    error = database_error("integrity probes", raised.value)
    assert isinstance(error, DatabaseUnavailable) and error.kind == "locked"
    assert str(error) == ("integrity probes: the database is locked by another connection; "
                          "close it (or end its transaction) and retry")
    # anything else: the driver's first line, passwords scrubbed, no SQL quoted
    other = sqlite3.OperationalError("no such table: x\nsecond line")
    assert failure_kind(other) is None
    assert driver_reason(other) == "no such table: x"
    leaked = sqlite3.OperationalError("cannot open postgresql://app:s3cret@db/x")
    assert "s3cret" not in driver_reason(leaked, "postgresql://app:s3cret@db/x")


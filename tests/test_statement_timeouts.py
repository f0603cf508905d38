"""Statement timeouts (issue 10, item 5): the bound per statement on each dialect, the
settings that choose it, Ctrl-C and SIGKILL of the CLI mid-statement, and the notebook's
``%config Conductor.statement_timeout``.

The CLI cases of the hostile corpus (sql, txn, query, bench, advise, seed with
``--timeout 1``) are in tests/adversarial/test_timeouts.py.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from helpers.notebook import run_cell
from IPython.core.error import UsageError

from conductor_magics.engine.connection import make_engine
from conductor_magics.engine.sqlrun import run_sql, run_transaction
from conductor_magics.engine.timeouts import (
    DEFAULT_SECONDS,
    TIMEOUT_ENV,
    StatementTimeout,
    resolve_timeout,
)
from conductor_magics.errors import ConductorError

FOREVER = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM r) SELECT count(*) FROM r"
#: how the query shows in pg_stat_activity
MARK = "UNION ALL SELECT n+1 FROM r"
CONDUCTOR = Path(sys.executable).parent / "conductor"


def test_the_default_the_environment_and_bad_values(monkeypatch):
    monkeypatch.delenv(TIMEOUT_ENV, raising=False)
    assert resolve_timeout() == DEFAULT_SECONDS == 300
    assert resolve_timeout(0) == 0 and resolve_timeout("2.5") == 2.5
    monkeypatch.setenv(TIMEOUT_ENV, "7")
    assert resolve_timeout() == 7 and resolve_timeout(1) == 1  # an explicit value wins
    for bad in ("-1", "nan", "inf", "soon"):
        monkeypatch.setenv(TIMEOUT_ENV, bad)
        with pytest.raises(ConductorError, match=TIMEOUT_ENV):
            resolve_timeout()
        with pytest.raises(ConductorError, match="--timeout"):
            resolve_timeout(bad)


@pytest.mark.parametrize("dialect", ["sqlite", "duckdb", "postgresql"])
def test_each_statement_is_bounded_and_its_transaction_rolled_back(url_for, dialect):
    engine = make_engine(url_for(dialect))
    run_sql(engine, "CREATE TABLE t (x INTEGER)")
    bodies = [lambda: run_sql(engine, f"INSERT INTO t VALUES (1); {FOREVER}", timeout=1),
              lambda: run_transaction(engine, f"INSERT INTO t VALUES (1); {FOREVER}", timeout=1),
              lambda: run_transaction(engine, "conn.exec_driver_sql('INSERT INTO t VALUES (1)')\n"
                                              f"conn.exec_driver_sql({FOREVER!r}).all()",
                                      python=True, timeout=1)]
    for body in bodies:
        started = time.monotonic()
        with pytest.raises(StatementTimeout, match=r"statement timed out after 1 s \(WITH RECURSIVE"):
            body()
        assert time.monotonic() - started < 15
    assert run_sql(engine, "SELECT count(*) FROM t").frame.iloc[0, 0] == 0
    assert run_sql(engine, "SELECT 1", timeout=0).frame.iloc[0, 0] == 1  # 0: no limit
    if dialect == "postgresql":
        # the pooled connection went back with the server's own setting
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "0"
    engine.dispose()


def test_the_bound_is_per_statement_not_per_step(pg_url):
    """Four statements of 0.4 s each under a 1 s timeout: 1.6 s in all, none too long."""
    engine = make_engine(pg_url)
    result = run_sql(engine, "SELECT pg_sleep(0.4); SELECT pg_sleep(0.4); SELECT pg_sleep(0.4); "
                             "SELECT 1", timeout=1)
    assert result.statements == 4 and result.seconds > 1.2
    engine.dispose()


# --------------------------------------------------------------------------- the CLI killed


def _running(pg_server, database: str) -> list[int]:
    with psycopg.connect(pg_server.dsn("postgres"), autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND state = 'active' "
                            "AND query LIKE %s AND pid <> pg_backend_pid()",
                            (database, f"%{MARK}%")).fetchall()
    return [row[0] for row in rows]


def _terminate(pg_server, pids: list[int]) -> None:
    with psycopg.connect(pg_server.dsn("postgres"), autocommit=True) as conn:
        for pid in pids:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


def _wait(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def _start(project: Path, url: str, cell: Path, seconds: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONDUCTOR_")}
    return subprocess.Popen([str(CONDUCTOR), "--root", str(project), "sql", "--file", str(cell),
                             "--url", url, "--timeout", seconds],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _opened(proc: subprocess.Popen, path: Path) -> bool:
    """The process has ``path`` open (its SQLite connection is up: the query runs next)."""
    folder = Path(f"/proc/{proc.pid}/fd")
    try:
        return any(os.readlink(fd) == str(path) for fd in folder.iterdir())
    except OSError:
        return False


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_ctrl_c_stops_the_statement_in_the_database_too(dialect, request, project, tmp_path):
    cell = tmp_path / "forever.sql"
    cell.write_text(FOREVER)
    if dialect == "postgresql":
        pg_server = request.getfixturevalue("pg_server")
        url = request.getfixturevalue("pg_url")
        database = url.rsplit("/", 1)[1]
        running = lambda: _running(pg_server, database)  # noqa: E731
    else:
        path = tmp_path / "live.sqlite"
        url = f"sqlite:///{path}"
        running = None
    proc = _start(project, url, cell, "120")
    try:
        if running is not None:
            assert _wait(running, 60), "the query never started"
        else:
            assert _wait(lambda: _opened(proc, path), 60), "the database was never opened"
            time.sleep(1.0)  # the query is running by now
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            pytest.fail("Ctrl-C did not stop the statement")
        assert proc.returncode == 130, err
        assert "Traceback" not in err and err.strip() == "conductor: interrupted"
        if running is not None:
            assert _wait(lambda: not running(), 2), "the server still runs the query after Ctrl-C"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if running is not None:
            _terminate(pg_server, running())


def test_a_killed_cli_leaves_no_statement_running_past_the_timeout(pg_server, pg_url, project, tmp_path):
    cell = tmp_path / "forever.sql"
    cell.write_text(FOREVER)
    database = pg_url.rsplit("/", 1)[1]
    proc = _start(project, pg_url, cell, "3")
    try:
        assert _wait(lambda: _running(pg_server, database), 60), "the query never started"
        proc.kill()  # SIGKILL: nothing on the client side can clean up
        proc.wait()
        killed = time.monotonic()
        assert _running(pg_server, database), "the server should still be running it just now"
        gone = _wait(lambda: not _running(pg_server, database), 3 + 2)
        assert gone, f"the server still runs the query {time.monotonic() - killed:.1f} s after the kill"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        _terminate(pg_server, _running(pg_server, database))


# --------------------------------------------------------------------------- the notebook


def test_config_statement_timeout_applies_to_a_sql_cell(ip, tmp_path):
    url = f"sqlite:///{tmp_path / 'cell.sqlite'}"
    # Without a bound this cell would never return: end the test process instead of hanging.
    faulthandler.dump_traceback_later(120, exit=True)
    try:
        run_cell(ip, "%config Conductor.statement_timeout = 1")
        started = time.monotonic()
        cap, result = run_cell(ip, f"%%conductor sql --url {url}\n{FOREVER}")
        assert time.monotonic() - started < 20
        assert isinstance(result.error_in_exec, UsageError)
        lines = [line for line in cap.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "statement timed out after 1 s" in lines[0], cap.stderr
        assert "Traceback" not in cap.stdout + cap.stderr
        # --timeout on the line overrides the setting
        cap, result = run_cell(ip, f"%%conductor sql --url {url} --timeout 0.5\n{FOREVER}")
        assert "statement timed out after 0.5 s" in str(result.error_in_exec)
        # a bad value is refused and the setting keeps its value
        run_cell(ip, "%config Conductor.statement_timeout = -1")  # %config logs the TraitError
        settings = [c for c in ip.configurables if type(c).__name__ == "Conductor"]
        assert [s.statement_timeout for s in settings] == [1]
        cap, result = run_cell(ip, f"%%conductor sql --url {url}\n{FOREVER}")
        assert "statement timed out after 1 s" in str(result.error_in_exec)
    finally:
        faulthandler.cancel_dump_traceback_later()
        run_cell(ip, "%config Conductor.statement_timeout = None")

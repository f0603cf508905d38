"""SQL cells and transactions on SQLite (a file), a real PostgreSQL database and DuckDB.

Every scenario checks the database afterwards through a separate connection, so a
batch that claims to roll back really left nothing behind.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from sqlalchemy import make_url

from conductor_magics.engine.connection import make_engine
from conductor_magics.engine.sqlrun import SqlResult, TxnResult, run_sql, run_transaction
from conductor_magics.errors import ConductorError, DatabaseError, UnsupportedByDialect

ALL = ["sqlite", "postgresql", "duckdb"]


@pytest.fixture(params=ALL)
def dialect(request) -> str:
    """conftest's dialects, and duckdb."""
    return request.param


@pytest.fixture
def engine(db_engine):
    run_sql(db_engine, "CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner VARCHAR(40) NOT NULL, "
                       "balance INTEGER NOT NULL)")
    return db_engine


@pytest.fixture
def pg_engine(pg_url):
    engine = make_engine(pg_url)
    run_sql(engine, "CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner VARCHAR(40) NOT NULL, "
                    "balance INTEGER NOT NULL)")
    try:
        yield engine
    finally:
        engine.dispose()


def count(engine, table: str = "accounts") -> int:
    with engine.connect() as conn:
        return conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one()


def table_exists(engine, name: str) -> bool:
    query = ("SELECT count(*) FROM sqlite_master WHERE name = ?" if engine.dialect.name == "sqlite"
             else "SELECT count(*) FROM information_schema.tables WHERE table_name = %(n)s"
             if engine.dialect.name == "postgresql"
             else "SELECT count(*) FROM information_schema.tables WHERE table_name = ?")
    params = (name,) if engine.dialect.name != "postgresql" else {"n": name}
    with engine.connect() as conn:
        return bool(conn.exec_driver_sql(query, params).scalar_one())


# --------------------------------------------------------------------------- run_sql


def test_run_sql_returns_the_last_select_as_a_frame_with_elapsed_time(engine):
    result = run_sql(engine, """
        -- two inserts; the semicolon in 'a;b' and the % must not split or format anything
        INSERT INTO accounts (id, owner, balance) VALUES (1, 'ann;b%', 100);
        INSERT INTO accounts (id, owner, balance) VALUES (2, 'bob', 250);
        SELECT id, owner, balance FROM accounts ORDER BY id
    """)
    assert isinstance(result, SqlResult)
    assert result.statements == 3
    assert result.seconds > 0
    assert list(result.frame.columns) == ["id", "owner", "balance"]
    assert result.frame.values.tolist() == [[1, "ann;b%", 100], [2, "bob", 250]]
    assert result.rowcount == 2
    data = json.loads(json.dumps(result.to_json()))
    assert data["statements"] == 3 and data["result"]["rows"] == [[1, "ann;b%", 100], [2, "bob", 250]]
    text = result.to_text()
    assert text.splitlines()[0].startswith("3 statements committed, 2 rows returned")
    assert "ann;b%" in text
    assert count(engine) == 2  # committed: a fresh connection sees the rows


def test_run_sql_without_rows_reports_the_rowcount(engine):
    run_sql(engine, "INSERT INTO accounts VALUES (1, 'a', 1); INSERT INTO accounts VALUES (2, 'b', 2)")
    result = run_sql(engine, "UPDATE accounts SET balance = balance + 1")
    assert result.statements == 1
    if engine.dialect.name == "duckdb":  # DuckDB answers DML with a one-row "Count" result
        assert result.frame.iloc[0, 0] == 2
    else:
        assert result.frame is None and result.rowcount == 2
    assert run_sql(engine, "SELECT sum(balance) AS s FROM accounts").frame.iloc[0, 0] == 5


def test_a_failing_statement_rolls_back_the_earlier_ones(engine):
    run_sql(engine, "INSERT INTO accounts VALUES (1, 'ann', 100)")
    with pytest.raises(DatabaseError) as caught:
        run_sql(engine, """
            CREATE TABLE audit (id INTEGER);
            INSERT INTO accounts VALUES (2, 'bob', 5);
            UPDATE accounts SET balance = 0 WHERE id = 1;
            INSERT INTO accounts VALUES (1, 'dup', 1)
        """)
    message = str(caught.value)
    assert "statement 4 of 4 failed (INSERT INTO accounts VALUES (1, 'dup', 1))" in message
    assert "rolled back" in message
    assert caught.value.exit_code == 1
    assert count(engine) == 1
    assert run_sql(engine, "SELECT balance FROM accounts WHERE id = 1").frame.iloc[0, 0] == 100
    assert not table_exists(engine, "audit")  # the DDL in the batch was rolled back too


def test_run_sql_needs_a_statement(engine):
    with pytest.raises(ConductorError, match="no SQL statement"):
        run_sql(engine, "-- only a comment;\n")


def test_statement_errors_never_show_the_password(pg_url):
    password = make_url(pg_url).password
    assert password
    engine = make_engine(pg_url)
    try:
        with pytest.raises(DatabaseError) as caught:
            run_sql(engine, f"SELECT 1; SELECT '{password}'::integer")
    finally:
        engine.dispose()
    assert "statement 2 of 2" in str(caught.value)
    assert password not in str(caught.value)
    assert password not in json.dumps(caught.value.to_json())
    assert "***" in str(caught.value)


# --------------------------------------------------------------------------- transactions, SQL bodies


def test_txn_commits_a_sql_body(engine):
    result = run_transaction(engine, "INSERT INTO accounts VALUES (1, 'ann', 10); "
                                     "INSERT INTO accounts VALUES (2, 'bob', 20); "
                                     "SELECT count(*) AS n FROM accounts")
    assert isinstance(result, TxnResult)
    assert result.committed
    assert result.frame.iloc[0, 0] == 2
    assert result.seconds > 0
    assert count(engine) == 2
    json.dumps(result.to_json())
    assert result.to_text().startswith("transaction committed")


def test_txn_rolls_back_a_failing_sql_body(engine):
    run_sql(engine, "INSERT INTO accounts VALUES (1, 'ann', 10)")
    with pytest.raises(DatabaseError, match=r"statement 3 of 3 failed \(INSERT INTO accounts VALUES \(1"):
        run_transaction(engine, "UPDATE accounts SET balance = 99; INSERT INTO accounts VALUES (2, 'bob', 20); "
                                "INSERT INTO accounts VALUES (1, 'again', 1)")
    assert count(engine) == 1
    assert run_sql(engine, "SELECT balance FROM accounts").frame.iloc[0, 0] == 10


# --------------------------------------------------------------------------- transactions, Python bodies


def test_txn_python_body_commits_and_returns_result(engine):
    namespace = {"people": [(1, "ann", 10), (2, "bob", 20)]}
    body = (
        "for pid, owner, balance in people:\n"
        "    conn.exec_driver_sql(f\"INSERT INTO accounts VALUES ({pid}, '{owner}', {balance})\")\n"
        "result = pd.read_sql('SELECT id, balance FROM accounts ORDER BY id', conn)\n"
        "total = int(result['balance'].sum())\n"
    )
    result = run_transaction(engine, body, python=True, namespace=namespace)
    assert result.committed
    assert result.frame["id"].tolist() == [1, 2]
    assert namespace["total"] == 30  # names the body assigned are visible afterwards
    assert "conn" not in namespace
    assert count(engine) == 2


def test_txn_python_error_rolls_back_and_names_the_exception(engine):
    run_sql(engine, "INSERT INTO accounts VALUES (1, 'ann', 10)")
    namespace: dict = {}
    body = ("conn.exec_driver_sql(\"INSERT INTO accounts VALUES (2, 'bob', 20)\")\n"
            "conn.exec_driver_sql('UPDATE accounts SET balance = 0')\n"
            "moved = 1\n"
            "raise ValueError('balance would go negative')\n")
    with pytest.raises(ConductorError) as caught:
        run_transaction(engine, body, python=True, namespace=namespace)
    assert "ValueError at line 4: balance would go negative" in str(caught.value)
    assert "rolled back" in str(caught.value)
    assert "moved" not in namespace  # nothing leaks from a rolled-back body
    assert count(engine) == 1
    assert run_sql(engine, "SELECT balance FROM accounts").frame.iloc[0, 0] == 10


def test_txn_python_database_error_is_a_database_error(engine):
    run_sql(engine, "INSERT INTO accounts VALUES (1, 'ann', 10)")
    body = ("conn.exec_driver_sql(\"INSERT INTO accounts VALUES (2, 'bob', 20)\")\n"
            "conn.exec_driver_sql(\"INSERT INTO accounts VALUES (1, 'dup', 1)\")\n")
    with pytest.raises(DatabaseError, match="at line 2"):
        run_transaction(engine, body, python=True)
    assert count(engine) == 1


def test_txn_python_syntax_error_runs_nothing(engine):
    with pytest.raises(ConductorError, match="not valid Python"):
        run_transaction(engine, "conn.exec_driver_sql('DELETE FROM accounts'\n", python=True)


def test_a_body_that_commits_by_itself_is_reported(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'c.sqlite'}")
    run_sql(engine, "CREATE TABLE t (id INTEGER)")
    with pytest.raises(ConductorError, match="ended the transaction itself"):
        run_transaction(engine, "conn.exec_driver_sql('INSERT INTO t VALUES (1)')\nconn.commit()", python=True)


# --------------------------------------------------------------------------- isolation levels


@pytest.mark.parametrize("asked, reported", [("serializable", "serializable"),
                                             ("Repeatable_Read", "repeatable read"),
                                             ("READ COMMITTED", "read committed")])
def test_postgres_isolation_is_really_applied(pg_engine, asked, reported):
    body = ("result = pd.DataFrame({'level': [conn.exec_driver_sql('SHOW transaction_isolation').scalar()]})\n"
            "conn.exec_driver_sql(\"INSERT INTO accounts VALUES (1, 'ann', 1)\")\n")
    result = run_transaction(pg_engine, body, isolation=asked, python=True)
    assert result.isolation == reported
    assert result.frame["level"].tolist() == [reported]  # what the body itself saw
    assert f"isolation {reported}" in result.to_text()
    # the pooled connection goes back to the server default afterwards
    after = run_transaction(pg_engine, "SELECT count(*) FROM accounts")
    assert after.isolation == "read committed"
    assert after.frame.iloc[0, 0] == 1


def test_postgres_serializable_sql_body(pg_engine):
    result = run_transaction(pg_engine, "SELECT current_setting('transaction_isolation') AS level",
                             isolation="serializable")
    assert result.isolation == "serializable"
    assert result.frame["level"].tolist() == ["serializable"]


def test_sqlite_isolation_levels(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'iso.sqlite'}")
    run_sql(engine, "CREATE TABLE t (id INTEGER)")
    assert run_transaction(engine, "SELECT 1").isolation == "serializable"
    uncommitted = run_transaction(engine, "PRAGMA read_uncommitted", isolation="read uncommitted")
    assert uncommitted.isolation == "read uncommitted"
    assert uncommitted.frame.iloc[0, 0] == 1
    assert run_transaction(engine, "SELECT 1", isolation="serializable").isolation == "serializable"
    with pytest.raises(UnsupportedByDialect, match="isolation level repeatable read is not supported on sqlite"):
        run_transaction(engine, "INSERT INTO t VALUES (1)", isolation="repeatable read")
    assert count(engine, "t") == 0


def test_duckdb_has_no_isolation_choice(tmp_path):
    engine = make_engine(f"duckdb:///{tmp_path / 'iso.duckdb'}")
    run_sql(engine, "CREATE TABLE t (id INTEGER)")
    with pytest.raises(UnsupportedByDialect, match="not supported on duckdb"):
        run_transaction(engine, "INSERT INTO t VALUES (1)", isolation="serializable")
    assert count(engine, "t") == 0
    assert run_transaction(engine, "INSERT INTO t VALUES (1)").committed
    assert count(engine, "t") == 1


def test_unknown_isolation_level_is_bad_input(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'iso.sqlite'}")
    with pytest.raises(ConductorError) as caught:
        run_transaction(engine, "SELECT 1", isolation="snapshot")
    assert not isinstance(caught.value, UnsupportedByDialect)
    assert caught.value.exit_code == 2
    assert "read committed" in str(caught.value)


def test_frames_survive_json(engine):
    run_sql(engine, "INSERT INTO accounts VALUES (1, 'ann', 10)")
    result = run_sql(engine, "SELECT id, owner, balance, CAST(balance AS NUMERIC(10, 2)) AS amount FROM accounts")
    data = json.loads(json.dumps(result.to_json()))
    assert data["result"]["columns"] == ["id", "owner", "balance", "amount"]
    assert data["result"]["rows"][0][:3] == [1, "ann", 10]
    assert float(data["result"]["rows"][0][3]) == 10.0
    assert isinstance(result.frame, pd.DataFrame)

"""Engine cells through a real IPython shell: connect, schema, sql, txn, JupySQL reuse."""

from __future__ import annotations

import sqlite3

import pytest
from helpers.notebook import run_cell as run
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output
from sqlalchemy import make_url

DDL = """CREATE TABLE customers (
  id INTEGER NOT NULL,
  email VARCHAR(254) NOT NULL,
  CONSTRAINT pk_customers PRIMARY KEY (id),
  CONSTRAINT uq_customers_email UNIQUE (email)
);"""


@pytest.fixture
def ip(ip):
    ip.run_line_magic("reload_ext", "conductor_magics")  # a fresh connection state
    ip.run_cell("%conductor implement orders_db")
    return ip


def everything(cap) -> str:
    parts = [cap.stdout, cap.stderr]
    for output in cap.outputs:
        parts.extend(str(v) for v in output.data.values())
    return "\n".join(parts)


def test_schema_cell_declares_and_shows_er_diagram(ip, project):
    cap, result = run(ip, f"%%conductor schema\n{DDL}")
    assert result.success, cap.stderr
    saved = (project / "storage-conductor/storages/orders_db/schema.sql").read_text()
    assert saved.strip() == DDL  # IPython ends a cell body with a newline
    markdown = [o.data["text/markdown"] for o in cap.outputs if "text/markdown" in o.data]
    assert markdown and "erDiagram" in markdown[0] and "customers" in markdown[0]
    html = "".join(o.data.get("text/html", "") for o in cap.outputs)
    assert "<table" in html and "email" in html


def test_sql_cell_on_the_embedded_database_returns_a_table(ip, project):
    run(ip, f"%%conductor schema\n{DDL}")
    cap, result = run(ip, "%%conductor sql\nCREATE TABLE t (x INTEGER);\nINSERT INTO t VALUES (1), (2);\n"
                          "SELECT sum(x) AS total FROM t")
    assert result.success, cap.stderr
    text = everything(cap)
    assert "total" in text and "3" in text
    assert (project / "storage-conductor/storages/orders_db/dev.sqlite").exists()


def test_connect_keeps_the_url_for_later_cells_and_masks_it(ip, pg_url):
    password = make_url(pg_url).password
    cap, result = run(ip, f"%conductor connect {pg_url}")
    assert result.success, cap.stderr
    cap2, result2 = run(ip, "%%conductor sql\nSELECT current_database() AS db")
    assert result2.success, cap2.stderr
    assert make_url(pg_url).database in everything(cap2)
    for captured in (cap, cap2):
        assert password not in everything(captured)
    assert "***" in everything(cap)


def test_txn_python_commits_or_rolls_back(ip, project):
    run(ip, "%%conductor sql\nCREATE TABLE t (x INTEGER)")
    cap, result = run(ip, "%%conductor txn --python\nconn.exec_driver_sql('INSERT INTO t VALUES (5)')\n"
                          "result = pd.read_sql('SELECT count(*) AS n FROM t', conn)")
    assert result.success, cap.stderr
    cap, result = run(ip, "%%conductor txn --python\nconn.exec_driver_sql('INSERT INTO t VALUES (6)')\n"
                          "raise ValueError('changed my mind')")
    assert isinstance(result.error_in_exec, UsageError)
    assert "changed my mind" in cap.stderr and "Traceback" not in cap.stderr
    database = project / "storage-conductor/storages/orders_db/dev.sqlite"
    with sqlite3.connect(database) as conn:
        assert [row[0] for row in conn.execute("SELECT x FROM t ORDER BY x")] == [5]


def test_engine_errors_are_one_line(ip):
    cap, result = run(ip, "%%conductor sql\nSELECT * FROM no_such_table")
    assert isinstance(result.error_in_exec, UsageError)
    lines = [line for line in cap.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "no_such_table" in lines[0]


def test_from_jupysql_reuses_its_engine(ip, tmp_path):
    db = tmp_path / "jupysql.sqlite"
    ip.run_line_magic("load_ext", "sql")
    with capture_output():
        ip.run_line_magic("sql", f"sqlite:///{db}")
        ip.run_cell("%sql CREATE TABLE from_jupysql (v INTEGER)")
    cap, result = run(ip, "%conductor connect --from-jupysql")
    assert result.success, cap.stderr
    assert "jupysql" in everything(cap)
    cap, result = run(ip, "%%conductor sql\nSELECT count(*) AS n FROM from_jupysql")
    assert result.success, cap.stderr


def test_from_jupysql_without_a_connection_is_a_clear_error(ip):
    from sql.connection import ConnectionManager

    ip.run_line_magic("load_ext", "sql")
    ConnectionManager.close_all()
    cap, result = run(ip, "%conductor connect --from-jupysql")
    assert isinstance(result.error_in_exec, UsageError)
    assert "JupySQL has no current" in cap.stderr


def test_a_hint_names_the_next_command_in_the_notebook_words(ip, project):
    # engine/ names the next action edge-neutrally; the CLI keeps `conductor …`
    cap, result = run(ip, "%conductor backup verify")
    assert isinstance(result.error_in_exec, UsageError)
    assert "take one first with `%conductor backup`" in str(result.error_in_exec)
    cap, result = run(ip, "%conductor migrate up")
    message = str(result.error_in_exec)
    assert "`%conductor migrate new -m MESSAGE`" in message, message
    assert "`conductor migrate new" not in message


def test_notebook_words_renders_commands_and_cell_commands():
    from conductor_magics.errors import command, notebook_words, option

    cli = f"run {command('migrate new', option('m', 'MESSAGE'))} or {command('query NAME', cell=True)}"
    assert cli == "run `conductor migrate new -m MESSAGE` or `conductor query NAME --file F`"
    assert notebook_words(cli) == ("run `%conductor migrate new -m MESSAGE` or a "
                                   "`%%conductor query NAME` cell")

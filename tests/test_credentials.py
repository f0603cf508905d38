"""Credentials never leak: every form SQLAlchemy and libpq accept a secret in, through every
command that shows, writes or hands on a database URL.

Forms: the userinfo password (plain, percent-encoded with ``@ : / ? # %`` in it, and with an
unencoded ``@``/``:``/``%``), the ``password=`` query parameter (plain and encoded), a
``passfile=``, an ``sslpassword=``, and a ``dbname`` holding a libpq keyword/value string
or a ``postgresql://`` URI. Each runs through ``connect``, connection errors (missing
database, refused port), ``migrate``, ``integrity``, ``seed``, ``bench`` (benchmarks.jsonl),
``backup`` (manifest; pg_dump/pg_restore must get the password from the environment, their
live command lines are watched) and a per-task git commit; then every output, every file
under the project and the git history are scanned for each secret.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus

import psycopg
import pytest
from helpers.cli import conductor
from helpers.sample_ddl import V1
from helpers.support import PgToolWatcher

from conductor_magics.engine.backup import pg_tool_connection
from conductor_magics.engine.connection import install_hint, libpq_params, make_engine, mask, scrub
from conductor_magics.errors import BadDatabaseURL, UnsupportedByDialect

HOST = "127.0.0.1"
ORDER_LIST = "SELECT id, total_cents FROM orders WHERE customer_id = :customer_id ORDER BY id"

# --------------------------------------------------------------------------- masking, no server

#: (url, the secrets in it): every form, with awkward characters
UNIT_FORMS = {
    "userinfo": ("postgresql+psycopg://app:s3cr3t-pw@db.example:5432/orders", ["s3cr3t-pw"]),
    "userinfo encoded": ("postgresql+psycopg://app:" + quote("p@ss:w/o?r#d%x", safe="") + "@h/db",
                         ["p@ss:w/o?r#d%x", quote("p@ss:w/o?r#d%x", safe="")]),
    "userinfo unencoded @": ("postgresql+psycopg://app:pa@ss-word@h:5432/db", ["pa@ss-word", "ss-word"]),
    "userinfo unencoded : and %": ("postgresql+psycopg://app:pa:ss%zz-w@h/db", ["pa:ss%zz-w", "ss%zz-w"]),
    "query": ("postgresql+psycopg://app@h/db?password=qu3ry-pw&sslmode=require", ["qu3ry-pw"]),
    "query encoded": ("postgresql+psycopg://app@h/db?password=" + quote_plus("a&b c=d") + "&x=1",
                      ["a&b c=d", quote_plus("a&b c=d")]),
    "query upper case": ("postgresql+psycopg://app@h/db?PASSWORD=upper-pw", ["upper-pw"]),
    "query repeated": ("postgresql+psycopg://app@h/db?password=first-pw&password=second-pw",
                       ["first-pw", "second-pw"]),
    "passfile": ("postgresql+psycopg://app@h/db?passfile=/home/app/.pgpass-7f3a", ["/home/app/.pgpass-7f3a",
                                                                                    "pgpass-7f3a"]),
    "sslpassword": ("postgresql+psycopg://app@h/db?sslpassword=ssl-key-pw&sslmode=verify-full",
                    ["ssl-key-pw"]),
    "dbname dsn": ("postgresql+psycopg:///?dbname=" + quote_plus("host=h user=app password='dsn pw' dbname=db"),
                   ["dsn pw", "dsn+pw", "dsn%20pw"]),
    "dbname uri": ("postgresql+psycopg:///?dbname=" + quote_plus("postgresql://app:uri-pw@h/db"),
                   ["uri-pw"]),
    "port not a number": ("postgresql+psycopg://app:port-pw@h:notaport/db", ["port-pw"]),
    "libpq string": ("host=h user=app password='kv pw' dbname=db", ["kv pw"]),
    "libpq string unquoted": ("host=h password=kvpw2 dbname=db", ["kvpw2"]),
}


@pytest.mark.parametrize("name", UNIT_FORMS)
def test_mask_hides_every_credential_form(name):
    url, hidden = UNIT_FORMS[name]
    shown = mask(url)
    assert "***" in shown, shown
    for secret in hidden:
        assert secret not in shown, (name, shown)
    # the rest of the URL stays readable
    if "://" in url:
        assert shown.split("://")[0] == url.split("://")[0]
    else:
        assert "host=h" in shown


@pytest.mark.parametrize("name", UNIT_FORMS)
def test_scrub_removes_every_credential_form_from_free_text(name):
    url, hidden = UNIT_FORMS[name]
    # a driver or pg_dump echoing the URL, the DSN or the bare password
    text = f'connecting to {url} failed: FATAL password "{hidden[0]}" rejected'
    for cleaned in (scrub(text, url), scrub(url)):
        for secret in hidden:
            assert secret not in cleaned, (name, cleaned)


def test_scrub_finds_credentials_of_urls_it_was_not_told_about():
    text = ("pg_dump: error: connection to postgresql://u:hidden1@h/d failed; "
            "dsn host=h password=hidden2 dbname=d; query ?sslpassword=hidden3&a=1; "
            "kwargs {'password': 'hidden4'}; quoted password = 'hid den5'")
    cleaned = scrub(text)
    for secret in ("hidden1", "hidden2", "hidden3", "hidden4", "hid den5"):
        assert secret not in cleaned, cleaned
    assert "&a=1" in cleaned and "host=h" in cleaned and "u:***@h/d" in cleaned


def test_an_unencoded_at_sign_stays_in_the_password():
    engine = make_engine("postgresql+psycopg://app:pa@ss@db.example:5432/orders")
    assert engine.url.password == "pa@ss" and engine.url.host == "db.example"
    assert mask(engine.url) == "postgresql+psycopg://app:***@db.example:5432/orders"


def test_bad_urls_are_one_line_bad_input():
    with pytest.raises(BadDatabaseURL) as info:
        make_engine("postgresql+psycopg://app:port-pw@h:notaport/db")
    assert info.value.exit_code == 2 and "port 'notaport' is not a number" in str(info.value)
    assert "port-pw" not in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(BadDatabaseURL, match="libpq connection string") as info:
        make_engine("host=h password=kvpw3 dbname=db")
    assert "kvpw3" not in str(info.value)


@pytest.mark.parametrize(("url", "wanted"), [
    ("mysql://u:pw-9@h/d", "mysqlclient"),
    ("mysql+pymysql://u@h/d", "pip install pymysql"),
    ("postgresql+psycopg2://u@h/d", "psycopg2-binary"),
    ("postgresql+pg8000://u@h/d", "pip install pg8000"),
    ("mssql+pyodbc://u@h/d", "pip install pyodbc"),
    ("oracle+oracledb://u@h/d", "pip install oracledb"),
])
def test_a_missing_driver_names_the_right_package(url, wanted):
    with pytest.raises(UnsupportedByDialect) as info:
        make_engine(url)
    message = str(info.value)
    assert wanted in message and "psycopg[binary]" not in message, message
    assert "pw-9" not in message


def test_install_hints_by_dialect_and_driver():
    assert "[duckdb]" in install_hint("duckdb")  # no duckdb-engine: no dialect
    assert "[duckdb]" in install_hint("duckdb", "duckdb")
    assert "[postgres]" in install_hint("postgresql+psycopg", "psycopg")
    assert "pymysql" in install_hint("mysql+pymysql", "pymysql")


@pytest.mark.parametrize("name", [n for n in UNIT_FORMS if not n.startswith(("libpq", "port"))])
def test_pg_tools_never_get_a_credential_on_their_command_line(name, tmp_path):
    url, hidden = UNIT_FORMS[name]
    conninfo, env = pg_tool_connection(url, tmp_path)
    for secret in hidden:
        assert secret not in conninfo, (name, conninfo)
    params = libpq_params(url)
    if params.get("password"):
        assert env["PGPASSWORD"] == params["password"]
    if params.get("passfile"):
        assert env["PGPASSFILE"] == params["passfile"] and "passfile" not in conninfo
    if params.get("sslpassword"):
        service = Path(env["PGSERVICEFILE"])
        assert service.read_text() == f"[conductor]\nsslpassword={params['sslpassword']}\n"
        assert service.stat().st_mode & 0o077 == 0 and "service=conductor" in conninfo


# --------------------------------------------------------------------------- end to end


@dataclass
class Form:
    """One credential form on the real cluster: the URL and what must never show."""

    name: str
    url: str
    hidden: list[str]
    connects: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)


def _role(pg_server, role: str, password: str, database: str) -> None:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN CREATEDB PASSWORD ' + "'" + password.replace("'", "''") + "'")
        conn.execute(f'ALTER DATABASE "{database}" OWNER TO "{role}"')
        conn.execute(f'GRANT ALL ON SCHEMA public TO "{role}"')


def build_form(name: str, pg_server, database: str, tmp_path: Path) -> Form:
    port, pw = pg_server.port, pg_server.password
    where = f"{HOST}:{port}/{database}"
    token = secrets.token_hex(4)
    if name == "userinfo":
        return Form(name, f"postgresql+psycopg://postgres:{pw}@{where}", [pw])
    if name == "query":
        return Form(name, f"postgresql+psycopg://postgres@{where}?password={pw}", [pw])
    if name in ("userinfo encoded", "query encoded"):
        special = f"Sp3c@l:p%w/x?y#z&q=r {token}"
        _role(pg_server, f"app_{token}", special, database)
        url = (f"postgresql+psycopg://app_{token}:{quote(special, safe='')}@{where}" if name == "userinfo encoded"
               else f"postgresql+psycopg://app_{token}@{where}?password={quote_plus(special)}")
        return Form(name, url, [special, quote(special, safe=""), quote_plus(special), f"%w/x?y#z&q=r {token}"])
    if name == "userinfo unencoded":
        raw = f"pa@ss:w%zz-{token}"
        _role(pg_server, f"app_{token}", raw, database)
        return Form(name, f"postgresql+psycopg://app_{token}:{raw}@{where}", [raw, f"ss:w%zz-{token}"])
    if name == "passfile":
        folder = tmp_path / "credentials"
        folder.mkdir()
        passfile = folder / f"pgpass-{token}"
        passfile.write_text(f"{HOST}:{port}:*:postgres:{pw}\n")
        passfile.chmod(0o600)
        return Form(name, f"postgresql+psycopg://postgres@{where}?passfile={passfile}",
                    [pw, f"pgpass-{token}"], extra_env={"PGPASSWORD": ""})
    if name == "sslpassword":
        return Form(name, f"postgresql+psycopg://postgres@{where}?password={pw}&sslpassword=sslkey-{token}",
                    [pw, f"sslkey-{token}"])
    if name == "dbname dsn":
        dsn = f"host={HOST} port={port} user=postgres password='{pw}' dbname={database}"
        return Form(name, f"postgresql+psycopg:///?dbname={quote_plus(dsn)}", [pw], connects=False)
    if name == "dbname uri":
        uri = f"postgresql://postgres:{pw}@{where}"
        return Form(name, f"postgresql+psycopg:///?dbname={quote_plus(uri)}", [pw], connects=False)
    raise AssertionError(name)


E2E_FORMS = ["userinfo", "query", "userinfo encoded", "userinfo unencoded", "query encoded",
             "passfile", "sslpassword", "dbname dsn", "dbname uri"]


class Runner:
    """Runs the CLI in this process (helpers.cli: output caught at the descriptors, so
    pg_dump's and pg_restore's too) with a form's URL; keeps every output for the scan.
    pg_dump / pg_restore and git are real processes."""

    def __init__(self, project: Path, form: Form, monkeypatch, home: Path):
        self.project, self.form, self.outputs = project, form, []
        for name in [k for k in os.environ if k.startswith(("CONDUCTOR_", "PG", "GIT_"))]:
            monkeypatch.delenv(name)
        for name, value in dict(HOME=str(home), GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1",
                                GIT_CEILING_DIRECTORIES=str(project.parent), **form.extra_env).items():
            monkeypatch.setenv(name, value)
        monkeypatch.chdir(project)

    def __call__(self, *args: str, expect: int | None = 0, url: str | None = None,
                 with_url: bool = True) -> str:
        argv = [*args, *(["--url", url or self.form.url] if with_url else [])]
        proc = conductor(*argv, root=self.project, env=dict(os.environ))
        code, out, err = proc.returncode, proc.stdout, proc.stderr
        self.outputs.append(f"$ {args}\n{out}\n{err}")
        assert expect is None or code == expect, \
            (self.form.name, args, code, scrub(out[-1500:] + err[-1500:], self.form.url))
        assert "Traceback" not in err, scrub(err, self.form.url)
        return out

    def git(self, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.project, capture_output=True, text=True,
                              check=True).stdout


@pytest.mark.parametrize("name", E2E_FORMS)
def test_no_credential_form_leaks_through_any_command(name, pg_server, pg_url, project, tmp_path,
                                                      monkeypatch):
    database = pg_url.rsplit("/", 1)[1]
    form = build_form(name, pg_server, database, tmp_path)
    (tmp_path / "home").mkdir()
    run = Runner(project, form, monkeypatch, tmp_path / "home")
    run.git("init", "-q", "-b", "main")
    run.git("config", "user.name", "T")
    run.git("config", "user.email", "t@example.com")
    run.git("add", "-A")
    run.git("commit", "-q", "-m", "initial")
    component = project / "storage-conductor" / "storages" / "orders_db"
    port = pg_server.port
    missing_db = form.url.replace(f"/{database}", "/no_such_database").replace(
        f"dbname%3D{database}", "dbname%3Dno_such_database").replace(f"%2F{database}", "%2Fno_such_database")
    refused = form.url.replace(f":{port}", ":1").replace(f"port%3D{port}", "port%3D1").replace(
        f"%3A{port}", "%3A1")

    watcher = PgToolWatcher().__enter__()
    seen = watcher.seen
    try:
        if not form.connects:
            # psycopg does not expand a dbname DSN: the failure itself must not leak
            run("connect", expect=1)
            run("backup", expect=1)
        else:
            connected = run("connect")
            assert "***" in connected, connected
            run("connect", expect=1, url=missing_db)
            run("connect", expect=1, url=refused)
            run("migrate", "current", expect=1, url=refused)
            (tmp_path / "v1.sql").write_text(V1)
            run("implement", "orders_db", with_url=False)
            run("schema", "declare", "orders_db", "--file", str(tmp_path / "v1.sql"), with_url=False)
            run("migrate", "new", "-m", "customers and orders", "--id", "orders_db", with_url=False)
            run("migrate", "up", "--id", "orders_db")
            run("seed", "--rows", "50")
            run("integrity", "--json")
            (tmp_path / "q.sql").write_text(ORDER_LIST)
            run("bench", "order_list", "--file", str(tmp_path / "q.sql"), "--repeat", "3", "--warmup", "0")
            bench = json.loads((component / "benchmarks.jsonl").read_text().splitlines()[-1])
            assert "***" in bench["database"] or form.name == "passfile", bench["database"]
            made = json.loads(run("backup", "--label", "creds", "--json"))
            manifest = next((component / "backups").glob("*.manifest.json"))
            assert json.loads(manifest.read_text())["source"] == mask(form.url), made
            assert json.loads(run("backup", "verify", "creds", "--json"))["passed"] is True
            run("backup", "list")
            run("backup", "--label", "fails", expect=1, url=missing_db)
            run("task", "done", "orders_db", "1.1", with_url=False)
            assert "benchmarks.jsonl" in run.git("log", "--stat", "-1"), "the per-task commit took the file"
    finally:
        watcher.__exit__()
    history = run.git("log", "--all", "-p", "--format=%H %an %s%n%b")
    if form.connects:
        assert any("pg_dump" in argv for argv in seen) and any("pg_restore" in argv for argv in seen)
    leaks = []
    for secret in form.hidden:
        for argv in seen:
            if secret in argv:
                leaks.append(("argv", argv[:200]))
        for out in run.outputs + [history]:
            if secret in out:
                leaks.append(("output", out[:300]))
        for path in project.rglob("*"):
            if path.is_file() and secret.encode() in path.read_bytes():
                leaks.append(("file", str(path)))
    assert not leaks, [scrub(str(leak), form.url) for leak in leaks]

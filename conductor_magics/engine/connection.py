"""Connections: which URL, the embedded default, password masking, per-dialect set-up."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, quote_plus, unquote

from sqlalchemy import URL, Connection, Engine, create_engine, event, inspect, make_url, text
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from ..errors import (
    BadDatabaseURL,
    ConductorError,
    DatabaseError,
    DatabaseUnavailable,
    UnsupportedByDialect,
    option,
)

URL_ENV = "CONDUCTOR_DATABASE_URL"
#: dialects whose DDL runs inside transactions (a failed migration rolls back)
TRANSACTIONAL_DDL = {"postgresql", "duckdb", "mssql"}


@dataclass
class Connected:
    """A live engine with where its URL came from."""

    engine: Engine
    source: str  # "argument", "environment", "embedded" or "jupysql"

    @property
    def url(self) -> URL:
        return self.engine.url

    @property
    def masked_url(self) -> str:
        return mask(self.engine.url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def to_json(self) -> dict:
        return {"url": self.masked_url, "dialect": self.dialect, "source": self.source,
                "transactional_ddl": has_transactional_ddl(self.engine)}


# --------------------------------------------------------------------------- credentials
#
# Every form SQLAlchemy or libpq accepts a secret in: the URL's userinfo password (also with
# an unencoded ``@``, ``:`` or ``%`` in it), the ``password``/``sslpassword``/``passfile``
# query parameters (any case), libpq keyword/value strings (``host=h password='a b'``) and
# ``postgresql://`` URIs, also nested in a ``dbname`` (libpq expands a dbname holding ``=``
# or a URI). ``mask`` is the one function that shows a URL; ``scrub`` the one that cleans
# free text (driver and pg_dump messages). Both only ever hide more, never less.

MASK = "***"
#: keys whose value is a credential (compared in lower case: be lenient)
SECRET_KEYS = frozenset({"password", "sslpassword", "passfile", "pgpassword", "pgpassfile"})
#: stands in for a masked value while SQLAlchemy renders (it percent-encodes "***")
_PLACEHOLDER = "CONDUCTORMASKEDVALUE"
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
_KEY_VALUE = re.compile(
    r"(?i)(?<![\w\-])(?P<key>(?:pg)?(?:ssl)?password|(?:pg)?passfile)(?P<sep>\s*=\s*)"
    r"(?P<value>'(?:[^'\\]|\\.)*'?|\"(?:[^\"\\]|\\.)*\"?|\S*)")
_DICT_ITEM = re.compile(
    r"(?i)(?P<q>['\"])(?P<key>(?:ssl)?password|passfile)(?P=q)(?P<sep>\s*:\s*)"
    r"(?P<value>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s,}]*)")


def _split_userinfo(text: str) -> tuple[str, str, str, str] | None:
    """(``scheme://``, user, raw password, ``@host…``) of a URL with a userinfo password.

    The password ends at the last ``@`` before the first ``?`` that follows its first
    ``@``, so an unencoded ``@`` in it (``app:pa@ss@host``) stays in the password while
    an ``@`` in a query value does not move the host.
    """
    found = _SCHEME.match(text)
    if not found:
        return None
    start = found.end()
    user = re.match(r"[^:/@?#\s]*", text[start:]).group(0)
    colon = start + len(user)
    if colon >= len(text) or text[colon] != ":":
        return None
    first_at = text.find("@", colon)
    if first_at < 0:
        return None
    query = text.find("?", first_at)
    at = text.rfind("@", first_at, query if query >= 0 else len(text))
    return text[:start], user, text[colon + 1:at], text[at:]


def _mask_patterns(text: str, token: str = MASK) -> str:
    """``text`` with URL userinfo passwords, ``key=value`` secrets (DSN or query string,
    quoted or not) and ``'password': '…'`` items replaced by ``token``."""
    def one_url(found: re.Match) -> str:
        url = found.group(0)
        if token == MASK and "?" in url:
            # query parameters, a nested dbname: the structured mask sees them decoded
            with contextlib.suppress(ArgumentError, ValueError, BadDatabaseURL):
                parsed = _parse(url)
                if url_secrets(parsed):
                    return mask(parsed)
        split = _split_userinfo(url)
        if split:
            scheme, user, _, rest = split
            url = f"{scheme}{user}:{token}{rest}"
        return url

    def key_value(found: re.Match) -> str:
        value = found.group("value")
        before = found.string[found.start() - 1] if found.start() else ""
        tail = ""
        if before and before in "?&;" and not value.startswith(("'", '"')):
            # a query string: the value ends at the next parameter
            value, amp, rest = value.partition("&")
            tail = _KEY_VALUE.sub(key_value, amp + rest)
        return f"{found.group('key')}{found.group('sep')}{token if value else ''}{tail}"

    text = re.sub(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]*", one_url, text)
    # user:password@host without a scheme (a URL typed without it)
    text = re.sub(r"(?<![\w/:.@%+\-])([\w.\-]+):(?!//)[^\s'\"]+@(?=[\w\[])", rf"\1:{token}@", text)
    text = _KEY_VALUE.sub(key_value, text)
    return _DICT_ITEM.sub(lambda m: f"{m.group('q')}{m.group('key')}{m.group('q')}{m.group('sep')}"
                                    f"'{token}'", text)


def _parse(text: str) -> URL:
    split = _split_userinfo(text)
    if split and "@" in split[2]:
        # SQLAlchemy would end the password at its first "@" (and show the rest as host)
        scheme, user, password, rest = split
        text = f"{scheme}{user}:{quote(unquote(password), safe='')}{rest}"
    return make_url(text)


def parse_url(url: str | URL) -> URL:
    """``url`` as a SQLAlchemy URL, leniently: an unencoded ``@`` in the password stays in
    the password. Raises BadDatabaseURL (one line, masked) for what cannot be parsed."""
    if isinstance(url, URL):
        return url
    text = str(url)
    try:
        return _parse(text)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
        port = re.search(r"invalid literal for int\(\) with base 10: '(.*)'", str(exc))
        reason = (f"port '{port.group(1)}' is not a number" if port
                  else "a libpq connection string, not a URL" if parse_conninfo(text) else "cannot parse it")
        raise BadDatabaseURL(f"not a database URL ({reason}): {_mask_patterns(str(url))}",
                             hint="e.g. postgresql+psycopg://user:password@host:5432/db "
                                  "(percent-encode @ : / ? in the password) or sqlite:///file.db") from None


def mask(url: str | URL) -> str:
    """The one way a URL is shown or written: every credential (userinfo password,
    ``password``/``sslpassword``/``passfile`` parameters, secrets in a nested ``dbname``
    DSN or URI) as ``***``. Text that is no URL gets :func:`scrub`'s patterns."""
    try:
        parsed = parse_url(url)
    except BadDatabaseURL:
        return _mask_patterns(str(url))
    query: dict[str, str | tuple[str, ...]] = {}
    for key, value in parsed.query.items():
        values = value if isinstance(value, tuple) else (value,)
        if key.lower() in SECRET_KEYS:
            values = tuple(_PLACEHOLDER for _ in values)
        else:
            values = tuple(_mask_patterns(v, _PLACEHOLDER) for v in values)
        query[key] = values if isinstance(value, tuple) else values[0]
    database = parsed.database and _mask_patterns(parsed.database, _PLACEHOLDER)
    shown = parsed.set(database=database, query=query).render_as_string(hide_password=True)
    return shown.replace(_PLACEHOLDER, MASK)


def url_secrets(url: str | URL) -> list[str]:
    """Every credential value ``url`` holds (password, ``sslpassword``, ``passfile``, in
    the userinfo, the query or a nested ``dbname``), for :func:`scrub`."""
    try:
        parsed = parse_url(url)
    except BadDatabaseURL:
        split = _split_userinfo(str(url))
        found = [split[2], unquote(split[2])] if split else []
        return found + [v for k, v in parse_conninfo(str(url)).items() if k in SECRET_KEYS]
    found = [v for k, v in libpq_params(parsed).items() if k in SECRET_KEYS and v]
    for key, value in parsed.query.items():  # repeated parameters: every value
        if key.lower() in SECRET_KEYS:
            found += list(value) if isinstance(value, tuple) else [value]
    return found


def scrub(text: str, *urls: str | URL | None) -> str:
    """The one cleaner of free text (driver errors, pg_dump output, statements): every
    secret of ``urls`` (as given, percent- and form-encoded, quoted) and anything shaped
    like a credential (``user:pw@`` in a URL, ``password=…``, ``'password': …``) replaced
    by ``***``."""
    text = str(text)
    secrets: set[str] = set()
    for url in urls:
        if url is None:
            continue
        for secret in url_secrets(url):
            secrets |= {secret, quote(secret, safe=""), quote_plus(secret), quote(secret),
                        libpq_quote(secret)}
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return _mask_patterns(text)


# --------------------------------------------------------------------------- libpq parameters


def libpq_quote(value: str) -> str:
    """A libpq keyword/value string value, quoted when it must be."""
    if value and not re.search(r"[\s'\\]", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def parse_conninfo(text: str) -> dict[str, str]:
    """A libpq connection string (``host=h password='a b'``) or ``postgresql://`` URI as a
    dict (keys lower-cased); {} for text that is neither."""
    if re.match(r"postgres(?:ql)?://", text):
        try:
            return libpq_params(parse_url("postgresql://" + text.split("://", 1)[1]))
        except BadDatabaseURL:
            return {}
    params: dict[str, str] = {}
    for found in re.finditer(r"([A-Za-z_]\w*)\s*=\s*('(?:[^'\\]|\\.)*'|\S*)", text):
        value = found.group(2)
        if value.startswith("'"):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params[found.group(1).lower()] = value
    return params


def libpq_params(url: str | URL) -> dict[str, str]:
    """The libpq parameters a PostgreSQL URL connects with, credentials included: host,
    port, user, password and dbname, the query's parameters (keys lower-cased; the last of
    repeated ones, as libpq takes), and a ``dbname`` holding a connection string or URI
    expanded (pg_dump would expand it; the URL's own parameters win)."""
    parsed = parse_url(url)
    params: dict[str, str] = {}
    for key, value in (("host", parsed.host), ("port", parsed.port), ("user", parsed.username),
                       ("password", parsed.password), ("dbname", parsed.database)):
        if value not in (None, ""):
            params[key] = str(value)
    for key, value in parsed.query.items():
        params[key.lower()] = value[-1] if isinstance(value, tuple) else value
    dbname = params.get("dbname", "")
    if "=" in dbname or re.match(r"postgres(?:ql)?://", dbname):
        expanded = parse_conninfo(dbname)
        del params["dbname"]
        params = {**expanded, **params}
    return params


def resolve_url(url: str | None, embedded: Path | None) -> tuple[str, str]:
    """(url, source): the argument, else ``$CONDUCTOR_DATABASE_URL``, else the embedded
    SQLite file at ``embedded`` (``storages/<id>/dev.sqlite``)."""
    if url:
        return url, "argument"
    env = os.environ.get(URL_ENV)
    if env:
        return env, "environment"
    if embedded is None:
        raise DatabaseError("no database URL and no component for the embedded default",
                            hint=f"pass {option('url', 'URL')}, set {URL_ENV}, or name a component")
    return f"sqlite:///{embedded}", "embedded"


def _sqlite_connect(foreign_keys: bool):
    def on_connect(dbapi_connection, _record) -> None:
        # Python's sqlite3 opens transactions only before INSERT/UPDATE/DELETE, so DDL
        # would autocommit and SAVEPOINTs misbehave. Take over: the driver never begins
        # on its own, and _sqlite_begin emits BEGIN when SQLAlchemy starts a transaction
        # (the recipe in SQLAlchemy's pysqlite documentation).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # SQLite ships with foreign keys off; the tool turns them on for its connections.
        cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        cursor.close()
    return on_connect


#: execution option: SQLite transactions of this connection start with BEGIN IMMEDIATE,
#: taking the write lock at once (others wait or fail) instead of at the first write
SQLITE_BEGIN_IMMEDIATE = "conductor_sqlite_begin_immediate"


def _sqlite_begin(conn) -> None:
    immediate = conn.get_execution_options().get(SQLITE_BEGIN_IMMEDIATE)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


#: pip requirement of a driver module (the module name when it is not here)
DRIVER_PACKAGES = {
    "psycopg": "pip install 'conductor-magics[postgres]' (psycopg[binary])",
    "psycopg2": "pip install psycopg2-binary",
    "pg8000": "pip install pg8000",
    "asyncpg": "pip install asyncpg",
    "MySQLdb": "pip install mysqlclient (or pip install pymysql and a mysql+pymysql:// URL)",
    "pymysql": "pip install pymysql",
    "mysql": "pip install mysql-connector-python",
    "mariadb": "pip install mariadb",
    "asyncmy": "pip install asyncmy",
    "aiomysql": "pip install aiomysql",
    "duckdb": "pip install 'conductor-magics[duckdb]'",
    "duckdb_engine": "pip install 'conductor-magics[duckdb]'",
    "pyodbc": "pip install pyodbc",
    "pymssql": "pip install pymssql",
    "oracledb": "pip install oracledb",
    "cx_Oracle": "pip install cx_Oracle",
}
#: pip requirement of a dialect SQLAlchemy does not ship
DIALECT_PACKAGES = {
    "duckdb": "pip install 'conductor-magics[duckdb]'",
    "snowflake": "pip install snowflake-sqlalchemy",
    "cockroachdb": "pip install sqlalchemy-cockroachdb",
    "clickhouse": "pip install clickhouse-sqlalchemy",
}


def install_hint(drivername: str, module: str | None = None) -> str:
    """What to install for ``dialect+driver`` (``module``: the import that failed)."""
    top = (module or "").split(".")[0]
    if top in DRIVER_PACKAGES:
        return DRIVER_PACKAGES[top]
    dialect = drivername.split("+")[0]
    if not module and dialect in DIALECT_PACKAGES:
        return DIALECT_PACKAGES[dialect]
    if top:
        return f"pip install {top} (the {drivername} driver)"
    return f"the package that provides the SQLAlchemy dialect '{drivername}'"


def make_engine(url: str | URL, *, sqlite_foreign_keys: bool = True, **kwargs) -> Engine:
    """An Engine for ``url`` with the tool's per-dialect set-up.

    SQLite: foreign keys enforced (``sqlite_foreign_keys=False`` for steps that rebuild
    tables, such as Alembic batch migrations; PRAGMA foreign_keys cannot change inside a
    transaction) and real transactions, so DDL is transactional and SAVEPOINTs work.
    """
    parsed = parse_url(url)
    try:
        engine = create_engine(parsed, **kwargs)
    except NoSuchModuleError as exc:
        raise UnsupportedByDialect(f"no SQLAlchemy dialect for {mask(parsed)}: {scrub(str(exc), parsed)}",
                                   hint=f"install it: {install_hint(parsed.drivername)}") from None
    except ArgumentError as exc:
        raise BadDatabaseURL(f"not a database URL: {first_line(scrub(str(exc), parsed))}",
                             hint="e.g. postgresql+psycopg://user@host/db or sqlite:///file.db") from None
    except ModuleNotFoundError as exc:
        raise UnsupportedByDialect(f"the driver for {mask(parsed)} is not installed ({exc.name})",
                                   hint=f"install it: {install_hint(parsed.drivername, exc.name)}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_connect(sqlite_foreign_keys))
        event.listen(engine, "begin", _sqlite_begin)
        database = engine.url.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
    return engine


def connect(url: str | None = None, embedded: Path | None = None) -> Connected:
    """Resolve the URL, create the engine and check it answers."""
    resolved, source = resolve_url(url, embedded)
    engine = make_engine(resolved)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:  # the driver's own error types vary by dialect
        engine.dispose()
        raise DatabaseError(f"cannot connect to {mask(resolved)}: {driver_reason(exc, resolved)}",
                            hint="check the server is running and the URL is right") from None
    return Connected(engine, source)


def has_transactional_ddl(engine: Engine) -> bool:
    return engine.dialect.name in TRANSACTIONAL_DDL


def first_line(text: str) -> str:
    """The first non-empty line of a driver's multi-line error message."""
    for line in str(text).splitlines():
        if line.strip():
            return line.strip()
    return str(text).strip()


#: dialects whose SQLAlchemy reflection cannot read constraints (duckdb-engine issues
#: PostgreSQL catalog queries DuckDB does not answer: REGCLASS, pg_collation)
REFLECTION_UNSUPPORTED = {"duckdb"}


def require_reflection(bind, step: str) -> None:
    """Raise a plain UnsupportedByDialect when ``step`` needs schema reflection the
    connected dialect cannot do."""
    name = bind.dialect.name
    if name in REFLECTION_UNSUPPORTED:
        raise UnsupportedByDialect(
            f"{step} is not supported on {name}: its SQLAlchemy dialect cannot reflect "
            "constraints (foreign keys, checks)",
            hint="run this step against SQLite or PostgreSQL; SQL cells, transactions and "
                 "row fingerprints work on DuckDB")


@contextmanager
def connection_of(bind: Engine | Connection) -> Iterator[Connection]:
    """A Connection for ``bind``: a new one from an Engine (closed afterwards), or ``bind`` itself."""
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            yield conn
    else:
        yield bind


def table_exists(conn: Connection, name: str) -> bool:
    """Whether the default schema has table ``name`` (DuckDB asked directly: its
    inspector sees every schema)."""
    if conn.dialect.name == "duckdb":
        return bool(conn.execute(text(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() "
            "AND table_name = :name"), {"name": name}).scalar())
    return inspect(conn).has_table(name)


# --------------------------------------------------------------------------- driver errors
#
# The one place that words a driver's error for a user: one line, passwords scrubbed, and
# the failures that say nothing about the data (a lock held elsewhere, a lost connection, a
# lock wait that timed out, a deadlock) named plainly with what to do. Every path that
# touches a database ends in :func:`driver_reason` / :func:`database_error`, the edges
# (commands.run, the gate widget) and the gate checks through :func:`database_boundary`.

LOCKED, LOCK_TIMEOUT, DEADLOCK, LOST = "locked", "lock timeout", "deadlock", "connection lost"
#: what each kind of failure is called, and what to do about it
_KIND_WORDS = {
    LOCKED: ("the database is locked by another connection",
             "close it (or end its transaction) and retry"),
    LOCK_TIMEOUT: ("lock timeout: another session holds a lock this needs",
                   "wait for that session to finish (or end it) and retry"),
    DEADLOCK: ("deadlock with another session; this transaction was rolled back", "retry"),
    LOST: ("connection lost (the server terminated the session)", "reconnect and retry"),
}
#: SQLSTATEs (PostgreSQL) of each kind
_SQLSTATES = {
    "55P03": LOCK_TIMEOUT,  # lock_not_available: lock_timeout, NOWAIT
    "40P01": DEADLOCK,
    "57P01": LOST, "57P02": LOST, "57P03": LOST, "57P05": LOST,  # admin/crash shutdown, idle
    "25P03": LOST,  # idle_in_transaction_session_timeout
    "08000": LOST, "08003": LOST, "08006": LOST, "08001": LOST, "08004": LOST,
}
#: driver texts of each kind, for drivers without SQLSTATEs (SQLite, DuckDB, MySQL)
_TEXTS = [
    (re.compile(r"database (table |schema )?is locked|could not set lock on file", re.I), LOCKED),
    (re.compile(r"lock timeout|lock wait timeout exceeded", re.I), LOCK_TIMEOUT),
    (re.compile(r"deadlock (detected|found)", re.I), DEADLOCK),
    (re.compile(r"server closed the connection unexpectedly|terminating connection due to|"
                r"connection (is|was|has been) (closed|lost)|the connection is lost|"
                r"server has gone away|lost connection to", re.I), LOST),
]


def error_causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, the driver error it wraps, and what caused it (each once)."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        item = todo.pop(0)
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        todo.extend([getattr(item, "orig", None), item.__cause__, item.__context__])


def failure_kind(exc: BaseException) -> str | None:
    """:data:`LOCKED`, :data:`LOCK_TIMEOUT`, :data:`DEADLOCK` or :data:`LOST` when ``exc``
    says the database could not be used just now (retrying may succeed), else None."""
    for item in error_causes(exc):
        sqlstate = getattr(item, "sqlstate", None) or getattr(item, "pgcode", None)
        if sqlstate in _SQLSTATES:
            return _SQLSTATES[sqlstate]
        if getattr(item, "connection_invalidated", False):
            return LOST
        if getattr(item, "sqlite_errorname", "").startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            return LOCKED
    # the drivers' own texts only: a SQLAlchemy wrapper's text quotes the statement
    text = "\n".join(str(i) for i in error_causes(exc) if getattr(i, "orig", None) is None)
    for pattern, kind in _TEXTS:
        if pattern.search(text):
            return kind
    return None


def is_driver_error(exc: BaseException) -> bool:
    """Whether ``exc`` comes from SQLAlchemy or a DB-API driver (not from the tool itself)."""
    if isinstance(exc, ConductorError):  # already worded
        return False
    if isinstance(exc, SQLAlchemyError):
        return True
    # PEP 249: every driver's errors derive from its own Error/DatabaseError/InterfaceError
    return any(cls.__name__ in ("DatabaseError", "InterfaceError") and cls.__module__ != __name__
               for cls in type(exc).__mro__[1:])


def driver_reason(exc: BaseException, *urls: str | URL | None) -> str:
    """The one wording of a driver error: one line, every secret of ``urls`` (and of
    ``$CONDUCTOR_DATABASE_URL``) scrubbed; a lock, lock timeout, deadlock or lost connection
    said plainly with what to do."""
    kind = failure_kind(exc)
    if kind is not None:
        what, advice = _KIND_WORDS[kind]
        if kind == LOST and not _terminated(exc):
            what = "connection lost (the server closed it)"
        return f"{what}; {advice}"
    text = str(getattr(exc, "orig", None) or exc)
    return first_line(scrub(text, *urls, os.environ.get(URL_ENV)))


def _terminated(exc: BaseException) -> bool:
    return any((getattr(i, "sqlstate", None) or getattr(i, "pgcode", None)) == "57P01"
               or "terminating connection" in str(i) for i in error_causes(exc))


def database_error(operation: str, exc: BaseException, *urls: str | URL | None,
                   hint: str | None = None) -> DatabaseError:
    """The DatabaseError for ``operation`` failing with driver error ``exc``: one line
    naming the operation and then ``hint``; :class:`DatabaseUnavailable` (what to do in
    the message) when the database could not be used just now."""
    kind = failure_kind(exc)
    if kind is not None:
        error = DatabaseUnavailable(f"{operation}: {driver_reason(exc, *urls)}", hint=hint)
        error.kind = kind
        return error
    return DatabaseError(f"{operation} failed: {driver_reason(exc, *urls)}", hint=hint)


@contextmanager
def database_boundary(operation: str, *urls: str | URL | None,
                      hint: str | None = None) -> Iterator[None]:
    """Turn a driver error raised inside the block into :func:`database_error`'s one line
    (the tool's own errors, and anything else, pass through unchanged)."""
    try:
        yield
    except Exception as exc:
        if not is_driver_error(exc):
            raise
        raise database_error(operation, exc, *urls, hint=hint) from None


def statement_error(conn: Connection, number: int, total: int, statement: str,
                    error: BaseException) -> DatabaseError:
    """The DatabaseError for statement ``number`` of ``total`` failing: which statement
    (first line), the driver's error (:func:`driver_reason`), and what was rolled back."""
    url = conn.engine.url
    reason = driver_reason(error, url)
    where = first_line(scrub(statement, url))
    if re.search(r"(within|inside) a transaction", reason, re.I):
        hint = ("this statement cannot run inside a transaction (e.g. VACUUM, CREATE INDEX CONCURRENTLY): "
                "run it with the database's own client; nothing was applied")
    elif has_transactional_ddl(conn.engine) or conn.dialect.name == "sqlite":
        hint = "the statements ran in one transaction, which was rolled back: nothing was applied"
    else:
        hint = (f"the transaction was rolled back, but {conn.dialect.name} commits DDL statement "
                f"by statement: DDL before statement {number} may have been applied")
    cls = DatabaseUnavailable if failure_kind(error) else DatabaseError
    return cls(f"statement {number} of {total} failed ({where}): {reason}", hint=hint)

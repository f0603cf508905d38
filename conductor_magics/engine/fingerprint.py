"""Per-table row counts and hashes over ordered rows: "is the data exactly as before?"

Used by ``migrate check`` (upgrade → downgrade → upgrade leaves data identical),
by the failed-migration guarantee, and by backup verification.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, Table, inspect, select, text
from sqlalchemy.sql import quoted_name

from .connection import connection_of

#: tables that belong to the tooling, not to the user's schema
TOOL_TABLES = frozenset({"alembic_version", "conductor_revision_hashes"})


@dataclass(frozen=True)
class TableFingerprint:
    table: str
    rows: int
    sha256: str


def _canonical(value: Any) -> Any:
    # One text form per value so equal data hashes equally across drivers' Python types.
    if value is None:
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        return "0x" + bytes(value).hex()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral() else str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return value if isinstance(value, int | float | str) else str(value)


def user_tables(bind: Engine | Connection, schema: str | None = None) -> list[str]:
    """Table names of the user's schema, without the tool's own tables."""
    if bind.dialect.name == "duckdb":  # its reflection is unreliable; the catalog is not
        with connection_of(bind) as conn:
            names = conn.execute(text(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = coalesce(:schema, current_schema()) AND table_type = 'BASE TABLE'"),
                {"schema": schema}).scalars().all()
    else:
        names = inspect(bind).get_table_names(schema=schema)
    return sorted(t for t in names if t not in TOOL_TABLES)


def fingerprint_table(conn: Connection, table: Table) -> TableFingerprint:
    """Count and hash of ``table``'s rows, ordered by primary key (else by every column).

    The hash is over the driver's own row tuples (their ``repr``), read in streamed
    batches without SQLAlchemy's type processing: equal data on the same engine and
    driver hashes equally, which is what every comparison here needs (before / after on
    one database, a backup against its restore). Going through SQLAlchemy's result
    processing and JSON per value was 6–9× slower and the main cost of a backup.
    """
    order = list(table.primary_key.columns) or list(table.columns)
    sql = str(select(table).order_by(*order).compile(dialect=conn.dialect))
    digest = hashlib.sha256()
    count = 0
    # statement options only: conn.execution_options() would change the caller's connection
    result = conn.exec_driver_sql(sql, execution_options={"stream_results": True,
                                                          "no_parameters": True})
    for rows in result.partitions(_BATCH):
        digest.update("\n".join([repr(tuple(row)) for row in rows]).encode("utf-8"))
        digest.update(b"\n")
        count += len(rows)
    return TableFingerprint(str(table.name), count, digest.hexdigest())


#: rows per streamed batch while hashing
_BATCH = 10_000


def fingerprint(bind: Engine | Connection, tables: list[str] | None = None,
                schema: str | None = None) -> dict[str, TableFingerprint]:
    """Fingerprints of every user table (or the named ones)."""
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return fingerprint(conn, tables, schema)
    names = tables if tables is not None else user_tables(bind, schema)
    metadata = MetaData()
    found = {}
    for name in names:
        if bind.dialect.name == "duckdb":
            found[name] = _fingerprint_duckdb(bind, name)
            continue
        table = Table(quoted_name(name, None), metadata, autoload_with=bind, schema=schema)
        found[name] = fingerprint_table(bind, table)
    return found


def _fingerprint_duckdb(conn: Connection, name: str) -> TableFingerprint:
    # ORDER BY ALL sorts by every column left to right: a total order without reflection.
    quoted = conn.dialect.identifier_preparer.quote(name)
    digest = hashlib.sha256()
    count = 0
    for row in conn.exec_driver_sql(f"SELECT * FROM {quoted} ORDER BY ALL"):
        digest.update(json.dumps([_canonical(v) for v in row], default=str).encode("utf-8"))
        digest.update(b"\n")
        count += 1
    return TableFingerprint(name, count, digest.hexdigest())


def schema_snapshot(bind: Engine | Connection) -> dict[str, Any]:
    """A comparable description of the schema: tables, columns, constraints, indexes."""
    insp = inspect(bind)
    snapshot: dict[str, Any] = {}
    for name in user_tables(bind):
        snapshot[name] = {
            "columns": [(c["name"], str(c["type"]), bool(c["nullable"])) for c in insp.get_columns(name)],
            "pk": insp.get_pk_constraint(name).get("constrained_columns"),
            "fks": sorted((tuple(f["constrained_columns"]), f["referred_table"],
                           tuple(f["referred_columns"])) for f in insp.get_foreign_keys(name)),
            "uniques": sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(name)),
            "indexes": sorted((i["name"] or "", tuple(c or "" for c in i["column_names"]), bool(i["unique"]))
                              for i in insp.get_indexes(name)),
            "checks": sorted((c.get("sqltext") or "") for c in _checks(insp, name)),
        }
    return snapshot


def _checks(insp, name: str) -> list[dict]:
    try:
        return insp.get_check_constraints(name)
    except NotImplementedError:
        return []

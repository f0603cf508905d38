"""Drift: the five descriptions of a component compared pairwise.

A component is described five times: the spec (entities and query patterns), the declared
``schema.sql``, the migration revisions, the live database and the plan with its
verdicts. Each comparison below yields :class:`Finding` rows with the object, where it is
stated on each side (``file:line`` where there is one) and the command that fixes it;
:func:`drift` runs them all and returns a :class:`DriftReport` (a
:class:`~conductor_magics.results.Result`). The schema and migration gates run the
comparisons of their layers (:func:`gate_findings`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import ConductorError, command, option
from ..workspace.context import read_text_lenient
from ..workspace.layout import BACKUPS_FOLDER, SCHEMA_FILE, WORKLOAD_FILE
from ..workspace.sources import (
    modified,
    revision_files,
    revision_id,
    revision_mention,
    sha256,
    sql_line,
)
from ..workspace.spec import entities, served_indexes
from ..workspace.verification import read_log
from .context import ComponentDatabase
from .migrate import migrations
from .tuning import workload

#: the pairs compared, in the order they are reported
KINDS = ("spec-vs-schema", "queries-vs-schema", "schema-vs-migrations",
         "migrations-vs-database", "plan-vs-evidence")
#: the five layers, and which two each kind of finding sits between
LAYERS = ("spec", "schema.sql", "migrations", "database", "plan")
EDGES = {"spec-vs-schema": ("spec", "schema.sql"), "queries-vs-schema": ("spec", "schema.sql"),
         "schema-vs-migrations": ("schema.sql", "migrations"),
         "migrations-vs-database": ("migrations", "database"),
         "plan-vs-evidence": ("plan", "database")}
#: the kinds each gate includes
GATE_KINDS = {"schema": ("spec-vs-schema", "queries-vs-schema"),
              "migration": ("schema-vs-migrations", "migrations-vs-database")}
ERROR, WARNING = "error", "warning"


@dataclass
class Finding:
    """One disagreement between two layers."""

    kind: str
    severity: str
    object_type: str  # table, column, nullability, constraint, foreign key, index, revision, query, phase
    object: str
    message: str
    left: str  # where the first layer states it (file:line, or a description)
    right: str  # where the second layer states it (or does not)
    fix: str

    def line(self) -> str:
        """The one-line form: what, where, what to do."""
        return f"{self.message} [{self.left} ↔ {self.right}]; fix: {self.fix}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "severity": self.severity, "object_type": self.object_type,
                "object": self.object, "message": self.message, "left": self.left,
                "right": self.right, "fix": self.fix}


@dataclass
class DriftReport:
    """Every finding of one component; exit code 1 when there is any."""

    component: str
    findings: list[Finding] = field(default_factory=list)
    #: what could not be compared, and why (no schema.sql, no machine-readable entities, …)
    notes: list[str] = field(default_factory=list)
    kinds: tuple[str, ...] = KINDS

    @property
    def exit_code(self) -> int:
        return 1 if self.findings else 0

    def counts(self) -> dict[str, int]:
        """Findings per kind (every kind compared, zeros included)."""
        return {kind: sum(f.kind == kind for f in self.findings) for kind in self.kinds}

    def summary(self) -> str:
        if not self.findings:
            return f"{self.component}: no drift ({len(self.kinds)} comparisons)"
        errors = sum(f.severity == ERROR for f in self.findings)
        return (f"{self.component}: {len(self.findings)} drift finding(s) "
                f"({errors} error(s), {len(self.findings) - errors} warning(s))")

    def frame(self) -> pd.DataFrame:
        columns = ["kind", "severity", "object_type", "object", "message", "left", "right", "fix"]
        return pd.DataFrame([f.to_json() for f in self.findings], columns=columns)

    def to_json(self) -> dict[str, Any]:
        return {"component": self.component, "summary": self.summary(), "clean": not self.findings,
                "counts": self.counts(), "findings": [f.to_json() for f in self.findings],
                "notes": list(self.notes)}

    def to_text(self) -> str:
        lines = [self.summary()]
        for kind in self.kinds:
            found = [f for f in self.findings if f.kind == kind]
            if found:
                lines.append(f"\n{kind} ({len(found)}):")
                lines += [f"  [{f.severity}] {f.line()}" for f in found]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


# --------------------------------------------------------------------------- the run


class _Layers:
    """What the comparisons share: the files read once, the head database built once."""

    def __init__(self, db: ComponentDatabase, stack: contextlib.ExitStack):
        self.db = db
        self.dir = db.component.dir
        self.declared = db.declared_sql()
        self.schema_path = db.declared_path
        self.spec_path = db.component.spec_path
        self.spec = read_text_lenient(self.spec_path) if self.spec_path.is_file() else None
        self._stack = stack
        self._declared_md = None
        self._head: Any = False  # False: not built yet
        self._migrations = None

    def rel(self, path: Path, line: int | None = None) -> str:
        try:
            shown = path.relative_to(self.db.workspace.dir)
        except ValueError:
            shown = path
        return f"{shown}:{line}" if line else str(shown)

    def declared_metadata(self):
        if self._declared_md is None and self.declared:
            from ..engine.schema import declared_metadata
            from ..errors import DatabaseError

            try:
                self._declared_md = declared_metadata(self.declared, self.db.engine)
            except DatabaseError as exc:  # the file is the user's input: exit 2, nothing compared
                raise ConductorError(f"{SCHEMA_FILE} does not apply to a scratch database: "
                                     f"{exc.message}", path=self.schema_path,
                                     hint=f"fix it with {command('schema declare', cell=True)}, "
                                          "then compare again") from None
        return self._declared_md

    @property
    def migrations(self):
        if self._migrations is None:
            self._migrations = migrations(self.db)
        return self._migrations

    def heads(self) -> list[str]:
        return self.migrations.heads()

    def head(self):
        """A scratch database at the migration head (None without revisions)."""
        if self._head is False:
            self._head = self._stack.enter_context(self.migrations.head_database())
        return self._head


def drift(db: ComponentDatabase, kinds: tuple[str, ...] = KINDS) -> DriftReport:
    """Compare the component's layers pairwise (``kinds``: which comparisons)."""
    report = DriftReport(db.component.id, kinds=kinds)
    with contextlib.ExitStack() as stack:
        layers = _Layers(db, stack)
        for kind in kinds:
            report.findings.extend(_COMPARISONS[kind](layers, report.notes))
    return report


def gate_findings(db: ComponentDatabase, gate: str) -> list[Finding]:
    """The drift findings a phase gate includes (schema: spec and queries against
    schema.sql; migration: schema.sql against the revisions, the revisions against the
    live database); empty for other gates."""
    kinds = GATE_KINDS.get(gate)
    return drift(db, kinds).findings if kinds else []


# --------------------------------------------------------------------------- spec ↔ schema.sql


def _spec_vs_schema(layers: _Layers, notes: list[str]) -> Iterator[Finding]:
    if layers.spec is None:
        notes.append(f"spec-vs-schema: no {layers.rel(layers.spec_path)}")
        return
    stated = entities(layers.spec)
    if not stated.readable:
        notes.append(f"spec-vs-schema: {stated.reason}: nothing compared (no machine-readable "
                     "entities; a '## Entities' section with one '### table' heading and a "
                     "| Column | Type | Null | Constraints | table each is read)")
        return
    if not layers.declared:
        notes.append(f"spec-vs-schema: no {SCHEMA_FILE} declared yet")
        return
    metadata = layers.declared_metadata()
    sql, path = layers.declared, layers.schema_path
    declare = command("schema declare", cell=True)
    tables = {t.name.lower(): t for t in metadata.tables.values()}
    spec_names = {t.name.lower() for t in stated.tables}
    for spec_table in stated.tables:
        where = layers.rel(layers.spec_path, spec_table.line)
        table = tables.get(spec_table.name.lower())
        if table is None:
            yield Finding("spec-vs-schema", WARNING, "table", spec_table.name,
                          f"spec.md describes table {spec_table.name}; {SCHEMA_FILE} does not declare it",
                          where, layers.rel(path), f"declare it with {declare}")
            continue
        table_line = sql_line(sql, table.name)
        columns = {c.name.lower(): c for c in table.columns}
        for column in spec_table.columns:
            at = layers.rel(layers.spec_path, column.line)
            found = columns.get(column.name.lower())
            name = f"{table.name}.{column.name}"
            if found is None:
                yield Finding("spec-vs-schema", WARNING, "column", name,
                              f"spec.md describes column {name}; {SCHEMA_FILE} does not declare it",
                              at, layers.rel(path, table_line), f"add it to {SCHEMA_FILE} with {declare}")
                continue
            if column.nullable is not None and bool(found.nullable) != column.nullable:
                said = "NULL" if column.nullable else "NOT NULL"
                has = "NULL" if found.nullable else "NOT NULL"
                yield Finding("spec-vs-schema", WARNING, "nullability", name,
                              f"spec.md says {name} is {said}; {SCHEMA_FILE} declares it {has}",
                              at, layers.rel(path, sql_line(sql, table.name, column.name)),
                              f"make them agree (edit spec.md, or {SCHEMA_FILE} with {declare})")
        described = {c.name.lower() for c in spec_table.columns}
        for column in table.columns:
            if column.name.lower() not in described:
                name = f"{table.name}.{column.name}"
                yield Finding("spec-vs-schema", WARNING, "column", name,
                              f"{SCHEMA_FILE} declares column {name}; spec.md does not describe it",
                              where, layers.rel(path, sql_line(sql, table.name, column.name)),
                              f"describe it in spec.md's {spec_table.name} table, or drop it "
                              f"from {SCHEMA_FILE}")
        for constraint in spec_table.constraints:
            line = sql_line(sql, table.name, constraint.name)
            if line is None:
                yield Finding("spec-vs-schema", WARNING, "constraint", constraint.name,
                              f"spec.md names constraint {constraint.name} on {table.name}; "
                              f"{SCHEMA_FILE} does not declare it",
                              layers.rel(layers.spec_path, constraint.line),
                              layers.rel(path, table_line), f"name it in {SCHEMA_FILE} with {declare}")
    # foreign keys: the columns' "references" and the Relationships table
    wanted: dict[tuple[str, str, str, str], str] = {}
    for spec_table in stated.tables:
        for column in spec_table.columns:
            if column.references:
                key = (spec_table.name.lower(), column.name.lower(), *(x.lower() for x in column.references))
                wanted.setdefault(key, layers.rel(layers.spec_path, column.line))
    for rel in stated.relationships:
        key = (rel.from_table.lower(), rel.from_column.lower(), rel.to_table.lower(), rel.to_column.lower())
        wanted.setdefault(key, layers.rel(layers.spec_path, rel.line))
    for (src, col, dst, dcol), where in wanted.items():
        table = tables.get(src)
        if table is None or src not in spec_names and dst not in spec_names:
            continue  # the missing table is reported above
        has = any(len(fk.elements) == 1 and fk.elements[0].parent.name.lower() == col
                  and fk.elements[0].column.table.name.lower() == dst
                  and fk.elements[0].column.name.lower() == dcol
                  for fk in table.foreign_key_constraints)
        if not has and col in {c.name.lower() for c in table.columns}:
            yield Finding("spec-vs-schema", WARNING, "foreign key", f"{src}.{col} → {dst}.{dcol}",
                          f"spec.md says {src}.{col} references {dst}.{dcol}; {SCHEMA_FILE} "
                          "declares no such foreign key", where,
                          layers.rel(path, sql_line(sql, table.name)),
                          f"add the FOREIGN KEY to {SCHEMA_FILE} with {declare}")
    for name, table in sorted(tables.items()):
        if name not in spec_names:
            yield Finding("spec-vs-schema", WARNING, "table", table.name,
                          f"{SCHEMA_FILE} declares table {table.name}; spec.md does not describe it",
                          layers.rel(layers.spec_path), layers.rel(path, sql_line(sql, table.name)),
                          "describe it in spec.md's Entities section, or drop it from "
                          f"{SCHEMA_FILE}")


# --------------------------------------------------------------------------- queries ↔ schema.sql


def _queries(layers: _Layers) -> list[tuple[Any, str]]:
    """(query, severity) of workload.sql and of the spec's Query Patterns: a recorded
    query that no longer resolves is an error; a spec query is a statement of intent."""
    found: list[tuple[Any, str]] = []
    seen = set()
    for source, severity in (("workload", ERROR), ("spec", WARNING)):
        for query in workload(layers.db, source):
            key = " ".join(query.sql.split()).lower()
            if key not in seen:
                seen.add(key)
                found.append((query, severity))
    return found


def _queries_vs_schema(layers: _Layers, notes: list[str]) -> Iterator[Finding]:
    if not layers.declared:
        notes.append(f"queries-vs-schema: no {SCHEMA_FILE} declared yet")
        return
    from ..engine.drift import index_names, resolve_query, schema_columns

    schema = schema_columns(layers.declared_metadata())
    dialect = layers.db.engine.dialect.name
    path = layers.schema_path
    queries = _queries(layers)
    if not queries:
        notes.append(f"queries-vs-schema: no workload queries ({WORKLOAD_FILE} or the spec's "
                     "Query Patterns)")
    unresolved = set()
    for query, severity in queries:
        for problem in resolve_query(query.sql, schema, dialect):
            unresolved.add(query.name)
            where = _short(layers, query.source)
            recorded = severity == ERROR
            fix = (f"re-record it with {command('query ' + query.name, cell=True)}" if recorded
                   else "fix the query in spec.md, or add the missing table or column to "
                        f"{SCHEMA_FILE} with {command('schema declare', cell=True)}")
            yield Finding("queries-vs-schema", severity, "query", query.name,
                          f"query {query.name}: {problem} in {SCHEMA_FILE}", where,
                          layers.rel(path, _problem_line(layers.declared, problem)), fix)
    if layers.spec is None:
        return
    # an index serving a query that does not resolve yet is not the news
    claims = [c for c in served_indexes(layers.spec) if c.query not in unresolved]
    if not claims:
        return
    import re

    declared_words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", layers.declared.lower()))
    head = layers.head()
    head_names = index_names(head) if head is not None else set()
    live_names = index_names(layers.db.engine)
    for claim in claims:
        name = claim.index.lower()
        if name in declared_words or name in head_names or name in live_names:
            continue
        yield Finding("queries-vs-schema", WARNING, "index", claim.index,
                      f"spec.md says {claim.index} serves {claim.query}; neither {SCHEMA_FILE}, "
                      "the revisions nor the live database has it",
                      layers.rel(layers.spec_path, claim.line), layers.rel(path),
                      f"declare it in {SCHEMA_FILE} and create a revision "
                      f"({command('migrate new', option('m', 'MESSAGE'))}), or let "
                      f"{command('advise', option('apply'))} add what the workload needs")


def _short(layers: _Layers, source: str) -> str:
    """A query's source (``/abs/spec.md:12``) relative to the workspace."""
    path, sep, line = source.rpartition(":")
    if sep and line.isdigit():
        return layers.rel(Path(path), int(line))
    return layers.rel(Path(source)) if source else "?"


def _problem_line(sql: str, problem: str) -> int | None:
    """The CREATE TABLE line of the table a problem names (``unknown column t.c``)."""
    words = problem.split()
    if len(words) >= 3 and "." in words[2]:
        return sql_line(sql, words[2].split(".")[0].rstrip(","))
    return None


# --------------------------------------------------------------------------- schema.sql ↔ revisions


def _schema_vs_migrations(layers: _Layers, notes: list[str]) -> Iterator[Finding]:
    if not layers.declared:
        notes.append(f"schema-vs-migrations: no {SCHEMA_FILE} declared yet")
        return
    new = command("migrate new", option("m", "MESSAGE"))
    if not layers.migrations.folder.joinpath("versions").is_dir() or not layers.heads():
        yield Finding("schema-vs-migrations", ERROR, "revision", "(none)",
                      f"{SCHEMA_FILE} declares the schema but no revision creates it",
                      layers.rel(layers.schema_path), layers.rel(layers.migrations.folder),
                      f"run {new}")
        return
    from ..engine.drift import compare

    head = layers.head()
    with head.connect() as conn:
        differences = compare(conn, layers.declared_metadata())
    heads = ", ".join(layers.heads())
    for d in differences:
        left = layers.rel(layers.schema_path, sql_line(layers.declared, d.table, d.name or None))
        mention = revision_mention(layers.dir, d.name or d.table)
        right = layers.rel(*mention) if mention else f"migration head {heads}"
        if d.change == "missing":
            message = f"{SCHEMA_FILE} declares {d.object_type} {d.object} {d.detail}".rstrip() + \
                      " but no revision creates it"
            fix = f"run {new}"
        elif d.change == "extra":
            message = (f"the revisions create {d.object_type} {d.object} {d.detail}".rstrip()
                       + f" but {SCHEMA_FILE} does not declare it")
            fix = (f"declare it in {SCHEMA_FILE} ({command('schema declare', cell=True)}), or "
                   f"run {new} to drop it")
        else:
            message = f"{d.object_type} of {d.object} differs: {d.detail.replace('the database', 'the head')}"
            fix = f"run {new}"
        yield Finding("schema-vs-migrations", ERROR, _object_type(d), d.object, message,
                      left, right, fix)


def _object_type(d) -> str:
    return {"unique constraint": "constraint", "nullability": "column", "type": "column"}.get(
        d.object_type, d.object_type)


# --------------------------------------------------------------------------- revisions ↔ live database


def _migrations_vs_database(layers: _Layers, notes: list[str]) -> Iterator[Finding]:
    from ..engine.drift import compare, reflected_metadata
    from ..engine.migrations import live_heads

    live = layers.db.connected.masked_url
    if not layers.migrations.folder.joinpath("versions").is_dir() or not layers.heads():
        notes.append("migrations-vs-database: no revisions yet")
        return
    heads = sorted(layers.heads())
    applied = sorted(live_heads(layers.db.engine))
    if applied != heads:
        yield Finding("migrations-vs-database", ERROR, "revision", ", ".join(heads),
                      f"the live database is at {', '.join(applied) or 'base (nothing applied)'}, "
                      f"the head is {', '.join(heads)}",
                      layers.rel(layers.migrations.folder), f"live database {live}",
                      f"run {command('migrate up')}")
    else:
        head = layers.head()
        with layers.db.engine.connect() as conn:
            differences = compare(conn, reflected_metadata(head))
        for d in differences:
            mention = revision_mention(layers.dir, d.name or d.table)
            left = layers.rel(*mention) if mention else f"migration head {', '.join(heads)}"
            if d.change == "extra":
                message = (f"{d.object_type} {d.object} {d.detail}".rstrip()
                           + " is in the live database but no revision creates it (added by hand)")
                fix = (f"drop it, or declare it in {SCHEMA_FILE} and run "
                       f"{command('migrate new', option('m', 'MESSAGE'))}")
            elif d.change == "missing":
                message = (f"the revisions create {d.object_type} {d.object} {d.detail}".rstrip()
                           + " but the live database does not have it (dropped by hand)")
                fix = (f"recreate it, or write a revision that drops it "
                       f"({command('migrate new', option('m', 'MESSAGE'))})")
            else:
                message = f"{d.object_type} of {d.object} differs from the head: {d.detail}"
                fix = f"change it back, or write a revision ({command('migrate new', option('m', 'MESSAGE'))})"
            yield Finding("migrations-vs-database", ERROR, _object_type(d), d.object, message,
                          left, f"live database {live}", fix)
    row = layers.migrations.applied_files_check()
    if row.status == "fail":
        yield Finding("migrations-vs-database", ERROR, "revision", "applied revision files",
                      row.detail, layers.rel(layers.migrations.folder / "versions"),
                      f"live database {live}", "restore the applied revision file from git, and "
                      f"put the change in a new revision ({command('migrate new', option('m', 'MESSAGE'))})")


# --------------------------------------------------------------------------- plan ↔ evidence


def _at(record: dict) -> datetime | None:
    try:
        stamp = datetime.fromisoformat(str(record.get("at")))
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.astimezone()


def _plan_vs_evidence(layers: _Layers, notes: list[str]) -> Iterator[Finding]:
    component = layers.db.component
    plan = component.read_plan()
    log = read_log(component.verification_path)
    verdicts = [(phase, log.verdict_for(phase, plan)) for phase in plan.phases]
    order = {id(record): n for n, record in enumerate(log.records)}
    if not any(v for _, v in verdicts):
        return
    for position, (phase, verdict) in enumerate(verdicts):
        if verdict is None or phase.kind not in ("schema", "migration", "indexing", "backup"):
            continue
        # a later phase's verdict saw the workspace after a change: the newest verdict of
        # this phase or a later one is what the evidence is compared with
        # in log order: the log is append-only, so its last record is the newest (`at` has
        # whole seconds and cannot tell two verdicts of one second apart)
        later = sorted((v for _, v in verdicts[position:] if v is not None and _at(v) is not None),
                       key=lambda v: order[id(v)])
        if not later:
            continue
        newest = later[-1]
        since = _at(newest)
        where = layers.rel(component.plan_path, phase.line)
        verify = command("verify", option("phase", str(phase.number)), option("run-checks"),
                         option("confirm", "NOTE"))
        changed = _CHANGES[phase.kind](layers, newest, since, later)
        if changed is None:
            continue
        what, right = changed
        yield Finding("plan-vs-evidence", WARNING, "phase", phase.label,
                      f"the verdict of {phase.label} ({verdict.get('at')}) is stale: {what}",
                      where, right, f"review and verify it again: {verify} (after a revert, "
                      "or once the change is reviewed)")


def _schema_changed(layers: _Layers, verdict: dict, since: datetime, _later) -> tuple[str, str] | None:
    path = layers.schema_path
    now = sha256(path)
    recorded = (verdict.get("evidence") or {}).get("schema_sha256", False)
    stamp = modified(path)
    when = stamp.isoformat(timespec="seconds") if stamp else "?"
    if recorded is not False:
        if now == recorded:
            return None
        if now is None:
            return f"{SCHEMA_FILE} was deleted after the verdict of {since.isoformat()}", layers.rel(path)
        return (f"{SCHEMA_FILE} changed after the verdict of {since.isoformat()} (content hash "
                f"{(recorded or 'none')[:12]} → {now[:12]}, modified {when})", layers.rel(path))
    # an older verdict without evidence: the file's modification time against the verdict
    if stamp is not None and stamp >= since + timedelta(seconds=1):
        return (f"{SCHEMA_FILE} was modified at {when}, after the verdict of {since.isoformat()}",
                layers.rel(path))
    return None


def _revisions_changed(layers: _Layers, verdict: dict, since: datetime, _later) -> tuple[str, str] | None:
    files = revision_files(layers.dir)
    recorded = (verdict.get("evidence") or {}).get("revisions")
    if recorded is not None:
        added = [p for p in files if revision_id(p) not in set(recorded)]
    else:
        added = [p for p in files if (modified(p) or since) >= since + timedelta(seconds=1)]
    if not added:
        return None
    names = ", ".join(f"{revision_id(p)} ({p.name}, {modified(p).isoformat(timespec='seconds')})"
                      for p in added)
    return (f"{len(added)} revision(s) added after the verdict of {since.isoformat()}: {names}",
            layers.rel(added[0]))


def _indexes_changed(layers: _Layers, verdict: dict, since: datetime, later) -> tuple[str, str] | None:
    from ..engine.drift import index_names

    with_indexes = [v for v in later if (v.get("evidence") or {}).get("indexes") is not None]
    if not with_indexes:
        return None
    recorded = set(with_indexes[-1]["evidence"]["indexes"])  # `later` is in log order
    dropped = sorted(recorded - index_names(layers.db.engine))
    if not dropped:
        return None
    return (f"index(es) {', '.join(dropped)} dropped after the verdict of {since.isoformat()}",
            f"live database {layers.db.connected.masked_url}")


def _backup_changed(layers: _Layers, verdict: dict, since: datetime, _later) -> tuple[str, str] | None:
    from ..engine.backup import Backups
    from ..engine.migrations import last_migration_at, migration_head

    migrated = last_migration_at(layers.db.engine)
    if migrated is None or migrated <= since:
        return None
    folder = layers.dir / BACKUPS_FOLDER
    newest = Backups(folder, layers.db.engine).latest() if folder.is_dir() else None
    # applied_at has whole seconds: a pre-migration backup taken in the same second looks
    # newer than the migration, so the backup must also be at the current head (as the gate asks)
    if (newest is not None and newest.created > migrated
            and newest.migration_head == migration_head(layers.db.engine)):
        return None
    taken = f"the newest backup {newest.name} ({newest.created_at})" if newest else "no backup"
    return (f"a migration was applied at {migrated.isoformat(timespec='seconds')}, after the "
            f"verdict of {since.isoformat()}, and {taken} is older than it",
            layers.rel(folder))


_CHANGES = {"schema": _schema_changed, "migration": _revisions_changed,
            "indexing": _indexes_changed, "backup": _backup_changed}

_COMPARISONS = {"spec-vs-schema": _spec_vs_schema, "queries-vs-schema": _queries_vs_schema,
                "schema-vs-migrations": _schema_vs_migrations,
                "migrations-vs-database": _migrations_vs_database,
                "plan-vs-evidence": _plan_vs_evidence}


def evidence(db: ComponentDatabase) -> dict[str, Any]:
    """What a verdict records so that drift can tell later whether it went stale: the
    declared schema's hash, the revision ids and the live database's index names."""
    from ..workspace.sources import file_evidence

    found = file_evidence(db.component.dir)
    # every gate that looked at the database records its indexes: a later verdict that saw
    # an index go (a revision dropped it) keeps an earlier indexing verdict from going stale
    from ..engine.drift import index_names

    with contextlib.suppress(ConductorError):
        found["indexes"] = sorted(index_names(db.engine))
    return found


__all__ = ["EDGES", "GATE_KINDS", "KINDS", "LAYERS", "DriftReport", "Finding", "drift",
           "evidence", "gate_findings"]

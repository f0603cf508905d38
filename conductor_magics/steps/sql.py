"""The live-database steps that run SQL: connect, sql cells, transactions, the
integrity report and the CRUD smoke test."""

from __future__ import annotations

from .context import ComponentDatabase, StepResult


def connect(db: ComponentDatabase) -> StepResult:
    """Connect (embedded SQLite unless a URL is given) and say to what."""
    c = db.connected
    return StepResult(f"{db.component.id}: connected to {c.masked_url} ({c.dialect}, from {c.source})",
                      c.to_json())


def sql(db: ComponentDatabase, body: str) -> StepResult:
    """Run a SQL cell's statements (each bounded by the step timeout)."""
    from ..engine.sqlrun import run_sql

    result = run_sql(db.engine, body, timeout=db.timeout)
    frames = [("result", result.frame)] if result.frame is not None else []
    return StepResult(result.to_text().splitlines()[0] if result.to_text() else "ok",
                      result.to_json(), frames)


def txn(db: ComponentDatabase, body: str, isolation: str | None = None, python: bool = False,
        namespace: dict | None = None) -> StepResult:
    """Run a cell (SQL, or Python with ``python``) in one transaction."""
    from ..engine.sqlrun import run_transaction

    result = run_transaction(db.engine, body, isolation=isolation, python=python,
                             namespace=namespace, timeout=db.timeout)
    frames = [("result", result.frame)] if result.frame is not None else []
    return StepResult(result.to_text().splitlines()[0], result.to_json(), frames)


def integrity(db: ComponentDatabase) -> StepResult:
    """Constraints declared vs live, probes that they are enforced, and data checks."""
    from ..engine.integrity import check_integrity

    report = check_integrity(db.engine, db.declared_sql())
    frames = [(name, frame) for name, frame in (
        ("constraints", report.inventory), ("probes", report.probes),
        ("data checks", report.data), ("structural checks", report.structural)) if frame is not None]
    problems = report.problems
    summary = (f"{db.component.id}: integrity: "
               + (f"{len(problems)} problem(s): " + "; ".join(problems[:5]) if problems else "clean"))
    return StepResult(summary, report.to_json(), frames, exit_code=1 if problems else 0)


def crud(db: ComponentDatabase, table: str | None = None, rows: int = 5) -> StepResult:
    """Insert, read, update and delete rows in each table (or one), then roll back."""
    from ..engine.integrity import crud as crud_smoke

    frame = crud_smoke(db.engine, table, rows=rows)
    failed = int((frame["status"] != "ok").sum()) if "status" in frame else 0
    return StepResult(f"{db.component.id}: CRUD smoke on {len(frame)} table(s), rolled back: "
                      + ("all ok" if not failed else f"{failed} failed"),
                      {}, [("crud", frame)], exit_code=1 if failed else 0)

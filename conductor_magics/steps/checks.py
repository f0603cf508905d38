"""The gate's automated checks for a phase kind, run against the component's database."""

from __future__ import annotations

from ..engine import checks as gate_checks
from ..errors import ChecksFailed, ConductorError, DatabaseUnavailable, command
from ..workspace.files import atomic_write_bytes
from ..workspace.layout import ARTIFACT_FILES, BACKUPS_FOLDER, BENCHMARKS_FILE
from .context import ComponentDatabase
from .drift import ERROR, GATE_KINDS, drift
from .tuning import workload


def run_checks(db: ComponentDatabase, kind: str) -> list[gate_checks.CheckResult]:
    """The automated checks for a phase kind; artifacts (ER diagram) are saved."""
    try:
        queries = workload(db) if kind == "indexing" else []
    except ConductorError:
        queries = []
    folder = db.component.dir
    context = gate_checks.CheckContext(db.engine, db.declared_sql(), db.migrations_folder,
                                       folder / BENCHMARKS_FILE, folder / BACKUPS_FOLDER, queries)
    results = gate_checks.run_checks(kind, context)
    results.extend(drift_checks(db, kind))
    for result in results:
        for kind, text in result.artifacts.items():
            with db.lock():
                atomic_write_bytes(folder / ARTIFACT_FILES[kind], text.encode("utf-8"))
    return results


def drift_checks(db: ComponentDatabase, kind: str) -> list[gate_checks.CheckResult]:
    """The drift comparisons a gate includes, one row each: a drift error fails the row
    with the finding's one-line message; warnings pass it and are listed. None before
    there is a schema.sql (and, for the migration gate, a revision) to compare."""
    import time

    from ..workspace.sources import revision_files

    # nothing to compare yet: the gate's own first check already says what is missing
    if not db.declared_sql() or (kind == "migration" and not revision_files(db.component.dir)):
        return []
    rows = []
    for pair in GATE_KINDS.get(kind, ()):
        name = f"no drift: {pair}"
        started = time.perf_counter()
        try:
            findings = drift(db, (pair,)).findings
        except DatabaseUnavailable:
            raise
        except ConductorError as exc:
            rows.append(gate_checks.CheckResult(name, gate_checks.FAIL, exc.message,
                                                time.perf_counter() - started))
            continue
        errors = [f for f in findings if f.severity == ERROR]
        shown = errors or findings
        detail = shown[0].line() if shown else "the layers agree"
        if len(shown) > 1:
            detail += f" (and {len(shown) - 1} more: run {command('drift')})"
        if findings and not errors:
            detail = f"{len(findings)} warning(s): {detail}"
        rows.append(gate_checks.CheckResult(name, gate_checks.FAIL if errors else gate_checks.PASS,
                                            detail, time.perf_counter() - started))
    return rows


def require_passed(results: list[gate_checks.CheckResult], waivers: dict[str, str]) -> None:
    """Raise when a failed check is not waived (waivers match check names, case-insensitive)."""
    waived = {k.casefold() for k in waivers}
    failing = [r for r in results if r.status == gate_checks.FAIL and r.name.casefold() not in waived]
    if failing:
        listing = "; ".join(f"{r.name}: {r.detail}" for r in failing)
        raise ChecksFailed(f"{len(failing)} automated check(s) failed: {listing}",
                           hint="fix them, or waive one with --waive 'CHECK=REASON'")

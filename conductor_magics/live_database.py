"""The live-database steps of the implement loop, for one component, as one object.

:class:`LiveDatabase` is a thin facade over ``steps/``: it is the per-component
database context (:class:`~.steps.context.ComponentDatabase`) with one method per
command, each calling the step function that does the work. The CLI, the magics and
the session ask it; nothing in ``steps/``, ``engine/`` or ``workspace/`` imports it.
"""

from __future__ import annotations

from typing import Any

from .engine.checks import CheckResult
from .errors import ConductorError
from .steps import backup as backup_steps
from .steps import checks as check_steps
from .steps import drift as drift_steps
from .steps import migrate as migrate_steps
from .steps import schema as schema_steps
from .steps import sql as sql_steps
from .steps import tuning as tuning_steps
from .steps.context import ComponentDatabase, StepResult


class LiveDatabase(ComponentDatabase):
    """The live-engine steps for one component."""

    def connect(self) -> StepResult:
        return sql_steps.connect(self)

    # -- declared schema and migrations ------------------------------------------------

    def schema_declare(self, sql: str, apply: bool = False) -> StepResult:
        """Validate DDL on a scratch database, then save it as the declared schema."""
        return schema_steps.schema_declare(self, sql, apply=apply)

    def schema_show(self, live: bool = False) -> StepResult:
        return schema_steps.schema_show(self, live=live)

    def migrations(self):
        return migrate_steps.migrations(self)

    def migrate(self, action: str, target: str | None = None, message: str | None = None,
                empty: bool = False, confirm: bool = False) -> StepResult:
        """One migrate action (see :func:`.steps.migrate.migrate`); ``new``, ``up`` and
        ``down`` first finish an interrupted ``advise --apply``, whose revision they would
        otherwise build on or skip."""
        finished = (tuning_steps.finish_interrupted_apply(self)
                    if action in ("new", "up", "down") else None)
        result = migrate_steps.migrate(self, action, target, message, empty, confirm=confirm)
        if finished:
            result.summary = f"{self.component.id}: {finished}; {result.summary}"
        return result

    # -- SQL, transactions, integrity ------------------------------------------------------

    def sql(self, body: str) -> StepResult:
        return sql_steps.sql(self, body)

    def txn(self, body: str, isolation: str | None = None, python: bool = False,
            namespace: dict | None = None) -> StepResult:
        return sql_steps.txn(self, body, isolation=isolation, python=python, namespace=namespace)

    def integrity(self) -> StepResult:
        return sql_steps.integrity(self)

    def crud(self, table: str | None = None, rows: int = 5) -> StepResult:
        return sql_steps.crud(self, table, rows=rows)

    # -- index tuning and backups --------------------------------------------------------

    def seed(self, table: str | None, rows: int, seed: int = 0, skew: float = 0.0) -> StepResult:
        return tuning_steps.seed(self, table, rows, seed, skew)

    def query(self, name: str | None, body: str | None, source: str | None = None) -> StepResult:
        """Record a query cell under ``name``, or list the workload (one query with ``name``)."""
        if (body or "").strip():
            if not name:
                raise ConductorError("a query cell needs a name", hint="%%conductor query NAME")
            return tuning_steps.record_query(self, name, body)
        if name:
            tuning_steps.find_query(self, name, source)  # an unknown name raises, listing the known ones
        result = tuning_steps.list_workload(self, source)
        if name:
            frame = result.frames[0][1]
            result.frames = [("workload", frame[frame["query"] == name])]
        return result

    def bench(self, body: str | None, name: str | None, indexes: list[str], **options: Any) -> StepResult:
        step, result = tuning_steps.bench(self, body, name, indexes, **options)
        step.value = result
        step.text = f"{self.component.id}: {result.to_text()}"
        return step

    def advise(self, source: str | None = None, **options: Any) -> StepResult:
        step, report = tuning_steps.advise(self, source, **options)
        if report is None:  # --abandon: no advice
            return step
        step.value = report
        details = report.to_text().split("\n", 1)[1:]  # its first line is the summary
        step.text = "\n".join([step.summary, *details])
        return step

    def backup(self, action: str = "create", ref: str | None = None, **options: Any) -> StepResult:
        return backup_steps.backup(self, action, ref, **options)

    def restore(self, ref: str, **options: Any) -> StepResult:
        return backup_steps.restore(self, ref, **options)

    # -- drift -------------------------------------------------------------------------

    def drift(self) -> drift_steps.DriftReport:
        """Spec, schema.sql, revisions, live database and plan verdicts compared pairwise."""
        return drift_steps.drift(self)

    def evidence(self) -> dict:
        """What a verdict records for drift (schema.sql hash, revisions, live indexes)."""
        return drift_steps.evidence(self)

    # -- gate checks ---------------------------------------------------------------------

    def run_checks(self, kind: str) -> list[CheckResult]:
        """The automated checks for a phase kind; artifacts (ER diagram) are saved."""
        return check_steps.run_checks(self, kind)

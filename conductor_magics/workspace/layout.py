"""Every name under ``storages/<id>/``: the one place that spells them.

The workspace, the steps, the commits and lint ask here; ``engine/`` knows none of them
(its functions take paths).
"""

from __future__ import annotations

from pathlib import Path

from ..fsio import read_utf8

SPEC_FILE = "spec.md"
PLAN_FILE = "plan.md"
METADATA_FILE = "metadata.json"
VERIFICATION_FILE = "verification.json"
TEST_RUNS_FILE = "test_runs.json"
#: the declared schema and its generated documentation (summary, ER diagram)
SCHEMA_FILE = "schema.sql"
SCHEMA_DOC_FILE = "schema.md"
MIGRATIONS_FOLDER = "migrations"
MIGRATION_VERSIONS = f"{MIGRATIONS_FOLDER}/versions"
BACKUPS_FOLDER = "backups"
WORKLOAD_FILE = "workload.sql"
BENCHMARKS_FILE = "benchmarks.jsonl"
#: an ``advise --apply`` under way (finished or undone by the next run)
ADVISE_INTENT = ".advise-apply.json"
#: the embedded SQLite database and its side files (never committed)
EMBEDDED_DATABASE = "dev.sqlite"
EMBEDDED_FILES = tuple(EMBEDDED_DATABASE + suffix for suffix in ("", "-journal", "-wal", "-shm"))

#: the bookkeeping files a commit of the component stages
BOOKKEEPING_FILES = frozenset({PLAN_FILE, METADATA_FILE, VERIFICATION_FILE, TEST_RUNS_FILE})
#: the folders the tool writes into (where its temporary files may be left)
WRITE_FOLDERS = ("", BACKUPS_FOLDER, MIGRATIONS_FOLDER, MIGRATION_VERSIONS)
#: artifacts the gate checks produce, by kind → the file they are saved as
ARTIFACT_FILES = {"schema_doc": SCHEMA_DOC_FILE}


def declared_path(component_dir: Path) -> Path:
    """Where a component's declared schema lives: ``storages/<id>/schema.sql``."""
    return Path(component_dir) / SCHEMA_FILE


def read_declared(component_dir: Path) -> str | None:
    """The component's declared DDL, or None when none was declared yet."""
    try:
        return read_utf8(declared_path(component_dir))
    except FileNotFoundError:
        return None

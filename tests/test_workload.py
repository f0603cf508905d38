"""Workload sources: workload.sql (named queries), the spec's Query Patterns, .sql files."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conductor_magics.engine.workload import Query, format_workload, parse_workload, upsert
from conductor_magics.errors import ConductorError
from conductor_magics.workspace.spec import query_patterns
from conductor_magics.workspace.workflow import ALWAYS, AUTO, NEVER, parse_workflow

SPEC = """# Spec

## Entities

```sql
SELECT 'not a query pattern'
```

## Query Patterns

Intro text.

### orders_by_customer

```sql
SELECT id FROM orders WHERE customer_id = :customer_id;
```

### `two blocks`

```sql
SELECT 1
```

```sql
SELECT 2
```

### Indexes

```sql
CREATE INDEX ix_orders_customer_id ON orders (customer_id);
```

```python
print("not sql")
```

## Performance

```sql
SELECT 'after the section'
```
"""


def test_query_patterns_are_the_sql_blocks_of_that_section_named_by_heading():
    found = query_patterns(SPEC)
    assert [(q.name, q.sql) for q in found] == [
        ("orders_by_customer", "SELECT id FROM orders WHERE customer_id = :customer_id"),
        ("two_blocks", "SELECT 1"),
        ("two_blocks_2", "SELECT 2"),
    ]
    assert SPEC.splitlines()[found[0].line - 1] == "```sql"


def test_no_section_means_no_queries():
    assert query_patterns("# Spec\n\n```sql\nSELECT 1\n```\n") == []


def test_example_spec_has_six_named_queries(project):
    spec = project / "storage-conductor" / "storages" / "orders_db" / "spec.md"
    names = [q.name for q in query_patterns(spec.read_text(encoding="utf-8"))]
    assert names == ["customer_orders_by_status", "order_with_items", "top_products_by_revenue",
                     "unpaid_orders_older_than", "daily_revenue", "payment_by_provider_reference"]


def test_workload_file_round_trip_and_upsert():
    text = "-- name: a\nSELECT 1;\n\n-- name: b\nSELECT *\nFROM t\nWHERE x = :x;\n"
    queries = parse_workload(text)
    assert [(q.name, q.sql, q.source) for q in queries] == [
        ("a", "SELECT 1", "workload.sql:1"), ("b", "SELECT *\nFROM t\nWHERE x = :x", "workload.sql:4")]
    assert parse_workload(format_workload(queries)) == queries
    replaced = parse_workload(upsert(text, Query("a", "SELECT 2")))
    assert [(q.name, q.sql) for q in replaced] == [("a", "SELECT 2"), ("b", queries[1].sql)]
    added = parse_workload(upsert(text, Query("c", "SELECT 3;")))
    assert [q.name for q in added] == ["a", "b", "c"] and added[2].sql == "SELECT 3"


def test_unnamed_sql_file_gets_numbered_names():
    assert [q.name for q in parse_workload("SELECT 1;\n-- comment\nSELECT 2;\n")] == ["query_1", "query_2"]


def test_bad_query_name_is_refused():
    from conductor_magics.engine.workload import check_name

    with pytest.raises(ConductorError, match="not a valid query name"):
        check_name("two words")


@pytest.mark.parametrize(("line", "expected"), [
    ("- **Pre-migration backups:** always", ALWAYS),
    ("- **Pre-migration backup:** off", NEVER),
    ("- **Backups before migrations:** auto", AUTO),
    ("", AUTO),
])
def test_pre_migration_backup_preference(line, expected):
    prefs = parse_workflow(f"# Workflow\n\n- **Migrations:** versioned (Alembic)\n{line}\n")
    assert prefs.pre_migration_backup == expected
    assert prefs.migrations == "versioned"


names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
statements = st.lists(
    st.text(alphabet=st.sampled_from(list("abcxyz 019=:'()*,<>_\n")), min_size=1, max_size=40)
    .map(lambda body: "SELECT " + body.strip().replace(";", "")).filter(lambda s: s.strip() != "SELECT"),
    min_size=1, max_size=5)


@given(st.lists(names, min_size=1, max_size=6, unique=True), statements)
def test_format_then_parse_gives_the_queries_back(query_names, sqls):
    queries = [Query(n, sqls[i % len(sqls)].strip()) for i, n in enumerate(query_names)]
    parsed = parse_workload(format_workload(queries))
    assert [(q.name, q.sql) for q in parsed] == [(q.name, q.sql.rstrip(";").strip()) for q in queries]


@given(st.lists(names, min_size=1, max_size=6, unique=True), names)
def test_upsert_replaces_by_name_and_keeps_the_order(query_names, new_name):
    text = format_workload([Query(n, f"SELECT {i}") for i, n in enumerate(query_names)])
    after = parse_workload(upsert(text, Query(new_name, "SELECT 'new'")))
    expected = list(query_names) if new_name in query_names else [*query_names, new_name]
    assert [q.name for q in after] == expected
    assert next(q for q in after if q.name == new_name).sql == "SELECT 'new'"

"""A seeded database to back up, and manifest edits another program might make."""

from __future__ import annotations

import json

from sqlalchemy import Engine

from conductor_magics.engine.backup import Manifest
from conductor_magics.engine.connection import make_engine
from conductor_magics.engine.sample import seed
from conductor_magics.engine.schema import apply_sql
from helpers.sample_ddl import V1

#: V1 (customers, orders) plus order lines: three tables, two foreign keys, a composite key,
#: NUMERIC, TIMESTAMP and nullable columns
SCHEMA = V1 + """
CREATE TABLE order_items (
  order_id INTEGER NOT NULL,
  line INTEGER NOT NULL,
  sku VARCHAR(40) NOT NULL,
  quantity INTEGER NOT NULL,
  price NUMERIC(10, 2),
  added_at TIMESTAMP,
  CONSTRAINT pk_order_items PRIMARY KEY (order_id, line),
  CONSTRAINT fk_order_items_order_id_orders FOREIGN KEY (order_id) REFERENCES orders (id),
  CONSTRAINT ck_order_items_quantity CHECK (quantity > 0)
);
CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num));
INSERT INTO alembic_version (version_num) VALUES ('abc123');
"""
HEAD = "abc123"


def seeded(url: str) -> Engine:
    """A database with SCHEMA, 200 generated rows per table and migration head HEAD."""
    engine = make_engine(url)
    apply_sql(engine, SCHEMA)
    seed(engine, rows=200)
    return engine



def set_manifest(manifest: Manifest, **changes) -> None:
    """Edit a stored manifest (synthetic times, forged hashes) the way another program would."""
    path = manifest.manifest_path
    data = json.loads(path.read_text(encoding="utf-8"))
    data.update(changes)
    path.write_text(json.dumps(data), encoding="utf-8")

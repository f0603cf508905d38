"""DDL shared by the engine tests: a v1 schema and a v2 that adds a column, an index and a CHECK."""

CUSTOMERS = """
CREATE TABLE customers (
  id INTEGER NOT NULL,
  email VARCHAR(254) NOT NULL,
  full_name VARCHAR(200) NOT NULL,
  CONSTRAINT pk_customers PRIMARY KEY (id),
  CONSTRAINT uq_customers_email UNIQUE (email)
);
"""

V1 = CUSTOMERS + """CREATE TABLE orders (
  id INTEGER NOT NULL,
  customer_id INTEGER NOT NULL,
  status VARCHAR(20) NOT NULL,
  total_cents INTEGER NOT NULL,
  CONSTRAINT pk_orders PRIMARY KEY (id),
  CONSTRAINT fk_orders_customer_id_customers FOREIGN KEY (customer_id) REFERENCES customers (id),
  CONSTRAINT ck_orders_status CHECK (status IN ('pending', 'paid', 'shipped', 'cancelled'))
);
CREATE INDEX ix_orders_customer_id ON orders (customer_id);
"""

# v2: a new column, a new index and a new CHECK
V2 = V1.replace(
    "  total_cents INTEGER NOT NULL,\n",
    "  total_cents INTEGER NOT NULL,\n  note VARCHAR(200),\n",
).replace(
    "  CONSTRAINT ck_orders_status CHECK",
    "  CONSTRAINT ck_orders_total_cents CHECK (total_cents >= 0),\n  CONSTRAINT ck_orders_status CHECK",
) + "CREATE INDEX ix_orders_status ON orders (status);\n"

#: index tuning: customers, and orders with a created_at to sort on and no secondary index
TUNING_SCHEMA = CUSTOMERS + """CREATE TABLE orders (
  id INTEGER NOT NULL,
  customer_id INTEGER NOT NULL,
  status VARCHAR(20) NOT NULL,
  total_cents INTEGER NOT NULL,
  created_at TIMESTAMP NOT NULL,
  CONSTRAINT pk_orders PRIMARY KEY (id),
  CONSTRAINT fk_orders_customer_id_customers FOREIGN KEY (customer_id) REFERENCES customers (id),
  CONSTRAINT ck_orders_status CHECK (status IN ('pending', 'paid', 'shipped', 'cancelled'))
);
"""

#: the workload query the advisor should find a composite index for
ORDER_LIST = """SELECT o.id, o.status, o.created_at
FROM orders AS o
WHERE o.customer_id = :customer_id AND o.status = :status
ORDER BY o.created_at DESC
LIMIT 20
"""

"""Workloads for ``bench_advisor.py``: TPC-H (public), two join workloads of our own whose
selective filter sits on the small table, the orders_db spec workload, and a 10 M-row
single-table PostgreSQL workload.

Every builder loads a SQLite file (and, given a psycopg DSN, a PostgreSQL database) and
returns a :class:`Workload`: named queries with literal values (so ``.expert``, the
advisor and supabase's ``index_advisor`` all see the same text) and notes on what was
adapted or left out.

TPC-H data comes from ``tpchgen-cli`` (PyPI; ``pip install tpchgen-cli`` into any venv,
then pass ``--tpchgen PATH`` or put it on PATH). Its queries are the 22 of the TPC-H
specification with the substitution parameters of its validation run, adapted to run on
SQLite and PostgreSQL alike (see :data:`TPCH_ADAPTED`).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "example_notebooks"
SPEC = EXAMPLES / "storage-conductor" / "storages" / "orders_db" / "spec.md"
NOTEBOOK = EXAMPLES / "implement_walkthrough.ipynb"
SQLITE_SHELL = shutil.which("sqlite3") or "/usr/bin/sqlite3"
CREATE_INDEX = re.compile(r"^\s*CREATE\s+(UNIQUE\s+)?INDEX\b", re.I)


@dataclass
class Workload:
    """One workload: where its data is, its queries (name → SQL with literals) and notes."""

    name: str
    description: str
    sqlite_path: Path | None
    queries: dict[str, str]
    rows: dict[str, int]
    notes: dict[str, str] = field(default_factory=dict)  # query or topic → what was done
    skipped: dict[str, str] = field(default_factory=dict)  # query → why it is not in the workload
    params: dict[str, dict] = field(default_factory=dict)  # query → bound :parameters (orders_db)


class MissingTool(RuntimeError):
    """A generator or server the workload needs is not installed (the message says how)."""


def _count_rows(db: sqlite3.Connection, tables) -> dict[str, int]:
    return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


# -- TPC-H -----------------------------------------------------------------------------------

TPCH_SCHEMA = """
CREATE TABLE region (r_regionkey INTEGER PRIMARY KEY, r_name CHAR(25) NOT NULL, r_comment VARCHAR(152));
CREATE TABLE nation (n_nationkey INTEGER PRIMARY KEY, n_name CHAR(25) NOT NULL,
  n_regionkey INTEGER NOT NULL REFERENCES region, n_comment VARCHAR(152));
CREATE TABLE part (p_partkey INTEGER PRIMARY KEY, p_name VARCHAR(55) NOT NULL, p_mfgr CHAR(25) NOT NULL,
  p_brand CHAR(10) NOT NULL, p_type VARCHAR(25) NOT NULL, p_size INTEGER NOT NULL,
  p_container CHAR(10) NOT NULL, p_retailprice DECIMAL(15,2) NOT NULL, p_comment VARCHAR(23) NOT NULL);
CREATE TABLE supplier (s_suppkey INTEGER PRIMARY KEY, s_name CHAR(25) NOT NULL, s_address VARCHAR(40) NOT NULL,
  s_nationkey INTEGER NOT NULL REFERENCES nation, s_phone CHAR(15) NOT NULL,
  s_acctbal DECIMAL(15,2) NOT NULL, s_comment VARCHAR(101) NOT NULL);
CREATE TABLE partsupp (ps_partkey INTEGER NOT NULL REFERENCES part, ps_suppkey INTEGER NOT NULL REFERENCES supplier,
  ps_availqty INTEGER NOT NULL, ps_supplycost DECIMAL(15,2) NOT NULL, ps_comment VARCHAR(199) NOT NULL,
  PRIMARY KEY (ps_partkey, ps_suppkey));
CREATE TABLE customer (c_custkey INTEGER PRIMARY KEY, c_name VARCHAR(25) NOT NULL, c_address VARCHAR(40) NOT NULL,
  c_nationkey INTEGER NOT NULL REFERENCES nation, c_phone CHAR(15) NOT NULL, c_acctbal DECIMAL(15,2) NOT NULL,
  c_mktsegment CHAR(10) NOT NULL, c_comment VARCHAR(117) NOT NULL);
CREATE TABLE orders (o_orderkey INTEGER PRIMARY KEY, o_custkey INTEGER NOT NULL REFERENCES customer,
  o_orderstatus CHAR(1) NOT NULL, o_totalprice DECIMAL(15,2) NOT NULL, o_orderdate DATE NOT NULL,
  o_orderpriority CHAR(15) NOT NULL, o_clerk CHAR(15) NOT NULL, o_shippriority INTEGER NOT NULL,
  o_comment VARCHAR(79) NOT NULL);
CREATE TABLE lineitem (l_orderkey INTEGER NOT NULL REFERENCES orders, l_partkey INTEGER NOT NULL REFERENCES part,
  l_suppkey INTEGER NOT NULL REFERENCES supplier, l_linenumber INTEGER NOT NULL, l_quantity DECIMAL(15,2) NOT NULL,
  l_extendedprice DECIMAL(15,2) NOT NULL, l_discount DECIMAL(15,2) NOT NULL, l_tax DECIMAL(15,2) NOT NULL,
  l_returnflag CHAR(1) NOT NULL, l_linestatus CHAR(1) NOT NULL, l_shipdate DATE NOT NULL,
  l_commitdate DATE NOT NULL, l_receiptdate DATE NOT NULL, l_shipinstruct CHAR(25) NOT NULL,
  l_shipmode CHAR(10) NOT NULL, l_comment VARCHAR(44) NOT NULL, PRIMARY KEY (l_orderkey, l_linenumber));
"""
TPCH_TABLES = ("region", "nation", "part", "supplier", "partsupp", "customer", "orders", "lineitem")

#: The 22 TPC-H queries (validation parameters). ``YEAR(col)`` is rewritten per dialect;
#: ``{fraction}`` (q11) is 0.0001 / SF as the specification says.
TPCH_QUERIES = {
    "q01": """SELECT l_returnflag, l_linestatus, sum(l_quantity) AS sum_qty, sum(l_extendedprice) AS sum_base_price,
  sum(l_extendedprice * (1 - l_discount)) AS sum_disc_price,
  sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) AS sum_charge, avg(l_quantity) AS avg_qty,
  avg(l_extendedprice) AS avg_price, avg(l_discount) AS avg_disc, count(*) AS count_order
FROM lineitem WHERE l_shipdate <= '1998-09-02'
GROUP BY l_returnflag, l_linestatus ORDER BY l_returnflag, l_linestatus""",
    "q02": """SELECT s_acctbal, s_name, n_name, p_partkey, p_mfgr, s_address, s_phone, s_comment
FROM part, supplier, partsupp, nation, region
WHERE p_partkey = ps_partkey AND s_suppkey = ps_suppkey AND p_size = 15 AND p_type LIKE '%BRASS'
  AND s_nationkey = n_nationkey AND n_regionkey = r_regionkey AND r_name = 'EUROPE'
  AND ps_supplycost = (SELECT min(ps_supplycost) FROM partsupp, supplier, nation, region
    WHERE p_partkey = ps_partkey AND s_suppkey = ps_suppkey AND s_nationkey = n_nationkey
      AND n_regionkey = r_regionkey AND r_name = 'EUROPE')
ORDER BY s_acctbal DESC, n_name, s_name, p_partkey LIMIT 100""",
    "q03": """SELECT l_orderkey, sum(l_extendedprice * (1 - l_discount)) AS revenue, o_orderdate, o_shippriority
FROM customer, orders, lineitem
WHERE c_mktsegment = 'BUILDING' AND c_custkey = o_custkey AND l_orderkey = o_orderkey
  AND o_orderdate < '1995-03-15' AND l_shipdate > '1995-03-15'
GROUP BY l_orderkey, o_orderdate, o_shippriority ORDER BY revenue DESC, o_orderdate LIMIT 10""",
    "q04": """SELECT o_orderpriority, count(*) AS order_count FROM orders
WHERE o_orderdate >= '1993-07-01' AND o_orderdate < '1993-10-01'
  AND EXISTS (SELECT * FROM lineitem WHERE l_orderkey = o_orderkey AND l_commitdate < l_receiptdate)
GROUP BY o_orderpriority ORDER BY o_orderpriority""",
    "q05": """SELECT n_name, sum(l_extendedprice * (1 - l_discount)) AS revenue
FROM customer, orders, lineitem, supplier, nation, region
WHERE c_custkey = o_custkey AND l_orderkey = o_orderkey AND l_suppkey = s_suppkey
  AND c_nationkey = s_nationkey AND s_nationkey = n_nationkey AND n_regionkey = r_regionkey
  AND r_name = 'ASIA' AND o_orderdate >= '1994-01-01' AND o_orderdate < '1995-01-01'
GROUP BY n_name ORDER BY revenue DESC""",
    "q06": """SELECT sum(l_extendedprice * l_discount) AS revenue FROM lineitem
WHERE l_shipdate >= '1994-01-01' AND l_shipdate < '1995-01-01'
  AND l_discount BETWEEN 0.05 AND 0.07 AND l_quantity < 24""",
    "q07": """SELECT supp_nation, cust_nation, l_year, sum(volume) AS revenue FROM (
  SELECT n1.n_name AS supp_nation, n2.n_name AS cust_nation, YEAR(l_shipdate) AS l_year,
    l_extendedprice * (1 - l_discount) AS volume
  FROM supplier, lineitem, orders, customer, nation n1, nation n2
  WHERE s_suppkey = l_suppkey AND o_orderkey = l_orderkey AND c_custkey = o_custkey
    AND s_nationkey = n1.n_nationkey AND c_nationkey = n2.n_nationkey
    AND ((n1.n_name = 'FRANCE' AND n2.n_name = 'GERMANY') OR (n1.n_name = 'GERMANY' AND n2.n_name = 'FRANCE'))
    AND l_shipdate BETWEEN '1995-01-01' AND '1996-12-31') AS shipping
GROUP BY supp_nation, cust_nation, l_year ORDER BY supp_nation, cust_nation, l_year""",
    "q08": """SELECT o_year, sum(CASE WHEN nation = 'BRAZIL' THEN volume ELSE 0 END) / sum(volume) AS mkt_share FROM (
  SELECT YEAR(o_orderdate) AS o_year, l_extendedprice * (1 - l_discount) AS volume, n2.n_name AS nation
  FROM part, supplier, lineitem, orders, customer, nation n1, nation n2, region
  WHERE p_partkey = l_partkey AND s_suppkey = l_suppkey AND l_orderkey = o_orderkey AND o_custkey = c_custkey
    AND c_nationkey = n1.n_nationkey AND n1.n_regionkey = r_regionkey AND r_name = 'AMERICA'
    AND s_nationkey = n2.n_nationkey AND o_orderdate BETWEEN '1995-01-01' AND '1996-12-31'
    AND p_type = 'ECONOMY ANODIZED STEEL') AS all_nations
GROUP BY o_year ORDER BY o_year""",
    "q09": """SELECT nation, o_year, sum(amount) AS sum_profit FROM (
  SELECT n_name AS nation, YEAR(o_orderdate) AS o_year,
    l_extendedprice * (1 - l_discount) - ps_supplycost * l_quantity AS amount
  FROM part, supplier, lineitem, partsupp, orders, nation
  WHERE s_suppkey = l_suppkey AND ps_suppkey = l_suppkey AND ps_partkey = l_partkey AND p_partkey = l_partkey
    AND o_orderkey = l_orderkey AND s_nationkey = n_nationkey AND p_name LIKE '%green%') AS profit
GROUP BY nation, o_year ORDER BY nation, o_year DESC""",
    "q10": """SELECT c_custkey, c_name, sum(l_extendedprice * (1 - l_discount)) AS revenue, c_acctbal, n_name,
  c_address, c_phone, c_comment
FROM customer, orders, lineitem, nation
WHERE c_custkey = o_custkey AND l_orderkey = o_orderkey AND o_orderdate >= '1993-10-01'
  AND o_orderdate < '1994-01-01' AND l_returnflag = 'R' AND c_nationkey = n_nationkey
GROUP BY c_custkey, c_name, c_acctbal, c_phone, n_name, c_address, c_comment
ORDER BY revenue DESC LIMIT 20""",
    "q11": """SELECT ps_partkey, sum(ps_supplycost * ps_availqty) AS value FROM partsupp, supplier, nation
WHERE ps_suppkey = s_suppkey AND s_nationkey = n_nationkey AND n_name = 'GERMANY'
GROUP BY ps_partkey HAVING sum(ps_supplycost * ps_availqty) > (
  SELECT sum(ps_supplycost * ps_availqty) * {fraction} FROM partsupp, supplier, nation
  WHERE ps_suppkey = s_suppkey AND s_nationkey = n_nationkey AND n_name = 'GERMANY')
ORDER BY value DESC""",
    "q12": """SELECT l_shipmode,
  sum(CASE WHEN o_orderpriority = '1-URGENT' OR o_orderpriority = '2-HIGH' THEN 1 ELSE 0 END) AS high_line_count,
  sum(CASE WHEN o_orderpriority <> '1-URGENT' AND o_orderpriority <> '2-HIGH' THEN 1 ELSE 0 END) AS low_line_count
FROM orders, lineitem
WHERE o_orderkey = l_orderkey AND l_shipmode IN ('MAIL', 'SHIP') AND l_commitdate < l_receiptdate
  AND l_shipdate < l_commitdate AND l_receiptdate >= '1994-01-01' AND l_receiptdate < '1995-01-01'
GROUP BY l_shipmode ORDER BY l_shipmode""",
    "q13": """SELECT c_count, count(*) AS custdist FROM (
  SELECT c_custkey, count(o_orderkey) AS c_count
  FROM customer LEFT OUTER JOIN orders ON c_custkey = o_custkey AND o_comment NOT LIKE '%special%requests%'
  GROUP BY c_custkey) AS c_orders
GROUP BY c_count ORDER BY custdist DESC, c_count DESC""",
    "q14": """SELECT 100.00 * sum(CASE WHEN p_type LIKE 'PROMO%' THEN l_extendedprice * (1 - l_discount) ELSE 0 END)
  / sum(l_extendedprice * (1 - l_discount)) AS promo_revenue
FROM lineitem, part
WHERE l_partkey = p_partkey AND l_shipdate >= '1995-09-01' AND l_shipdate < '1995-10-01'""",
    "q15": """WITH revenue AS (SELECT l_suppkey AS supplier_no, sum(l_extendedprice * (1 - l_discount)) AS total_revenue
  FROM lineitem WHERE l_shipdate >= '1996-01-01' AND l_shipdate < '1996-04-01' GROUP BY l_suppkey)
SELECT s_suppkey, s_name, s_address, s_phone, total_revenue FROM supplier, revenue
WHERE s_suppkey = supplier_no AND total_revenue = (SELECT max(total_revenue) FROM revenue)
ORDER BY s_suppkey""",
    "q16": """SELECT p_brand, p_type, p_size, count(DISTINCT ps_suppkey) AS supplier_cnt FROM partsupp, part
WHERE p_partkey = ps_partkey AND p_brand <> 'Brand#45' AND p_type NOT LIKE 'MEDIUM POLISHED%'
  AND p_size IN (49, 14, 23, 45, 19, 3, 36, 9)
  AND ps_suppkey NOT IN (SELECT s_suppkey FROM supplier WHERE s_comment LIKE '%Customer%Complaints%')
GROUP BY p_brand, p_type, p_size ORDER BY supplier_cnt DESC, p_brand, p_type, p_size""",
    "q17": """SELECT sum(l_extendedprice) / 7.0 AS avg_yearly FROM lineitem, part
WHERE p_partkey = l_partkey AND p_brand = 'Brand#23' AND p_container = 'MED BOX'
  AND l_quantity < (SELECT 0.2 * avg(l_quantity) FROM lineitem WHERE l_partkey = p_partkey)""",
    "q18": """SELECT c_name, c_custkey, o_orderkey, o_orderdate, o_totalprice, sum(l_quantity) AS total_qty
FROM customer, orders, lineitem
WHERE o_orderkey IN (SELECT l_orderkey FROM lineitem GROUP BY l_orderkey HAVING sum(l_quantity) > 300)
  AND c_custkey = o_custkey AND o_orderkey = l_orderkey
GROUP BY c_name, c_custkey, o_orderkey, o_orderdate, o_totalprice
ORDER BY o_totalprice DESC, o_orderdate LIMIT 100""",
    "q19": """SELECT sum(l_extendedprice * (1 - l_discount)) AS revenue FROM lineitem, part
WHERE (p_partkey = l_partkey AND p_brand = 'Brand#12' AND p_container IN ('SM CASE', 'SM BOX', 'SM PACK', 'SM PKG')
    AND l_quantity >= 1 AND l_quantity <= 11 AND p_size BETWEEN 1 AND 5
    AND l_shipmode IN ('AIR', 'AIR REG') AND l_shipinstruct = 'DELIVER IN PERSON')
  OR (p_partkey = l_partkey AND p_brand = 'Brand#23' AND p_container IN ('MED BAG', 'MED BOX', 'MED PKG', 'MED PACK')
    AND l_quantity >= 10 AND l_quantity <= 20 AND p_size BETWEEN 1 AND 10
    AND l_shipmode IN ('AIR', 'AIR REG') AND l_shipinstruct = 'DELIVER IN PERSON')
  OR (p_partkey = l_partkey AND p_brand = 'Brand#34' AND p_container IN ('LG CASE', 'LG BOX', 'LG PACK', 'LG PKG')
    AND l_quantity >= 20 AND l_quantity <= 30 AND p_size BETWEEN 1 AND 15
    AND l_shipmode IN ('AIR', 'AIR REG') AND l_shipinstruct = 'DELIVER IN PERSON')""",
    "q20": """SELECT s_name, s_address FROM supplier, nation
WHERE s_suppkey IN (SELECT ps_suppkey FROM partsupp
    WHERE ps_partkey IN (SELECT p_partkey FROM part WHERE p_name LIKE 'forest%')
      AND ps_availqty > (SELECT 0.5 * sum(l_quantity) FROM lineitem WHERE l_partkey = ps_partkey
        AND l_suppkey = ps_suppkey AND l_shipdate >= '1994-01-01' AND l_shipdate < '1995-01-01'))
  AND s_nationkey = n_nationkey AND n_name = 'CANADA'
ORDER BY s_name""",
    "q21": """SELECT s_name, count(*) AS numwait FROM supplier, lineitem l1, orders, nation
WHERE s_suppkey = l1.l_suppkey AND o_orderkey = l1.l_orderkey AND o_orderstatus = 'F'
  AND l1.l_receiptdate > l1.l_commitdate
  AND EXISTS (SELECT * FROM lineitem l2 WHERE l2.l_orderkey = l1.l_orderkey AND l2.l_suppkey <> l1.l_suppkey)
  AND NOT EXISTS (SELECT * FROM lineitem l3 WHERE l3.l_orderkey = l1.l_orderkey
    AND l3.l_suppkey <> l1.l_suppkey AND l3.l_receiptdate > l3.l_commitdate)
  AND s_nationkey = n_nationkey AND n_name = 'SAUDI ARABIA'
GROUP BY s_name ORDER BY numwait DESC, s_name LIMIT 100""",
    "q22": """SELECT cntrycode, count(*) AS numcust, sum(c_acctbal) AS totacctbal FROM (
  SELECT substr(c_phone, 1, 2) AS cntrycode, c_acctbal FROM customer
  WHERE substr(c_phone, 1, 2) IN ('13', '31', '23', '29', '30', '18', '17')
    AND c_acctbal > (SELECT avg(c_acctbal) FROM customer WHERE c_acctbal > 0.00
      AND substr(c_phone, 1, 2) IN ('13', '31', '23', '29', '30', '18', '17'))
    AND NOT EXISTS (SELECT * FROM orders WHERE o_custkey = c_custkey)) AS custsale
GROUP BY cntrycode ORDER BY cntrycode""",
}

#: What was changed from the specification's text so the queries run on SQLite and PostgreSQL.
TPCH_ADAPTED = {
    "dates": "date 'YYYY-MM-DD' literals are plain ISO strings; date ± interval is computed "
             "ahead (q01: '1998-12-01' - 90 days = '1998-09-02'; q04 '1993-07-01' + 3 months; "
             "q05/q06/q20 + 1 year; q10 + 3 months; q12 + 1 year; q14 + 1 month; q15 + 3 months)",
    "q07, q08, q09": "extract(year from d) becomes CAST(substr(d, 1, 4) AS INTEGER) on SQLite",
    "q15": "the revenue view is a WITH clause (no CREATE VIEW in a workload query)",
    "q22": "substring(c_phone from 1 for 2) is substr(c_phone, 1, 2)",
    "q13": "the derived table's column list c_orders (c_custkey, c_count) is given by aliases inside",
    "q11": "FRACTION = 0.0001 / SF, as the specification says",
    "limits": "the row limits of q02, q03, q10, q18, q21 are LIMIT clauses",
}

#: Point lookups over the TPC-H tables (the keys are read from the generated data).
TPCH_LOOKUPS = {
    "l01_orders_by_customer": "SELECT o_orderkey, o_orderdate, o_totalprice FROM orders "
                              "WHERE o_custkey = {custkey} ORDER BY o_orderdate DESC",
    "l02_lineitem_by_key": "SELECT l_partkey, l_quantity, l_shipdate FROM lineitem "
                           "WHERE l_orderkey = {orderkey} AND l_linenumber = 2",
    "l03_customer_by_phone": "SELECT c_custkey, c_name FROM customer WHERE c_phone = '{phone}'",
    "l04_lineitem_by_part_supplier": "SELECT l_orderkey, l_quantity FROM lineitem "
                                     "WHERE l_partkey = {partkey} AND l_suppkey = {suppkey}",
    "l05_partsupp_by_supplier": "SELECT ps_partkey, ps_availqty FROM partsupp WHERE ps_suppkey = {suppkey}",
    "l06_orders_by_clerk_since": "SELECT count(*) FROM orders WHERE o_clerk = '{clerk}' "
                                 "AND o_orderdate >= '1997-01-01'",
    "l07_part_by_name": "SELECT p_partkey, p_retailprice FROM part WHERE p_name = '{pname}'",
    "l08_lineitem_shipped_on_day": "SELECT count(*) FROM lineitem WHERE l_shipdate = '1995-06-17' "
                                   "AND l_shipmode = 'AIR'",
    "l09_supplier_by_name": "SELECT s_suppkey, s_phone FROM supplier WHERE s_name = '{sname}'",
    "l10_top_customers_in_segment_nation": "SELECT c_custkey, c_acctbal FROM customer "
                                           "WHERE c_mktsegment = 'MACHINERY' AND c_nationkey = 7 "
                                           "ORDER BY c_acctbal DESC LIMIT 10",
    "l11_recent_lines_of_customer": "SELECT o_orderkey, l_linenumber, l_extendedprice FROM orders "
                                    "JOIN lineitem ON l_orderkey = o_orderkey "
                                    "WHERE o_custkey = {custkey} AND o_orderdate >= '1997-01-01'",
}


def tpch_sql(sql: str, dialect: str, sf: float) -> str:
    """A TPC-H query's text for ``dialect`` (YEAR(), q11's fraction)."""
    year = (r"CAST(substr(\1, 1, 4) AS INTEGER)" if dialect == "sqlite" else r"CAST(extract(year FROM \1) AS INTEGER)")
    sql = re.sub(r"\bYEAR\((\w+)\)", year, sql)
    return sql.replace("{fraction}", repr(0.0001 / sf))


def tpch_csv(sf: float, cache: Path, tpchgen: str) -> Path:
    """The CSV folder for scale factor ``sf`` (generated once per cache folder)."""
    folder = cache / f"tpch-sf{sf:g}"
    if (folder / "lineitem.csv").exists():
        return folder
    if not shutil.which(tpchgen) and not Path(tpchgen).exists():
        raise MissingTool(f"tpchgen-cli not found at {tpchgen!r}: install it with "
                         "`python -m venv /tmp/tpchgen && /tmp/tpchgen/bin/pip install tpchgen-cli` "
                         "and pass --tpchgen /tmp/tpchgen/bin/tpchgen-cli")
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run([tpchgen, "csv", "-s", f"{sf:g}", "-o", str(tmp)], check=True, capture_output=True)
    tmp.rename(folder)
    return folder


def load_tpch_sqlite(path: Path, csv_folder: Path) -> None:
    """TPC-H schema (primary keys, no secondary index) and data into a new SQLite file."""
    db = sqlite3.connect(path)
    db.executescript(TPCH_SCHEMA)
    db.close()
    script = "".join(f".import --csv --skip 1 {csv_folder / (t + '.csv')} {t}\n" for t in TPCH_TABLES)
    run = subprocess.run([SQLITE_SHELL, str(path)], input=script, capture_output=True, text=True, check=False)
    if run.returncode != 0 or run.stderr.strip():
        raise RuntimeError(f"loading TPC-H CSV into {path} failed: {run.stderr.strip()[:500]}")


def tpch(path: Path, sf: float, cache: Path, tpchgen: str) -> Workload:
    """TPC-H at scale factor ``sf`` in SQLite at ``path``: the 22 queries and the lookups."""
    csv_folder = tpch_csv(sf, cache, tpchgen)
    load_tpch_sqlite(path, csv_folder)
    db = sqlite3.connect(path)
    try:
        values = tpch_lookup_values(db)
        rows = _count_rows(db, TPCH_TABLES)
    finally:
        db.close()
    queries = {name: tpch_sql(sql, "sqlite", sf) for name, sql in TPCH_QUERIES.items()}
    queries.update(tpch_lookups(values))
    return Workload("tpch", f"TPC-H SF {sf:g} (tpchgen-cli), its 22 queries where they run + "
                    f"{len(TPCH_LOOKUPS)} point lookups", path, queries, rows, notes=dict(TPCH_ADAPTED))


def tpch_lookups(values: dict) -> dict[str, str]:
    """The point lookups with the keys ``values`` (see :func:`tpch_lookup_values`)."""
    return {name: sql.format(**values) for name, sql in TPCH_LOOKUPS.items()}


def tpch_lookup_values(db) -> dict:
    """Keys for the lookups, read from loaded TPC-H data (sqlite3 or psycopg connection)."""
    values = {
        "custkey": db.execute("SELECT o_custkey FROM orders ORDER BY o_orderkey LIMIT 1 OFFSET 1000").fetchone()[0],
        "orderkey": db.execute("SELECT o_orderkey FROM orders ORDER BY o_orderkey LIMIT 1 OFFSET 5000").fetchone()[0],
        "phone": db.execute("SELECT c_phone FROM customer ORDER BY c_custkey LIMIT 1 OFFSET 777").fetchone()[0],
        "clerk": db.execute("SELECT o_clerk FROM orders ORDER BY o_orderkey LIMIT 1 OFFSET 7").fetchone()[0],
        "pname": db.execute("SELECT p_name FROM part ORDER BY p_partkey LIMIT 1 OFFSET 1234").fetchone()[0],
        "sname": db.execute("SELECT s_name FROM supplier ORDER BY s_suppkey LIMIT 1 OFFSET 50").fetchone()[0],
    }
    values["partkey"], values["suppkey"] = db.execute(
        "SELECT l_partkey, l_suppkey FROM lineitem ORDER BY l_orderkey, l_linenumber LIMIT 1 OFFSET 3000").fetchone()
    values = {k: v.strip() if isinstance(v, str) else v for k, v in values.items()}
    return values


def load_tpch_postgres(dsn: str, csv_folder: Path) -> None:
    """TPC-H schema and data into the (empty) PostgreSQL database at ``dsn`` (COPY)."""
    import psycopg
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in TPCH_SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        for table in TPCH_TABLES:
            with conn.cursor().copy(f"COPY {table} FROM STDIN WITH (FORMAT csv, HEADER true)") as copy, \
                    open(csv_folder / f"{table}.csv", "rb") as source:
                while chunk := source.read(1 << 20):
                    copy.write(chunk)
        conn.execute("VACUUM ANALYZE")


# -- join workloads of our own: selective filter on the small table --------------------------

STORES_SCHEMA = """
CREATE TABLE regions (id INTEGER PRIMARY KEY, name VARCHAR(40) NOT NULL);
CREATE TABLE stores (id INTEGER PRIMARY KEY, region_id INTEGER NOT NULL REFERENCES regions(id),
  city VARCHAR(40) NOT NULL, kind VARCHAR(20) NOT NULL, manager VARCHAR(40) NOT NULL, opened_on DATE NOT NULL);
CREATE TABLE sales (id INTEGER PRIMARY KEY, store_id INTEGER NOT NULL REFERENCES stores(id),
  product_id INTEGER NOT NULL, sold_at VARCHAR(19) NOT NULL, quantity INTEGER NOT NULL, amount INTEGER NOT NULL);
"""
STORES_QUERIES = {
    "sales_of_city": "SELECT sum(s.amount) FROM sales s JOIN stores st ON st.id = s.store_id "
                     "WHERE st.city = 'city-0417'",
    "outlet_sales_of_region": "SELECT count(*), sum(s.quantity) FROM sales s JOIN stores st ON st.id = s.store_id "
                              "JOIN regions r ON r.id = st.region_id WHERE r.name = 'region-07' AND st.kind = 'outlet'",
    "recent_sales_of_manager": "SELECT s.id, s.sold_at, s.amount FROM sales s JOIN stores st ON st.id = s.store_id "
                               "WHERE st.manager = 'manager-1234' AND s.sold_at >= '2025-10-01' ORDER BY s.sold_at DESC",
    "sales_of_new_stores": "SELECT st.city, count(*) FROM stores st JOIN sales s ON s.store_id = st.id "
                           "WHERE st.opened_on >= '2025-12-20' GROUP BY st.city",
    "last_sales_of_store": "SELECT id, amount FROM sales WHERE store_id = 1234 ORDER BY sold_at DESC LIMIT 20",
    "kiosk_product_sales": "SELECT s.product_id, sum(s.quantity) FROM sales s JOIN stores st ON st.id = s.store_id "
                           "WHERE st.kind = 'kiosk' AND st.region_id = 3 GROUP BY s.product_id",
}

SHOP_SCHEMA = """
CREATE TABLE customers (id INTEGER PRIMARY KEY, email VARCHAR(80) NOT NULL, segment VARCHAR(20) NOT NULL,
  country CHAR(2) NOT NULL, created_at VARCHAR(19) NOT NULL);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id),
  status VARCHAR(12) NOT NULL, created_at VARCHAR(19) NOT NULL, total INTEGER NOT NULL);
CREATE TABLE items (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL REFERENCES orders(id),
  sku VARCHAR(12) NOT NULL, qty INTEGER NOT NULL, price INTEGER NOT NULL);
"""
SHOP_QUERIES = {
    "orders_of_segment_country": "SELECT count(*), sum(o.total) FROM orders o JOIN customers c ON c.id = o.customer_id "
                                 "WHERE c.segment = 'enterprise' AND c.country = 'IS'",
    "items_of_customer_email": "SELECT sum(i.qty * i.price) FROM items i JOIN orders o ON o.id = i.order_id "
                               "JOIN customers c ON c.id = o.customer_id WHERE c.email = 'customer04321@example.com'",
    "open_orders_of_country": "SELECT o.id, o.total FROM orders o JOIN customers c ON c.id = o.customer_id "
                              "WHERE c.country = 'LU' AND o.status = 'open' ORDER BY o.created_at DESC LIMIT 50",
    "skus_of_a_day": "SELECT i.sku, sum(i.qty) FROM items i JOIN orders o ON o.id = i.order_id "
                     "WHERE o.created_at >= '2025-03-01' AND o.created_at < '2025-03-02' GROUP BY i.sku",
    "items_of_government_in_malta": "SELECT count(*) FROM items i JOIN orders o ON o.id = i.order_id "
                                    "JOIN customers c ON c.id = o.customer_id "
                                    "WHERE c.segment = 'government' AND c.country = 'MT'",
    "new_customers_orders": "SELECT c.email, o.id FROM customers c JOIN orders o ON o.customer_id = c.id "
                            "WHERE c.created_at >= '2025-12-28' AND o.status = 'paid'",
}
COUNTRIES = ("DE", "FR", "US", "GB", "IT", "ES", "NL", "SE", "PL", "BE", "AT", "DK", "FI", "IE", "PT",
             "CZ", "GR", "HU", "RO", "NO", "CH", "IS", "LU", "MT", "CY", "EE", "LV", "LT", "SI", "SK")
SEGMENTS = (("consumer", 0.7), ("smb", 0.2), ("enterprise", 0.07), ("government", 0.03))


def _stamp(start: dt.datetime, rng: random.Random, days: int) -> str:
    return (start + dt.timedelta(minutes=rng.randrange(days * 24 * 60))).strftime("%Y-%m-%d %H:%M:%S")


def stores_rows(big: int, seed: int = 1) -> dict[str, list[tuple]]:
    """regions (40) / stores (big/80) / sales (``big``) with a seeded RNG."""
    rng = random.Random(seed)
    epoch = dt.datetime(2024, 1, 1)
    regions = [(i, f"region-{i:02d}") for i in range(1, 41)]
    n_stores = max(100, big // 80)
    kinds = ("mall", "street", "outlet", "kiosk", "online")
    stores = [(i, rng.randint(1, 40), f"city-{rng.randrange(n_stores // 3):04d}", rng.choice(kinds),
               f"manager-{i:04d}", (epoch + dt.timedelta(days=rng.randrange(730))).strftime("%Y-%m-%d"))
              for i in range(1, n_stores + 1)]
    sales = [(i, rng.randint(1, n_stores), rng.randint(1, 5000), _stamp(epoch, rng, 730), rng.randint(1, 5),
              rng.randint(100, 50_000)) for i in range(1, big + 1)]
    return {"regions": regions, "stores": stores, "sales": sales}


def shop_rows(big: int, seed: int = 2) -> dict[str, list[tuple]]:
    """customers (big/20) / orders (big/3) / items (``big``) with a seeded RNG."""
    rng = random.Random(seed)
    epoch = dt.datetime(2024, 1, 1)
    n_customers, n_orders = max(100, big // 20), max(100, big // 3)
    segments = rng.choices([s for s, _ in SEGMENTS], weights=[w for _, w in SEGMENTS], k=n_customers)
    countries = rng.choices(COUNTRIES, weights=[30 / (k + 1) for k in range(len(COUNTRIES))], k=n_customers)
    customers = [(i, f"customer{i:05d}@example.com", segments[i - 1], countries[i - 1], _stamp(epoch, rng, 730))
                 for i in range(1, n_customers + 1)]
    statuses = rng.choices(("open", "paid", "shipped", "cancelled"), weights=(5, 30, 60, 5), k=n_orders)
    orders = [(i, rng.randint(1, n_customers), statuses[i - 1], _stamp(epoch, rng, 730), rng.randint(500, 90_000))
              for i in range(1, n_orders + 1)]
    items = [(i, rng.randint(1, n_orders), f"SKU-{rng.randrange(8000):05d}", rng.randint(1, 4),
              rng.randint(100, 20_000)) for i in range(1, big + 1)]
    return {"customers": customers, "orders": orders, "items": items}


JOIN_WORKLOADS = {
    "stores": ("regions / stores / sales: filters on stores (city, manager, kind, opened_on) or regions, "
               "the sales reached through sales.store_id", STORES_SCHEMA, STORES_QUERIES, stores_rows),
    "shop": ("customers(segment, country, email) / orders / items: filters on customers or orders, "
             "the big side reached through its foreign key", SHOP_SCHEMA, SHOP_QUERIES, shop_rows),
}


def join_workload(name: str, path: Path, big: int) -> tuple[Workload, dict[str, list[tuple]]]:
    """One of :data:`JOIN_WORKLOADS` in SQLite at ``path`` with ``big`` rows on the big table;
    the generated rows too (to load PostgreSQL with the same data)."""
    description, schema, queries, rows_of = JOIN_WORKLOADS[name]
    rows = rows_of(big)
    db = sqlite3.connect(path)
    db.executescript(schema)
    for table, values in rows.items():
        db.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(values[0]))})", values)
    db.commit()
    counts = _count_rows(db, rows)
    db.close()
    return Workload(name, description, path, dict(queries), counts), rows


def load_rows_postgres(dsn: str, schema: str, rows: dict[str, list[tuple]]) -> None:
    """``schema`` and ``rows`` into the (empty) PostgreSQL database at ``dsn``."""
    import psycopg
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in schema.split(";"):
            if statement.strip():
                conn.execute(statement)
        for table, values in rows.items():
            with conn.cursor().copy(f"COPY {table} FROM STDIN") as copy:
                for row in values:
                    copy.write_row(row)
        conn.execute("VACUUM ANALYZE")


# -- 10 M-row single table (PostgreSQL, generated server-side) -------------------------------

EVENTS_SQL = """
CREATE TABLE events (id BIGINT PRIMARY KEY, account_id INTEGER NOT NULL, kind TEXT NOT NULL,
  status TEXT NOT NULL, external_ref TEXT NOT NULL, created_at TIMESTAMP NOT NULL, amount INTEGER NOT NULL);
INSERT INTO events
SELECT g, (hashint4(g::int) & 2147483647) % 100000 + 1,
  (ARRAY['view','click','purchase','refund','signup'])[1 + (hashint4(g::int + 1) & 2147483647) % 5],
  (ARRAY['ok','ok','ok','ok','ok','ok','ok','ok','pending','failed'])[1 + (hashint4(g::int + 2) & 2147483647) % 10],
  'ref-' || g, timestamp '2025-01-01' + (g::bigint * 31536000 / {rows}) * interval '1 second',
  (hashint4(g::int + 3) & 2147483647) % 100000
FROM generate_series(1, {rows}) AS g;
VACUUM ANALYZE events
"""
EVENTS_QUERIES = {
    "last_events_of_account": "SELECT id, kind, created_at FROM events WHERE account_id = 4242 "
                              "ORDER BY created_at DESC LIMIT 20",
    "refunds_of_a_week": "SELECT count(*) FROM events WHERE kind = 'refund' "
                         "AND created_at >= '2025-06-01' AND created_at < '2025-06-08'",
    "event_by_reference": "SELECT id, amount FROM events WHERE external_ref = 'ref-1234567'",
    "failed_amount_of_account": "SELECT sum(amount) FROM events WHERE account_id = 77 AND status = 'failed'",
    "accounts_active_last_day": "SELECT account_id, count(*) FROM events WHERE created_at >= '2025-12-31' "
                                "GROUP BY account_id",
}


def load_events_postgres(dsn: str, rows: int) -> dict[str, int]:
    """The ``events`` table with ``rows`` rows, generated by the server."""
    import psycopg
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in EVENTS_SQL.format(rows=rows).split(";"):
            if statement.strip():
                conn.execute(statement)
        return {"events": conn.execute("SELECT count(*) FROM events").fetchone()[0]}


# -- the orders_db spec workload (issue 5's) --------------------------------------------------

PER_100_ORDERS = {"customers": 17, "products": 1.1, "order_items": 260, "payments": 60}
STATUSES = (("pending", 0.10), ("paid", 0.30), ("shipped", 0.50), ("cancelled", 0.10))


def orders_schema_sql() -> tuple[str, list[str]]:
    """The walkthrough's final schema without its secondary indexes, and those indexes."""
    from conductor_magics.engine.schema import split_statements
    notebook = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    cells = ["".join(c["source"]) for c in notebook["cells"]
             if c["cell_type"] == "code" and "".join(c["source"]).startswith("%%conductor schema")]
    body = cells[-1].split("\n", 1)[1]
    statements = split_statements(body, "sqlite")
    kept = [s for s in statements if not CREATE_INDEX.match(s)]
    dropped = [" ".join(s.split()) for s in statements if CREATE_INDEX.match(s)]
    return ";\n".join(kept) + ";\n", dropped


def orders_generate(path: Path, orders: int, seed: int = 0) -> dict[str, int]:
    """Rows honouring every constraint of the schema, with a seeded RNG: customers with a
    skewed number of orders, a status mix, ``paid_at`` for paid and shipped orders, 1-5
    distinct products per order, one captured payment per paid order."""
    rng = random.Random(seed)
    counts = {t: max(1, int(orders * n / 100)) for t, n in PER_100_ORDERS.items()}
    counts["orders"] = orders
    db = sqlite3.connect(path)
    minute = dt.timedelta(minutes=1)
    epoch = dt.datetime(2024, 1, 1)

    def stamp(moment: dt.datetime) -> str:
        return moment.strftime("%Y-%m-%d %H:%M:%S")

    # columns named: the walkthrough's schema grows (issue 15 added status timestamps and
    # updated_at); what is not named here takes its default or stays NULL
    customer_rows = []
    for i in range(1, counts["customers"] + 1):
        joined = stamp(epoch + rng.randrange(700 * 24 * 60) * minute)
        customer_rows.append((i, f"customer{i}@example.com", f"Customer {i}", rng.random() < 0.3, joined, joined))
    db.executemany("INSERT INTO customers (id, email, full_name, is_marketing_opt_in, created_at, updated_at) "
                   "VALUES (?, ?, ?, ?, ?, ?)", customer_rows)
    prices = {i: rng.randrange(199, 20_000) for i in range(1, counts["products"] + 1)}
    listed = stamp(epoch)
    db.executemany("INSERT INTO products (id, sku, name, price_cents, is_active, created_at, updated_at) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)", [
                       (i, f"SKU-{i:06d}", f"Product {i}", price, rng.random() < 0.9, listed, listed)
                       for i, price in prices.items()])
    # a few customers order a lot (Pareto), most a little
    weights = [rng.paretovariate(1.2) for _ in range(counts["customers"])]
    customers = rng.choices(range(1, counts["customers"] + 1), weights=weights, k=orders)
    statuses = rng.choices([s for s, _ in STATUSES], weights=[w for _, w in STATUSES], k=orders)
    order_rows, item_rows, payment_rows = [], [], []
    product_ids = list(prices)
    items_per_order = counts["order_items"] / orders
    for i in range(1, orders + 1):
        created = epoch + rng.randrange(730 * 24 * 60) * minute
        status = statuses[i - 1]
        paid = created + rng.randrange(1, 600) * minute if status in ("paid", "shipped") else None
        shipped = paid + rng.randrange(60, 4 * 24 * 60) * minute if status == "shipped" else None
        cancelled = created + rng.randrange(1, 600) * minute if status == "cancelled" else None
        chosen = rng.sample(product_ids, k=min(len(product_ids), max(1, round(rng.expovariate(
            1 / items_per_order)) or 1)))[:5]
        total = 0
        for product in chosen:
            quantity = rng.randint(1, 3)
            total += quantity * prices[product]
            item_rows.append((len(item_rows) + 1, i, product, quantity, prices[product], stamp(created)))
        changed = shipped or cancelled or paid or created
        order_rows.append((i, customers[i - 1], status, total, stamp(paid) if paid else None,
                           stamp(shipped) if shipped else None, stamp(cancelled) if cancelled else None,
                           stamp(created), stamp(changed)))
        if paid is not None and total > 0:
            provider = "stripe" if rng.random() < 0.7 else "paypal"
            payment_rows.append((len(payment_rows) + 1, i, provider, f"{provider[:2]}_{i:08d}", "captured", total,
                                 stamp(paid), stamp(paid)))
    db.executemany("INSERT INTO orders (id, customer_id, status, total_cents, paid_at, shipped_at, cancelled_at, "
                   "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", order_rows)
    db.executemany("INSERT INTO order_items (id, order_id, product_id, quantity, unit_price_cents, created_at) "
                   "VALUES (?, ?, ?, ?, ?, ?)", item_rows)
    db.executemany("INSERT INTO payments (id, order_id, provider, provider_reference, status, amount_cents, "
                   "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", payment_rows)
    db.commit()
    found = _count_rows(db, ("customers", "products", "orders", "order_items", "payments"))
    db.close()
    return found


def orders_db(path: Path, orders: int) -> Workload:
    """The orders_db spec's Query Patterns on the walkthrough schema without its secondary
    indexes; parameters drawn from the data (``sample_parameters``, seed 0)."""
    from conductor_magics.engine.connection import make_engine
    from conductor_magics.engine.schema import apply_sql
    from conductor_magics.engine.workload import sample_parameters
    from conductor_magics.workspace.spec import query_patterns
    schema, dropped = orders_schema_sql()
    engine = make_engine(f"sqlite:///{path}")
    try:
        apply_sql(engine, schema)
        rows = orders_generate(path, orders)
        queries, params, skipped = {}, {}, {}
        db = sqlite3.connect(path)
        try:
            for pattern in query_patterns(SPEC.read_text(encoding="utf-8")):
                sql = pattern.sql.strip().rstrip(";").strip()
                try:
                    db.execute("EXPLAIN QUERY PLAN " + re.sub(r":\w+", "NULL", sql))
                except sqlite3.Error as exc:
                    skipped[pattern.name] = f"{exc} (the spec's query does not fit the walkthrough schema)"
                    continue
                queries[pattern.name] = sql
                params[pattern.name] = sample_parameters(engine, sql, seed=0)
        finally:
            db.close()
    finally:
        engine.dispose()
    return Workload("orders_db", f"orders_db spec Query Patterns, {orders:,} orders (walkthrough schema "
                    "without its secondary indexes)", path, queries, rows,
                    notes={"dropped_indexes": "; ".join(dropped)}, skipped=skipped, params=params)

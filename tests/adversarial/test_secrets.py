"""Hostile database URLs: each is refused with one line and the exit code for bad input,
shows no part of its password, and changes nothing on disk."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.hostile import conductor, refused, tree

SECRET = "Hs3cr3t-a9"
NOT_A_URL = r"not a database URL"

#: (name, argv, extra environment, exit code, message pattern)
CASES = [
    ("port not a number", ["connect", f"postgresql+psycopg://app:{SECRET}@db.example:notaport/orders"], {},
     2, r"port 'notaport' is not a number\): postgresql\+psycopg://app:\*\*\*@db.example:notaport/orders"),
    ("port not a number, unencoded @ in the password",
     ["connect", f"postgresql+psycopg://app:pa@{SECRET}@db.example:notaport/orders"], {},
     2, r"port 'notaport' is not a number\): postgresql\+psycopg://app:\*\*\*@db.example"),
    ("port not a number in the query", ["connect", f"postgresql+psycopg://app@h/db?password={SECRET}&port=abc"], {},
     2, NOT_A_URL),
    ("unclosed IPv6 bracket", ["connect", f"postgresql+psycopg://app:{SECRET}@[::1/db"], {}, 2, NOT_A_URL),
    ("libpq string instead of a URL", ["connect", f"host=db.example password='{SECRET}' dbname=orders"], {},
     2, r"libpq connection string, not a URL\): host=db.example password=\*\*\*"),
    ("no scheme", ["connect", f"app:{SECRET}@db.example/orders"], {}, 2, r"cannot parse it\): app:\*\*\*@db.example/orders"),
    ("unknown dialect", ["connect", f"nosuchdb://app:{SECRET}@h/d"], {}, 2, r"no SQLAlchemy dialect for nosuchdb://app:\*\*\*@h/d"),
    ("unknown driver", ["connect", "sqlite+nosuchdriver:///x.db"], {}, 2, r"no SQLAlchemy dialect"),
    ("missing MySQL driver", ["connect", f"mysql://app:{SECRET}@h/d"], {}, 2, r"not installed \(MySQLdb\).*mysqlclient"),
    ("missing pymysql", ["integrity", "--url", f"mysql+pymysql://app@h/d?password={SECRET}"], {},
     2, r"mysql\+pymysql://app@h/d\?password=\*\*\* is not installed.*pip install pymysql"),
    ("missing psycopg2", ["connect", f"postgresql+psycopg2://app:{SECRET}@h/d"], {}, 2, r"psycopg2-binary"),
    ("bad port through backup", ["backup", "--url", f"postgresql+psycopg://app:{SECRET}@h:notaport/db"], {},
     2, r"port 'notaport' is not a number"),
    ("bad port through migrate", ["migrate", "up", "--url", f"postgresql+psycopg://app:{SECRET}@h:notaport/db"], {},
     2, r"port 'notaport' is not a number"),
    ("bad port through bench", ["bench", "daily_revenue", "--url", f"postgresql+psycopg://app:{SECRET}@h:x/db"], {},
     2, r"port 'x' is not a number"),
    ("bad port in the environment", ["connect"],
     {"CONDUCTOR_DATABASE_URL": f"postgresql+psycopg://app@h:notaport/db?sslpassword={SECRET}"},
     2, r"port 'notaport' is not a number\): .*sslpassword=\*\*\*"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_hostile_url_is_refused_in_one_line_and_leaks_nothing(project: Path, case):
    _, argv, extra_env, code, pattern = case
    before = tree(project)
    proc = conductor(project, *argv, extra_env=extra_env)
    refused(proc, code, pattern, before, project)
    assert SECRET not in proc.stdout + proc.stderr

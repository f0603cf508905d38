"""Plain helpers the test modules share (no fixtures, no tests): the CLI runner, sample
schemas, the PostgreSQL and JupyterLab launchers, hostile-input checks. Test modules import
from here and never from each other (tests/test_suite_hygiene.py checks it)."""

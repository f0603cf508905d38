"""Live databases through SQLAlchemy: connections, declared schema, migrations, integrity.

Knows databases only (no Jupyter, no workspace files beyond the paths it is
given). Functions take a SQLAlchemy Engine or Connection and return plain data
(dataclasses, DataFrames).
"""

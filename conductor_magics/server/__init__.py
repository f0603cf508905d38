"""The Jupyter server extension: conductor's REST routes for the JupyterLab panel.

A thin edge like ``cli.py`` and ``magics.py``: every handler turns its request into the
shared parser's command line, runs it through :func:`conductor_magics.commands.run` and
answers ``result.to_json()`` (the same JSON as ``conductor … --json``). Routes (under the
server's base URL)::

    GET  /conductor/api/status          conductor status --json (ETag; If-None-Match → 304)
    GET  /conductor/api/workspace       where storage-conductor/ is, relative to the root dir
    GET  /conductor/api/plan/<id>       conductor plan <id> --json
    POST /conductor/api/task/<id>       {"action", "task", "expect"} → conductor task …
    POST /conductor/api/verify/<id>     {"phase", "run_checks", "waive", "confirm"} → verify

jupyter_server finds it through ``conductor_magics._jupyter_server_extension_points()``;
the wheel enables it (``etc/jupyter/jupyter_server_config.d/conductor_magics.json``).
"""

from __future__ import annotations


def _load_jupyter_server_extension(serverapp) -> None:
    """Called by jupyter_server at start-up: register the routes."""
    from .handlers import setup_handlers  # tornado and jupyter_server only when served

    setup_handlers(serverapp)

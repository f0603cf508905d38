"""conductor-magics: carry out a storage-conductor component plan from Jupyter.

``%load_ext conductor_magics`` registers ``%conductor``; the same commands are
available as the ``conductor`` CLI and as a Python API::

    from conductor_magics import Session
    session = Session.open(root="path/to/project")
    session.implement("orders_db")
    session.task("done", "1.1")

Importing this package is light: ``Session`` and ``Workspace`` are imported when first
used, and IPython, ipywidgets and jupyter_server only by the hooks below (jupyter_server
and JupyterLab import this package just to find them).
"""

from .errors import ConductorError

__version__ = "0.1.0"
__all__ = ["ConductorError", "Session", "Workspace", "__version__"]


def __getattr__(name: str):
    # Lazy: the session pulls in the Markdown parser and git helpers.
    if name == "Session":
        from .session import Session

        return Session
    if name == "Workspace":
        from .workspace import Workspace

        return Workspace
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_ipython_extension(ipython) -> None:
    """Called by ``%load_ext conductor_magics``."""
    from . import magics

    magics.load(ipython)


def unload_ipython_extension(ipython) -> None:
    """Nothing to tear down: magics are replaced when the extension is loaded again."""


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """jupyter_server's hook: the REST routes live in ``conductor_magics.server``."""
    return [{"module": "conductor_magics.server"}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """JupyterLab's hook (``jupyter labextension develop``): where the built lab
    extension is; the wheel installs it under share/jupyter/labextensions/."""
    return [{"src": "labextension", "dest": "conductor-magics"}]

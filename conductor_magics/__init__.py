"""conductor-magics: carry out a storage-conductor component plan from Jupyter.

``%load_ext conductor_magics`` registers ``%conductor``; the same commands are
available as the ``conductor`` CLI and as a Python API::

    from conductor_magics import Session
    session = Session.open(root="path/to/project")
    session.implement("orders_db")
    session.task("done", "1.1")

Importing this package does not import IPython or ipywidgets; only the
extension hook below does.
"""

from .errors import ConductorError
from .session import Session
from .workspace import Workspace

__version__ = "0.1.0"
__all__ = ["ConductorError", "Session", "Workspace", "__version__"]


def load_ipython_extension(ipython) -> None:
    """Called by ``%load_ext conductor_magics``."""
    from . import magics

    magics.load(ipython)


def unload_ipython_extension(ipython) -> None:
    """Nothing to tear down: magics are replaced when the extension is loaded again."""

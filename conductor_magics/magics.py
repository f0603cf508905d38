"""``%conductor``: the notebook edge over the session (same parser as the CLI).

Thin on purpose: parse the line with the shared parser, call the session,
display the result. Errors show as one line (``UsageError``), no traceback.
"""

from __future__ import annotations

import shlex

from IPython.core.completer import CompletionContext, SimpleCompletion, context_matcher
from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.display import display
from traitlets import Bool, Float, TraitError, Unicode, validate
from traitlets.config import Configurable

from .commands import SUBCOMMANDS, BadArguments, ParserExit, build_parser, complete, parse, run
from .errors import ConductorError, notebook_words
from .notebook_html import NotebookView, notebook_view, widget_header
from .results import Result
from .session import ACTIONS, Session

TASK_VERBS = (*ACTIONS, "run")


class Conductor(Configurable):
    """Settings of ``%conductor`` (``%config Conductor.root = '...'``)."""

    root = Unicode(None, allow_none=True, config=True,
                   help="Project folder holding storage-conductor/ (default: $CONDUCTOR_ROOT, "
                        "else the nearest one above the working directory).")
    variable = Unicode("conductor", config=True,
                       help="Name of the kernel variable that `%conductor implement` fills with the "
                            "loaded component (spec, plan, workflow, …).")
    user = Unicode(None, allow_none=True, config=True,
                   help="Name recorded on verifications (default: git user.name, else the OS user).")
    rich = Bool(True, config=True, help="Show HTML/Markdown output; False shows plain text.")
    statement_timeout = Float(None, allow_none=True, config=True,
                              help="Seconds any statement of sql, txn, query, bench, advise and "
                                   "seed may run before it is stopped and rolled back (default: "
                                   "$CONDUCTOR_STATEMENT_TIMEOUT, else 300; 0 = no limit; "
                                   "--timeout overrides it).")

    @validate("statement_timeout")
    def _valid_timeout(self, proposal):
        value = proposal["value"]
        if value is not None and not 0 <= value < float("inf"):
            raise TraitError(f"statement_timeout takes seconds, 0 or more (0 = no limit), got {value}")
        return value


def _help_text() -> str:
    parser = build_parser("%conductor")
    text = parser.format_help()
    subparsers = parser._subparsers._group_actions[0].choices  # argparse keeps them here
    for name in SUBCOMMANDS:
        text += "\n" + subparsers[name].format_usage().replace("usage: ", "")
    return text


@magics_class
class ConductorMagics(Magics):
    """The ``%conductor`` line (and cell) magic."""

    def __init__(self, shell, settings: Conductor):
        super().__init__(shell)
        self.settings = settings
        # The notebook's current connection (set by `%conductor connect`); never shown
        # unmasked and never written anywhere.
        self.url: str | None = None
        self.engine = None

    def session(self, root: str | None) -> Session:
        return Session.open(root=root or self.settings.root, user=self.settings.user or None)

    @line_cell_magic
    def conductor(self, line: str, cell: str | None = None):
        try:
            argv = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"%conductor: cannot parse the line: {exc}") from None
        if cell is not None and argv[:1] == ["task"] and (len(argv) < 2 or argv[1] not in TASK_VERBS):
            argv.insert(1, "run")  # %%conductor task 3.1 is a task cell
        try:
            inv = parse(argv, prog="%conductor")
            session = self.session(inv.root)
            if inv.command == "connect" and inv.args.from_jupysql:
                self.url, self.engine = None, jupysql_engine()
            result = run(inv, session, body=cell, url=self.url, engine=self.engine,
                         namespace=self.shell.user_ns, execute=self._execute,
                         progress=self._progress(), timeout=self.settings.statement_timeout)
        except ParserExit:
            return None  # --help was printed
        except ConductorError as exc:
            raise UsageError(notebook_words(str(exc))) from None
        view = notebook_view(result)
        if view.stop:
            raise UsageError(view.stop)
        if inv.command == "implement":
            self.shell.push({self.settings.variable: result.loaded})
        elif view.value is not None:
            # bench_result.samples, advise_result.recommendations, … for further analysis
            self.shell.push({f"{inv.command}_result": view.value})
        if inv.command == "connect" and not inv.args.from_jupysql:
            explicit = inv.args.url or inv.args.target_url
            if explicit:
                self.url, self.engine = explicit, None
        self._show(result, view, session)
        return None

    def _progress(self):
        """Progress bars for long steps: widgets in a notebook, text in a console."""
        from functools import partial

        if self.settings.rich:
            from tqdm.auto import tqdm
        else:
            from tqdm import tqdm
        return partial(tqdm, leave=False)

    def _execute(self, code: str) -> bool:
        """Run a task or test cell's body in the kernel; the user sees their own output
        and traceback. True when it ran without an exception."""
        return self.shell.run_cell(code, store_history=False).success

    def _show(self, result: Result, view: NotebookView, session: Session | None = None) -> None:
        """Display a result: plain text, its interactive widget, or its notebook view."""
        if not self.settings.rich:
            print(result.to_text())
            return
        widget = self._widget(result, session) if session is not None else None
        for bundle in widget_header(result) if widget is not None else view.bundles:
            display(bundle, raw=True)
        if widget is not None:
            display(widget)

    def _widget(self, result, session: Session):
        """The interactive view of a result (checklist, chooser, gate), or None when it has
        none or ipywidgets is not installed (the HTML view is shown instead)."""
        try:
            from .widgets.display import view_for
        except ImportError:
            return None

        def implemented(chosen) -> None:  # another component picked in the chooser
            self.shell.push({self.settings.variable: chosen.loaded})

        try:
            return view_for(result, session, url=self.url, engine=self.engine,
                            on_implemented=implemented)
        except ConductorError:  # e.g. plan.md changed meanwhile: the HTML view still shows
            return None


def jupysql_engine():
    """The SQLAlchemy Engine of JupySQL's current connection (``%sql`` must be connected)."""
    try:
        from sql.connection import ConnectionManager
    except ImportError:
        raise BadArguments("JupySQL is not installed", "pip install jupysql, then %load_ext sql") from None
    current = ConnectionManager.current
    # close_all() leaves `current` pointing at a closed connection: require a live one.
    live = current is not None and current in ConnectionManager.connections.values()
    connection = getattr(current, "_connection_sqlalchemy", None) if live else None
    if connection is None or connection.closed:
        raise BadArguments("JupySQL has no current SQLAlchemy connection",
                           "connect first: %sql sqlite:///file.db (or a SQLAlchemy URL)")
    return connection.engine


ConductorMagics.conductor.__doc__ = _help_text()


def _matcher(settings: Conductor):
    @context_matcher()
    def conductor_matcher(context: CompletionContext) -> dict:
        words = context.text_until_cursor.split()
        if not words or words[0].lstrip("%") != "conductor":
            return {"completions": [], "suppress": False}
        words = words[1:]
        if not context.text_until_cursor[-1:].isspace() and words:
            words = words[:-1]  # the word being typed
        try:
            session = Session.open(root=settings.root)
        except ConductorError:
            session = None
        found = [w for w in complete(words, session) if w.startswith(context.token)]
        return {"completions": [SimpleCompletion(w, type="conductor") for w in found],
                "suppress": True}

    return conductor_matcher


def load(shell) -> None:
    """Register the magics, their settings (for ``%config``) and tab completion.

    Loading again (``%reload_ext``) replaces what an earlier load registered.
    """
    shell.configurables[:] = [c for c in shell.configurables if not isinstance(c, Conductor)]
    matchers = shell.Completer.custom_matchers
    matchers[:] = [m for m in matchers if getattr(m, "__name__", "") != "conductor_matcher"]
    settings = Conductor(parent=shell)
    shell.configurables.append(settings)
    shell.register_magics(ConductorMagics(shell, settings))
    matchers.append(_matcher(settings))

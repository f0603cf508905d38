"""``conductor``: the command-line twin of ``%conductor``.

Exit codes: 0 ok, 1 checks ran and failed (lint findings, unverified gate,
locked phase), 2 bad input (arguments, malformed workspace files).
"""

from __future__ import annotations

import contextlib
import json
import sys

from .commands import BadArguments, ParserExit, parse, run
from .errors import ConductorError
from .results import Result, exit_code
from .session import Session


def _to_json(result: Result) -> str:
    return json.dumps(result.to_json(), indent=2, ensure_ascii=False, default=str)


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit code (the console script exits with it)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    want_json = "--json" in argv
    try:
        inv = parse(argv)
        session = Session.open(root=inv.root)
        result = run(inv, session, progress=_progress(inv.json))
        print(_to_json(result) if inv.json else result.to_text(), flush=True)
    except ParserExit as exc:
        if exc.message:
            sys.stderr.write(exc.message)
        return exc.status
    except BadArguments as exc:
        return _fail(exc, want_json, prefix="usage error")
    except ConductorError as exc:
        return _fail(exc, want_json)
    except KeyboardInterrupt:
        sys.stderr.write("conductor: interrupted\n")
        return 130
    except BrokenPipeError:
        return _reader_went_away()
    # Last resort: the specific paths turn these into their own errors; one that escapes
    # still ends in one line naming the file, never a traceback.
    except UnicodeDecodeError as exc:
        return _fail(ConductorError(f"a file is not valid UTF-8 (byte {exc.start}: {exc.reason})",
                                    hint="save it as UTF-8"), want_json)
    except OSError as exc:
        error = ConductorError((exc.strerror or str(exc)).lower(), path=exc.filename,
                               hint="check the file's permissions and type, then retry")
        error.exit_code = 1
        return _fail(error, want_json)
    return exit_code(result)


def _reader_went_away() -> int:
    """Output piped into a reader that stopped (``| head``): exit quietly, like other Unix
    tools, with the status of a process ended by SIGPIPE."""
    import os
    import signal

    # Python would flush stdout again at exit and complain on stderr: point it nowhere.
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return 128 + signal.SIGPIPE


def _progress(want_json: bool):
    """tqdm bars on stderr for long steps, only on a terminal (not in logs, not with --json)."""
    if want_json or not sys.stderr.isatty():
        return None  # tqdm would show nothing: do not pay for importing it on every command
    from functools import partial

    from tqdm import tqdm

    return partial(tqdm, disable=None, file=sys.stderr, leave=False)


def _fail(exc: ConductorError, want_json: bool, prefix: str = "error") -> int:
    try:
        if want_json:
            print(json.dumps(exc.to_json(), ensure_ascii=False), flush=True)
        sys.stderr.write(f"conductor: {prefix}: {exc}\n")
    except BrokenPipeError:
        _reader_went_away()
    return exc.exit_code


def entry() -> None:  # pragma: no cover - console script
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

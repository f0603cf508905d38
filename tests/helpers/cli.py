"""The one way tests run the ``conductor`` CLI.

:func:`conductor` calls ``conductor_magics.cli.main(argv)`` in this process by default: the
same argv, environment (without the caller's ``CONDUCTOR_*`` settings), working folder,
umask and stdin a real process would get, and stdout/stderr captured at the file-descriptor
level (so output of child programs such as pg_dump is caught as a subprocess would catch
it). It returns a :class:`subprocess.CompletedProcess` either way, so assertions read the
same. An exception that escapes ``main`` becomes a traceback on stderr and exit 1, exactly
what the console script would show.

``real=True`` runs the installed console script in a child process instead: for the few
smoke tests of the real entry point, and for anything that needs its own process (kill,
concurrency, process-list and broken-pipe tests).
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

#: the installed console script, next to this interpreter
CONDUCTOR = Path(sys.executable).parent / "conductor"


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any ``CONDUCTOR_*`` setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONDUCTOR_")}
    env.update(extra)
    return env


def conductor(*argv: str, root: Path | None = None, cwd: Path | None = None,
              env: dict[str, str] | None = None, stdin: str | None = None,
              umask: int | None = None, timeout: float = 300,
              real: bool = False) -> subprocess.CompletedProcess:
    """Run ``conductor [--root ROOT] ARGV...``; ``env`` replaces the environment (default:
    :func:`clean_env`), ``cwd`` defaults to ``root`` (else this process's folder)."""
    args = ([] if root is None else ["--root", str(root)]) + [str(a) for a in argv]
    env = clean_env() if env is None else env
    cwd = cwd if cwd is not None else root
    if real:
        return subprocess.run(
            [str(CONDUCTOR), *args], capture_output=True, text=True, env=env, cwd=cwd,
            input=stdin, timeout=timeout, check=False,
            preexec_fn=None if umask is None else (lambda: os.umask(umask)))
    return _in_process(args, cwd=cwd, env=env, stdin=stdin, umask=umask)


class CliError(AssertionError):
    """A run ended with an unexpected exit code or a traceback."""


def checked(proc: subprocess.CompletedProcess, expect: int | None = 0) -> subprocess.CompletedProcess:
    """``proc`` after asserting no traceback and (unless ``expect`` is None) its exit code."""
    out = proc.stdout + proc.stderr
    if "Traceback" in out:
        raise CliError(f"{proc.args}: traceback:\n{out[-4000:]}")
    if expect is not None and proc.returncode != expect:
        raise CliError(f"{proc.args}: exit {proc.returncode}, wanted {expect}\n"
                       f"stdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-2000:]}")
    return proc


# --------------------------------------------------------------------------- in process


def _in_process(args: list[str], *, cwd: Path | None, env: dict[str, str], stdin: str | None,
                umask: int | None) -> subprocess.CompletedProcess:
    from conductor_magics import cli

    with _captured(stdin) as (out, err), _process_state(cwd, env, umask):
        try:
            code = cli.main(list(args))
        except SystemExit as exc:
            code = _exit_status(exc)
        except BaseException:  # what the console script would print before exiting 1
            traceback.print_exc()
            code = 1
    return subprocess.CompletedProcess(["conductor", *args], code, out.getvalue(), err.getvalue())


def _exit_status(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


@contextlib.contextmanager
def _process_state(cwd: Path | None, env: dict[str, str], umask: int | None):
    """Working folder, environment (TMPDIR included), umask and bytecode writing as a child
    would have them; everything restored afterwards."""
    saved_env = dict(os.environ)
    saved_tempdir = tempfile.tempdir
    saved_cwd = os.getcwd()
    saved_bytecode = sys.dont_write_bytecode
    saved_umask = None if umask is None else os.umask(umask)
    os.environ.clear()
    os.environ.update(env)
    sys.dont_write_bytecode = bool(env.get("PYTHONDONTWRITEBYTECODE"))
    tempfile.tempdir = None  # found again from $TMPDIR, as a new process would
    try:
        if cwd is not None:
            os.chdir(cwd)
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        sys.dont_write_bytecode = saved_bytecode
        tempfile.tempdir = saved_tempdir
        if saved_umask is not None:
            os.umask(saved_umask)


class _Output:
    """The text written to one captured descriptor, there once the run is over."""

    text = ""

    def getvalue(self) -> str:
        return self.text


@contextlib.contextmanager
def _captured(stdin: str | None):
    """Point file descriptors 1 and 2 (and sys.stdout/stderr over them) at temporary files,
    and stdin at ``stdin`` (empty when None: pytest gives children /dev/null)."""
    out, err = _Output(), _Output()
    saved_streams = sys.stdin, sys.stdout, sys.stderr
    for stream in saved_streams[1:]:
        with contextlib.suppress(Exception):
            stream.flush()
    with tempfile.TemporaryFile() as out_file, tempfile.TemporaryFile() as err_file:
        saved_fds = os.dup(1), os.dup(2)
        os.dup2(out_file.fileno(), 1)
        os.dup2(err_file.fileno(), 2)
        sys.stdin = io.TextIOWrapper(io.BytesIO((stdin or "").encode()), encoding="utf-8")
        sys.stdout = _text_stream(1)
        sys.stderr = _text_stream(2)
        try:
            yield out, err
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            sys.stdin, sys.stdout, sys.stderr = saved_streams
            os.dup2(saved_fds[0], 1)
            os.dup2(saved_fds[1], 2)
            for fd in saved_fds:
                os.close(fd)
            for output, file in ((out, out_file), (err, err_file)):
                file.seek(0)
                # decoded as subprocess's text mode does, universal newlines included
                text = file.read().decode("utf-8", errors="replace")
                output.text = text.replace("\r\n", "\n").replace("\r", "\n")


def _text_stream(fd: int) -> io.TextIOWrapper:
    return io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), encoding="utf-8",
                            errors="backslashreplace", write_through=True)


# --------------------------------------------------------------------------- a project's CLI


class Runner:
    """``conductor --root PROJECT ...`` on one project, with ``--url`` when the project's
    database is not the embedded SQLite file; keeps every output for password scans."""

    def __init__(self, project: Path, url: str | None):
        self.project = project
        self.url = url
        self.outputs: list[str] = []

    def __call__(self, *args: str, expect: int | None = 0, url: bool = True,
                 real: bool = False) -> subprocess.CompletedProcess:
        argv = [*args, *(["--url", self.url] if url and self.url else [])]
        proc = conductor(*argv, root=self.project, cwd=Path.cwd(), real=real)
        self.outputs += [proc.stdout, proc.stderr]
        assert expect is None or proc.returncode == expect, (
            args, proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    @property
    def database_url(self) -> str:
        """The URL the commands use: ``--url``, else the component's embedded SQLite file."""
        return self.url or f"sqlite:///{self.project / 'storage-conductor/storages/orders_db/dev.sqlite'}"


def live_engine(run: Runner):
    """A new engine on the database ``run``'s commands use (the caller disposes of it)."""
    from conductor_magics.engine.connection import make_engine

    return make_engine(run.database_url)

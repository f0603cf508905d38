"""Real child processes that start at once, for kill tests that need many of them.

A new Python process spends seconds importing SQLAlchemy, Alembic and pandas before it does
anything; a kill test with twenty runs would mostly measure (and kill during) imports.
:class:`Forker` imports once, then forks one child per run: every child is a separate
process with its own pid, file descriptors and database connections, killed with a real
SIGKILL, started in milliseconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from helpers.workspace import REPO

_FORKER = r'''
import json, os, sys, traceback

for module in json.loads(sys.argv[1]):
    __import__(module)


def child(request):
    fd = os.open(request["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.dont_write_bytecode = bool(os.environ.get("PYTHONDONTWRITEBYTECODE"))
    try:
        if "argv" in request:  # the conductor CLI
            from conductor_magics import cli
            code = cli.main(request["argv"])
        else:
            sys.argv = ["-c", *request["args"]]
            exec(compile(request["code"], "<child>", "exec"), {"__name__": "__main__"})
            code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 99
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


for line in sys.stdin:
    request = json.loads(line)
    if request["op"] == "start":
        pid = os.fork()
        if pid == 0:
            child(request)
        print(json.dumps({"pid": pid}), flush=True)
    else:  # reap only when told: a pid is never reused while the test may still kill it
        status = os.waitpid(request["pid"], 0)[1]
        print(json.dumps({"code": os.waitstatus_to_exitcode(status)}), flush=True)
'''


class Forker:
    """A warm Python process (``warm`` modules imported) that forks one child per
    :meth:`start`; a child runs the ``conductor`` CLI or a snippet of code."""

    def __init__(self, folder: Path, warm: list[str]):
        self.folder = folder
        self.count = 0
        self._lock = threading.Lock()  # one request/answer at a time over the pipes
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONDUCTOR_")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen([sys.executable, "-c", _FORKER, json.dumps(warm)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=env, cwd=folder)

    def start(self, *, argv: list[str] | None = None, code: str | None = None,
              args: list[str] = (), cwd: Path | None = None,
              env: dict[str, str] | None = None) -> Child:
        """Fork a child running ``conductor ARGV`` or ``python -c CODE ARGS``; stdout and
        stderr go to one file (:attr:`Child.output`)."""
        with self._lock:
            self.count += 1
            out = self.folder / f"child-{self.count}.txt"
        request = {"op": "start", "out": str(out), "cwd": str(cwd or self.folder),
                   "env": env if env is not None else dict(os.environ)}
        request.update({"argv": argv} if argv is not None else {"code": code, "args": list(args)})
        return Child(self, self._ask(request)["pid"], out)

    def _ask(self, request: dict) -> dict:
        with self._lock:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        assert line, f"the forker died: exit {self.proc.wait()}"
        return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)

    def __enter__(self) -> Forker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Child:
    """One forked child: kill it, wait for it, read what it printed."""

    def __init__(self, forker: Forker, pid: int, out: Path):
        self.forker, self.pid, self.out = forker, pid, out
        self.returncode: int | None = None

    def output(self) -> str:
        return self.out.read_text(encoding="utf-8", errors="replace") if self.out.exists() else ""

    def wait_for_output(self, text: str, timeout: float = 120) -> bool:
        """Whether the child printed ``text`` within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if time.monotonic() > deadline or self.poll() is not None:
                return text in self.output()
            time.sleep(0.002)
        return True

    def kill(self) -> None:
        """SIGKILL (a child that has already ended is a zombie until reaped: same pid)."""
        os.kill(self.pid, 9)

    def wait(self) -> int:
        """Wait for the child to end and reap it; its exit code (negative: the signal that
        ended it). Polls, so the forker stays free to start other children meanwhile."""
        while self.returncode is None and self._state() not in ("Z", None):
            time.sleep(0.002)
        if self.returncode is None:
            self.returncode = self.forker._ask({"op": "wait", "pid": self.pid})["code"]
        return self.returncode

    def poll(self) -> int | None:
        """None while the child runs (a zombie counts as ended)."""
        if self.returncode is None and self._state() not in ("Z", None):
            return None
        return self.wait()

    def _state(self) -> str | None:
        try:
            with open(f"/proc/{self.pid}/stat") as stat:
                return stat.read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return None

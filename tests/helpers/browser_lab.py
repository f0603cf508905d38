"""A real JupyterLab server and a real Chromium for browser tests.

JupyterLab runs from this venv (``python -m jupyter lab``) on a free loopback port with a
random token; every Jupyter/IPython config, data and runtime folder points into a temp
folder, so no user configuration leaks in. The server and everything it started are
stopped by PID (never by name). Chromium is Debian's ``/usr/bin/chromium`` launched by
Playwright with ``executable_path`` (``playwright install`` is never used).

See ../shared/ENVIRONMENT.md, "Browser tests": right after the page loads the toolbar
says idle before the kernel is connected, and a Run All clicked then is dropped, so
:func:`wait_for_kernel` polls ``/api/kernels`` until a kernel is connected and idle.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
BOOTSTRAP_HINT = "run `bash .ci/bootstrap.sh` (it installs chromium with apt and jupyterlab/playwright into .venv)"

# User settings for the test's JupyterLab: every cell stays in the DOM (no windowing), so
# prompts and outputs of all cells can be inspected; no update checks or news.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false", "checkForUpdates": False},
}


class BrowserTestSetupError(RuntimeError):
    """The browser-test tooling is missing or a server did not come up."""


def require_tools() -> None:
    """Fail (never skip) with a clear message when Chromium, JupyterLab or Playwright is missing."""
    problems = []
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        problems.append(f"{CHROMIUM} is missing")
    for module in ("jupyterlab", "playwright"):
        try:
            __import__(module)
        except ImportError:
            problems.append(f"the Python package '{module}' is not installed in {sys.prefix}")
    if problems:
        raise BrowserTestSetupError("; ".join(problems) + f": {BOOTSTRAP_HINT}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _children(pid: int) -> list[int]:
    """PIDs of every live descendant of ``pid`` (read from /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name (field 2) may contain spaces and parentheses.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie counts as gone
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _stop_pids(pids: list[int], timeout: float = 10.0) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@dataclass
class Lab:
    """A running JupyterLab server."""

    root_dir: Path
    port: int
    token: str
    process: subprocess.Popen
    log_path: Path
    base: str = field(init=False)

    def __post_init__(self) -> None:
        self.base = f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.base}/{path.lstrip('/')}{sep}token={self.token}"

    def notebook_url(self, relative: str) -> str:
        return self.url(f"lab/tree/{relative}")

    def api(self, method: str, path: str, timeout: float = 10.0):
        request = urllib.request.Request(self.url(path), method=method)
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def kernels(self) -> list[dict]:
        return self.api("GET", "api/kernels")

    def stop(self) -> None:
        """Shut kernels down through the API, then stop the server and its children by PID."""
        if self.process.poll() is None:
            try:
                for kernel in self.kernels():
                    self.api("DELETE", f"api/kernels/{kernel['id']}", timeout=15)
            except (OSError, urllib.error.URLError, ValueError):
                pass
        descendants = _children(self.process.pid)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        _stop_pids([p for p in descendants if _alive(p)])


def lab_environment(home: Path) -> dict[str, str]:
    """The environment for a test's JupyterLab: every Jupyter/IPython folder under ``home``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JUPYTER", "IPYTHON")) and k != "PYTHONSTARTUP"}
    dirs = {
        "JUPYTER_CONFIG_DIR": home / "config",
        "JUPYTER_DATA_DIR": home / "data",
        "JUPYTER_RUNTIME_DIR": home / "runtime",
        "IPYTHONDIR": home / "ipython",
        "JUPYTERLAB_SETTINGS_DIR": home / "lab-settings",
        "JUPYTERLAB_WORKSPACES_DIR": home / "lab-workspaces",
    }
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    for name, content in LAB_SETTINGS.items():
        target = dirs["JUPYTERLAB_SETTINGS_DIR"] / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(content))
    env.update({k: str(v) for k, v in dirs.items()})
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_lab(root_dir: Path, home: Path, timeout: float = 60.0) -> Lab:
    """Start JupyterLab serving ``root_dir``; returns once ``/api/status`` answers."""
    require_tools()
    port, token = free_port(), secrets.token_hex(16)
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / "jupyterlab.log"
    command = [
        sys.executable, "-m", "jupyter", "lab",
        "--no-browser",
        f"--port={port}",
        "--port-retries=0",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={root_dir}",
        "--allow-root",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--ServerApp.open_browser=False",
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=root_dir, env=lab_environment(home),
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    lab = Lab(root_dir=root_dir, port=port, token=token, process=process, log_path=log_path)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise BrowserTestSetupError(
                f"JupyterLab exited with code {process.returncode} before answering:\n{lab.log()[-4000:]}")
        try:
            lab.api("GET", "api/status", timeout=2)
            return lab
        except (OSError, urllib.error.URLError, ValueError):
            pass
        if time.monotonic() > deadline:
            lab.stop()
            raise BrowserTestSetupError(
                f"JupyterLab did not answer /api/status within {timeout:.0f} s:\n{lab.log()[-4000:]}")
        time.sleep(0.2)


def wait_for_kernel(lab: Lab, timeout: float = 60.0) -> dict:
    """Wait until a kernel is connected (``connections >= 1``) and idle; returns it.

    The toolbar shows "idle" before the kernel's websocket is connected, and a Run All
    sent then is silently dropped, so the server's own view is the one to trust. A
    passing HTTP 500 right after start is retried.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            kernels = lab.kernels()
            last = kernels
            for kernel in kernels:
                if kernel.get("connections", 0) >= 1 and kernel.get("execution_state") == "idle":
                    return kernel
        except urllib.error.HTTPError as error:
            last = f"HTTP {error.code}"
            if error.code != 500:
                raise
        except (OSError, urllib.error.URLError, ValueError) as error:
            last = repr(error)
        time.sleep(0.25)
    raise AssertionError(f"no connected, idle kernel within {timeout:.0f} s; last answer: {last}\n"
                         f"server log:\n{lab.log()[-3000:]}")


def kernel_idle(lab: Lab) -> bool:
    try:
        kernels = lab.kernels()
    except (OSError, urllib.error.URLError, ValueError):
        return False
    return bool(kernels) and all(k.get("execution_state") == "idle" for k in kernels)

"""A throw-away PostgreSQL cluster for the test session (real server, loopback only).

initdb refuses to run as root, so as root the cluster runs as the ``postgres`` OS user
through ``runuser``. TCP connections use scram-sha-256 with a random password, so the
password-masking tests use a real one.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg


class PostgresUnavailable(RuntimeError):
    pass


def find_bindir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(Path(p).parent.parent.name))
    if not candidates:
        raise PostgresUnavailable(
            "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin; "
            "run `bash .ci/bootstrap.sh` (it installs the postgresql package)")
    return Path(candidates[-1]).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PostgresServer:
    bindir: Path
    folder: Path
    port: int
    password: str
    as_user: list[str]

    @property
    def version(self) -> int:
        return int(self.bindir.parent.name)

    def url(self, database: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://postgres:{self.password}@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres password={self.password} dbname={database}"

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def pg_ctl(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*self.as_user, str(self.bindir / "pg_ctl"), "-D", str(self.folder / "data"),
                               *args], capture_output=True, text=True, timeout=60, check=False)

    def stop(self) -> None:
        self.pg_ctl("stop", "-m", "immediate", "-w")
        shutil.rmtree(self.folder, ignore_errors=True)


def start_server() -> PostgresServer:
    bindir = find_bindir()
    folder = Path(tempfile.mkdtemp(prefix="conductor-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    os.chmod(folder, 0o755)
    password = "pw-" + secrets.token_hex(12)
    pwfile = folder / "pwfile"
    pwfile.write_text(password + "\n")
    if as_user:
        shutil.chown(pwfile, "postgres", "postgres")
    init = subprocess.run(
        [*as_user, str(bindir / "initdb"), "-D", str(folder / "data"), "-U", "postgres",
         f"--pwfile={pwfile}", "--auth-local=trust", "--auth-host=scram-sha-256",
         "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"],
        capture_output=True, text=True, timeout=120, check=False)
    if init.returncode != 0:
        raise PostgresUnavailable(f"initdb failed: {init.stderr[-2000:]}")
    pwfile.unlink()
    port = free_port()
    server = PostgresServer(bindir, folder, port, password, as_user)
    started = server.pg_ctl(
        "start", "-w", "-t", "60", "-l", str(folder / "server.log"),
        "-o", f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={folder} "
              "-c fsync=off -c full_page_writes=off -c synchronous_commit=off")
    if started.returncode != 0:
        log = (folder / "server.log").read_text() if (folder / "server.log").exists() else ""
        raise PostgresUnavailable(f"pg_ctl start failed: {started.stderr}\n{log[-2000:]}")
    return server

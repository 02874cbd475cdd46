"""A throwaway PostgreSQL cluster for tests: initdb + pg_ctl into a temp dir on a free
loopback port, stopped at the end. Skips with a reason when the server binaries are absent
(scripts/ensure-postgres.sh installs them)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def pg_bindir() -> Path | None:
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(d) / "initdb").exists():
            return Path(d)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _runas() -> tuple[list[str], int | None, int | None]:
    """initdb refuses to run as root: run the server as the ``postgres`` user then."""
    if os.geteuid() != 0:
        return [], None, None
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True)
        pw = pwd.getpwnam("postgres")
    return ["runuser", "-u", "postgres", "--"], pw.pw_uid, pw.pw_gid


@contextmanager
def cluster() -> Iterator[str]:
    bindir = pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found (run scripts/ensure-postgres.sh)")
    prefix, uid, gid = _runas()
    root = Path(tempfile.mkdtemp(prefix="msc-pg-"))
    if uid is not None and gid is not None:
        os.chown(root, uid, gid)
    data, sock = root / "data", root / "sock"
    port = free_port()
    try:
        subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                        "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions"],
                       check=True, capture_output=True)
        sock.mkdir()
        if uid is not None and gid is not None:
            os.chown(sock, uid, gid)
        opts = (f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=60")
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-w",
                        "-l", str(root / "log"), "start"], check=True, capture_output=True)
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL: {exc.stderr.decode(errors='replace')[-500:]}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "-w", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    plain = admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

"""``msc-screen serve`` as a user runs it: a real process, refusals without tracebacks."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from msc_screen.cli import app

EXE = Path(sys.executable).with_name("msc-screen")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_insecure_no_auth_on_public_host_is_refused(tmp_path):
    r = CliRunner().invoke(app, ["serve", "--insecure-no-auth", "--host", "0.0.0.0",
                                 "--db", f"sqlite:///{tmp_path / 'x.db'}"])
    assert r.exit_code == 2
    assert "loopback" in r.output and "Traceback" not in r.output


def test_bad_clients_file_is_refused(tmp_path):
    bad = tmp_path / "clients.json"
    bad.write_text('[{"iss": "a"}]')
    r = CliRunner().invoke(app, ["serve", "--cds-clients", str(bad),
                                 "--db", f"sqlite:///{tmp_path / 'x.db'}"])
    assert r.exit_code == 2
    assert "CDS clients[0]" in r.output and "Traceback" not in r.output


@pytest.mark.skipif(not EXE.exists(), reason="msc-screen entry point not installed")
def test_serve_process_answers(tmp_path):
    port = _free_port()
    proc = subprocess.Popen([str(EXE), "serve", "--insecure-no-auth", "--port", str(port),
                             "--db", f"sqlite:///{tmp_path / 's.db'}"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for _ in range(200):
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            pytest.fail("server did not answer")
        assert r.json()["status"] == "ok"
        assert httpx.get(f"http://127.0.0.1:{port}/cds-services").status_code == 200
    finally:
        proc.terminate()
        out = proc.communicate(timeout=20)[0].decode()
    assert "insecure-no-auth" in out  # the loud warning
    assert (tmp_path / "s.db").exists()

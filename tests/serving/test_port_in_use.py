"""`takeoff serve` on a port another server holds ends in one clear message naming the port
and the fix: no URL printed first, no raw `Errno 98` traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

FIXTURE_BUNDLE = Path(__file__).resolve().parents[1] / "fixtures" / "bundle-v1"


def test_a_port_in_use_is_said_with_the_fix():
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()  # a real server socket on the port
    port = holder.getsockname()[1]
    try:
        src = str(Path(__file__).resolve().parents[2] / "src")  # this checkout's code, installed or not
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
        done = subprocess.run([sys.executable, "-m", "takeoff", "serve", str(FIXTURE_BUNDLE), "--port", str(port)],
                              capture_output=True, text=True, timeout=120, env=env)
    finally:
        holder.close()
    said = " ".join((done.stdout + done.stderr).split())
    assert done.returncode != 0
    assert f"port {port} on 127.0.0.1 is already in use" in said and "Fix: pass --port" in said
    assert "Errno" not in said and "Traceback" not in said
    assert "http://" not in said  # the URL is not announced for a server that never starts

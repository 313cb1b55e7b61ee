"""Stopping a local model server: it must not outlive the block that started it."""

from __future__ import annotations

import subprocess
import sys

from edas_agent.proposers.local_server import _stop

DEAF = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True); time.sleep(600)"  # noqa: E501


def test_a_server_that_ignores_sigterm_is_killed_after_the_grace():
    server = subprocess.Popen([sys.executable, "-c", DEAF], stdout=subprocess.PIPE)
    assert server.stdout.readline().strip() == b"1"  # the handler is in place
    _stop(server, grace_s=0.5)
    assert server.returncode == -9  # SIGKILL


def test_a_server_that_stops_on_sigterm_is_not_killed():
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    _stop(server, grace_s=30)
    assert server.returncode == -15  # SIGTERM

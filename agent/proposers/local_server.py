"""Start llama-cpp-python's OpenAI-compatible server on 127.0.0.1 for a GGUF model: what our
real-model test and bench/local_llm.py run against, and a quick way for a user to try the
`openai-compatible` backend offline (pip install -e ".[local-llm]")."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class ServerFailed(RuntimeError):
    pass


@contextmanager
def llama_cpp_server(
    model: Path,
    log: Path,
    chat_format: str | None = "gemma",
    context_tokens: int = 8192,
    startup_s: float = 180,
    python: str = sys.executable,
) -> Iterator[str]:
    """The server's base URL while the block runs; the server is stopped after it. The
    packaged Gemma GGUF is a base model without a chat template, hence `chat_format`.
    `python`: an interpreter with llama-cpp-python (another virtual environment's)."""
    port = _free_port()
    command = [
        python, "-m", "llama_cpp.server", "--model", str(model),
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(context_tokens),
    ]  # fmt: skip
    if chat_format:
        command += ["--chat_format", chat_format]
    with log.open("w") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}/v1"
        try:
            _wait_until_up(server, url, startup_s, log)
            yield url
        finally:
            _stop(server)


def _stop(server: subprocess.Popen, grace_s: float = 30) -> None:
    """Terminate, then kill: a server busy on a loaded machine has outlived 30 s of SIGTERM
    (seen beside two benchmarks), and one left behind keeps a core busy."""
    server.terminate()
    try:
        server.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def _wait_until_up(server: subprocess.Popen, url: str, startup_s: float, log: Path) -> None:
    deadline = time.monotonic() + startup_s
    while True:
        try:
            urllib.request.urlopen(f"{url}/models", timeout=5).read()
            return
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise ServerFailed(f"llama-cpp-python's server did not start; see {log}") from None
            time.sleep(1)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]

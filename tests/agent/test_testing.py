"""The shipped test doubles drive the whole loop, from Python, in a process without torch."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path

    class NoTorch:  # any import of torch fails, as on a machine without it
        def find_spec(self, name, path, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError("torch is not installed here")

    sys.meta_path.insert(0, NoTorch())

    from edas_agent.config import load_config
    from edas_agent.analysis.replay import replay
    from edas_agent.session import RunSession
    from edas_agent.testing import NumpyEvaluator, ScriptedProposer, proposal

    def script():
        return ScriptedProposer([
            proposal({"op": "replace", "path": "/l2", "value": 30.0}),
            proposal({"op": "replace", "path": "/l2", "value": 1e9}),  # out of bounds
            proposal({"op": "replace", "path": "/features", "value": 0.5}),
            proposal(problem="the answer is not valid JSON"),
            proposal({"op": "replace", "path": "/rows", "value": 0.5}),
        ])

    runs = Path(sys.argv[1])
    config = load_config(None, {"budget": 3, "members": 10, "runs_dir": str(runs)})
    build = lambda config: NumpyEvaluator(seed=config.seed)
    with RunSession.start(config, build, script()) as session:
        session.run()
    folder = session.journal.folder
    with RunSession.resume(folder, {"budget": 5}, build, script()) as session:
        session.run()
    report = replay(folder)
    print(json.dumps({
        "statuses": [r.status for r in report.records],
        "reasons": [r.reason for r in report.records],
        "replay_ok": report.ok,
        "checked": report.checked,
        "torch": "torch" in sys.modules,
    }))
    """
)


def test_numpy_evaluator_and_scripted_proposer_run_resume_and_replay_without_torch(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert not outcome["torch"]
    statuses = outcome["statuses"]
    assert len(statuses) == 6 and statuses[0] == "accepted"  # the baseline, then 5 steps
    assert statuses[2] == "invalid" and "outside the space" in outcome["reasons"][2]
    assert statuses[4] == "invalid" and "not valid JSON" in outcome["reasons"][4]
    assert {statuses[1], statuses[3], statuses[5]} <= {"accepted", "rejected"}
    assert outcome["replay_ok"] and outcome["checked"] == 3

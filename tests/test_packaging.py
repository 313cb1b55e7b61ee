"""The wheel as a user installs it: one import name, `edas_agent`, and nothing else at the top
level, so a project with its own `agent` and `evaluators` packages runs a plugin search with
both importable side by side."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_FOLDERS = {"agent": "edas_agent", "evaluators": "edas_agent/evaluators",
                   "prompts": "edas_agent/prompts"}  # fmt: skip


def pip(*args: str) -> None:
    """This interpreter's pip, without dependencies (they are installed here already)."""
    subprocess.run([sys.executable, "-m", "pip", *args, "--no-deps", "-q"], check=True)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("wheel")
    pip("wheel", "--no-build-isolation", "-w", str(folder), str(ROOT))
    (built,) = folder.glob("edas_agent-*.whl")
    return built


def shipped_in_the_checkout() -> set[str]:
    """Every module and data file of the three folders, at the path the wheel should give it."""
    names = set()
    for folder, installed in PACKAGE_FOLDERS.items():
        for path in (ROOT / folder).rglob("*"):
            if path.name.endswith((".py", ".j2", ".csv.gz")):
                names.add(installed + "/" + path.relative_to(ROOT / folder).as_posix())
    return names


def test_the_wheel_installs_one_namespace_with_every_module_and_data_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    top_level = {name.split("/")[0] for name in names}
    assert top_level == {"edas_agent", f"{wheel.name.split('-')[0]}-0.1.0.dist-info"}
    missing = shipped_in_the_checkout() - names
    assert not missing, f"in the checkout but not in the wheel: {sorted(missing)}"
    entry_points = zipfile.ZipFile(wheel).read("edas_agent-0.1.0.dist-info/entry_points.txt")
    assert b"edas-agent = edas_agent.cli.app:main" in entry_points


USER_AGENT = '''
"""The user's own LLM agent package, named as countless projects name theirs."""
NAME = "the user's agent"
'''

USER_PLUGIN = """
import numpy as np
from pydantic import BaseModel, Field

import agent  # the user's own package, not ours
from evaluators.noise import noisy  # ditto
from edas_agent import FunctionEvaluator

assert agent.NAME == "the user's agent"

class Space(BaseModel):
    scale: float = Field(1.0, ge=0.5, le=2.0, multiple_of=0.5)

def make(seed):
    rng = np.random.default_rng(0)
    y_val, y_test = rng.normal(size=60), rng.normal(size=60)

    def train(arch, learner_seed):
        return noisy(y_val, arch.scale, learner_seed), noisy(y_test, arch.scale, learner_seed + 1)

    return FunctionEvaluator(Space, train, y_val, y_test, task="regression", seed=seed)
"""

USER_EVALUATORS = """
import numpy as np

def noisy(y, scale, seed):
    return y + scale * np.random.default_rng(seed).normal(size=y.shape)
"""


@pytest.fixture(scope="module")
def site(wheel, tmp_path_factory) -> Path:
    """The wheel installed the way pip installs it, in a folder of its own."""
    folder = tmp_path_factory.mktemp("site")
    pip("install", "--no-index", "--target", str(folder), str(wheel))
    return folder


def run_from(site: Path, cwd: Path, script: str, *args: str) -> subprocess.CompletedProcess:
    """Runs `script` with the installed wheel first on the path, never the checkout."""
    guard = "import sys, edas_agent; assert edas_agent.__file__.startswith(sys.argv[1]);"
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(cwd)])}
    return subprocess.run(
        [sys.executable, "-c", guard + script, str(site), *args],
        cwd=cwd, env=environment, capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_templates_and_the_vendored_data_load_from_the_installed_wheel(site, tmp_path):
    script = (
        "from edas_agent.proposers.prompts import render;"
        "from edas_agent.evaluators.tabular.data import DataSpec, load;"
        "from tests_context import ctx; p = render(ctx());"
        "assert 'rho = 0.900000' in p.user and 'M = 50' in p.system;"
        "assert len(load(DataSpec(), 0).train) > 20000; print('ok')"
    )
    (tmp_path / "tests_context.py").write_text(
        "from edas_agent.theory.gate import Stats\n"
        "from edas_agent.proposers.base import ProposalContext\n"
        "from edas_agent.evaluators.tabular.space import Architecture\n"
        "def ctx():\n"
        "    s = Stats(k=2, E=0.1, sigma2=0.05, rho=0.9, D=0.005, E_M=0.0951)\n"
        "    return ProposalContext(step=1, budget=50, members=50, rule='exact', baseline_step=0,\n"
        "        architecture=Architecture().document(), stats=s, history=[],\n"
        "        space_schema=Architecture.model_json_schema(), dataset={})\n"
    )
    result = run_from(site, tmp_path, script)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_a_project_with_its_own_agent_package_searches_through_the_installed_wheel(site, tmp_path):
    project = tmp_path / "project"
    (project / "agent").mkdir(parents=True)
    (project / "agent" / "__init__.py").write_text(USER_AGENT)
    (project / "evaluators").mkdir()
    (project / "evaluators" / "__init__.py").write_text("")
    (project / "evaluators" / "noise.py").write_text(USER_EVALUATORS)
    (project / "search.py").write_text(USER_PLUGIN)
    cli = "from edas_agent.cli.app import main; sys.argv[1:] = sys.argv[2:]; main()"
    result = run_from(
        site, project, cli, "run", "--budget", "3", "--runs-dir", str(tmp_path / "runs"),
        "--set", "evaluator.plugin=search:make",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    (run,) = (tmp_path / "runs").iterdir()
    assert len((run / "trajectory.jsonl").read_text().splitlines()) >= 4

"""Shared fixtures: a small synthetic dataset, a fast configuration for loop tests, and a
finished search on them."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from edas_agent.config import Config, load_config

# Tests compare trainings bit for bit, and a busy CI machine would change the tabular
# evaluator's fair share of the cores (evaluators/tabular/threads.py), and with it the order
# of torch's float sums, between two of them: a fixed cap, set before torch starts, keeps
# every training on the same threads. tests/evaluators/tabular/test_threads.py tests the share.
os.environ.setdefault("OMP_NUM_THREADS", str(min(2, os.cpu_count() or 1)))


def make_table(rows: int = 1200, seed: int = 0) -> pd.DataFrame:
    """A binary task with a real signal in categorical, numeric and interaction terms."""
    rng = np.random.default_rng(seed)
    colour = rng.choice(["red", "green", "blue", "grey"], rows)
    shape = rng.choice(["circle", "square", "star"], rows)
    size = rng.normal(0, 1, rows)
    weight = rng.lognormal(0, 1, rows)
    noise = rng.normal(0, 1, rows)
    logit = (
        1.5 * (colour == "red") - 1.0 * (shape == "star") + size + 0.8 * size * (colour == "blue")
    )
    label = np.where(rng.random(rows) < 1 / (1 + np.exp(-logit)), "yes", "no")
    return pd.DataFrame(
        {
            "colour": colour,
            "shape": shape,
            "size": size,
            "weight": weight,
            "noise": noise,
            "label": label,
        }
    )


@pytest.fixture(autouse=True, scope="session")
def _encoded_data_cache_in_a_temporary_folder(tmp_path_factory: pytest.TempPathFactory):
    """Tests never write to the user's ~/.cache (nor read what is there)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EDAS_AGENT_CACHE_DIR", str(tmp_path_factory.mktemp("encoded-data-cache")))
        yield


@pytest.fixture
def table_csv(tmp_path: Path) -> Path:
    path = tmp_path / "toy.csv"
    make_table().to_csv(path, index=False)
    return path


@pytest.fixture
def fast_config(table_csv: Path, tmp_path: Path) -> Config:
    """A configuration whose whole search takes a few seconds."""
    return load_config(
        None,
        {
            "budget": 6,
            "members": 20,
            "runs_dir": str(tmp_path / "runs"),
            "name": "test",
            "evaluator.data.path": str(table_csv),
            "evaluator.data.target": "label",
            "evaluator.device": "cpu",
        },
    )


@pytest.fixture
def searched(fast_config: Config):
    """A finished builtin search of `budget` proposals on the toy table: its run folder."""
    from edas_agent.config import dump_config
    from edas_agent.evaluators.tabular.evaluator import TabularEvaluator
    from edas_agent.evaluators.tabular.mutations import MUTATIONS
    from edas_agent.proposers.builtin import BuiltinProposer
    from edas_agent.record import Journal
    from edas_agent.session import build_search

    def search(budget: int, proposer_seed: int) -> Path:
        config = fast_config.model_copy(update={"budget": budget})
        evaluator = TabularEvaluator(config.evaluator.data, config.evaluator, config.seed)
        journal = Journal.create(Path(config.runs_dir), config.name, dump_config(config))
        proposer = BuiltinProposer(proposer_seed, MUTATIONS)
        build_search(config, evaluator, proposer, journal).run()
        return journal.folder

    return search

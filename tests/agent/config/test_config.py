from __future__ import annotations

from pathlib import Path

import pytest

from edas_agent.config import dump_config, load_config, parse_llm_option
from edas_agent.errors import UserError


def test_defaults_are_the_offline_default_run():
    config = load_config(None, {})
    assert config.budget == 50 and config.members == 50
    assert config.llm.provider == "builtin" and config.gate.rule == "exact"
    assert config.evaluator.data.path == "adult" and config.evaluator.learners == 2


def test_file_then_overrides(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text("budget: 7\nllm:\n  provider: openai\n  model: a\n")
    config = load_config(path, {"budget": None, "llm.model": "b", "members": 100})
    assert config.budget == 7  # None means "not given on the command line"
    assert config.llm.model == "b" and config.members == 100


def test_data_at_the_top_is_the_tabular_evaluators_own(tmp_path: Path):
    """The core config has no table of its own: `data:` (old run folders, the short form)
    is read as `evaluator.data`, where a key set explicitly wins, and is written there."""
    path = tmp_path / "old.yaml"
    path.write_text("data:\n  path: t.csv\n  target: y\nevaluator:\n  learners: 3\n")
    config = load_config(path, {"evaluator.data.target": "label"})
    assert (config.evaluator.data.path, config.evaluator.data.target) == ("t.csv", "label")
    assert config.evaluator.learners == 3 and "data" not in type(config).model_fields
    assert load_config(None, {"data.task": "regression"}).evaluator.data.task == "regression"
    written = tmp_path / "new.yaml"
    written.write_text(dump_config(config))
    assert "\ndata:" not in "\n" + written.read_text()
    assert load_config(written, {}) == config
    with pytest.raises(UserError, match="data and evaluator must be mappings"):
        load_config(None, {}, {"data": "t.csv"})


def test_a_set_to_null_is_a_value():
    assert load_config(None, {}).gate.min_effect == 0.5
    assert load_config(None, {"gate.min_effect": None}).gate.min_effect == 0.5  # unset option
    assert load_config(None, {}, {"gate.min_effect": None}).gate.min_effect is None  # --set


def test_unknown_keys_are_rejected_with_their_path(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text("llm:\n  providr: openai\n")
    with pytest.raises(UserError, match=r"llm\.providr: unknown key"):
        load_config(path, {})


def test_out_of_range_values_name_the_key_and_bound():
    with pytest.raises(UserError, match=r"members: Input should be greater than or equal to 2"):
        load_config(None, {"members": 1})


def test_api_keys_are_refused_in_the_file(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text("llm:\n  provider: openai\n  api_key: sk-secret\n")
    with pytest.raises(UserError, match="api_key_env") as info:
        load_config(path, {})
    assert "sk-secret" not in str(info.value)


@pytest.mark.parametrize("text", ["budget: [1, 2", "- a\n- b\n"])
def test_unreadable_yaml_is_a_user_error(tmp_path: Path, text: str):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=str(path)):
        load_config(path, {})


def test_missing_file_is_a_user_error(tmp_path: Path):
    with pytest.raises(UserError, match="cannot read config"):
        load_config(tmp_path / "absent.yaml", {})


def test_llm_option_splits_provider_and_model():
    assert parse_llm_option("anthropic") == {"llm.provider": "anthropic"}
    assert parse_llm_option("openai:qwen2.5:7b") == {
        "llm.provider": "openai",
        "llm.model": "qwen2.5:7b",
    }


def test_a_data_file_needs_a_target():
    with pytest.raises(UserError, match="target"):
        load_config(None, {"data.path": "some.csv"})


def test_resolved_config_round_trips(tmp_path: Path):
    config = load_config(
        None, {"llm.provider": "openai", "llm.base_url": "http://localhost:8000/v1"}
    )
    path = tmp_path / "resolved.yaml"
    path.write_text(dump_config(config))
    assert load_config(path, {}) == config


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"evaluator.plugin": "a:b", "evaluator.command": "x {arch} {seed} {out}"}, "exclude"),
        ({"evaluator.plugin": "no_colon"}, "module:function"),
        ({"evaluator.command": "x {arch} {seed} {out}"}, "needs evaluator.space"),
        (
            {"evaluator.command": "x {arch}", "evaluator.space": "s", "evaluator.targets": "t"},
            "must contain {seed}, {out}",
        ),
        ({"evaluator.space": "s.json"}, "belong to evaluator.command"),
    ],
)
def test_evaluator_kinds_are_checked(tmp_path: Path, changes, message):
    with pytest.raises(UserError, match=message):
        load_config(None, changes)


def test_a_command_evaluator_keeps_absolute_paths_for_resume(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(
        None,
        {"evaluator.command": "x {arch} {seed} {out}", "evaluator.space": "s.json",
         "evaluator.targets": "t.npz"},
    )  # fmt: skip
    assert config.evaluator.space == str(tmp_path / "s.json")
    assert config.evaluator.workdir == str(tmp_path)
    assert load_config(None, {}).evaluator.workdir is None  # the built-in evaluator needs none


def test_invalid_yaml_is_one_line_naming_the_file_line_and_column(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("budget: 5\nllm:\n  provider: [unclosed\n")
    with pytest.raises(UserError) as caught:
        load_config(bad, {})
    message = str(caught.value)
    assert "\n" not in message and str(bad) in message and "line 4, column 1" in message


@pytest.mark.parametrize(
    ("sets", "learners", "confirm"),
    [
        ({}, 2, 2),  # no compute budget: two learners, as the README says
        ({"max_train_tflop": 1.0}, 4, 4),
        ({"max_train_hours": 0.5}, 4, 4),
        ({"max_train_tflop": 1.0, "gate.budget_learners": 6}, 6, 6),
        ({"max_train_tflop": 1.0, "gate.budget_learners": None}, 2, 2),
        ({"max_train_tflop": 1.0, "evaluator.learners": 3}, 3, 2),  # set: the user's
        ({"max_train_tflop": 1.0, "gate.confirm_learners": 1}, 2, 1),
    ],
)
def test_a_compute_budget_buys_more_learners_per_decision(sets, learners, confirm):
    config = load_config(None, {}, sets)
    assert (config.evaluator.learners, config.gate.confirm_learners) == (learners, confirm)


def test_a_resumed_run_keeps_its_learners_when_a_budget_is_added(tmp_path: Path):
    """A run started without a compute budget logged 2 learners per decision; resuming it
    with one must not change how its remaining candidates are judged."""
    path = tmp_path / "config.yaml"
    path.write_text(dump_config(load_config(None, {})))
    resumed = load_config(path, {"max_train_tflop": 2.0})
    assert (resumed.evaluator.learners, resumed.gate.confirm_learners) == (2, 2)
    budgeted = load_config(None, {"max_train_tflop": 2.0})
    path.write_text(dump_config(budgeted))
    assert load_config(path, {"max_train_tflop": 4.0}).evaluator.learners == 4


def test_a_budget_that_conflicts_with_survivor_learners_says_where_the_4_came_from():
    said = r"with a compute budget evaluator\.learners is gate\.budget_learners, 4"
    with pytest.raises(UserError, match=said):
        load_config(None, {}, {"max_train_tflop": 1.0, "screening.survivor_learners": 3})

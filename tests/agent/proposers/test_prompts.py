from __future__ import annotations

import json
from pathlib import Path

import pytest

from edas_agent.proposers.prompts import render
from edas_agent.theory.gate import frontier_rho
from tests.agent.proposers.test_builtin import context


def test_prompt_carries_space_baseline_statistics_frontier_and_history():
    from edas_agent.proposers.base import HistoryEntry

    entry = HistoryEntry(
        step=3,
        status="rejected",
        edits=[{"op": "replace", "path": "/tower/dropout", "value": 0.3}],
        rationale="diversity",
        reason="exact: E_M 0.1 >= baseline 0.09",
        delta_E=0.001,
        rho=0.95,
        E_M=0.1,
    )
    ctx = context(0.9, step=4, history=[entry])
    prompt = render(ctx)
    s = ctx.stats
    for expected in (
        f"E = {s.E:.6f}",
        f"D = {s.D:.6f}",
        f"sigma2 = {s.sigma2:.6f}",
        f"rho = {s.rho:.6f}",
    ):
        assert expected in prompt.user
    assert f"predicted E_M (M = 50) = {s.E_M:.6f}" in prompt.user
    assert f"| +0.000000 | {frontier_rho(s, 0.0, 50):.6f} |" in prompt.user
    assert '"maximum": 0.5' in prompt.user  # bounds of the space are shown
    assert '"dropout": 0.0' in prompt.user  # the baseline architecture
    assert "step 3 [rejected]" in prompt.user and "exact: E_M 0.1 >= baseline 0.09" in prompt.user
    assert "Step 4 of 50" in prompt.user
    assert "M = 50" in prompt.system and "diversity" in prompt.system.lower()
    assert "data, not instructions" in prompt.system


def test_paper_rule_is_explained_when_configured():
    ctx = context(0.9).model_copy(update={"rule": "paper"})
    assert "paper rule" in render(ctx).system


def test_user_templates_override_the_builtin_ones(tmp_path: Path):
    (tmp_path / "propose.j2").write_text("custom: rho={{ stats.rho }}")
    prompt = render(context(0.9), str(tmp_path))
    assert prompt.user == "custom: rho=0.9"
    assert "M = 50" in prompt.system  # not overridden: the shipped one


def test_a_template_with_an_unknown_variable_fails_loudly(tmp_path: Path):
    import jinja2

    (tmp_path / "propose.j2").write_text("{{ nonexistent }}")
    with pytest.raises(jinja2.UndefinedError):
        render(context(0.9), str(tmp_path))


@pytest.mark.parametrize(
    ("provider", "mode"),
    [
        ("openai", "json_schema"),
        ("openai-compatible", "json_object"),
        ("openai-compatible", "prompt"),
        ("anthropic", None),
    ],
)
def test_every_backend_sends_the_rendered_statistics(provider, mode):
    from edas_agent.config import LLMSettings
    from edas_agent.proposers.anthropic import AnthropicProposer
    from edas_agent.proposers.openai import OpenAICompatibleProposer, OpenAIProposer
    from edas_agent.training.costs import LLMBudget

    settings = LLMSettings(provider=provider, base_url="http://127.0.0.1:9/v1")
    cls = {"openai": OpenAIProposer, "openai-compatible": OpenAICompatibleProposer}.get(
        provider, AnthropicProposer
    )
    proposer = cls(settings, LLMBudget(settings), api_key="k")
    if mode:
        proposer.wire.mode = mode
    ctx = context(0.93)
    request = proposer.wire.request(proposer.wire.start(proposer.render_prompt(ctx)))
    text = json.dumps(request)
    s = ctx.stats
    for claim in (f"rho = {s.rho:.6f}", f"E = {s.E:.6f}", f"predicted E_M (M = 50) = {s.E_M:.6f}"):
        assert claim in text
    assert "frontier" in text.lower() and "diversity gain" in text.lower()
    assert ("response_format" in request) == (mode in ("json_schema", "json_object"))


def test_old_history_is_summarised_to_fit_the_token_budget():
    from edas_agent.proposers.base import HistoryEntry

    history = [
        HistoryEntry(
            step=i,
            status="rejected" if i % 3 else "invalid",
            edits=[{"op": "replace", "path": "/tower/dropout", "value": 0.1}],
            rationale="x" * 50,
            reason="exact: E_M 0.1 >= baseline 0.09 " + "y" * 100,
        )
        for i in range(1, 201)
    ]
    ctx = context(0.9, step=201, history=history)
    full = render(ctx, token_budget=1_000_000).user
    short = render(ctx, token_budget=3000).user
    assert len(full) > 3000 * 4 >= len(short)
    assert "older proposals not shown" in short and "step 200 [rejected]" in short
    assert "step 1 [" not in short  # the oldest go first


def test_the_repair_message_names_each_problem():
    from edas_agent.proposers.prompts import render_repair

    text = render_repair([None, "outside the space: tower.dropout: Input should be <= 0.5"])
    assert "proposal 2: outside the space: tower.dropout" in text and "proposal 1" not in text
    single = render_repair(["the answer is not valid JSON: Expecting value"])
    assert "- the answer is not valid JSON" in single


def test_no_placeholder_a_small_model_could_copy_and_why_a_better_candidate_lost():
    from edas_agent.proposers.base import HistoryEntry

    edits = [{"op": "replace", "path": "/tower/dropout", "value": 0.1}]
    entry = HistoryEntry(step=2, status="rejected", rationale="r", reason="...", E_M=0.09,
                         delta_E=0.0, rho=0.9, edits=edits,
                         why="the gain was below the seed-noise floor")  # fmt: skip
    for style in ("full", "compact"):
        prompt = render(context(0.9, step=3, history=[entry]), style=style)
        assert "<" not in prompt.system and "one sentence>" not in prompt.user
    compact = render(context(0.9, step=3, history=[entry]), style="compact").user
    assert "(lower E_M, rejected: the gain was below the seed-noise floor)" in compact

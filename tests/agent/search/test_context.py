from __future__ import annotations

import json

from edas_agent.config import load_config
from edas_agent.proposers.prompts import render
from edas_agent.search.context import proposal_context
from edas_agent.session import RunSession
from edas_agent.testing import NumpyEvaluator


def long_run(tmp_path, **settings):
    """A 40-proposal run of the random proposer that shows only the last 4 in its history;
    seed 1 has near misses (candidates stopped after a lower first E_M)."""
    config = load_config(None, {"budget": 40, "members": 10, "runs_dir": str(tmp_path),
                                "seed": 1, "llm.provider": "random", "llm.history": 4,
                                **settings})  # fmt: skip
    with RunSession.start(config, lambda c: NumpyEvaluator(seed=c.seed)) as session:
        records = session.run()
        search = session.search
        # what a language model's prompt would be shown next (only it reads them)
        llm = config.llm.model_copy(update={"provider": "openai-compatible"})
        prompted = config.model_copy(update={"llm": llm})
        context = proposal_context(prompted, search.evaluator, search.run_state, 41, 1)
        assert not proposal_context(config, search.evaluator, search.run_state, 41, 1).tried
    return records, context


def test_older_near_misses_are_kept_with_the_largest_predicted_gains_first(tmp_path):
    records, context = long_run(tmp_path)
    recent = {entry.step for entry in context.history}
    by_step = {r.step: r for r in records}
    assert context.near_misses and len(context.near_misses) <= 5
    gains = []
    for miss in context.near_misses:
        record = by_step[miss.step]
        assert miss.step not in recent and record.status == "rejected"
        assert miss.first_E_M == record.rounds[0].stats.E_M < miss.baseline_E_M
        assert miss.baseline_step == record.baseline.step and miss.why
        gains.append(miss.first_E_M - miss.baseline_E_M)
    assert gains == sorted(gains)
    stopped_earlier = [
        r for r in records[1:]
        if r.step not in recent and r.status == "rejected" and r.rounds
        and r.rounds[0].stats.E_M < r.baseline.stats.E_M
    ]  # fmt: skip
    assert len(context.near_misses) == min(5, len(stopped_earlier))


def test_places_tried_on_the_current_baseline_are_summarised(tmp_path):
    records, context = long_run(tmp_path)
    recent = {entry.step for entry in context.history}
    current = context.architecture
    against = [
        r for r in records[1:]
        if r.step not in recent and r.baseline and r.baseline.step == context.baseline_step
    ]  # fmt: skip
    assert against, "the baseline should have older proposals against it"
    expected: dict[str, list[str]] = {}  # whole architectures: the places that changed
    for record in against:
        for place in ("l2", "features", "rows"):
            if record.architecture[place] != current[place]:
                values = expected.setdefault(f"/{place}", [])
                value = json.dumps(record.architecture[place])
                values.extend([] if value in values else [value])
    assert {t.path: t.values_tried for t in context.tried} == {
        path: values[-8:] for path, values in expected.items()
    }
    assert any(len(values) > 8 for values in expected.values())  # the cap was used


def test_the_prompts_show_them_and_zero_turns_them_off(tmp_path):
    _, context = long_run(tmp_path)
    miss = context.near_misses[0]
    full, compact = render(context).user, render(context, style="compact").user
    assert f"step {miss.step} on the baseline of step {miss.baseline_step}" in full
    assert "Places already edited on this baseline" in full
    assert f"E_M={miss.first_E_M:.5f}" in compact and "Already tried on this baseline" in compact
    _, off = long_run(tmp_path / "off", **{"llm.near_misses": 0})
    assert not off.near_misses and not off.tried
    assert "Near misses" not in render(off).user

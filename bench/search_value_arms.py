"""bench/search_value.py's arms: each a configuration of the search, a mixture of the
reference arm's candidates, or another library's search (Optuna: search_value_optuna.py);
and `search`, an arm's search as edas-agent runs it (which the tuned start reuses)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from search_value_judging import Searched, Spent

from edas_agent import Record, RunSession, load_config


@dataclass(frozen=True)
class Arm:
    name: str
    overrides: dict[str, Any]
    sets_compute: bool = False  # the arm whose spend every other arm matches
    mixes_reference: bool = False  # no search: the best mixture of the reference's candidates
    searches_mixtures: bool = False  # its incumbent is a mixture (search.target mixture)
    min_learners: int = 2  # of the architectures a mixture may use
    external: bool = False  # searched by another library (Optuna), not by edas-agent
    # whether its accepted steps are judged (did each lower the realised error?); random
    # search's are whole-space draws, often large: judging their 16-member ensembles can
    # cost hours on a CPU for a diagnostic
    judges_steps: bool = True

    @property
    def steps_judged(self) -> bool:
        return self.judges_steps and not self.external


def arms(honest_members: int) -> dict[str, Arm]:
    m = honest_members
    screened = (
        Arm("screening", {"screening.enabled": True}),
        Arm(
            "screening-eta4",
            {"screening.enabled": True, "screening.proposals": 16, "screening.eta": 4},
        ),
        Arm(
            "screening-wide",
            {
                "screening.enabled": True,
                "screening.proposals": 16,
                "screening.eta": 8,
                "screening.stage_fractions": [1 / 16],
            },
        ),
    )
    ninth = {"screening.enabled": True, "screening.eta": 9, "screening.stage_fractions": [1 / 9]}
    independent = tuple(
        Arm(f"{a.name}-independent", {**a.overrides, "screening.stage_seeds": "independent"})
        for a in screened
    )
    surviving = tuple(
        Arm(f"{a.name}-survivors4", {**a.overrides, "screening.survivor_learners": 4})
        for a in screened
    )
    reaching = tuple(
        Arm(f"{a.name}-reach{r}", {**a.overrides, "screening.reach": r})
        for a in (screened[0], surviving[1])  # screening, screening-eta4-survivors4
        for r in (3, 4)
    )
    uncapped = {"search.explore.lift_caps": True, "search.explore.on_repeat": "global"}
    explored = {**uncapped, "search.explore.global_share": 0.3}
    return {
        arm.name: arm
        for arm in (
            Arm("edas", {}, sets_compute=True),
            Arm("confident", {"gate.confidence": 0.9}),
            Arm("sequential", {"gate.sequential": True}),
            Arm("no-floor", {"gate.min_effect": None}),
            Arm("min-effect-1", {"gate.min_effect": 1.0}),
            Arm("pooled-floor", {"gate.floor_from": "pooled"}),
            Arm("selection-aware", {"gate.selection_aware": True}),
            Arm("accuracy-only", {"gate.rule": "single"}),
            Arm("random", {"llm.provider": "random"}, judges_steps=False),
            Arm("honest", {"members": m, "evaluator.learners": m, "gate.confirm": False}),
            Arm("mixture", {}, mixes_reference=True),
            Arm("mixture-confirmed", {}, mixes_reference=True, min_learners=4),
            Arm("mixture-search", {"search.target": "mixture"}, searches_mixtures=True),
            *screened,
            Arm("screening-gentle", {"screening.enabled": True, "screening.stages": 1}),
            Arm("screening-curve-only", {"screening.enabled": True, "screening.predictor": False}),
            Arm(
                "screening-one-stage",
                {"screening.enabled": True, "screening.stage_fractions": [1 / 9]},
            ),
            Arm("screening-ninth", ninth),
            *independent,
            *surviving,
            *reaching,
            Arm("optuna-tpe", {}, external=True),
            Arm("optuna-tpe-ensemble", {}, external=True),
            Arm("optuna-asha", {}, external=True),
            Arm("optuna-tpe-same", {}, external=True),
            Arm("optuna-asha-same", {}, external=True),
            Arm("tuned-edas", {}, external=True),
            Arm("uncapped", uncapped),
            Arm("explore", explored),
            Arm("explore-tpe", {**explored, "search.explore.sampler": "tpe"}),
            Arm("continuous", {"search.continuous.enabled": True}),
            Arm("rounds-4", {"llm.proposals_per_round": 4}),
            Arm("rounds-8", {"llm.proposals_per_round": 8}),
            # twice the evidence per decision: 4 learners, 4 fresh to confirm (the start's 8
            # learners then set a floor 1/sqrt(2) as high): smaller gains resolved, half
            # the proposals
            Arm("learners-4", {"evaluator.learners": 4, "gate.confirm_learners": 4}),
            # the same with 2 and 2: what a run with a compute budget did before
            # gate.budget_learners
            Arm("learners-2", {"evaluator.learners": 2, "gate.confirm_learners": 2}),
        )
    }


def catalogue_arm(chosen: list[Arm], name: str) -> Arm:
    return next(arm for arm in chosen if arm.name == name)


def search(
    arm: Arm, seed: int, base: dict[str, Any], budget: int, cap: float | None, unit: str,
    also: dict[str, float] | None = None,
) -> Searched:  # fmt: skip
    """One arm's search; with `cap`, it stops after the first step that reaches cap
    (compute in `unit`, see UNITS; its budget is then only a safety limit), and with `also`
    only once it has reached those caps too (--also: equal compute in a second currency)."""
    overrides = {**base, "seed": seed, "budget": budget, "name": f"{arm.name}-{seed}",
                 **arm.overrides}  # fmt: skip
    config = load_config(None, {}, overrides)  # every value explicit: None is null
    if cap is not None:  # `spent` stops it; the reference's caps would stop it short of
        # --also's currency (what a cap resolved, gate.budget_learners, stays resolved)
        config = config.model_copy(update={"max_train_tflop": None, "max_train_hours": None})
    spend: list[float] = []
    spent = Spent(unit, cap, also)
    started = time.perf_counter()
    with RunSession.start(config) as session:

        def on_record(record: Record) -> None:
            spend.append(spent.add(record))
            if spent.reached():
                session.search.stop_requested = True

        records = session.run(on_record)
        folder = session.journal.folder
    totals = dict(spent.totals)  # every unit, counted as the records came
    return Searched(arm.name, seed, folder, records, time.perf_counter() - started, spend, totals)

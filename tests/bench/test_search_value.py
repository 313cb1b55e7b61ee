"""bench/search_value.py end to end on a tiny table, so the benchmark cannot rot unseen. Its
numbers are not checked: a benchmark measures, it does not pass or fail."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).parents[2] / "bench" / "search_value.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("search_value", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["search_value"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_every_arm_gets_the_reference_compute_and_a_judged_result(tmp_path: Path):
    bench = load_bench()
    bench.main(["--data", "synthetic:1500:4", "--seeds", "1", "--budget", "3", "--members", "3",
                "--arms", "edas,random,honest,mixture,mixture-confirmed,no-floor,mixture-search,"
                "screening", "--audit", "2", "--jobs", "1",
                "--out", str(tmp_path)])  # fmt: skip
    result = json.loads((tmp_path / "results.json").read_text())
    rows = {row["arm"]: row for row in result["rows"]}
    assert set(rows) == {"edas", "random", "honest", "mixture", "mixture-confirmed", "no-floor",
                         "mixture-search", "screening"}  # fmt: skip
    screening = rows["screening"]
    assert screening["proposals"] > rows["edas"]["proposals"] and screening["pruned"] > 0
    assert rows["edas"]["new_architectures"] <= rows["edas"]["proposals"]
    edas = rows["edas"]
    assert len(edas["accepted_gain_at_judge"]) == len(edas["accepted_improved"]) == edas["accepted"]
    assert 0 < screening["new_architectures"] <= screening["proposals"]
    assert screening["audit"]["audited"] == min(2, screening["pruned"])
    assert rows["mixture"]["compute"] == rows["edas"]["compute"]  # it trains nothing more
    assert rows["mixture"]["architectures"] >= 1 and rows["mixture-search"]["architectures"] >= 1
    assert "target: mixture" in (Path(rows["mixture-search"]["folder"]) / "config.yaml").read_text()
    floors = {arm: _min_effect(rows[arm]["folder"]) for arm in ("edas", "no-floor")}
    assert floors == {"edas": "0.5", "no-floor": "null"}
    reference = rows["edas"]["compute"]
    for row in rows.values():
        assert row["compute"] >= reference  # each ran until it reached the edas spend
        assert 0 < row["final_error"] < 1 and set(row["anytime"]) == {"0.25", "0.5", "1.0"}
    assert (tmp_path / "compute.png").stat().st_size > 0
    assert "| honest |" in (tmp_path / "tables.md").read_text()
    assert "| screening | " in (tmp_path / "tables.md").read_text().split("Screening:")[1]
    judged = json.loads((tmp_path / "judge.json").read_text())
    assert all(key.split(":")[1] in ("1000000", "1010000") for key in judged)


def test_also_judges_every_arm_at_equal_compute_in_a_second_currency(tmp_path: Path):
    bench = load_bench()
    bench.main(["--data", "synthetic:1500:4", "--seeds", "1", "--budget", "3", "--members", "3",
                "--arms", "edas,random,mixture", "--compute", "tflop", "--also", "hours",
                "--jobs", "1", "--out", str(tmp_path)])  # fmt: skip
    rows = {r["arm"]: r for r in json.loads((tmp_path / "results.json").read_text())["rows"]}
    edas_hours = rows["edas"]["train_hours"]
    assert rows["edas"]["also"]["reference_total"] == pytest.approx(edas_hours)
    # every searching arm ran until it reached the edas spend in both currencies
    assert rows["random"]["train_hours"] >= edas_hours
    assert rows["random"]["compute"] >= rows["edas"]["compute"]
    assert rows["random"]["also"]["compute_ratio"] >= 1
    assert 0 < rows["random"]["also"]["final_error"] < 1
    assert "also" not in rows["mixture"]  # judged at the reference's own compute only
    assert "At equal hours (--also)" in (tmp_path / "tables.md").read_text()
    assert (tmp_path / "also.png").stat().st_size > 0


def test_spent_stops_once_every_cap_is_reached():
    sys.path.insert(0, str(BENCH.parent))
    from search_value_judging import Spent

    from edas_agent.record import Cost, Record

    def record(flops: float, seconds: float) -> Record:
        cost = Cost(learners_trained=1, train_flops=flops, train_seconds=seconds)
        return Record(event="proposal", step=1, time="t", status="rejected", reason="r",
                      rule="exact", members=2, cost=cost)  # fmt: skip

    spent = Spent("tflop", 2.0, {"hours": 10 / 3600})
    assert spent.add(record(1.5e12, 4)) == pytest.approx(1.5) and not spent.reached()
    spent.add(record(1e12, 4))
    assert not spent.reached()  # FLOPs reached, seconds not
    spent.add(record(0, 3))
    assert spent.reached()
    assert not Spent("tflop", None).reached()  # the reference: never stopped


def test_a_rerun_with_the_same_out_takes_the_finished_searches_instead_of_searching_again(
    tmp_path: Path,
):
    bench = load_bench()
    argv = ["--data", "synthetic:1000:4", "--seeds", "1", "--budget", "2", "--members", "2",
            "--arms", "edas,random", "--jobs", "1", "--out", str(tmp_path)]  # fmt: skip
    bench.main(argv)
    first = json.loads((tmp_path / "results.json").read_text())["rows"]
    folders = sorted((tmp_path / "runs").iterdir())
    assert sorted(p.name for p in (tmp_path / "searched").iterdir()) == [
        "edas-0.json",
        "random-0.json",
    ]
    bench.main(argv)
    again = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert sorted((tmp_path / "runs").iterdir()) == folders  # nothing searched anew
    assert [(r["arm"], r["final_error"], r["compute"], r["folder"]) for r in again] == [
        (r["arm"], r["final_error"], r["compute"], r["folder"]) for r in first
    ]
    # The commands the docs' figures come from still run on what the bench wrote:
    # --redraw rewrites the same tables, merge_results pools pieces into the verdict table
    tables = (tmp_path / "tables.md").read_text()
    (tmp_path / "tables.md").unlink()
    bench.main([*argv, "--redraw"])
    assert (tmp_path / "tables.md").read_text() == tables
    merge = importlib.import_module("merge_results")
    merged = merge.table(merge.pooled([tmp_path]))
    assert "| edas | 1 |" in merged and "| random | 1 |" in merged


def _min_effect(folder: str) -> str:
    config = (Path(folder) / "config.yaml").read_text()
    return config.split("min_effect:")[1].split()[0]


def test_learner_epochs_count_each_learner_times_its_epochs():
    from edas_agent.record import Cost, Record

    bench = load_bench()
    record = Record(event="proposal", step=1, time="t", status="rejected", reason="", rule="exact",
                    members=50, architecture={"training": {"epochs": 7}},
                    cost=Cost(learners_trained=4, train_seconds=1.0))  # fmt: skip
    assert bench.learner_epochs(record) == 28
    plugin = record.model_copy(update={"architecture": {"width": 3}})
    assert bench.learner_epochs(plugin) == 4
    screened = record.model_copy(update={"cost": Cost(learners_trained=2, partial_learners=0.5)})
    assert bench.learner_epochs(screened) == 2.5 * 7  # partial training at its fraction


def test_new_architectures_leave_out_repeats_invalid_proposals_and_untrained_skips():
    from edas_agent.record import Record, ScreeningTrace

    bench = load_bench()

    def proposal(step: int, arch_hash: str, status: str = "rejected", **fields) -> Record:
        return Record(event="proposal", step=step, time="t", status=status, reason="",
                      rule="exact", members=50, arch_hash=arch_hash, **fields)  # fmt: skip

    skipped = ScreeningTrace(signals={}, pruned_at=-1, pruned_by="predictor")
    staged = ScreeningTrace(signals={}, pruned_at=0, pruned_by="halving")
    records = [
        proposal(1, "a"),
        proposal(2, "a", cached_from=1),  # learners reused
        proposal(3, "b", "pruned", screening=staged),
        proposal(4, "b", "pruned", screening=staged),  # screened again: nothing new
        proposal(5, "c", "pruned", screening=skipped),
        proposal(6, "d", "invalid"),
        proposal(7, "e", "failed"),
    ]
    assert bench.new_architectures(records) == 3  # a, b, e


def test_first_seed_starts_the_seeds_elsewhere():
    bench = load_bench()
    assert bench.parse(["--seeds", "2", "--first-seed", "6"]).seeds == [6, 7]
    assert bench.parse(["--seeds", "3"]).seeds == [0, 1, 2]


def test_interval_of_the_mean_difference_is_student_t():
    bench = load_bench()
    # mean 0.002, sd 0.001, t(0.95, 2 dof) = 2.920: half width 0.001686
    assert bench._interval(np.array([0.001, 0.002, 0.003]), 0.9) == "[+0.00031, +0.00369]"
    assert bench._interval(np.array([0.001]), 0.9) == "-"


def test_accepted_gain_at_the_judges_size_uses_that_size_not_the_gates():
    from types import SimpleNamespace

    from edas_agent.record import Record

    bench = load_bench()

    def stats(E: float, D: float) -> SimpleNamespace:
        return SimpleNamespace(E=E, D=D)

    # Seed 18's last accepted step at 50,000 rows: far more diverse, far worse alone. At
    # M = 50 the gate predicted a gain; at the judge's 16 members its statistics say a loss.
    accepted = Record.model_construct(
        event="proposal", status="accepted", accepted=True,
        rounds=[SimpleNamespace(stats=stats(0.24808, 0.05622))],
        baseline=SimpleNamespace(stats=stats(0.20898, 0.01574)),
    )  # fmt: skip
    rejected = Record.model_construct(event="proposal", status="rejected", accepted=False,
                                      rounds=[], baseline=None)  # fmt: skip
    run = bench.Searched(arm="a", seed=0, folder=Path("."), records=[accepted, rejected],
                         wall_s=0.0)  # fmt: skip
    at_50, at_16 = bench.accepted_gains_at(run, 50)[0], bench.accepted_gains_at(run, 16)[0]
    assert at_50 == pytest.approx(-0.00057, abs=1e-5) and at_16 == pytest.approx(0.00115, abs=1e-5)
    rows = [{"accepted_improved": [False, True], "accepted_gain_at_judge": [at_16, -0.001]}]
    assert bench._worse_at_judge(rows) == "1/1"
    assert bench._worse_at_judge([{"accepted_improved": [False]}]) == "-"  # older results


def test_tables_warn_when_the_gate_was_asked_about_another_size_than_the_judge_builds():
    bench = load_bench()
    rows = [{"arm": "edas", "gate_members": 50}, {"arm": "honest", "gate_members": 8}]
    assert "M = 50 and the judge builds 16 members" in bench._sizes_differ(rows, 16)[1]
    assert bench._sizes_differ([{"arm": "edas", "gate_members": 16}], 16) == []
    assert bench._sizes_differ([{"arm": "edas"}], 16) == []  # older results: no gate_members


def test_optuna_arms_start_where_edas_starts_and_spend_the_same_flops(tmp_path: Path):
    bench = load_bench()
    bench.main(["--data", "synthetic:1500:4", "--seeds", "1", "--budget", "3", "--members", "3",
                "--arms", "edas,optuna-tpe,optuna-tpe-ensemble", "--jobs", "1",
                "--out", str(tmp_path)])  # fmt: skip
    result = json.loads((tmp_path / "results.json").read_text())
    assert result["options"]["compute"] == "tflop"
    rows = {row["arm"]: row for row in result["rows"]}
    reference = rows["edas"]["compute"]
    assert reference == pytest.approx(rows["edas"]["train_tflop"]) and reference > 0
    for arm in ("optuna-tpe", "optuna-tpe-ensemble"):
        assert rows[arm]["compute"] >= reference and 0 < rows[arm]["final_error"] < 1
        assert "accepted_improved" not in rows[arm]  # its trials are not gate decisions
    assert "| optuna-tpe-ensemble |" in (tmp_path / "tables.md").read_text()


def test_the_optuna_encoding_covers_the_tabular_space_and_gives_back_the_start():
    import optuna

    from edas_agent.evaluators.tabular.space import Architecture
    from edas_agent.integrations.optuna import params_of, suggest

    start, schema = Architecture().document(), Architecture.model_json_schema()
    params = params_of(start, schema)
    assert params["/tower/widths/length"] == 2 and params["/training/lr"] == 3e-3
    assert "/embeddings/per_field" not in params  # kept as it is, not drawn
    assert suggest(optuna.trial.FixedTrial(params), schema, start) == start
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    drawn = [suggest(study.ask(), schema, start) for _ in range(20)]
    assert {len(d["tower"]["widths"]) for d in drawn} > {2}  # lists vary in length
    assert all(1e-4 <= d["training"]["lr"] <= 0.1 for d in drawn)
    assert {d["training"]["optimizer"] for d in drawn} > {"adamw"}


def test_the_verdict_row_pairs_each_arm_with_edas_over_every_piece(tmp_path):
    load_bench()  # puts bench/ on the path, as running a script there does
    merge = importlib.import_module("merge_results")
    for piece, seeds in (("a", (0, 1)), ("b", (2, 3))):
        rows = []
        for s in seeds:
            edas, random = 0.2 + 0.01 * s, 0.01 if s != 3 else -0.01
            rows += [{"arm": "edas", "seed": s, "final_error": edas},
                     {"arm": "random", "seed": s, "final_error": edas + random}]  # fmt: skip
        (tmp_path / piece).mkdir()
        (tmp_path / piece / "results.json").write_text(json.dumps({"rows": rows}))
    line = merge.verdict({"toy": [tmp_path / "a", tmp_path / "b"]}, ["random", "optuna-tpe"])
    row = line.splitlines()[-1]
    # random: +0.01 on three seeds, -0.01 on one: mean +0.005, better on 1 of 4; not run: '-'
    assert row.startswith("| toy | 4 | +0.00500 [") and row.endswith(", 1/4 | - |")


def test_tpe_in_the_same_space_draws_within_the_builtin_proposers_caps():
    import optuna

    load_bench()
    from search_value_optuna import confined

    from edas_agent.evaluators.tabular.mutations import SMALL
    from edas_agent.evaluators.tabular.space import Architecture
    from edas_agent.integrations.optuna import suggest

    start, schema = Architecture().document(), Architecture.model_json_schema()
    same = confined(schema, SMALL)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    drawn = [suggest(study.ask(), same, start) for _ in range(200)]
    assert max(d["training"]["epochs"] for d in drawn) <= SMALL.epochs
    assert max(d["cross"]["layers"] for d in drawn) <= SMALL.cross
    assert max(len(d["tower"]["widths"]) for d in drawn) <= SMALL.layers
    assert max(max(d["tower"]["widths"], default=0) for d in drawn) <= SMALL.width
    assert max(d["training"]["epochs"] for d in drawn) > 3  # still a space, not the start
    whole = [suggest(study.ask(), schema, start) for _ in range(200)]
    assert max(d["training"]["epochs"] for d in whole) > SMALL.epochs  # the copy was changed
    assert schema == Architecture.model_json_schema()  # the original is untouched


def test_the_tables_give_the_compute_of_fifty_trials_as_a_budget_level():
    load_bench()
    from search_value_tables import _trials_level

    rows = [{"arm": "optuna-tpe-same", "compute_of_50_trials": c} for c in (2.0, 4.0)]
    lines = _trials_level([*rows, {"arm": "edas"}], ["edas", "optuna-tpe-same"], "tflop")
    assert "| optuna-tpe-same | 2 | 3.0000 ± 1.4142 | 2 | 4 |" in lines
    assert _trials_level([{"arm": "edas"}], ["edas"], "tflop") == []


def test_a_given_floor_turns_each_arms_gain_into_a_share_of_the_reducible_error():
    load_bench()
    from search_value_tables import _reducible

    rows = [{"arm": "edas", "start_error": 0.3, "final_error": 0.12},
            {"arm": "edas", "start_error": 0.2, "final_error": 0.11}]  # fmt: skip
    line = _reducible(rows, ["edas"], 0.1)[-1]
    assert "Floor (given, --floor): 0.1." in line and "edas 90.0 ± 0.0 %" in line
    assert _reducible(rows, ["edas"], None) == []


def test_a_saved_search_is_counted_again_in_the_compute_unit_asked_for(tmp_path: Path):
    """A piece run with --compute hours and continued with --compute tflop must not read
    its saved spend (hours) as TFLOP: loading counts the spend again from its records."""
    from edas_agent.record import Cost, Record

    bench = load_bench()
    cost = Cost(learners_trained=1, train_flops=2e12, train_seconds=36.0)
    records = [Record(event="proposal", step=step, time="t", status="rejected", reason="r",
                      rule="exact", members=2, cost=cost) for step in (1, 2, 3)]  # fmt: skip
    run = bench.Searched(arm="edas", seed=0, folder=tmp_path, records=records, wall_s=1.0,
                         spend=[0.01, 0.02, 0.03], totals={})  # fmt: skip
    run.save(tmp_path / "searched")
    in_tflop = bench.Searched.load(tmp_path / "searched", "edas", 0, "tflop")
    in_hours = bench.Searched.load(tmp_path / "searched", "edas", 0, "hours")
    assert in_tflop.spend == pytest.approx([2.0, 4.0, 6.0])
    assert in_hours.spend == pytest.approx([0.01, 0.02, 0.03])
    assert bench.Searched.load(tmp_path / "searched", "edas", 1, "tflop") is None


def test_merged_pieces_run_with_also_are_paired_in_the_second_currency_too():
    load_bench()
    merge = importlib.import_module("merge_results")
    rows = [{"arm": arm, "seed": s, "final_error": 0.2, "start_error": 0.3, "proposals": 5,
             "also": {"unit": "hours", "final_error": 0.2 + (0.01 if arm == "b" else 0)}}
            for s in (0, 1) for arm in ("edas", "b")]  # fmt: skip
    also = merge.at_also(rows)
    assert [r["final_error"] for r in also if r["arm"] == "b"] == pytest.approx([0.21, 0.21])
    assert "+0.01000" in merge.table(also) and "+0.00000" in merge.table(rows)
    assert merge.at_also([{k: v for k, v in r.items() if k != "also"} for r in rows]) == []

"""Commands that look at runs and measure them: report, runs, ensemble, verify, calibrate,
export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from edas_agent.cli.shared import (
    ConfigOption,
    JsonOption,
    SeedOption,
    console,
    data_options,
    executor_for,
    learner_progress,
    load_evaluator,
    read_json,
    report_error,
)
from edas_agent.config import dump_config, load_config
from edas_agent.errors import UserError, describe_validation_error
from edas_agent.evaluators.base import architecture_hash
from edas_agent.record import CONFIG, require_run_folder
from edas_agent.training.door import DataError, PluginError
from edas_agent.training.learners import MembersUnavailable
from edas_agent.training.processes import WorkersUnavailable


def report(run_dir: Annotated[Path, typer.Argument(help="A run folder under runs/.")]) -> None:
    """Write report.html (self-contained) and PNGs into the run folder; print a summary."""
    from edas_agent.analysis.report import write_report
    from edas_agent.cli.display import print_summary, wall_seconds
    from edas_agent.record import read_records

    records = read_records(run_dir)
    try:
        page = write_report(run_dir)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    print_summary(console, records, run_dir, wall_seconds(records))
    console.print(f"Report: {page}")


def runs(
    runs_dir: Annotated[Path, typer.Option(help="Where run folders are.")] = Path("runs"),
    as_json: JsonOption = False,
) -> None:
    """List the run folders: state, steps, best predicted E_M, learners, training compute
    and LLM cost."""
    from rich.table import Table

    from edas_agent.analysis.runs import list_runs

    summaries = list_runs(runs_dir)
    if as_json:
        print(json.dumps([s.model_dump() for s in summaries], indent=2))
        return
    table = Table(title=f"Runs in {runs_dir}")
    for column in (
        "folder",
        "state",
        "steps",
        "best step",
        "best E_M",
        "accepted",
        "pruned",
        "learners",
        "train TFLOP",
        "train h",
        "LLM $",
    ):
        table.add_column(column, justify="left" if column in ("folder", "state") else "right")
    for s in summaries:
        best_step = "-" if s.best_step is None else str(s.best_step)
        best = "-" if s.best_E_M is None else f"{s.best_E_M:.5f}"
        if s.best_E_M_centre is not None:  # the interval moved by the run's winner's curse
            best += f" [{s.best_E_M_centre - s.best_E_M_plus_minus:.5f}, " \
                    f"{s.best_E_M_centre + s.best_E_M_plus_minus:.5f}]"  # fmt: skip
        elif s.best_E_M_plus_minus is not None:
            best += f" ± {s.best_E_M_plus_minus:.5f}"
        progress = f"{s.steps}/{s.budget or '?'}"
        cells = (s.folder, s.state, progress, best_step, best, str(s.accepted), str(s.pruned),
                 str(s.learners), f"{s.train_tflop:.3g}" if s.train_tflop else "-",
                 f"{s.train_hours:.2g}")  # fmt: skip
        table.add_row(*cells, f"{s.llm_cost:.4f}")
    if any(s.best_E_M_plus_minus is not None for s in summaries):
        table.caption = (
            "best E_M ± its 90 % seed-noise interval (its bounds where the run's "
            "winner's curse moved it)"
        )
    console.print(table)


def ensemble(
    run_dir: Annotated[Path, typer.Argument(help="A run folder under runs/.")],
    members: Annotated[int | None, typer.Option(help="M; the run's members if unset.")] = None,
    max_architectures: Annotated[
        int | None, typer.Option(help="At most this many different architectures.")
    ] = None,
    max_flops: Annotated[
        int | None,
        typer.Option(help="Inference FLOPs per example the ensemble may cost (sum n_a flops_a)."),
    ] = None,
    tolerance: Annotated[
        float, typer.Option(help="Pruning: relative excess error allowed over the best.")
    ] = 0.005,
    min_learners: Annotated[
        int,
        typer.Option(help="Only architectures with this many stored learners (4: confirmed)."),
    ] = 2,
    as_json: JsonOption = False,
) -> None:
    """The best mixture of the run's architectures and the best homogeneous ensemble,
    predicted from the learners the run trained (no training); the smallest ensembles
    within --tolerance of the best; the cost front. Writes ensemble.json."""
    from edas_agent.analysis.ensemble import ensemble as analyse_run
    from edas_agent.cli.measure_tables import ensemble_tables

    if (members is not None and members < 1) or (max_architectures or 1) < 1:
        raise UserError("--members and --max-architectures must be at least 1")
    if not 0 <= tolerance < 1:
        raise UserError(f"--tolerance must be in [0, 1), got {tolerance}")
    require_run_folder(run_dir, CONFIG)
    try:
        with console.status("Loading the run's learners and choosing mixtures"):
            result = analyse_run(
                run_dir, members, max_architectures, max_flops, tolerance, min_learners
            )
    except DataError as exc:
        raise UserError(f"data: {exc}") from None
    except PluginError as exc:
        raise UserError(str(exc)) from None
    if as_json:
        print(result.model_dump_json(indent=2))
        return
    for table in ensemble_tables(result):
        console.print(table)
    console.print(f"Wrote {run_dir / 'ensemble.json'}")


def verify(
    run_dir: Annotated[Path, typer.Argument(help="A run folder under runs/.")],
    members: Annotated[int | None, typer.Option(help="M; the run's members if unset.")] = None,
    steps: Annotated[
        str,
        typer.Option(
            help="accepted, all, disagreements (where the ensemble rule and the "
            "single-learner rule decided differently), or step numbers: 3,8,12."
        ),
    ] = "accepted",
    mixture: Annotated[
        bool,
        typer.Option(
            "--mixture",
            help="Instead: the best mixture and best homogeneous ensemble of ensemble.json, "
            "trained with fresh seeds (runs `ensemble` first if needed).",
        ),
    ] = False,
    full_data: Annotated[
        bool,
        typer.Option(
            "--full-data",
            help="For a run searched on a sample (data.sample_rows): train the members on the "
            "whole training split instead; writes verify_full.json.",
        ),
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Train the members side by side in this many worker processes, one torch "
            "thread each (executor.kind processes), whatever executor the run used; "
            "unset: the run's executor.",
            min=1,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Train real M-member ensembles of chosen steps (reusing the run's learners) and compare
    them with the predictions; writes verify.json (verify_mixture.json with --mixture).
    Interrupt and rerun to resume."""
    from edas_agent.analysis.verify import verify as verify_run
    from edas_agent.analysis.verify_mixture import verify_mixture
    from edas_agent.cli.measure_tables import (
        verify_mixture_table,
        verify_sizes_table,
        verify_table,
    )

    if members is not None and members < 2:
        raise UserError(f"--members must be at least 2, got {members}")
    require_run_folder(run_dir, CONFIG)
    if mixture and full_data:
        raise UserError("--full-data verifies chosen steps; it does not go with --mixture")
    if mixture:
        _ensemble_for(run_dir, members)
    with learner_progress("verify") as advance:
        try:
            if mixture:
                result = verify_mixture(run_dir, on_learner=advance, workers=workers)
            else:
                result = verify_run(run_dir, members, steps, advance, full_data, workers)
        except DataError as exc:
            raise UserError(f"data: {exc}") from None
        except (PluginError, WorkersUnavailable) as exc:
            raise UserError(str(exc)) from None
        except MembersUnavailable as exc:  # a member could not be trained (lost worker, NaN)
            report_error("verify stopped:", f"{exc}; finished members are saved, rerun to resume")
            raise typer.Exit(1) from None
    if as_json:
        print(json.dumps(result, indent=2))
        return
    if mixture:
        console.print(verify_mixture_table(result))
        console.print(f"Wrote {run_dir / 'verify_mixture.json'}")
        return
    console.print(verify_sizes_table(result))
    console.print(verify_table(result))
    console.print(f"Wrote {run_dir / ('verify_full.json' if full_data else 'verify.json')}")


def export(
    run_dir: Annotated[Path, typer.Argument(help="A run folder under runs/.")],
    optuna_storage: Annotated[
        str,
        typer.Option(
            help="Optuna storage URL, e.g. sqlite:///studies.db (optuna-dashboard opens the "
            "same URL)."
        ),
    ],
    study_name: Annotated[
        str | None, typer.Option(help="The study's name; the run folder's if unset.")
    ] = None,
) -> None:
    """Write a run into an Optuna storage as a study: one trial per step, two objectives
    (predicted ensemble error, forward FLOPs per example), the parameters of its space.
    Run it again to add the steps written since (a running search included)."""
    from edas_agent.integrations.optuna import export_run

    evaluator = load_evaluator(load_config(run_dir / CONFIG, {}))
    space = evaluator.space().model_json_schema()
    try:
        name, added = export_run(run_dir, optuna_storage, space, study_name)
    except ModuleNotFoundError as exc:
        raise UserError(f"export needs Optuna ({exc}): pip install 'edas-agent[optuna]'") from None
    console.print(f"Study {name!r} in {optuna_storage}: {added} trials added. "
                  f"Watch it with: optuna-dashboard {optuna_storage}")  # fmt: skip


def _ensemble_for(run_dir: Path, members: int | None) -> None:
    """ensemble.json for `verify --mixture`: computed with default limits when it is
    missing or was made for another M."""
    from edas_agent.analysis.ensemble import ENSEMBLE, ensemble, read_ensemble

    if (run_dir / ENSEMBLE).is_file() and members in (None, read_ensemble(run_dir).members):
        return
    console.print(f"Choosing the mixture first: edas-agent ensemble {run_dir} --members {members}")
    try:
        ensemble(run_dir, members)
    except (DataError, PluginError) as exc:
        raise UserError(str(exc)) from None


@data_options
def calibrate(
    arch: Annotated[
        list[Path] | None,
        typer.Option(help="Architecture JSON (repeatable); a built-in set of 9 if unset."),
    ] = None,
    members: Annotated[int, typer.Option(help="M members trained per architecture.")] = 16,
    pairs: Annotated[int, typer.Option(help="Random learner pairs per comparison.")] = 20,
    confidence: Annotated[float, typer.Option(help="Level of the confidence gate.")] = 0.9,
    folder: Annotated[
        Path | None,
        typer.Option(help="Output folder; reuse one to resume. New under runs/ if unset."),
    ] = None,
    config: ConfigOption = None,
    seed: SeedOption = None,
    as_json: JsonOption = False,
    data_overrides: dict[str, Any] | None = None,
) -> None:
    """Measure how often a 2-learner gate orders architectures like their realised M-member
    ensembles; writes calibration.json."""
    from edas_agent.analysis.calibrate import DEFAULT_ARCHITECTURES
    from edas_agent.analysis.calibrate import calibrate as run_calibration
    from edas_agent.cli.measure_tables import calibration_tables
    from edas_agent.record import Journal
    from edas_agent.training.learners import LearnerStore

    if members < 4 or pairs < 1 or not 0.5 <= confidence < 1:
        raise UserError("calibrate needs --members >= 4, --pairs >= 1, --confidence in [0.5, 1)")
    settings = load_config(config, {"seed": seed, **(data_overrides or {})})
    evaluator = load_evaluator(settings)
    documents = (
        {f"{i}:{path.stem}": read_json(path) for i, path in enumerate(arch)}
        if arch
        else DEFAULT_ARCHITECTURES
    )
    architectures = {}
    for name, document in documents.items():
        try:
            architectures[name] = evaluator.parse(document)
        except ValidationError as exc:
            raise UserError(f"architecture {name}: {describe_validation_error(exc)}") from None
    if len({architecture_hash(a) for a in architectures.values()}) < 2:
        raise UserError("calibrate needs at least two different architectures")
    if folder is None:
        folder = Journal.create(Path(settings.runs_dir), "calibrate", dump_config(settings)).folder
    executor = executor_for(evaluator, settings)
    store = LearnerStore(evaluator, folder / "learners", executor)
    try:
        with learner_progress("calibrate") as advance:
            result = run_calibration(
                architectures, store, members, pairs, settings.seed, confidence, on_learner=advance
            )
    except MembersUnavailable as exc:
        report_error("calibrate stopped:", f"{exc}; finished members are saved, rerun to resume")
        raise typer.Exit(1) from None
    finally:
        executor.close()
    (folder / "calibration.json").write_text(json.dumps(result, indent=2))
    if as_json:
        print(json.dumps(result, indent=2))
        return
    for table in calibration_tables(result):
        console.print(table)
    console.print(f"Wrote {folder / 'calibration.json'}")


# Registered by app.py, after its own commands, in this order
AFTER_RUN_COMMANDS = (report, runs, ensemble, verify, calibrate, export)

"""edas-agent command line: run, replay, evaluate and gate here; report, runs, verify and
calibrate in runs.py; what they share in shared.py."""

from __future__ import annotations

import signal
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from pydantic import ValidationError

from edas_agent.cli.cache import cache
from edas_agent.cli.runs import AFTER_RUN_COMMANDS
from edas_agent.cli.shared import (
    ConfigOption,
    JsonOption,
    SeedOption,
    SetOption,
    app,
    console,
    data_options,
    emit,
    errors,
    load_evaluator,
    report_error,
)
from edas_agent.cli.tune import tune
from edas_agent.config import Config, load_config, parse_llm_option, parse_sets
from edas_agent.errors import UserError, describe_validation_error
from edas_agent.evaluators.base import architecture_hash, document_of
from edas_agent.search.judging import make_gate
from edas_agent.session import RESUMABLE, RunSession
from edas_agent.theory.gate import statistics

# The flag of each setting a resumed run may change (session.RESUMABLE), in its order
_FLAGS = ("--budget", "--max-cost", "--max-llm-calls", "--max-train-hours", "--max-train-tflop")
RESUMABLE_FLAGS = dict(zip(RESUMABLE, _FLAGS, strict=True))


@app.command()
@data_options
def run(
    config: ConfigOption = None,
    budget: Annotated[int | None, typer.Option(help="Proposals to evaluate.")] = None,
    llm: Annotated[
        str | None, typer.Option(help="provider[:model], e.g. openai:gpt-4.1-mini.")
    ] = None,
    members: Annotated[int | None, typer.Option(help="M, the deployed ensemble size.")] = None,
    runs_dir: Annotated[str | None, typer.Option(help="Where run folders are created.")] = None,
    name: Annotated[str | None, typer.Option(help="Run name (folder suffix).")] = None,
    seed: SeedOption = None,
    max_cost: Annotated[
        float | None, typer.Option(help="Stop once LLM calls cost this many US dollars.")
    ] = None,
    max_llm_calls: Annotated[
        int | None, typer.Option(help="Stop after this many LLM calls.")
    ] = None,
    max_train_hours: Annotated[
        float | None,
        typer.Option(
            help="Stop once training has taken this many hours (a compute budget: 4 "
            "learners per decision, gate.budget_learners)."
        ),
    ] = None,
    max_train_tflop: Annotated[
        float | None,
        typer.Option(
            help="Stop once training has cost this many TFLOP (a compute budget: 4 "
            "learners per decision, gate.budget_learners)."
        ),
    ] = None,
    replay_from: Annotated[
        str | None, typer.Option(help="With --llm replay: the run whose answers to replay.")
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            help="Continue this run folder after a stop or a kill, with its own config; "
            "only --budget, --max-cost, --max-llm-calls, --max-train-hours and "
            "--max-train-tflop may change."
        ),
    ] = None,
    set_: SetOption = None,
    data_overrides: dict[str, Any] | None = None,
) -> None:
    """Search: propose, train learners, gate, log. Ctrl-C stops after the current step
    (twice: at once); --resume continues a stopped or killed run."""
    from edas_agent.cli.display import LiveDisplay, print_summary
    from edas_agent.proposers import ProposerStopped
    from edas_agent.search.loop import BaselineFailed
    from edas_agent.training.processes import WorkersUnavailable

    caps = (budget, max_cost, max_llm_calls, max_train_hours, max_train_tflop)
    changes = dict(zip(RESUMABLE_FLAGS, caps, strict=True))
    fresh: dict[str, Any] = {
        "members": members,
        "runs_dir": runs_dir,
        "name": name,
        "seed": seed,
        "llm.replay_from": replay_from,
        **(data_overrides or {}),
        **(parse_llm_option(llm) if llm else {}),
    }
    session = _open_session(config, resume, changes, fresh, parse_sets(set_))
    problem = None
    with session:
        console.print(f"Run folder: {session.journal.folder}" + (" (resumed)" if resume else ""))
        started = time.monotonic()
        with (
            LiveDisplay(
                console, session.config.budget, session.config.members, session.journal.folder
            ) as display,
            _stop_on_ctrl_c(session.search),
        ):
            session.search.on_progress = display.on_progress
            try:
                session.run(display.on_record)
            except (ProposerStopped, BaselineFailed, WorkersUnavailable) as exc:
                problem = str(exc)
            except KeyboardInterrupt:
                problem = "interrupted; every step finished before Ctrl-C is in the run folder"
            except OSError as exc:  # disk full, folder removed or unwritable, ...
                problem = f"cannot write to the run folder: {exc}; what was written before is valid"
        records = session.search.records
        print_summary(console, records, session.journal.folder, time.monotonic() - started)
    stopped = session.search.stopped
    if stopped:
        console.print(f"Stopped early: {stopped}; every finished step is in the run folder.")
    if stopped or problem:
        console.print(f"Continue with: edas-agent run --resume {session.journal.folder}")
    if problem:
        report_error("run stopped:", problem)
        raise typer.Exit(1)


def _open_session(
    config: Path | None,
    resume: Path | None,
    changes: dict[str, Any],
    fresh: dict[str, Any],
    sets: dict[str, Any],
) -> RunSession:
    try:
        return _session(config, resume, changes, fresh, sets)
    except RuntimeError as exc:  # Ray not installed, or its workers cannot build a plugin
        raise UserError(str(exc)) from None


def _session(config, resume, changes, fresh, sets) -> RunSession:
    if resume is None:
        return RunSession.start(load_config(config, {**changes, **fresh}, sets), load_evaluator)
    given = sorted(k for k, v in fresh.items() if v is not None) + (["--config"] if config else [])
    given += sorted(f"--set {key}" for key in sets)
    if given:
        raise UserError(
            "--resume continues the run with its own config; only "
            f"{', '.join(RESUMABLE_FLAGS.values())} may change (got {', '.join(given)})"
        )
    return RunSession.resume(resume, changes, load_evaluator)


@contextmanager
def _stop_on_ctrl_c(search):
    """First Ctrl-C: finish the current step, then stop cleanly. Second: stop at once."""

    def request_stop(signum, frame) -> None:
        if search.stop_requested:
            raise KeyboardInterrupt
        search.stop_requested = True
        errors.print("Stopping after the current step (Ctrl-C again to stop at once)...")

    try:
        previous = signal.signal(signal.SIGINT, request_stop)
    except ValueError:  # not the main thread (tests, embedding): no handler
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@app.command()
def replay(run_dir: Annotated[Path, typer.Argument(help="A run folder under runs/.")]) -> None:
    """Re-derive every decision from the logged statistics; exit 1 on any mismatch."""
    from edas_agent.analysis.replay import replay as replay_run
    from edas_agent.cli.display import trajectory_table

    report = replay_run(run_dir)
    console.print(trajectory_table(report.records, title=f"Accepted trajectory of {run_dir}"))
    if not report.ok:
        for mismatch in report.mismatches:
            report_error("mismatch", mismatch)
        raise typer.Exit(1)
    for note in report.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    recomputed = (
        f"; {report.recomputed} mixture rounds recomputed from the stored learners"
        if report.recomputed
        else ""
    )
    if report.screened:
        recomputed += f"; screening of {report.screened} candidates re-derived from their stages"
    if report.continuous:
        recomputed += f"; {report.continuous} continuous steps' optima solved again"
    console.print(f"{report.checked} decisions re-derived from the log{recomputed}: all agree.")


@app.command()
@data_options
def evaluate(
    arch: Annotated[
        Path | None, typer.Option(help="Architecture JSON; the default if unset.")
    ] = None,
    learners: Annotated[int | None, typer.Option(help="k, learners to train.")] = None,
    members: Annotated[int | None, typer.Option(help="M for the predicted E_M.")] = None,
    config: ConfigOption = None,
    seed: SeedOption = None,
    set_: SetOption = None,
    as_json: JsonOption = False,
    data_overrides: dict[str, Any] | None = None,
) -> None:
    """Train k learners of one architecture; print statistics and timings."""
    from edas_agent.search.loop import initial_architecture
    from edas_agent.theory.metrics import task_metrics
    from edas_agent.theory.seed_noise import learner_errors, predictive_interval, unstable_learners

    overrides = {
        "baseline": str(arch) if arch else None,
        "evaluator.learners": learners,
        "members": members,
        "seed": seed,
        **(data_overrides or {}),
        **parse_sets(set_),
    }
    settings = load_config(config, overrides)
    evaluator = load_evaluator(settings)
    architecture = initial_architecture(settings, evaluator)
    evaluation = evaluator.evaluate(architecture, settings.evaluator.learners)
    M = settings.members
    validation = statistics(evaluation.val_predictions, evaluator.y_val, M)
    errors = learner_errors(evaluation.val_predictions, evaluator.y_val)
    interval = predictive_interval(validation, M, None)
    result = {
        "arch_hash": architecture_hash(architecture),
        "architecture": document_of(architecture),
        "members": M,
        "parameters": evaluation.parameters,
        "flops_per_example": evaluation.flops,
        "validation": validation.model_dump(),
        # Seed noise of E_M on validation (theory/seed_noise.py): from the learners' own
        # spread, so k >= 3; with k = 2 nothing measures it (a run pools it over architectures)
        "predicted_E_M": interval.model_dump() if interval else "needs --learners 3 or more",
        "unstable_learners": unstable_learners(errors),
        "test": statistics(evaluation.test_predictions, evaluator.y_test, M).model_dump(),
        "test_metrics": task_metrics(evaluator.task, evaluation.test_predictions, evaluator.y_test),
        "timings": {
            "train_seconds": evaluation.train_seconds,
            "learner_seconds": list(evaluation.learner_seconds),
        },
    }
    emit(result, as_json)


@app.command()
def gate(
    baseline: Annotated[Path, typer.Option(help="NPZ with preds (k, n[, C]) and y (n,).")],
    candidate: Annotated[Path, typer.Option(help="NPZ with preds (k, n[, C]) and y (n,).")],
    members: Annotated[int, typer.Option(help="M, the deployed ensemble size.")],
    rule: Annotated[str, typer.Option(help="exact, paper, logloss or single.")] = "exact",
    confidence: Annotated[
        float | None,
        typer.Option(help="Also require the bootstrap upper bound of dE_M below 0 at this level."),
    ] = None,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """The acceptance gate on predictions from any framework (k >= 2; binary, multiclass or
    regression); the paired-bootstrap interval of delta E_M is always reported."""
    options = _gate_options(members, rule, confidence, resamples)
    base_preds, base_y = _load_npz(baseline)
    cand_preds, cand_y = _load_npz(candidate)
    if base_y.shape != cand_y.shape or not np.array_equal(base_y, cand_y):
        raise UserError(
            "baseline and candidate must be scored on the same examples: their y differ"
        )
    task = _npz_task(cand_preds, cand_y)
    if rule == "logloss" and task == "regression":
        raise UserError("--rule logloss needs probabilities (binary or multiclass)")
    try:
        judgement, (base_stats, base_logloss) = make_gate(options).judge(
            base_preds, cand_preds, cand_y, task, seed=[seed]
        )
    except ValueError as exc:
        raise UserError(str(exc)) from None
    result = {
        "members": members,
        "task": task,
        "baseline": base_stats.model_dump(),
        "baseline_logloss": base_logloss.model_dump() if base_logloss else None,
        "candidate": judgement.stats.model_dump(),
        "candidate_logloss": judgement.logloss.model_dump() if judgement.logloss else None,
        **judgement.model_dump(exclude={"stats", "logloss"}),
    }
    emit(result, as_json)


# After gate, so `edas-agent --help` lists the search commands first.
for _command in AFTER_RUN_COMMANDS:
    app.command()(_command)
app.add_typer(tune, name="tune")
app.add_typer(cache, name="cache")


def _gate_options(members: int, rule: str, confidence: float | None, resamples: int) -> Config:
    """The options checked against the config's own bounds (declared once, in config.py)."""
    try:
        return Config.model_validate(
            {
                "members": members,
                "gate": {"rule": rule, "confidence": confidence, "resamples": resamples},
            }
        )
    except ValidationError as exc:
        raise UserError(describe_validation_error(exc, as_flags=True)) from None


def _npz_task(predictions: np.ndarray, y: np.ndarray) -> str:
    """Class probabilities if (k, n, C); binary if y holds only 0 and 1 and the predictions
    are probabilities; regression otherwise."""
    if predictions.ndim == 3:
        return "multiclass"
    is_binary = np.isin(y, (0, 1)).all() and ((predictions >= 0) & (predictions <= 1)).all()
    return "binary" if is_binary else "regression"


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = {"preds", "y"} - set(archive.files)
            if missing:
                raise UserError(f"{path} lacks key(s) {sorted(missing)}; it has {archive.files}")
            return archive["preds"], archive["y"]
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {path} as NPZ: {exc}") from None


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    # A warning is news for the user (a server fell back to another mode), not for a
    # developer: one line, without the source line Python shows by default
    return f"warning: {message}\n"


def main() -> None:
    warnings.formatwarning = _one_line_warning
    try:
        app()
    except UserError as exc:
        report_error("error:", str(exc))
        sys.exit(2)
    except KeyboardInterrupt:
        errors.print("interrupted; every step finished before it is in the run folder")
        sys.exit(130)

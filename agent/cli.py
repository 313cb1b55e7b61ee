"""edas-agent command line: run, replay, evaluate, gate."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text

from agent.config import Config, dump_config, load_config, parse_llm_option
from agent.door import DataError
from agent.errors import UserError, describe_validation_error
from agent.gate import Gate, Rule, statistics
from agent.learners import MembersUnavailable

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Search architectures for M-member ensembles from two learners per candidate.",
)
# Piped output (CI logs, files) gets a wide page instead of rich's 80-column default, so the
# trajectory table stays readable; COLUMNS, when set, still wins.
_PIPED_WIDTH = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160
console = Console(width=_PIPED_WIDTH)
errors = Console(stderr=True)

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.")]
DataOption = Annotated[str | None, typer.Option(help="'adult' or a CSV/CSV.gz/Parquet file.")]
TargetOption = Annotated[str | None, typer.Option(help="Target column of --data.")]
TaskOption = Annotated[str | None, typer.Option(help="binary, multiclass or regression.")]
SeedOption = Annotated[int | None, typer.Option(help="Run seed: split, learners, proposer.")]
ColumnsOption = Annotated[str | None, typer.Option(help="Comma-separated column names.")]
IgnoreOption = Annotated[
    str | None, typer.Option(help="Comma-separated columns to leave out of the features.")
]
SplitOption = Annotated[
    str | None, typer.Option(help="Column holding train / val / test for each row.")
]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override any config key: --set llm.temperature=0.2 (repeatable)."),
]


@app.command()
def run(
    config: ConfigOption = None,
    budget: Annotated[int | None, typer.Option(help="Proposals to evaluate.")] = None,
    llm: Annotated[
        str | None, typer.Option(help="provider[:model], e.g. openai:gpt-4.1-mini.")
    ] = None,
    members: Annotated[int | None, typer.Option(help="M, the deployed ensemble size.")] = None,
    data: DataOption = None,
    target: TargetOption = None,
    task: TaskOption = None,
    categorical: ColumnsOption = None,
    numeric: ColumnsOption = None,
    ignore: IgnoreOption = None,
    split_column: SplitOption = None,
    runs_dir: Annotated[str | None, typer.Option(help="Where run folders are created.")] = None,
    name: Annotated[str | None, typer.Option(help="Run name (folder suffix).")] = None,
    seed: SeedOption = None,
    max_cost: Annotated[
        float | None, typer.Option(help="Stop once LLM calls cost this many US dollars.")
    ] = None,
    max_llm_calls: Annotated[
        int | None, typer.Option(help="Stop after this many LLM calls.")
    ] = None,
    replay_from: Annotated[
        str | None, typer.Option(help="With --llm replay: the run whose answers to replay.")
    ] = None,
    resume: Annotated[
        Path | None, typer.Option(help="Continue this run folder after a stop or a kill.")
    ] = None,
    set_: SetOption = None,
) -> None:
    """Search: propose, train learners, gate, log. Ctrl-C stops after the current step
    (twice: at once); --resume continues a stopped or killed run."""
    from agent.costs import LLMBudget, Spend
    from agent.display import LiveDisplay, print_summary
    from agent.journal import Journal, read_records
    from agent.loop import BaselineFailed, Search
    from agent.proposers import ProposerStopped, make_proposer

    overrides: dict[str, Any] = {
        "budget": budget,
        "llm.max_cost": max_cost,
        "llm.max_calls": max_llm_calls,
    }
    fresh: dict[str, Any] = {
        "members": members,
        "runs_dir": runs_dir,
        "name": name,
        "seed": seed,
        "llm.replay_from": replay_from,
        **_data_overrides(data, target, task, categorical, numeric, ignore, split_column),
        **(parse_llm_option(llm) if llm else {}),
        **_parse_sets(set_),
    }
    previous = None
    if resume is not None:
        given = sorted(k for k, v in fresh.items() if v is not None) + (
            ["--config"] if config else []
        )
        if given:
            raise UserError(
                f"--resume continues the run with its own config; only --budget, --max-cost "
                f"and --max-llm-calls may change (got {', '.join(given)})"
            )
        journal = Journal(resume)
        previous = read_records(resume, drop_torn_tail=True)
        settings = load_config(resume / "config.yaml", overrides)
    else:
        settings = load_config(config, {**overrides, **fresh})
    budget_ = LLMBudget(settings.llm)
    if previous:
        budget_.restore(Spend.of(r.llm for r in previous))
    proposer = make_proposer(settings.llm, settings.seed, budget_)
    evaluator = _evaluator(settings)
    executor = _executor(evaluator, settings)
    search = Search(settings, evaluator, proposer, executor)
    if resume is None:
        journal = Journal.create(Path(settings.runs_dir), settings.name, dump_config(settings))
    journal.lock()
    problem = None
    try:
        if resume is not None:
            (journal.folder / "config.yaml").write_text(dump_config(settings))
        console.print(f"Run folder: {journal.folder}" + (" (resumed)" if previous else ""))
        started = time.monotonic()
        with (
            LiveDisplay(console, settings.budget, settings.members, journal.folder) as display,
            _stop_on_ctrl_c(search),
        ):
            try:
                search.run(journal, display.on_record, previous=previous)
            except (ProposerStopped, BaselineFailed) as exc:
                problem = str(exc)
            except KeyboardInterrupt:
                problem = "interrupted; every step finished before Ctrl-C is in the run folder"
            except OSError as exc:  # disk full, folder removed or unwritable, ...
                problem = f"cannot write to the run folder: {exc}; what was written before is valid"
        print_summary(console, search.records, journal.folder, time.monotonic() - started)
    finally:
        journal.unlock()
        executor.close()
    if search.stopped:
        console.print(f"Stopped early: {search.stopped}; every finished step is in the run folder.")
    if search.stopped or problem:
        console.print(f"Continue with: edas-agent run --resume {journal.folder}")
    if problem:
        _report("run stopped:", problem)
        raise typer.Exit(1)


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
    from agent.display import trajectory_table
    from agent.replay import replay as replay_run

    report = replay_run(run_dir)
    console.print(trajectory_table(report.records, title=f"Accepted trajectory of {run_dir}"))
    if not report.ok:
        for mismatch in report.mismatches:
            _report("mismatch", mismatch)
        raise typer.Exit(1)
    console.print(f"{report.checked} decisions re-derived from the log: all agree.")


@app.command()
def evaluate(
    arch: Annotated[
        Path | None, typer.Option(help="Architecture JSON; the default if unset.")
    ] = None,
    learners: Annotated[int | None, typer.Option(help="k, learners to train.")] = None,
    members: Annotated[int | None, typer.Option(help="M for the predicted E_M.")] = None,
    config: ConfigOption = None,
    data: DataOption = None,
    target: TargetOption = None,
    task: TaskOption = None,
    categorical: ColumnsOption = None,
    numeric: ColumnsOption = None,
    ignore: IgnoreOption = None,
    split_column: SplitOption = None,
    seed: SeedOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Train k learners of one architecture; print statistics and timings."""
    from agent.loop import initial_architecture
    from agent.metrics import task_metrics

    overrides = {
        "baseline": str(arch) if arch else None,
        "evaluator.learners": learners,
        "members": members,
        "seed": seed,
        **_data_overrides(data, target, task, categorical, numeric, ignore, split_column),
    }
    settings = load_config(config, overrides)
    evaluator = _evaluator(settings)
    architecture = initial_architecture(settings, evaluator)
    evaluation = evaluator.evaluate(architecture, settings.evaluator.learners)
    M = settings.members
    result = {
        "arch_hash": architecture.arch_hash(),
        "architecture": architecture.document(),
        "members": M,
        "parameters": evaluation.parameters,
        "flops_per_example": evaluation.flops,
        "validation": statistics(evaluation.val_predictions, evaluator.y_val, M).model_dump(),
        "test": statistics(evaluation.test_predictions, evaluator.y_test, M).model_dump(),
        "test_metrics": task_metrics(evaluator.task, evaluation.test_predictions, evaluator.y_test),
        "timings": {
            "train_seconds": evaluation.train_seconds,
            "learner_seconds": list(evaluation.learner_seconds),
        },
    }
    _emit(result, as_json)


@app.command()
def gate(
    baseline: Annotated[Path, typer.Option(help="NPZ with preds (k, n[, C]) and y (n,).")],
    candidate: Annotated[Path, typer.Option(help="NPZ with preds (k, n[, C]) and y (n,).")],
    members: Annotated[int, typer.Option(help="M, the deployed ensemble size.")],
    rule: Annotated[str, typer.Option(help="exact, paper or logloss.")] = "exact",
    confidence: Annotated[
        float | None,
        typer.Option(help="Also require the bootstrap upper bound of dE_M below 0 at this level."),
    ] = None,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """The acceptance gate on predictions from any framework (k >= 2; binary, multiclass or
    regression); the paired-bootstrap interval of delta E_M is always reported."""
    if rule not in ("exact", "paper", "logloss"):
        raise UserError(f"--rule must be 'exact', 'paper' or 'logloss', got {rule!r}")
    if members < 2:
        raise UserError(f"--members must be at least 2, got {members}")
    if confidence is not None and not 0.5 <= confidence < 1:
        raise UserError(f"--confidence must be in [0.5, 1), got {confidence}")
    if resamples < 100:
        raise UserError(f"--resamples must be at least 100, got {resamples}")
    base_preds, base_y = _load_npz(baseline)
    cand_preds, cand_y = _load_npz(candidate)
    if base_y.shape != cand_y.shape or not np.array_equal(base_y, cand_y):
        raise UserError(
            "baseline and candidate must be scored on the same examples: their y differ"
        )
    task = _npz_task(cand_preds, cand_y)
    if rule == "logloss" and task == "regression":
        raise UserError("--rule logloss needs probabilities (binary or multiclass)")
    rule_name: Rule = "exact" if rule == "exact" else "paper" if rule == "paper" else "logloss"
    try:
        judgement, (base_stats, base_logloss) = Gate(
            members, rule_name, confidence, resamples=resamples
        ).judge(base_preds, cand_preds, cand_y, task, seed=[seed])
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
    _emit(result, as_json)


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="A run folder under runs/.")]) -> None:
    """Write report.html (self-contained) and PNGs into the run folder; print a summary."""
    from agent.display import print_summary
    from agent.journal import read_records
    from agent.report import write_report

    records = read_records(run_dir)
    try:
        page = write_report(run_dir)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    print_summary(console, records, run_dir, sum(r.cost.train_seconds for r in records))
    console.print(f"Report: {page}")


@app.command()
def runs(
    runs_dir: Annotated[Path, typer.Option(help="Where run folders are.")] = Path("runs"),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """List the run folders: state, steps, best predicted E_M, learners and LLM cost."""
    from rich.table import Table

    from agent.runs import list_runs

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
        "learners",
        "LLM $",
    ):
        table.add_column(column, justify="left" if column in ("folder", "state") else "right")
    for s in summaries:
        best_step = "-" if s.best_step is None else str(s.best_step)
        best = "-" if s.best_E_M is None else f"{s.best_E_M:.5f}"
        progress = f"{s.steps}/{s.budget or '?'}"
        cells = (s.folder, s.state, progress, best_step, best, str(s.accepted), str(s.learners))
        table.add_row(*cells, f"{s.llm_cost:.4f}")
    console.print(table)


@app.command()
def verify(
    run_dir: Annotated[Path, typer.Argument(help="A run folder under runs/.")],
    members: Annotated[int | None, typer.Option(help="M; the run's members if unset.")] = None,
    steps: Annotated[
        str, typer.Option(help="accepted, all, or step numbers: 3,8,12.")
    ] = "accepted",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Train real M-member ensembles of chosen steps (reusing the run's learners) and compare
    them with the predictions; writes verify.json. Interrupt and rerun to resume."""
    from agent.display import verify_table
    from agent.verify import verify as verify_run

    if members is not None and members < 2:
        raise UserError(f"--members must be at least 2, got {members}")
    if not (run_dir / "config.yaml").is_file():
        raise UserError(f"{run_dir} is not a run folder: config.yaml is missing")
    with _learner_progress("verify") as advance:
        try:
            result = verify_run(run_dir, members, steps, on_learner=advance)
        except DataError as exc:
            raise UserError(f"data: {exc}") from None
        except MembersUnavailable as exc:  # a member could not be trained (lost worker, NaN)
            _report("verify stopped:", f"{exc}; finished members are saved, rerun to resume")
            raise typer.Exit(1) from None
    if as_json:
        print(json.dumps(result, indent=2))
        return
    console.print(verify_table(result))
    console.print(f"Wrote {run_dir / 'verify.json'}")


@app.command()
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
    data: DataOption = None,
    target: TargetOption = None,
    task: TaskOption = None,
    categorical: ColumnsOption = None,
    numeric: ColumnsOption = None,
    ignore: IgnoreOption = None,
    split_column: SplitOption = None,
    seed: SeedOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Measure how often a 2-learner gate orders architectures like their realised M-member
    ensembles; writes calibration.json."""
    from agent.calibrate import DEFAULT_ARCHITECTURES
    from agent.calibrate import calibrate as run_calibration
    from agent.display import calibration_tables
    from agent.journal import Journal
    from agent.learners import LearnerStore

    if members < 4 or pairs < 1 or not 0.5 <= confidence < 1:
        raise UserError("calibrate needs --members >= 4, --pairs >= 1, --confidence in [0.5, 1)")
    settings = load_config(
        config,
        {
            "seed": seed,
            **_data_overrides(data, target, task, categorical, numeric, ignore, split_column),
        },
    )
    evaluator = _evaluator(settings)
    documents = (
        {f"{i}:{path.stem}": _read_json(path) for i, path in enumerate(arch)}
        if arch
        else DEFAULT_ARCHITECTURES
    )
    architectures = {}
    for name, document in documents.items():
        try:
            architectures[name] = evaluator.parse(document)
        except ValidationError as exc:
            raise UserError(f"architecture {name}: {describe_validation_error(exc)}") from None
    if len({a.arch_hash() for a in architectures.values()}) < 2:
        raise UserError("calibrate needs at least two different architectures")
    if folder is None:
        folder = Journal.create(Path(settings.runs_dir), "calibrate", dump_config(settings)).folder
    executor = _executor(evaluator, settings)
    store = LearnerStore(evaluator, folder / "learners", executor)
    try:
        with _learner_progress("calibrate") as advance:
            result = run_calibration(
                architectures, store, members, pairs, settings.seed, confidence, on_learner=advance
            )
    except MembersUnavailable as exc:
        _report("calibrate stopped:", f"{exc}; finished members are saved, rerun to resume")
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


@contextmanager
def _learner_progress(what: str):
    """A progress line for long trainings; the callback takes (architecture, learner index)."""
    from rich.progress import Progress, SpinnerColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(), "[progress.description]{task.description}", TimeElapsedColumn(),
        console=console, transient=True,
    ) as progress:  # fmt: skip
        task = progress.add_task(f"{what}: loading data")
        trained = 0

        def advance(name: str, j: int) -> None:
            nonlocal trained
            trained += 1
            progress.update(
                task, description=f"{what}: {trained} learners trained (last: {name} #{j})"
            )

        yield advance


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON: {exc}") from None


def _npz_task(predictions: np.ndarray, y: np.ndarray) -> str:
    """(k, n, C): multiclass; 0/1 targets with probabilities: binary; else regression."""
    if predictions.ndim == 3:
        return "multiclass"
    probabilities = ((predictions >= 0) & (predictions <= 1)).all()
    return "binary" if np.isin(y, (0, 1)).all() and probabilities else "regression"


def _evaluator(settings: Config):
    from agent.door import build_evaluator

    with console.status(f"Loading data '{settings.data.path}'"):
        try:
            evaluator = build_evaluator(settings)
        except DataError as exc:
            raise UserError(f"data: {exc}") from None
        except ValueError as exc:  # e.g. evaluator.device cuda without CUDA
            raise UserError(str(exc)) from None
    for note in evaluator.notes:  # on stderr, so `--json` output stays clean
        errors.print(Text.assemble(("note:", "bold yellow"), " ", note), soft_wrap=True)
    return evaluator


def _executor(evaluator, settings: Config):
    from agent.executors import make_executor

    try:
        return make_executor(evaluator, settings.executor)
    except RuntimeError as exc:  # Ray asked for but not installed
        raise UserError(str(exc)) from None


def _data_overrides(
    data: str | None,
    target: str | None,
    task: str | None,
    categorical: str | None,
    numeric: str | None,
    ignore: str | None,
    split_column: str | None,
) -> dict[str, Any]:
    def columns(text: str | None) -> list[str] | None:
        return None if text is None else [c.strip() for c in text.split(",") if c.strip()]

    return {
        "data.path": data,
        "data.target": target,
        "data.task": task,
        "data.categorical": columns(categorical),
        "data.numeric": columns(numeric),
        "data.ignore": columns(ignore),
        "data.split_column": split_column,
    }


def _parse_sets(items: list[str] | None) -> dict[str, Any]:
    overrides = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            overrides[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            overrides[key.strip()] = value
    return overrides


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


def _emit(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        console.print_json(json.dumps(result))


def _report(label: str, message: str) -> None:
    """One line on stderr; the message is plain text, never parsed as rich markup."""
    errors.print(Text.assemble((label, "bold red"), " ", message), soft_wrap=True)


def main() -> None:
    try:
        app()
    except UserError as exc:
        _report("error:", str(exc))
        sys.exit(2)
    except KeyboardInterrupt:
        errors.print("interrupted; every step finished before it is in the run folder")
        sys.exit(130)

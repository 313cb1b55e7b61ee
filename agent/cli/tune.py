"""`edas-agent tune bagging`: the closed-form bagging fraction f*(M) of one architecture."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from edas_agent.cli.shared import (
    ConfigOption,
    JsonOption,
    SeedOption,
    console,
    data_options,
    load_evaluator,
    read_json,
)
from edas_agent.config import load_config
from edas_agent.errors import UserError
from edas_agent.record import BEST, CONFIG, require_run_folder

tune = typer.Typer(
    no_args_is_help=True,
    help="Continuous knobs solved in closed form from a few measured points (no search).",
)


@tune.command("bagging")
@data_options
def bagging(
    run_dir: Annotated[
        Path | None, typer.Argument(help="A run folder: tune its best architecture, on its data.")
    ] = None,
    arch: Annotated[
        Path | None, typer.Option(help="Architecture JSON (without RUN_DIR); the default if unset.")
    ] = None,
    members: Annotated[int | None, typer.Option(help="M, the deployed ensemble size.")] = None,
    fractions: Annotated[
        str | None,
        typer.Option(
            help="Fractions to measure, e.g. 1,0.8,0.6,0.4 (default: 1, 0.75, 0.5, "
            "0.3, as whole numbers of fields)."
        ),
    ] = None,
    learners: Annotated[int, typer.Option(help="Learners per fraction (at least 2).")] = 2,
    config: ConfigOption = None,
    seed: SeedOption = None,
    as_json: JsonOption = False,
    data_overrides: dict[str, Any] | None = None,
) -> None:
    """Train LEARNERS learners at a few bagging fractions, fit E and D against the share of
    fields kept, and print the fraction f*(M) that minimises the predicted M-member error,
    for the deployed M and for M = 2, 4, 16, 50, 200, with intervals."""
    from edas_agent.continuous.tuning import tune_bagging
    from edas_agent.search.loop import initial_architecture

    if learners < 2:
        raise UserError("--learners must be at least 2 (D needs two learners)")
    if members is not None and members < 1:
        raise UserError("--members must be at least 1")
    overrides = {"members": members, "seed": seed, **(data_overrides or {})}
    document = None
    if run_dir is not None:
        if arch is not None or config is not None:
            raise UserError("give a run folder or --arch/--config, not both")
        require_run_folder(run_dir, CONFIG)
        config, document = run_dir / CONFIG, read_json(run_dir / BEST)["architecture"]
    else:
        overrides["baseline"] = str(arch) if arch else None
    settings = load_config(config, overrides)
    evaluator = load_evaluator(settings)
    architecture = (
        evaluator.parse(document) if document else initial_architecture(settings, evaluator)
    )
    asked = _fractions(fractions)
    with console.status("Training") as status:
        report = tune_bagging(
            evaluator, architecture, settings.members, learners, asked,
            lambda f: status.update(f"Training {learners} learners at bagging fraction {f:.3g}"),
        )  # fmt: skip
    if as_json:
        print(report.model_dump_json(indent=2))
        return
    _show(report)


def _fractions(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"--fractions takes numbers separated by commas, got {text!r}") from None
    if not values or any(not 0 < v <= 1 for v in values):
        raise UserError(f"--fractions must lie in (0, 1], got {text!r}")
    return values


def _show(report) -> None:
    measured = Table(title=f"Measured ({report.learners} learners each, {report.fields} fields)")
    for column in ("fraction", "fields", "E", "E fit", "D", "D fit", "rho",
                   f"E_M (M={report.members})"):  # fmt: skip
        measured.add_column(column, justify="right")
    for m in report.measured:
        cells = (f"{m.fraction:.3f}", str(m.fields_kept), f"{m.E:.5f}", f"{m.E_fit:.5f}",
                 f"{m.D:.5f}", f"{m.D_fit:.5f}", f"{m.rho:.4f}", f"{m.E_M:.5f}")  # fmt: skip
        measured.add_row(*cells)
    console.print(measured)
    optima = Table(title="f*(M): the bagging fraction that minimises the predicted E_M")
    for column in ("M", "f* (continuous)", "90% interval", "set fraction", "fields",
                   "E_M at f*", "E_M at f=1", "gain"):  # fmt: skip
        optima.add_column(column, justify="right")
    for o in report.optima:
        deployed = " (deployed)" if o.members == report.members else ""
        low, high = o.overlap_interval
        gain = (o.E_M_full - o.E_M) / o.E_M_full
        cells = (f"{o.members}{deployed}", f"{o.overlap:.3f}", f"[{low:.2f}, {high:.2f}]",
                 f"{o.fraction:g}", str(o.fields_kept), f"{o.E_M:.5f}", f"{o.E_M_full:.5f}",
                 f"{gain:+.2%}")  # fmt: skip
        optima.add_row(*cells)
    console.print(optima)
    curve = "  ".join(f"{p['fields_kept']}:{p['E_M']:.5f}" for p in report.curve)
    console.print(f"Predicted E_M at M={report.members} by fields kept: {curve}")
    console.print(f"Intervals: {report.interval}. Set the fraction in an architecture JSON "
                  "at /bagging/fraction.")  # fmt: skip

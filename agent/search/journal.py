"""The run folder: runs/<UTC timestamp>-<name>/ with everything needed to audit a run.

config.yaml       the resolved configuration (no secrets: keys live in the environment)
trajectory.jsonl  one Record per line, append-only, flushed and fsynced per line
llm/              every LLM request and response, one JSON file per proposal
best.json         the current baseline, replaced atomically on each acceptance
"""

from __future__ import annotations

import json
import os
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError, computed_field

from edas_agent.errors import UserError, describe_validation_error
from edas_agent.proposers.base import LLMUsage
from edas_agent.theory.gate import Judgement, Rule, Rules, Stats
from edas_agent.theory.logloss import LogLossStats
from edas_agent.theory.mixture_gate import MixtureJudgement, Part
from edas_agent.theory.seed_noise import Pooled, PredictedError, pool_spreads
from edas_agent.theory.uncertainty import Interval
from edas_agent.training.learners import Cost

Status = Literal["accepted", "rejected", "invalid", "failed", "pruned"]
TRAJECTORY = "trajectory.jsonl"
CONFIG = "config.yaml"
BEST = "best.json"
LOCK = "run.lock"


class TestReport(BaseModel):
    """Test-split statistics and the task's metrics: reported, never used to decide."""

    stats: Stats
    metrics: dict[str, float]


class BaselineRef(BaseModel):
    """The baseline a proposal was compared with, as it stood (after its confirmation)."""

    step: int
    arch_hash: str
    stats: Stats
    logloss: LogLossStats | None = None
    mixture: list[Part] | None = None  # search.target mixture: the mixture it was judged against


class GateRound(Judgement):
    """One judgement of a proposal by the gate, and the learners trained for it. (Not to be
    confused with a batch: the proposals of one propose call, `Record.round` in the log.)

    kind "decision" uses the first k learners; "sequential" follows when the interval
    straddled zero or a learner was unstable, and two more learners were trained;
    "confirmation" follows an acceptance, on fresh learners plus all earlier ones (the
    winner's-curse guard).
    """

    kind: Literal["decision", "sequential", "confirmation"]
    cost: Cost = Cost()
    # a learner's error over 1.25 times its siblings' (theory/seed_noise.py): with
    # gate.sequential, two more learners follow, as when the interval straddles zero
    unstable: bool = False
    # search.target mixture: the judgement that decided (accepted, reason, interval,
    # confidence and min_effect above are its); stats, delta_E and rules describe the
    # candidate beside the baseline architecture, for the prompt and the report
    mixture: MixtureJudgement | None = None


class Shrinkage(BaseModel):
    """Predicted gain at decision and after confirmation: the winner's curse, measured (of
    E_mix, the mixture's predicted error, in a mixture search)."""

    delta_E_M_at_decision: float
    delta_E_M_confirmed: float


class StagePoint(BaseModel):
    """EDAS statistics of a candidate's k learners after `fraction` of their schedule."""

    fraction: float
    E: float
    D: float
    E_M: float


class CurvePrediction(BaseModel):
    """The early-curve model's forecast of full-training statistics (agent/fidelity/curves.py)."""

    E: float
    D: float
    E_M: float
    lower: float  # optimistic end of E_M at the screening level
    curves: int  # the run's full learning curves it was learned from


class StageResult(BaseModel):
    point: StagePoint
    prediction: CurvePrediction
    score: float  # what this stage ranked by (lower is more promising)
    ranked_by: Literal["curve", "predictor"]


class ScreeningTrace(BaseModel):
    """A candidate's multi-fidelity screening (agent/fidelity/staging.py), enough to
    re-derive it."""

    signals: dict[str, float] = {}  # the cheap signals the fused predictor saw
    predicted: float | None = None  # fused predictor's E_M before any training (None: cold)
    predicted_first: float | None = None  # ... with the lowest-fidelity E_M and D too
    bar: float | None = None  # E_M it had to reach to pass the gate (baseline minus floor)
    entered: list[int] = []  # candidates alive at the start of each stage, round-wide
    stages: list[StageResult] = []
    pruned_at: int | None = None  # stage index; -1: skipped by the predictor, untrained
    pruned_by: Literal["bound", "halving", "predictor"] | None = None
    curve: list[StagePoint] = []  # full training at the screening fractions and at 1


class Record(BaseModel):
    """One line of trajectory.jsonl: the starting baseline or one proposal's outcome."""

    event: Literal["baseline", "proposal"]
    step: int
    # First step of the record's batch (the proposals of one propose call, which share a
    # baseline). Logged as "round" since the first version of the format.
    round: int | None = None
    time: str
    status: Status
    reason: str
    rule: Rule
    members: int
    architecture: dict[str, Any] | None = None
    arch_hash: str | None = None
    edits: list[dict[str, Any]] = []
    rationale: str = ""
    stats: Stats | None = None  # at decision (first k learners); see rounds for the rest
    logloss: LogLossStats | None = None
    baseline: BaselineRef | None = None
    delta_E: float | None = None
    rules: Rules | None = None
    interval: Interval | None = None
    rounds: list[GateRound] = []  # every gate judgement in order; the last one decided
    shrinkage: Shrinkage | None = None
    test: TestReport | None = None
    parameters: int | None = None  # trainable parameters of one learner
    flops: int | None = None  # forward FLOPs per example of one learner
    learners: int | None = None  # learners of this architecture behind the final judgement
    cached_from: int | None = None  # step whose learners were reused instead of retraining
    outranked_by: int | None = None  # passed the gate, but a sibling in its round did better
    completion: int | None = None  # order its decision learners finished in within the round
    cost: Cost = Cost()
    llm: LLMUsage | None = None
    attempts: list[dict[str, Any]] | None = None  # the LLM's answers' problems, when repaired
    notes: list[str] = []  # baseline: what loading did to the data (rows dropped, ...)
    screening: ScreeningTrace | None = None  # multi-fidelity screening, when enabled
    # E_M of a fresh M-member ensemble with its seed-noise interval (validation), from the
    # learners behind the final judgement (theory/seed_noise.py)
    predicted: PredictedError | None = None
    unstable: list[int] = []  # learners whose error is far from their siblings'

    @computed_field  # type: ignore[prop-decorator]
    @property
    def accepted(self) -> bool:
        """Derived from status; logged beside it for readers of trajectory.jsonl."""
        return self.status == "accepted"

    def carried(self) -> tuple[Stats | None, LogLossStats | None]:
        """The statistics this architecture carries forward when it becomes the baseline."""
        if self.rounds:
            return self.rounds[-1].stats, self.rounds[-1].logloss
        return self.stats, self.logloss

    def mixture(self) -> MixtureJudgement | None:
        """The mixture judgement that decided, in a mixture search."""
        return self.rounds[-1].mixture if self.rounds else None

    def predicted_error(self) -> float | None:
        """What the search minimises, as this record predicts it if adopted: the mixture's
        E_mix in a mixture search, the architecture's E_M otherwise."""
        if (judged := self.mixture()) is not None:
            return judged.E_after
        stats = self.carried()[0]
        return stats.E_M if stats is not None else None


def seed_noise(records: list[Record]) -> Pooled | None:
    """The run's pooled seed-noise model (theory/seed_noise.py): per architecture, the
    validation statistics on the most learners, where those are three or more."""
    best: dict[str, Stats] = {}
    for record in records:
        judged = [record.stats, *(r.stats for r in record.rounds)]
        for stats in judged:
            if stats is None or record.arch_hash is None:
                continue
            if record.arch_hash not in best or stats.k > best[record.arch_hash].k:
                best[record.arch_hash] = stats
    return pool_spreads(best.values())


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Journal:
    def __init__(self, folder: Path):
        self.folder = folder

    @classmethod
    def create(cls, runs_dir: Path, name: str, config_yaml: str) -> Journal:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        folder = runs_dir / f"{stamp}-{name}"
        suffix = 1
        while folder.exists():  # two runs started in the same second
            suffix += 1
            folder = runs_dir / f"{stamp}-{name}-{suffix}"
        (folder / "llm").mkdir(parents=True)
        (folder / CONFIG).write_text(config_yaml)
        (folder / TRAJECTORY).touch()
        return cls(folder)

    def lock(self) -> None:
        """Claim the folder for this process; a live owner makes it a user error."""
        path = self.folder / LOCK
        for _ in range(2):
            try:
                handle = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                owner = _pid_in(path)
                if owner is not None and _alive(owner):
                    raise UserError(
                        f"{self.folder} is in use by process {owner}; two runs cannot write "
                        "one folder (if that process is gone, delete run.lock)"
                    ) from None
                path.unlink(missing_ok=True)  # a stale lock from a killed run
                continue
            with os.fdopen(handle, "w") as file:
                file.write(str(os.getpid()))
            return
        raise UserError(f"cannot lock {self.folder}: another process keeps taking it")

    def unlock(self) -> None:
        path = self.folder / LOCK
        if _pid_in(path) == os.getpid():
            path.unlink(missing_ok=True)

    def append(self, record: Record) -> None:
        line = record.model_dump_json() + "\n"
        with open(self.folder / TRAJECTORY, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def truncate_to(self, records: list[Record]) -> None:
        """Rewrite the trajectory as exactly these records (dropping an unfinished round)."""
        temporary = self.folder / f".{TRAJECTORY}.tmp"
        temporary.write_text("".join(r.model_dump_json() + "\n" for r in records))
        os.replace(temporary, self.folder / TRAJECTORY)

    def save_transcript(self, step: int, transcript: dict[str, Any]) -> None:
        path = self.folder / "llm" / f"step-{step:04d}.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(transcript, indent=2, default=str))
        os.replace(temporary, path)

    def save_best(self, record: Record) -> None:
        """Write to a temporary file, then rename: readers never see half a file."""
        temporary = self.folder / f".{BEST}.tmp"
        temporary.write_text(record.model_dump_json(indent=2))
        os.replace(temporary, self.folder / BEST)


def require_run_folder(folder: Path | str, needs: str = TRAJECTORY) -> None:
    """A UserError saying what is wrong with `folder` as a run folder, if anything."""
    folder = Path(folder)
    if not folder.exists():
        raise UserError(f"{folder} does not exist")
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder (a run folder is expected)")
    if not (folder / needs).is_file():
        raise UserError(f"{folder} is not a run folder: {needs} is missing")


def read_records(folder: Path | str, drop_torn_tail: bool = False) -> list[Record]:
    """The trajectory's records. A last line that does not parse (a write cut by a kill) is
    dropped with a warning when `drop_torn_tail`, and the file is cut back to match;
    anywhere else a bad line is an error naming it."""
    require_run_folder(folder)
    path = Path(folder) / TRAJECTORY
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(Record.model_validate_json(line))
        except ValidationError as exc:
            if drop_torn_tail and number == len(lines):
                warnings.warn(
                    f"{path}:{number}: dropped a torn last line ({len(line)} bytes)", stacklevel=2
                )
                Journal(folder).truncate_to(records)
                break
            raise UserError(f"{path}:{number}: {describe_validation_error(exc)}") from None
    return records


def _pid_in(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True

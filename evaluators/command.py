"""Bring your own model in any framework or language: a shell command trains one learner.

    evaluator:
      command: "python train.py --arch {arch} --seed {seed} --out {out}"
      space: space.schema.json    # JSON Schema with bounds; its defaults are the default
      targets: targets.npz        # y_val, y_test (and optionally task)

For learner j of an architecture, the architecture's JSON is written to {arch}, the command
runs once with seed base + j (in evaluator.workdir, with evaluator.timeout_s), and {out} is
read: an NPZ with `val` and `test` predictions shaped like y_val / y_test, or (n, C) class
probabilities. Each run's files and its stdout+stderr (`log.txt`) are kept in the run
folder under commands/<arch_hash>/<seed>/. A non-zero exit, a timeout, a missing or
malformed NPZ is a CandidateFailed whose reason ends with the log's last lines.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from edas_agent.evaluators.base import CandidateFailed, Task, architecture_hash, document_of
from edas_agent.evaluators.function import FunctionEvaluator
from edas_agent.evaluators.json_space import load_space

_LOG_LINES = 8


def load_targets(path: Path) -> tuple[np.ndarray, np.ndarray, Task | None]:
    """y_val, y_test and the task (if the file names one) from an NPZ; ValueError if unusable."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            targets = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: not a readable NPZ file ({exc})") from None
    missing = {"y_val", "y_test"} - set(targets)
    if missing:
        raise ValueError(f"{path}: no {' or '.join(sorted(missing))} array in it")
    task = str(targets["task"]) if "task" in targets else None
    y_val, y_test = targets["y_val"], targets["y_test"]
    if task not in (None, "binary", "multiclass", "regression"):
        raise ValueError(f"{path}: task is {task!r}; binary, multiclass or regression")
    return y_val, y_test, task  # type: ignore[return-value]


class CommandEvaluator(FunctionEvaluator):
    def __init__(
        self,
        command: str,
        space: type[BaseModel],
        y_val: Any,
        y_test: Any,
        task: Task | None = None,
        timeout_s: float | None = None,
        workdir: Path | None = None,
        seed: int = 0,
    ):
        super().__init__(space, self._run, y_val, y_test, task, name="command", seed=seed)
        self.command = command
        self.timeout_s = timeout_s
        self.workdir = workdir or Path.cwd()
        self.files = Path(tempfile.mkdtemp(prefix="edas-commands-"))  # until a run folder

    @classmethod
    def from_files(
        cls, command: str, space: Path, targets: Path, timeout_s=None, workdir=None, seed=0
    ) -> CommandEvaluator:
        y_val, y_test, task = load_targets(targets)
        return cls(command, load_space(space), y_val, y_test, task, timeout_s, workdir, seed)

    def keep_files_in(self, folder: Path) -> None:
        """Where each learner's architecture, predictions and log are kept (the run folder)."""
        self.files = folder

    def _run(self, architecture: BaseModel, seed: int) -> tuple[np.ndarray, np.ndarray]:
        folder = self.files / architecture_hash(architecture) / str(seed)
        folder.mkdir(parents=True, exist_ok=True)
        arch, out, log = folder / "arch.json", folder / "predictions.npz", folder / "log.txt"
        arch.write_text(json.dumps(document_of(architecture), indent=2))
        out.unlink(missing_ok=True)  # a stale file from an earlier attempt is not an answer
        line = self.command.format(
            arch=shlex.quote(str(arch)), seed=seed, out=shlex.quote(str(out))
        )
        code = self._execute(line, log)
        if code != 0:
            raise CandidateFailed(f"the command exited with status {code}{_tail(log)}")
        if not out.is_file():
            raise CandidateFailed(f"the command wrote no {out.name} ({{out}}){_tail(log)}")
        try:
            with np.load(out, allow_pickle=False) as predictions:
                return predictions["val"], predictions["test"]
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise CandidateFailed(
                f"{out.name} is not an NPZ with 'val' and 'test' arrays ({exc}){_tail(log)}"
            ) from None

    def _execute(self, line: str, log: Path) -> int:
        with log.open("w") as output:
            # A session of its own, so a timeout stops the command's children too.
            process = subprocess.Popen(
                line, shell=True, cwd=self.workdir, stdout=output, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
            try:
                return process.wait(timeout=self.timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                raise CandidateFailed(
                    f"the command ran past evaluator.timeout_s ({self.timeout_s:g} s) and was "
                    f"stopped{_tail(log)}"
                ) from None


def _tail(log: Path) -> str:
    lines = log.read_text(errors="replace").strip().splitlines()[-_LOG_LINES:]
    return f"; last lines of {log}:\n" + "\n".join(lines) if lines else f" (no output; {log})"

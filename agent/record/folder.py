"""The run folder: runs/<UTC timestamp>-<name>/ with everything needed to audit a run.

config.yaml       the resolved configuration (no secrets: keys live in the environment)
trajectory.jsonl  one Record per line, append-only, flushed and fsynced per line
best.json         the current baseline, replaced atomically on each acceptance
llm/              every LLM request and response, one JSON file per proposal
learners/         every learner's predictions, one NPZ per architecture (training/learners.py)
commands/         a command evaluator's files per learner, when it keeps them
run.lock          the process writing the folder, while it runs
"""

from __future__ import annotations

import json
import os
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edas_agent.errors import UserError, describe_validation_error
from edas_agent.record.schema import Record

TRAJECTORY = "trajectory.jsonl"
CONFIG = "config.yaml"
BEST = "best.json"
LOCK = "run.lock"


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

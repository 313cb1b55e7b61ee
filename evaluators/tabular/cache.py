"""The encoded-data cache: a large table read and encoded once, then memory-mapped.

Reading and encoding a table of millions of rows takes seconds to minutes, and every
`run`, `--resume`, `verify`, `calibrate`, `evaluate` and benchmark process would pay it
again. The encoded splits (int32 ids, float32 views, labels) are saved as .npy files in one
folder per (file, its size and modification time, data settings, seed, encoding version);
a later load maps them (pages are read as training touches them, and shared between
processes). A changed file has another size or time, so another key: a stale entry is
never read, only left for `edas-agent cache clear`.

Where: $EDAS_AGENT_CACHE_DIR, else $XDG_CACHE_HOME/edas-agent/data, else
~/.cache/edas-agent/data. Which tables: `data.cache` (auto: files of 64 MB or more and
generated tables of a million rows or more; true; false).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from edas_agent.evaluators.tabular.data import EncodedDataset, Part, load
from edas_agent.evaluators.tabular.numeric import NumericColumns, NumericTransform
from edas_agent.evaluators.tabular.settings import BUILTIN_ADULT, DataSpec

ENCODING_VERSION = 2  # bump when an encoding changes: older entries are then never read
# (2: a split column's sample is drawn from the seed, no longer its first rows; numeric
# columns stored as values and transforms, not as three views)
AUTO_MIN_BYTES = 64 * 2**20
AUTO_MIN_GENERATED_ROWS = 1_000_000
_PARTS = ("train", "val", "test")
_META = "meta.json"


def cache_root() -> Path:
    if folder := os.environ.get("EDAS_AGENT_CACHE_DIR"):
        return Path(folder)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "edas-agent" / "data"


def load_cached(spec: DataSpec, seed: int) -> EncodedDataset:
    """`load`, through the cache when the table is worth it (module docstring)."""
    key = cache_key(spec, seed)
    if key is None:
        return load(spec, seed)
    folder = cache_root() / key
    if (folder / _META).exists():
        return _read(folder)
    data = load(spec, seed)
    return replace(data, cached_at=str(folder)) if _write(data, folder) else data


def cache_key(spec: DataSpec, seed: int) -> str | None:
    """The entry's folder name, or None when this table is not cached."""
    if spec.cache is False or spec.path == BUILTIN_ADULT:
        return None
    kind, _, rest = spec.path.partition(":")
    if kind == "synthetic":
        if spec.cache is None and int(rest.split(":")[0]) < AUTO_MIN_GENERATED_ROWS:
            return None
        identity = {"generated": spec.path}
    else:
        path = Path(rest if kind in ("criteo", "avazu") else spec.path)
        if not path.is_file():
            return None  # loading will say so
        stat = path.stat()
        if spec.cache is None and stat.st_size < AUTO_MIN_BYTES:
            return None
        identity = {"file": str(path.resolve()), "bytes": stat.st_size, "mtime": stat.st_mtime_ns}
    settings = spec.model_dump(exclude={"path", "cache"})
    text = json.dumps([ENCODING_VERSION, identity, settings, seed], sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    name = Path(spec.path.split(":")[-1] if kind != "synthetic" else spec.path).name
    return f"{_safe(name)}-seed{seed}-{digest}"


def entries() -> Iterator[tuple[Path, int]]:
    """Each entry's folder and its size in bytes."""
    root = cache_root()
    if not root.is_dir():
        return
    for folder in sorted(root.iterdir()):
        if folder.is_dir():
            yield folder, sum(f.stat().st_size for f in folder.iterdir() if f.is_file())


def clear() -> tuple[int, int]:
    """Remove every entry; returns how many and their bytes."""
    removed = list(entries())
    for folder, _ in removed:
        shutil.rmtree(folder, ignore_errors=True)
    return len(removed), sum(size for _, size in removed)


def _write(data: EncodedDataset, folder: Path) -> bool:
    """Into a temporary folder renamed at the end: a reader never sees half an entry, and
    two processes filling the same entry at once both succeed (the second's is dropped).
    False when nothing was written (a full disk, say): the data is simply not cached."""
    partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
    try:
        partial.mkdir(parents=True, exist_ok=True)
        for name in _PARTS:
            for array_name, values in _arrays(getattr(data, name)):
                np.save(partial / f"{name}.{array_name}.npy", values)
        transforms = _numeric(data.train).transforms
        for j, transform in enumerate(transforms):
            np.save(partial / f"transform.{j}.distinct.npy", transform.distinct)
            np.save(partial / f"transform.{j}.at_most.npy", transform.at_most)
        meta = {
            "name": data.name, "task": data.task,
            "categorical_fields": data.categorical_fields, "numeric_fields": data.numeric_fields,
            "cardinalities": data.cardinalities, "classes": data.classes,
            "target_mean": data.target_mean, "target_std": data.target_std,
            "notes": list(data.notes),
            "transforms": [_scalars(transform) for transform in transforms],
        }  # fmt: skip
        (partial / _META).write_text(json.dumps(meta, indent=1))
        partial.rename(folder)
    except OSError:  # another process wrote it first, a full disk, a read-only home
        shutil.rmtree(partial, ignore_errors=True)
    return (folder / _META).exists()


def _numeric(part: Part) -> NumericColumns:
    assert isinstance(part.numeric, NumericColumns)  # as encoding.py makes them
    return part.numeric


def _arrays(part: Part) -> Iterator[tuple[str, np.ndarray]]:
    yield "categorical", part.categorical.numpy()
    for j, values in enumerate(_numeric(part).arrays):
        yield f"numeric.{j}", values
    yield "y", part.y.numpy()


_SCALARS = ("median", "mean", "std", "log_mean", "log_std", "train_rows")


def _scalars(transform: NumericTransform) -> dict[str, float]:
    """A transform's numbers; JSON writes a float's shortest exact form, so they read back
    bit for bit."""
    return {name: getattr(transform, name) for name in _SCALARS}


def _read(folder: Path) -> EncodedDataset:
    meta = json.loads((folder / _META).read_text())

    def mapped(name: str) -> np.ndarray:
        # Copy-on-write: torch wants writable arrays; nothing here writes, and pages stay
        # shared with the file (and with other processes reading the same entry)
        return np.load(folder / f"{name}.npy", mmap_mode="c")

    transforms = [
        NumericTransform(
            **scalars,
            distinct=mapped(f"transform.{j}.distinct"),
            at_most=mapped(f"transform.{j}.at_most"),
        )
        for j, scalars in enumerate(meta["transforms"])
    ]

    def part(name: str) -> Part:
        y = torch.from_numpy(mapped(f"{name}.y"))
        values = [mapped(f"{name}.numeric.{j}") for j in range(len(transforms))]
        return Part(
            categorical=torch.from_numpy(mapped(f"{name}.categorical")),
            numeric=NumericColumns(values, transforms, len(y)),
            y=y,
        )

    return EncodedDataset(
        name=meta["name"], task=meta["task"],
        categorical_fields=meta["categorical_fields"], numeric_fields=meta["numeric_fields"],
        cardinalities=meta["cardinalities"], classes=meta["classes"],
        target_mean=meta["target_mean"], target_std=meta["target_std"],
        train=part("train"), val=part("val"), test=part("test"),
        notes=tuple(meta["notes"]), cached_at=str(folder),
    )  # fmt: skip


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:60]

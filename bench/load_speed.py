"""Loading and encoding a Criteo-like Parquet table: seconds and peak memory per size.

Prints measured numbers; it is a benchmark, not a test. The table is generated once per
size (a Parquet file under --tables, written in row groups, so generating 45 million rows
needs little memory): 13 numeric columns (log-normal counts, 5 % missing), 26 categorical
columns stored as dictionary-encoded strings with 10 to 1,000,000 categories each,
Zipf-skewed (4 % missing), and a click label from a hidden model of a few fields.

    python bench/load_speed.py --rows 1000000 4000000 [--tables /tmp/tables] [--cache DIR]
        [--sample-rows N]

Each size loads in a fresh process (peak resident memory is that process's ru_maxrss,
which includes Python, torch, pandas and pyarrow, 0.3 GB before any data): the first load
encodes; with --cache DIR, the first writes the encoded-data cache there and a second
reads it back (memory-mapped; the benchmark touches every page of the ids and the numeric
values, as an epoch of training would). Then one numeric view of each split is computed,
as training and prediction compute the one the architecture reads: its seconds and the
peak with it are the last column.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

NUMERIC = 13
CARDINALITIES = np.geomspace(10, 1_000_000, 26).round().astype(int)  # 10 .. 1,000,000
ROW_GROUP = 1_000_000


def generate(path: Path, rows: int, seed: int = 0) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    dictionaries = [
        pa.array([f"c{j}_{k:x}" for k in range(int(c))]) for j, c in enumerate(CARDINALITIES)
    ]
    weights = rng.normal(size=4)
    writer = None
    tmp = path.with_suffix(".tmp")
    for start in range(0, rows, ROW_GROUP):
        n = min(ROW_GROUP, rows - start)
        columns: dict[str, pa.Array] = {}
        numeric = rng.lognormal(1.0, 1.5, size=(n, NUMERIC)).round()
        for j in range(NUMERIC):
            values = numeric[:, j]
            columns[f"I{j + 1}"] = pa.array(values, mask=rng.random(n) < 0.05)
        for j, card in enumerate(CARDINALITIES):
            codes = (rng.zipf(1.3, size=n) - 1) % card
            mask = rng.random(n) < 0.04
            indices = pa.array(codes.astype(np.int32), mask=mask)
            columns[f"C{j + 1}"] = pa.DictionaryArray.from_arrays(indices, dictionaries[j])
        signal = (
            weights[0] * np.log1p(numeric[:, 0])
            + weights[1] * (columns["C3"].indices.to_numpy(zero_copy_only=False) % 3 == 0)
            + weights[2] * np.log1p(numeric[:, 4])
            + weights[3] * (columns["C10"].indices.to_numpy(zero_copy_only=False) % 7 == 0)
        )
        label = rng.random(n) < 1 / (1 + np.exp(-(signal - signal.mean() - 1.5)))
        table = pa.table({"label": label.astype(np.int8), **columns})
        if writer is None:
            writer = pq.ParquetWriter(tmp, table.schema)
        writer.write_table(table, row_group_size=ROW_GROUP)
    assert writer is not None
    writer.close()
    tmp.replace(path)


def measure(path: Path, cache: str | None, serial: bool = False, sample: int | None = None) -> dict:
    """One load in this process (run in a fresh one by main); `serial` encodes one column
    at a time instead of in threads; `sample` rows of each split are encoded
    (data.sample_rows and data.sample_eval_rows), as a search on a sample loads."""
    import os
    import resource

    from edas_agent.evaluators.tabular import DataSpec, load, load_cached

    if cache:
        os.environ["EDAS_AGENT_CACHE_DIR"] = cache
    if serial:
        os.environ["EDAS_AGENT_LOAD_THREADS"] = "1"
    spec = DataSpec(path=str(path), target="label", cache=bool(cache), sample_rows=sample,
                    sample_eval_rows=sample)  # fmt: skip
    started = time.perf_counter()
    data = load_cached(spec, seed=0) if cache else load(spec, seed=0)
    if cache:  # a mapped load reads pages as training touches them: touch them all here
        for part in (data.train, data.val, data.test):
            for values in (part.categorical.numpy(), *part.numeric.arrays):
                float(values.reshape(-1)[::512].sum())  # a value in every 4 KB page
    seconds = time.perf_counter() - started
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # KiB on Linux
    # What training and prediction then add: one numeric view of each split, computed
    views = [part.numeric["standard"] for part in (data.train, data.val, data.test)]
    with_view_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    del views
    return {
        "rows": len(data.train) + len(data.val) + len(data.test),
        "seconds": round(seconds, 2),
        "peak_gb": round(peak_gb, 2),
        "with_view_gb": round(with_view_gb, 2),
        "view_seconds": round(time.perf_counter() - started - seconds, 2),
        "categorical": len(data.categorical_fields),
        "numeric": len(data.numeric_fields),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 4_000_000])
    parser.add_argument("--tables", type=Path, default=Path("/tmp/tables"))
    parser.add_argument("--cache", help="an encoded-data cache folder: measure a second load")
    parser.add_argument("--serial", action="store_true", help="encode one column at a time")
    parser.add_argument("--sample-rows", type=int, help="encode this many rows of each split")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # the child process
    options = parser.parse_args()
    if options.measure is not None:
        print(json.dumps(measure(options.measure, options.cache, options.serial,
                                 options.sample_rows)))  # fmt: skip
        return
    options.tables.mkdir(parents=True, exist_ok=True)
    print(
        "| rows | load | seconds | peak resident GB | GB per million rows "
        "| with a numeric view: seconds more, peak GB |"
    )
    print("|---:|---|---:|---:|---:|---|")  # fmt: skip
    for rows in options.rows:
        path = options.tables / f"criteo-like-{rows}.parquet"
        if not path.exists():
            started = time.perf_counter()
            generate(path, rows)
            print(f"(generated {path} in {time.perf_counter() - started:.0f} s)", flush=True)
        first = f"sample of {options.sample_rows:,}" if options.sample_rows else "first"
        loads = [first] + (["cached"] if options.cache else [])
        for which in loads:
            child = [sys.executable, __file__, "--measure", str(path)]
            child += ["--cache", options.cache] if options.cache else []
            child += ["--serial"] if options.serial else []
            child += ["--sample-rows", str(options.sample_rows)] if options.sample_rows else []
            result = json.loads(subprocess.run(child, check=True, capture_output=True,
                                               text=True).stdout.splitlines()[-1])  # fmt: skip
            print(f"| {rows:,} | {which} | {result['seconds']:.1f} | {result['peak_gb']:.2f} | "
                  f"{result['peak_gb'] / rows * 1e6:.3f} | {result['view_seconds']:.1f}, "
                  f"{result['with_view_gb']:.2f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()

"""Benchmark: peak memory of `statex-bi ingest ai-calls --file` on a large JSONL log.

    .venv/bin/python bench/bench_ai_calls_memory.py [--mb 50] [--keep]

Writes, in a temporary folder, a JSONL log of about --mb megabytes (the simulated company's calls,
repeated with fresh span ids), runs the ingest in a child process with a fresh warehouse, samples the
child's resident memory (its whole process tree) every 50 ms and prints the peak, the budget
(500 MB for a 50 MB file, issue 7) and their ratio. A benchmark, not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date
from pathlib import Path

from measure import peak_rss_mb, scratch_folder  # bench/, first on sys.path when a benchmark runs

BUDGET_MB = 500.0


def write_log(path: Path, megabytes: float) -> int:
    from statex_bi.demo.ai import call_record
    from statex_bi.demo.world import World, WorldConfig

    calls = World(WorldConfig(date(2025, 1, 6), date(2025, 2, 2), seed=5)).ai.calls
    target, written, lines = megabytes * 1_000_000, 0, 0
    with path.open("w", encoding="utf-8") as out:
        while written < target:
            for call in calls:
                record = call_record(call)
                record["span_id"] = f"{lines:016x}"
                line = json.dumps(record) + "\n"
                out.write(line)
                written += len(line)
                lines += 1
                if written >= target:
                    break
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=50.0, help="size of the JSONL log (default 50)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    with scratch_folder("bench_ai_calls_", args.keep) as folder:
        log = folder / "calls.jsonl"
        lines = write_log(log, args.mb)
        size = log.stat().st_size / 1e6
        env = {**os.environ, "STATEX_BI_DB": str(folder / "warehouse.duckdb"),
               "STATEX_BI_PSEUDONYM_KEY": "bench-key"}
        command = [str(Path(sys.executable).parent / "statex-bi"), "ingest", "ai-calls", "--file", str(log)]
        peak, seconds, code, stderr = peak_rss_mb(command, env)
        if code != 0:
            sys.exit(f"ingest failed ({code}):\n{stderr[-2000:]}")
        budget = BUDGET_MB * size / 50.0
        print(f"file: {size:.1f} MB, {lines:,} lines")
        print(f"ingest ai-calls: peak RSS {peak:,.0f} MB in {seconds:.1f}s")
        print(f"budget {budget:,.0f} MB (500 MB per 50 MB): peak / budget = {peak / budget:.2f}")


if __name__ == "__main__":
    main()

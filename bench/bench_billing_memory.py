"""Benchmark: peak memory of loading billing exports, a large one and decompression bombs.

    .venv/bin/python bench/bench_billing_memory.py [--mb 500] [--with-build] [--keep]

Writes, in a temporary folder, three cases and loads each in a child process with a fresh warehouse
(the billing source's load, as `statex-bi ingest billing --dir` runs it; with --with-build the whole
command, whose `dbt build` afterwards runs the models on DuckDB), sampling the child's resident memory
(its whole process tree) every 50 ms:

- valid: a .csv.gz of --mb megabytes (uncompressed) of valid FOCUS 1.4 rows, which loads;
- bad rows: the issue's bomb, a small .csv.gz expanding to 24 MB of rows that break the spec (before:
  1.82 GB and 9 minutes), rejected with its first $STATEX_BI_QUARANTINE_PER_FILE rows quarantined;
- zeros: a .csv.gz expanding to more than $STATEX_BI_MAX_FILE_MB of NUL bytes, refused.

Prints each case's file sizes, peak RSS, time and peak / budget (500 MB, issue 19). A benchmark, not a
test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
from pathlib import Path

from measure import peak_rss_mb, scratch_folder  # bench/, first on sys.path when a benchmark runs

BUDGET_MB = 500.0
# The child that loads one folder: the billing source alone, into a fresh warehouse.
LOAD = """
import sys
from pathlib import Path
from statex_bi.ingest import load_source
from statex_bi.sources import billing
from statex_bi.sources.contract import IngestRequest
result = load_source(billing.SPEC, IngestRequest(dir=Path(sys.argv[1])), Path(sys.argv[2]))
sys.exit(0 if result.status == "succeeded" else 1)
"""
HEADER = ("BilledCost,BillingAccountId,BillingCurrency,BillingPeriodEnd,BillingPeriodStart,ChargeCategory,"
          "ChargeDescription,ChargeFrequency,ChargePeriodEnd,ChargePeriodStart,ConsumedQuantity,ConsumedUnit,"
          "EffectiveCost,ListCost,PricingQuantity,PricingUnit,ServiceCategory,ServiceName,ServiceProviderName,"
          "SkuMeter,RegionId,ResourceId\n")


def valid_row(number: int) -> str:
    day = number % 28 + 1
    cost = f"{number % 9973 / 1000:.4f}"
    return (f"{cost},acct-{number % 7},USD,2026-10-01T00:00:00Z,2026-09-01T00:00:00Z,Usage,"
            f"Storage requests {number},Usage-Based,2026-09-{day:02d}T01:00:00Z,2026-09-{day:02d}T00:00:00Z,"
            f"{number % 1000},Requests,{cost},{cost},{number % 1000},Requests,Storage,Amazon S3,AWS,"
            f"Requests-Tier1,us-east-1,arn:aws:s3:::bucket-{number % 97}\n")


def write_gzip(path: Path, megabytes: float, row: callable) -> int:
    """A gzipped CSV of about `megabytes` uncompressed; returns the row count."""
    target, written, rows = megabytes * 1_000_000, 0, 0
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as out:
        out.write(HEADER)
        while written < target:
            block = "".join(row(rows + i) for i in range(1_000))
            out.write(block)
            written += len(block)
            rows += 1_000
    return rows


def write_zeros(path: Path, megabytes: float) -> None:
    block = bytes(1 << 20)
    with gzip.open(path, "wb", compresslevel=9) as out:
        for _ in range(int(megabytes)):
            out.write(block)


def run_case(name: str, folder: Path, env: dict[str, str], with_build: bool) -> None:
    files = sorted(folder.glob("*.csv.gz"))
    compressed = sum(path.stat().st_size for path in files) / 1e6
    db = folder.parent / f"{name}.duckdb"
    if with_build:
        command = [str(Path(sys.executable).parent / "statex-bi"), "ingest", "billing", "--dir", str(folder)]
    else:
        command = [sys.executable, "-c", LOAD, str(folder), str(db)]
    run_env = {**env, "STATEX_BI_DB": str(db)}
    peak, seconds, code, stderr = peak_rss_mb(command, run_env)
    billing_lines = [line for line in stderr.splitlines() if line.startswith("billing")]
    print(f"{name}: {compressed:,.1f} MB gzipped; exit {code}; peak RSS {peak:,.0f} MB in {seconds:,.0f} s; "
          f"peak / budget ({BUDGET_MB:.0f} MB) = {peak / BUDGET_MB:.2f}; {len(stderr.splitlines())} lines printed")
    for line in billing_lines[-3:]:
        print(f"    {line[:200]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=500.0, help="uncompressed size of the valid export (default 500)")
    parser.add_argument("--zeros-mb", type=float, default=2_100.0,
                        help="uncompressed size of the NUL bomb (default 2100, over the 2048 MB default cap)")
    parser.add_argument("--with-build", action="store_true",
                        help="run the whole `statex-bi ingest billing` (dbt build of the models included)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    env = {**os.environ, "STATEX_BI_PSEUDONYM_KEY": "bench-key"}
    with scratch_folder("bench_billing_", args.keep) as root:
        cases = {"valid": root / "valid", "bad rows": root / "bad", "zeros": root / "zeros"}
        for folder in cases.values():
            folder.mkdir()
        rows = write_gzip(cases["valid"] / "focus.csv.gz", args.mb, valid_row)
        print(f"valid: {rows:,} rows, {args.mb:,.0f} MB uncompressed")
        write_gzip(cases["bad rows"] / "bomb.csv.gz", 24, lambda n: valid_row(n).replace(",Usage,", ",Refund,"))
        write_zeros(cases["zeros"] / "zeros.csv.gz", args.zeros_mb)
        for name, folder in cases.items():
            run_case(name.replace(" ", "_"), folder, env, args.with_build)


if __name__ == "__main__":
    main()

"""Benchmark: wall time and peak memory of `statex-bi demo` at several scales (issue 21 item 1).

    .venv/bin/python bench/bench_demo_scale.py [--scales 1,100] [--months 13 | --days N] [--end YYYY-MM-DD]
                                                [--reports]

Runs `statex-bi demo --scale S --start --end` for each scale in a child process with a fresh warehouse in a
temporary folder, samples its resident memory (the whole process tree: the demo serves its sandboxes from
threads of the same process) every 50 ms, and prints the wall time, the peak RSS and both as ratios to the
first scale, then the goal: the largest scale's peak RSS under 2 GB, and that peak beside the figures before
this work (BEFORE). The simulation is generated day by day and the sandboxes answer a window from that
window's days, so the peak should grow far less than the scale.
A 100x run over 13 months takes long on a small machine: `--days` measures a shorter window (the time grows with
its length, the peak less: the world's entities are held whole, compactly, and the build reads more rows).
With --reports, `run weekly` and `run monthly` then run on the largest scale's warehouse (one notebook at a
time) and each report's time is printed beside the goal, under 60 s each. A benchmark, not a test: numbers
depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

from measure import peak_rss_mb, scratch_folder  # bench/, first on sys.path when a benchmark runs

GOAL_MB = 2000.0
REPORT_GOAL_S = 60.0
# Before this work, as issue 21 measured it: `statex-bi demo --scale 10` (13 months) on commit 7d34a7d, 2 cores
# shared with other work. The simulator and the sandboxes then held the whole world in memory.
BEFORE = {"commit": "7d34a7d", "scale": 10.0, "months": 13, "peak_mb": 3600.0, "wall_s": 293.0}


def _months_before(day: date, months: int) -> date:
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    return date(year, month + 1, min(day.day, 28))


def _environment(home: Path, end: date) -> dict[str, str]:
    return {**os.environ, "STATEX_BI_DB": str(home / "statex.duckdb"), "STATEX_BI_OUTPUTS": str(home / "outputs"),
            "STATEX_BI_PSEUDONYM_KEY": "bench-key", "STATEX_BI_TODAY": (end + timedelta(days=1)).isoformat()}


def run_demo(scale: float, start: date, end: date, folder: Path) -> tuple[float, float]:
    """(peak RSS MB, wall seconds) of one demo run into a fresh warehouse under `folder`."""
    home = folder / f"scale-{scale:g}"
    home.mkdir()
    env = _environment(home, end)
    command = [str(Path(sys.executable).parent / "statex-bi"), "demo", "--scale", f"{scale:g}",
               "--start", start.isoformat(), "--end", end.isoformat()]
    peak, seconds, code, stderr = peak_rss_mb(command, env)
    if code != 0:
        sys.exit(f"demo --scale {scale:g} failed ({code}):\n{stderr[-3000:]}")
    return peak, seconds


def time_reports(home: Path, end: date) -> None:
    """Run the weekly and monthly reports on the warehouse under `home`; print each report's time."""
    env = _environment(home, end)
    for params in ("weekly", "monthly"):
        done = subprocess.run([str(Path(sys.executable).parent / "statex-bi"), "run", params, "--jobs", "1"],
                              env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"run {params} failed ({done.returncode}): {done.stderr[-1500:]}")
    for manifest in sorted((home / "outputs").glob("*/manifest.json")):
        run = json.loads(manifest.read_text())
        for stem, entry in sorted(run.get("notebooks", {}).items()):
            seconds = entry.get("duration_s") or 0.0
            print(f"  {run.get('params_file', manifest.parent.name)} {stem}: {seconds:.1f}s "
                  f"({'under' if seconds < REPORT_GOAL_S else 'NOT under'} the {REPORT_GOAL_S:.0f} s goal, "
                  f"{entry.get('status')})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", default="1,100", help="comma-separated scales, the first the reference")
    parser.add_argument("--months", type=int, default=13, help="months simulated (default 13, as `demo`)")
    parser.add_argument("--days", type=int, help="days simulated instead of --months")
    parser.add_argument("--end", type=date.fromisoformat, default=date.today() - timedelta(days=1),
                        help="last simulated day (default yesterday)")
    parser.add_argument("--reports", action="store_true", help="time each weekly and monthly report at the "
                        "largest scale")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    scales = [float(value) for value in args.scales.split(",")]
    start = (args.end - timedelta(days=args.days - 1) if args.days
             else _months_before(args.end, args.months) + timedelta(days=1))
    with scratch_folder("bench_demo_scale_", args.keep) as folder:
        print(f"statex-bi demo {start}..{args.end} ({(args.end - start).days + 1} days)")
        results = []
        for scale in scales:
            peak, seconds = run_demo(scale, start, args.end, folder)
            results.append((scale, peak, seconds))
            reference = results[0]
            print(f"--scale {scale:g}: wall {seconds:,.1f}s ({seconds / reference[2]:.1f}x the {reference[0]:g}x run), "
                  f"peak RSS {peak:,.0f} MB ({peak / reference[1]:.2f}x)", flush=True)
        scale, peak, _ = max(results)
        verdict = "met" if peak < GOAL_MB else "NOT met"
        print(f"goal: peak RSS < {GOAL_MB / 1000:.0f} GB at --scale {scale:g}: {peak:,.0f} MB, "
              f"peak / goal = {peak / GOAL_MB:.2f} ({verdict})")
        print(f"before (issue 21, {BEFORE['commit']}, --scale {BEFORE['scale']:g} over {BEFORE['months']} months): "
              f"peak RSS {BEFORE['peak_mb']:,.0f} MB, wall {BEFORE['wall_s']:.0f}s; today's peak at --scale "
              f"{scale:g} / that = {peak / BEFORE['peak_mb']:.2f}")
        if args.reports:
            print(f"reports at --scale {scale:g} (goal: each under {REPORT_GOAL_S:.0f} s):")
            time_reports(folder / f"scale-{scale:g}", args.end)


if __name__ == "__main__":
    main()

"""`statex-bi backfill PARAMS --periods N`: run a params file over the N periods before its own.

Alert rules that compare with the previous period, and the executive summary's changes, read the
KPI history in monitoring.monitoring_metrics; a new installation has none. Backfilling runs the
same reports (or the `--only` ones) over earlier periods, oldest first, as ordinary runs.
A calendar month steps back by calendar months; any other period by its own length.
"""

from __future__ import annotations

import calendar
from datetime import timedelta

from statex_bi.exceptions import ParamsError
from statex_bi.periods import Period
from statex_bi.runner.params import load
from statex_bi.runner.run import run_params


def previous(period: Period) -> Period:
    """The period before: the previous calendar month for a whole month, else the same length before."""
    whole_month = period.start.day == 1 and period.end.day == calendar.monthrange(period.end.year, period.end.month)[1]
    if whole_month and period.start.month == period.end.month and period.start.year == period.end.year:
        end = period.start - timedelta(days=1)
        return Period(end.replace(day=1), end)
    return period.previous()


def backfill(params: str, periods: int, *, only: list[str] | None = None, jobs: int | None = None,
             quiet: bool = False, wait: float = 0.0) -> int:
    """Run `params` over each of the `periods` periods before its own, oldest first.

    Returns:
        0 when every run succeeded, else the first non-zero exit code.
    """
    if periods < 1:
        raise ParamsError(f"--periods must be at least 1, got {periods}")
    spans = [load(params).period()]
    for _ in range(periods):
        spans.append(previous(spans[-1]))
    code = 0
    for span in reversed(spans[1:]):
        result = run_params(params, start=span.start, end=span.end, only=only, jobs=jobs, quiet=quiet, wait=wait)
        code = code or result
    return code

"""Back-test: replay the 13-month demo history, week by week, through the alert rules of params/alerts.yaml.

    .venv/bin/python bench/bench_alert_backtest.py [--end 2026-11-29] [--seed 7]

Each ISO week of the simulated company (statex_bi.demo, the same world `statex-bi demo` loads) becomes
one weekly run: the KPI rows its reports would publish are written to a scratch warehouse's
monitoring.monitoring_metrics and the rules are evaluated on it exactly as `statex-bi run` does. Per
rule it prints the planted problems caught and the false alarms raised (a finding that holds in a week
without a planted problem), against the goal: every planted problem caught, at most one false alarm per
rule per quarter.

Rules replayed, from the simulation's own data (no warehouse build, so the whole year runs in seconds):
- conversion_drop, signup_drop: the week's GA4 sessions and sessions with the key event, the week
  before's, and the over-dispersion of the 14 days' rates (as the growth report publishes them).
  Planted: the prototype-request form breaks for one week (demo.growth.conversion_drop_week).
- ai_cost_spike: the daily OpenAI cost (the bill the demo's Costs API serves) of the week and the 28
  days before. Planted: one day's deploy points every paid step at gpt-4o (demo.ai.cost_spike_day).
- payment_failure_rate: the week's payment attempts and failures per provider and in all (Stripe
  charges, PayPal payments denied, Coinbase charges expired or canceled). Nothing is planted, but the
  simulation's own chances of a failed attempt are above the 10% target for Stripe (12%), Coinbase (30%)
  and so all providers together: an alert on those is true, though no weekly test can be required to see
  12% against 10%; an alert on PayPal (7%) is a false alarm. It prints each subject's chance and the weeks
  the rule fired on it.
- api_error_rate, api_error_rate_daily: each route's requests and failed requests of the week (and of
  each of its days, as web_api_performance publishes api.error_rate.daily), over the days Sentry keeps
  (demo.perf: the last 90). Planted: the checkout route answers 503 to a third of its calls for a day
  (demo.perf.INCIDENT_DAYS_AGO), a problem for the daily rule: diluted over its week that is 31
  failures in 540 requests at seed 7 (5.7 %, exact p = 0.24 against 5 %), which the weekly rule need
  not call: for it the incident week is neither required nor a false alarm when it fires (other seeds
  plant more failures that day); any other weekly alert is a false alarm.
- ai_budget_forecast: the month-end forecast of that daily cost at each week's end against the weekly
  params file's `monthly_budget_usd` (kpis.ai_costs.budget.outlook). Nothing is planted; a week whose
  month did end over budget counts as a problem to catch, any other alert as a false alarm.
It is a benchmark, not a test: it prints, it does not assert.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from statex_bi import warehouse
from statex_bi.alerts import rules as alert_rules
from statex_bi.alerts.evaluate import evaluate
from statex_bi.config import PARAMS_DIR
from statex_bi.demo.ai import cost_spike_day
from statex_bi.demo.growth import conversion_drop_week
from statex_bi.demo.payments import COINBASE_EXPIRE_RATE, PAYPAL_DENIAL_RATE, STRIPE_DECLINE_RATE
from statex_bi.demo.perf import INCIDENT_DAYS_AGO
from statex_bi.demo.world import World, WorldConfig
from statex_bi.kpis.ai_costs.budget import outlook
from statex_bi.kpis.stats import rate_dispersion
from statex_bi.periods import Period
from statex_bi.runner.metrics import replace_metrics
from statex_bi.runner.params import load as load_params

REPLAYED = ("conversion_drop", "signup_drop", "ai_cost_spike", "payment_failure_rate", "ai_budget_forecast",
            "api_error_rate", "api_error_rate_daily")
COINBASE_FAILED = ("EXPIRED", "CANCELED", "FAILED")
EVENTS = {"conversion.prototype_request_rate": "prototype_request", "conversion.signup_rate": "sign_up"}
HISTORY_DAYS = 28
WEEKS_PER_QUARTER = 13
# The simulation's chance that a payment attempt fails, per provider (statex_bi.demo.payments).
FAILURE_CHANCE = {"stripe": STRIPE_DECLINE_RATE, "paypal": PAYPAL_DENIAL_RATE, "coinbase": COINBASE_EXPIRE_RATE}
TRUE_PAYMENT_ALERT = "a true alert (failure chance above the limit) in the"


def _daily_counts(world: World) -> tuple[dict[date, int], dict[str, dict[date, int]]]:
    sessions: dict[date, int] = defaultdict(int)
    for row in world.growth.traffic:
        sessions[row["date"]] += row["sessions"]
    events: dict[str, dict[date, int]] = {name: defaultdict(int) for name in EVENTS.values()}
    for row in world.growth.event_sessions:
        events[row["event_name"]][row["date"]] += row["sessions"]
    return sessions, events


def _rate_rows(week: Period, sessions: dict[date, int], events: dict[str, dict[date, int]]) -> list[dict]:
    days = [week.start - timedelta(days=7) + timedelta(days=i) for i in range(14)]
    rows = []
    for metric, event in EVENTS.items():
        x = [events[event].get(d, 0) for d in days]
        n = [sessions.get(d, 0) for d in days]
        design = [[float(i >= 7)] + [float(d.weekday() == w) for w in range(1, 7)] for i, d in enumerate(days)]
        x0, n0, x1, n1 = sum(x[:7]), sum(n[:7]), sum(x[7:]), sum(n[7:])
        rows.append({"metric_name": metric, "metric_type": "GAUGE", "value": x1 / n1, "unit": "fraction",
                     "source": "backtest", "tags": {"numerator": x1, "denominator": n1, "previous_numerator": x0,
                                                    "previous_denominator": n0,
                                                    "dispersion": rate_dispersion(x, n, design)}})
    return rows


def _attempts(world: World) -> list[tuple[date, str, bool]]:
    """(day, provider, failed) of every payment attempt of the simulation."""
    out = [(c.created.date(), "stripe", c.status == "failed") for c in world.payments.stripe_charges]
    out += [(t.initiated_at.date(), "paypal", t.status == "D") for t in world.payments.paypal_transactions
            if t.event_code == "T0006"]
    out += [(c.created_at.date(), "coinbase", c.status in COINBASE_FAILED) for c in world.payments.coinbase_charges]
    return out


def _failure_chances(attempts: list[tuple[date, str, bool]]) -> dict[str, float]:
    """Each payment_failure_rate subject's true chance of a failed attempt: its provider's, and for all providers
    theirs weighted by their shares of the attempts."""
    tried = Counter(provider for _, provider, _ in attempts)
    chances = {f"provider={provider}": chance for provider, chance in FAILURE_CHANCE.items()}
    chances["provider=all"] = sum(FAILURE_CHANCE[p] * n for p, n in tried.items()) / sum(tried.values())
    return chances


def _payment_rows(week: Period, attempts: list[tuple[date, str, bool]]) -> list[dict]:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for day, provider, failed in attempts:
        if week.start <= day <= week.end:
            for key in (provider, "all"):
                counts[key][0] += 1
                counts[key][1] += failed
    return [{"metric_name": "payments.failure_rate", "metric_type": "GAUGE", "value": failed / tried,
             "unit": "fraction", "source": "backtest", "tags": {"provider": provider, "attempts": tried,
                                                                "failed": failed}}
            for provider, (tried, failed) in sorted(counts.items()) if tried]


def _forecast_rows(week: Period, cost: dict[date, float], budget: float) -> list[dict]:
    month_start = week.end.replace(day=1)
    month_end = (month_start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    spent = sum(v for d, v in cost.items() if month_start <= d <= week.end)
    history = {week.end - timedelta(days=i): cost.get(week.end - timedelta(days=i), 0.0) for i in range(HISTORY_DAYS)}
    rest = [week.end + timedelta(days=i) for i in range(1, (month_end - week.end).days + 1)]
    result = outlook(history, spent, rest, budget)
    return [{"metric_name": "ai.budget.forecast_usd", "metric_type": "GAUGE", "value": result["forecast_usd"],
             "unit": "USD", "source": "backtest",
             "tags": {"budget_usd": budget, "mtd_cost_usd": spent, "exceed_probability": result["exceed_probability"],
                      "forecast_low_usd": result["forecast_low_usd"],
                      "forecast_high_usd": result["forecast_high_usd"]}}]


def _over_budget_weeks(weeks: list[Period], cost: dict[date, float], budget: float) -> set[date]:
    """Weeks whose month's spend ended over the budget: the problem the forecast should announce."""
    totals: dict[date, float] = defaultdict(float)
    for day, value in cost.items():
        totals[day.replace(day=1)] += value
    return {week.start for week in weeks if totals[week.end.replace(day=1)] > budget}


def _error_rows(week: Period, world: World) -> list[dict]:
    requests = world.perf.requests
    start = datetime.combine(week.start, time(), UTC).timestamp()
    inside = (requests.start >= start) & (requests.start < start + 7 * 86400)
    day_index = ((requests.start - start) // 86400).astype(int)
    rows = []
    for index, route in [(None, "all"), *enumerate(world.perf.routes)]:
        mask = inside if index is None else inside & (requests.route == index)
        for day in (None, *range(7)):
            chosen = mask if day is None else mask & (day_index == day)
            tried, failed = int(chosen.sum()), int(requests.failed[chosen].sum())
            if not tried:
                continue
            tags = {"route": route, "requests": tried, "failed": failed}
            if day is not None:
                tags["day"] = (week.start + timedelta(days=day)).isoformat()
            rows.append({"metric_name": "api.error_rate" if day is None else "api.error_rate.daily",
                         "metric_type": "GAUGE", "value": failed / tried, "unit": "fraction", "source": "backtest",
                         "tags": tags})
    return rows


def _cost_rows(week: Period, cost: dict[date, float], first_day: date) -> list[dict]:
    days = [week.start - timedelta(days=HISTORY_DAYS) + timedelta(days=i) for i in range(HISTORY_DAYS + 7)]
    return [{"metric_name": "ai.cost.daily", "metric_type": "COUNTER", "value": round(cost.get(d, 0.0), 4),
             "unit": "USD", "source": "backtest", "tags": {"tier": "all", "day": d.isoformat()}}
            for d in days if d >= first_day]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--end", type=date.fromisoformat, default=date(2026, 11, 29), help="the demo's last day")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    config = WorldConfig.default(today=args.end + timedelta(days=1), seed=args.seed)
    world = World(config)
    sessions, events = _daily_counts(world)
    cost: dict[date, float] = defaultdict(float)
    for line in world.ai.costs:
        cost[line.day] += line.amount_usd
    drop, spike = conversion_drop_week(config), cost_spike_day(config)
    attempts = _attempts(world)
    sample_week = Period(config.end - timedelta(days=6), config.end)
    budget = float(load_params("weekly").parameters("ai_costs", sample_week, run_id="")["monthly_budget_usd"])
    incident = config.end - timedelta(days=INCIDENT_DAYS_AGO)
    planted = {"conversion_drop": {drop[0]} if drop else set(), "signup_drop": set(), "payment_failure_rate": set(),
               "ai_budget_forecast": set(), "api_error_rate": set(),
               "api_error_rate_daily": {incident - timedelta(days=incident.weekday())},
               "ai_cost_spike": {spike - timedelta(days=spike.weekday())} if spike else set()}
    config_rules = alert_rules.load(PARAMS_DIR / "alerts.yaml")
    chosen = [rule for rule in config_rules.rules if rule.name in REPLAYED]
    first_monday = config.start + timedelta(days=(7 - config.start.weekday()) % 7 + 7)  # a full week before it
    weeks = []
    monday = first_monday
    while monday + timedelta(days=6) <= config.end:
        weeks.append(Period(monday, monday + timedelta(days=6)))
        monday += timedelta(days=7)
    planted["ai_budget_forecast"] = _over_budget_weeks(weeks, cost, budget)
    # weeks a rule may fire in without being required to, and why: the weekly error rule in the one-day
    # incident's week; the payment rule in a week it fired only on subjects whose failure chance is above the limit
    excused: dict[str, dict[date, str]] = {
        "api_error_rate": dict.fromkeys(planted["api_error_rate_daily"], "fired in the excused"),
        "payment_failure_rate": {}}
    fired: dict[str, set[date]] = defaultdict(set)
    chances = _failure_chances(attempts)
    fired_on: dict[str, set[date]] = defaultdict(set)  # payment_failure_rate's subject -> weeks it fired on it
    # weeks in which a point comparison (the rule before it knew its sample) would fire on a subject whose failure
    # chance is at most the limit: its false alarms
    point_alarms = 0
    limit = next(rule.above for rule in chosen if rule.name == "payment_failure_rate")
    no_data: dict[str, int] = defaultdict(int)
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "backtest.duckdb"
        with warehouse.writer(db) as con:
            for week in weeks:
                run_id = f"week-{week.start}"
                payments = _payment_rows(week, attempts)
                replace_metrics(con, run_id, week, {
                    "growth_revenue": _rate_rows(week, sessions, events) + payments,
                    "web_api_performance": _error_rows(week, world),
                    "ai_costs": _cost_rows(week, cost, config.start) + _forecast_rows(week, cost, budget)})
                point_alarms += any(row["value"] > limit >= chances[f"provider={row['tags']['provider']}"]
                                    for row in payments)
                for evaluation in evaluate(con, chosen, run_id, week):
                    if evaluation.no_data and not evaluation.findings:
                        no_data[evaluation.rule.name] += 1
                    holding = [finding.subject for finding in evaluation.findings if finding.holds]
                    if holding:
                        fired[evaluation.rule.name].add(week.start)
                    if evaluation.rule.name == "payment_failure_rate" and holding:
                        for subject in holding:
                            fired_on[subject].add(week.start)
                        if all(chances.get(subject, 0.0) > limit for subject in holding):
                            excused["payment_failure_rate"][week.start] = TRUE_PAYMENT_ALERT
    quarters = len(weeks) / WEEKS_PER_QUARTER
    print(f"back-test of {len(weeks)} weeks ({weeks[0].start} to {weeks[-1].end}, {quarters:.1f} quarters), "
          f"seed {args.seed}")
    print(f"{'rule':<22} {'planted':>7} {'caught':>6} {'false alarms':>12} {'per quarter':>11} "
          f"{'no data':>7}  goal met")
    met_all = True
    for rule in chosen:
        caught = len(planted[rule.name] & fired[rule.name])
        false = len(fired[rule.name] - planted[rule.name] - excused.get(rule.name, {}).keys())
        met = caught == len(planted[rule.name]) and false / quarters <= 1
        met_all &= met
        print(f"{rule.name:<22} {len(planted[rule.name]):>7} {caught:>6} {false:>12} {false / quarters:>11.2f} "
              f"{no_data[rule.name]:>7}  {'yes' if met else 'NO'}")
        for start in sorted(fired[rule.name] - planted[rule.name]):
            print(f"    {excused.get(rule.name, {}).get(start, 'false alarm in the')} week of {start}")
    for subject, chance in sorted(chances.items()):
        print(f"payment_failure_rate on {subject}: failure chance {chance:.1%} "
              f"({'above' if chance > limit else 'at most'} the {limit:.0%} limit), fired in "
              f"{len(fired_on[subject])} of the {len(weeks)} weeks")
    print(f"payment_failure_rate as a point comparison (value above {limit:.0%}, any sample) would have raised false "
          f"alarms (on a subject whose chance is at most the limit) in {point_alarms} of the {len(weeks)} weeks")
    print("goal met by every replayed rule" if met_all else "goal NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())

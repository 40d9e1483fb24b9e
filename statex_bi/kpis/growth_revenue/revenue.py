"""Revenue KPIs: gross, refunds, fees and net by provider or acquisition channel; failure rate; AOV.

Definitions (docs/metrics.md repeats them):

- *Gross*: the amounts of successful payments (status `succeeded`) made in the period, converted to
  the reporting currency at the ECB reference rate of the payment's UTC day (carried forward over
  weekends and holidays): amount / rate(currency) * rate(reporting), with rate(EUR) = 1.
- *Refunds*: refunds made in the period (whenever the payment was), status succeeded or pending
  (money already committed back to the customer), at the rate of the refund's day.
- *Fees*: the providers' fees on the successful payments of the period plus the fee effect of the
  period's refunds (negative when a provider gives a fee back, as PayPal does in part). Coinbase
  Commerce reports no fee in its charges API: its fees count as 0 and `fees_reported` says so.
- *Net*: gross - refunds - fees.
- *Failure rate*: failed attempts / all attempts made in the period. Failed means status `failed`
  (a declined card, a denied PayPal payment, a failed Coinbase charge), `expired` (a Coinbase charge
  left unpaid until it expired: the customer started paying and no money came) or `canceled`.
  Pending, reversed and unresolved attempts count as attempts but not as failures.
- *Average order value (AOV)*: gross / successful payments (those whose amount could be converted).
- *Acquisition channel* of a payment or refund: the payment's metadata key `channel_metadata_field`
  (default "channel"); "(not set)" when the payment has none.

Amounts are in the reporting currency's major unit, from minor units with the exponent the provider
used (PayPal sends HUF and TWD without decimals, Stripe has its own list; ISO 4217's otherwise).
Payments in a currency without an ECB rate that day cannot be converted: they are left out of the
sums, counted in `unconverted`, and listed with their amounts in their own currency by
`unconverted_amounts`, so a report shows them next to the totals.
"""

from __future__ import annotations

import json

import duckdb
import pandas as pd

from statex_bi import warehouse
from statex_bi.exceptions import MissingDataError, ParamsError
from statex_bi.kpis.stats import wilson_interval
from statex_bi.periods import Period
from statex_bi.reads import recorded

PROVIDERS = ("stripe", "paypal", "coinbase")
# The raw table whose presence means a provider is loaded.
PROVIDER_TABLES = {"stripe": "charges", "paypal": "transactions", "coinbase": "charges"}
PROVIDERS_WITHOUT_FEES = frozenset({"coinbase"})
NOT_SET = "(not set)"
REVENUE_MODELS = ["marts.payments_eur", "marts.refunds_eur", "core.fx_daily_eur_rates"]
# The raw tables behind them: a source that is not loaded leaves its models built but empty (dbt).
FX_TABLES = ["raw_fx.eur_reference_rates"]
REVENUE_COLUMNS = [
    "gross", "refunds", "fees", "net", "successful_payments", "aov", "unconverted", "fees_reported", "currency",
]


def loaded_providers(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The payment providers whose raw payments table exists, in PROVIDERS order."""
    return [p for p in PROVIDERS if warehouse.table_exists(con, f"raw_{p}", PROVIDER_TABLES[p])]


def outside_payments(con: duckdb.DuckDBPyConnection, period: Period) -> str:
    """Why the payments loaded say nothing about `period` (it ends before the first payment or starts
    after the newest one), or "" when the period is within them."""
    if not warehouse.loaded(con, "core.payments"):
        return ""
    first, last = con.execute("SELECT min(created_at)::DATE, max(created_at)::DATE FROM core.payments").fetchone()
    if first is None:
        return "no payment is loaded"
    if period.end < first or period.start > last:
        return f"the payments loaded cover {first:%Y-%m-%d} to {last:%Y-%m-%d}, not this period"
    return ""


def require(
    con: duckdb.DuckDBPyConnection, what: str, models: list[str], hint: str, sources: list[str] | None = None
) -> None:
    """Raise MissingDataError naming the models of `models` that are not built, or all of them when a raw
    table of `sources` is not loaded (dbt then builds them empty: zeros would be read as facts)."""
    missing = [m for m in models if not warehouse.table_exists(con, *m.split("."))]
    if not missing and sources and not warehouse.loaded(con, *sources):
        missing = models
    if missing:
        raise MissingDataError(what, missing, hint)


def _check_currency(con: duckdb.DuckDBPyConnection, currency: str) -> str:
    code = currency.strip().upper()
    rows = con.execute("SELECT DISTINCT currency FROM core.fx_daily_eur_rates ORDER BY 1").fetchall()
    known = [row[0] for row in rows]
    if code not in known:
        raise ParamsError(f"reporting_currency {currency!r} has no ECB reference rate; use one of {', '.join(known)}")
    return code


def _metadata_path(key: str) -> str:
    if not key or not key.strip():
        raise ParamsError("channel_metadata_field must be a non-empty metadata key, e.g. 'channel'")
    return "$." + json.dumps(key)


# One row per successful payment and per counted refund of the period, in the reporting currency, with
# the dimension to group by. Parameters: reporting currency, start, end, start, end, metadata path.
_FLOWS_SQL = """
with reporting as (
    select rate_day, rate from core.fx_daily_eur_rates where currency = $currency
),
payments as (
    select
        p.provider,
        p.metadata_json,
        p.amount_eur * reporting.rate as gross,
        cast(0 as double) as refunds,
        coalesce(p.fee_eur * reporting.rate, 0) as fees,
        case when p.amount_eur * reporting.rate is not null then 1 else 0 end as successful_payments,
        case when p.amount_eur * reporting.rate is null
              or (p.fee_minor is not null and p.fee_eur * reporting.rate is null) then 1 else 0 end as unconverted
    from marts.payments_eur as p
    left join reporting on reporting.rate_day = p.created_date
    where p.created_date between $start and $end and p.status = 'succeeded'
),
refunds as (
    select
        r.provider,
        r.metadata_json,
        cast(0 as double) as gross,
        r.amount_eur * reporting.rate as refunds,
        coalesce(r.fee_eur * reporting.rate, 0) as fees,
        0 as successful_payments,
        case when r.amount_eur * reporting.rate is null
              or (r.fee_minor is not null and r.fee_eur * reporting.rate is null) then 1 else 0 end as unconverted
    from marts.refunds_eur as r
    left join reporting on reporting.rate_day = r.created_date
    where r.created_date between $start and $end and r.status in ('succeeded', 'pending')
),
flows as (
    select * from payments
    union all
    select * from refunds
)
select
    provider,
    coalesce(
        case when json_valid(metadata_json) then json_extract_string(metadata_json, $path) end, $not_set
    ) as channel,
    gross, refunds, fees, successful_payments, unconverted
from flows
"""


def _flows(con: duckdb.DuckDBPyConnection, period: Period, currency: str, metadata_key: str) -> pd.DataFrame:
    params = {
        "currency": currency, "start": period.start, "end": period.end,
        "path": _metadata_path(metadata_key), "not_set": NOT_SET,
    }
    return con.execute(_FLOWS_SQL, params).df()


def _summarise(flows: pd.DataFrame, dimension: str, keys: list[str], currency: str) -> pd.DataFrame:
    """Sum the flows per key (every key gets a row, zeros when it had none) and derive net and AOV."""
    sums = ["gross", "refunds", "fees", "successful_payments", "unconverted"]
    grouped = flows.groupby(dimension)[sums].sum() if len(flows) else pd.DataFrame(columns=sums)
    types = {"gross": "float64", "refunds": "float64", "fees": "float64", "successful_payments": "int64",
             "unconverted": "int64"}
    frame = grouped.reindex(keys, fill_value=0).astype(types)
    frame.index.name = dimension
    frame["net"] = frame["gross"] - frame["refunds"] - frame["fees"]
    frame["aov"] = frame["gross"] / frame["successful_payments"].where(frame["successful_payments"] > 0)
    frame["currency"] = currency
    return frame.reset_index()


@recorded
def revenue(
    con: duckdb.DuckDBPyConnection,
    period: Period,
    *,
    reporting_currency: str = "EUR",
    by: str = "provider",
    channel_metadata_field: str = "channel",
) -> pd.DataFrame:
    """Gross, refunds, fees and net in the reporting currency, per provider or acquisition channel.

    Args:
        con: the warehouse.
        period: payments and refunds made in these days (UTC) count.
        reporting_currency: ISO code with an ECB rate (EUR, USD, GBP, ...).
        by: "provider" (one row per loaded provider, then "all") or "channel" (one row per channel
            found in the payments' metadata, largest gross first, then "all").
        channel_metadata_field: the payment metadata key holding the acquisition channel.

    Returns:
        provider|channel, gross, refunds, fees, net, successful_payments, aov, unconverted,
        fees_reported (False for a provider whose fees are unknown, e.g. Coinbase), currency.
    """
    if by not in ("provider", "channel"):
        raise ParamsError(f"revenue: by must be 'provider' or 'channel', got {by!r}")
    require(con, "revenue", REVENUE_MODELS, "load fx and at least one payment provider", FX_TABLES)
    if not loaded_providers(con):
        raise MissingDataError("revenue", REVENUE_MODELS, "load at least one payment provider")
    currency = _check_currency(con, reporting_currency)
    flows = _flows(con, period, currency, channel_metadata_field)
    if by == "provider":
        providers = loaded_providers(con)
        flows = flows[flows["provider"].isin(providers)]
        keys = providers
    else:
        keys = flows.groupby("channel")["gross"].sum().sort_values(ascending=False, kind="stable").index.tolist()
    frame = _summarise(flows, by, keys, currency)
    total = _summarise(flows.assign(**{by: "all"}), by, ["all"], currency)
    frame = pd.concat([frame, total], ignore_index=True) if len(frame) else total
    if by == "provider":
        frame["fees_reported"] = ~frame["provider"].isin(PROVIDERS_WITHOUT_FEES)
        frame.loc[frame["provider"] == "all", "fees_reported"] = not (set(keys) & PROVIDERS_WITHOUT_FEES)
    else:
        frame["fees_reported"] = not (set(loaded_providers(con)) & PROVIDERS_WITHOUT_FEES)
    return frame[[by, *REVENUE_COLUMNS]]


@recorded
def unconverted_amounts(
    con: duckdb.DuckDBPyConnection, period: Period, *, reporting_currency: str = "EUR"
) -> pd.DataFrame:
    """The period's payments, refunds and fees that could not be converted, in their own currency.

    Returns:
        provider, kind (payment, refund, fee), currency, items, amount (major units of `currency`);
        one row per provider, kind and currency; empty when everything converted.
    """
    require(con, "unconverted amounts", REVENUE_MODELS, "load fx and at least one payment provider")
    currency = _check_currency(con, reporting_currency)
    return con.execute(
        """
        with reporting as (
            select rate_day, rate from core.fx_daily_eur_rates where currency = $currency
        ),
        payments as (
            select p.provider, p.created_date, p.currency, p.amount, p.amount_eur, p.fee_currency, p.fee, p.fee_minor,
                   p.fee_eur, 'payment' as kind
            from marts.payments_eur as p
            where p.created_date between $start and $end and p.status = 'succeeded'
            union all
            select r.provider, r.created_date, r.currency, r.amount, r.amount_eur, r.fee_currency, r.fee, r.fee_minor,
                   r.fee_eur, 'refund' as kind
            from marts.refunds_eur as r
            where r.created_date between $start and $end and r.status in ('succeeded', 'pending')
        ),
        items as (
            select f.provider, f.kind, f.currency, f.amount
            from payments as f left join reporting on reporting.rate_day = f.created_date
            where f.amount_eur * reporting.rate is null
            union all
            select f.provider, 'fee' as kind, f.fee_currency as currency, f.fee as amount
            from payments as f left join reporting on reporting.rate_day = f.created_date
            where f.fee_minor is not null and f.fee_eur * reporting.rate is null
        )
        select provider, kind, currency, count(*) as items, sum(amount) as amount
        from items group by all order by provider, kind, currency
        """,
        {"currency": currency, "start": period.start, "end": period.end},
    ).df()


@recorded
def payment_failures(con: duckdb.DuckDBPyConnection, period: Period) -> pd.DataFrame:
    """Payment attempts and failures per loaded provider and in all, with a Wilson 95 % interval.

    Args:
        con: the warehouse.
        period: attempts made in these days (UTC).

    Returns:
        provider, attempts, failed (failed + expired + canceled), expired, succeeded, failure_rate,
        ci_low, ci_high.
    """
    require(con, "payment failure rate", ["core.payments"], "load at least one payment provider")
    if not loaded_providers(con):
        raise MissingDataError("payment failure rate", ["core.payments"], "load at least one payment provider")
    providers = loaded_providers(con)
    rows = con.execute(
        """
        select
            provider,
            count(*) as attempts,
            count(*) filter (where status in ('failed', 'expired', 'canceled')) as failed,
            count(*) filter (where status = 'expired') as expired,
            count(*) filter (where status = 'succeeded') as succeeded
        from core.payments
        where cast(created_at as date) between ? and ?
        group by provider
        """,
        [period.start, period.end],
    ).df()
    counts = ["attempts", "failed", "expired", "succeeded"]
    frame = rows.set_index("provider").reindex(providers, fill_value=0)[counts].astype("int64")
    frame.loc["all"] = frame.sum()
    frame.index.name = "provider"
    frame = frame.reset_index()
    frame["failure_rate"] = frame["failed"] / frame["attempts"].where(frame["attempts"] > 0)
    bounds = [wilson_interval(int(f), int(n)) for f, n in zip(frame["failed"], frame["attempts"], strict=True)]
    frame["ci_low"] = [low for low, _ in bounds]
    frame["ci_high"] = [high for _, high in bounds]
    return frame


@recorded
def provider_summary(
    con: duckdb.DuckDBPyConnection, period: Period, *, reporting_currency: str = "EUR"
) -> pd.DataFrame:
    """The provider table of the growth report: money, failure rate and AOV per provider, then all.

    Returns:
        provider, gross, refunds, fees, net, successful_payments, aov, attempts, failure_rate,
        ci_low, ci_high, fees_reported, currency.
    """
    money = revenue(con, period, reporting_currency=reporting_currency)
    failures = payment_failures(con, period)
    frame = money.merge(failures[["provider", "attempts", "failure_rate", "ci_low", "ci_high"]], on="provider")
    return frame[[
        "provider", "gross", "refunds", "fees", "net", "successful_payments", "aov", "attempts", "failure_rate",
        "ci_low", "ci_high", "fees_reported", "currency",
    ]]


def waterfall(revenue_frame: pd.DataFrame) -> pd.DataFrame:
    """The steps gross -> refunds -> fees -> net of the "all" row, for a waterfall chart.

    Args:
        revenue_frame: the result of `revenue(...)`.

    Returns:
        step, amount (signed: refunds and fees negative), start, end (the bar's span), kind
        (total | decrease | increase), currency.
    """
    total = revenue_frame[revenue_frame.iloc[:, 0] == "all"].iloc[0]
    gross, refunds, fees, net = (float(total[c]) for c in ("gross", "refunds", "fees", "net"))
    after_refunds = gross - refunds
    steps = [
        ("Gross", gross, 0.0, gross, "total"),
        ("Refunds", -refunds, gross, after_refunds, "decrease" if refunds >= 0 else "increase"),
        ("Fees", -fees, after_refunds, net, "decrease" if fees >= 0 else "increase"),
        ("Net", net, 0.0, net, "total"),
    ]
    frame = pd.DataFrame(steps, columns=["step", "amount", "start", "end", "kind"])
    frame["currency"] = total["currency"]
    return frame

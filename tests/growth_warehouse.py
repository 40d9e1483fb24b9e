"""A tiny warehouse for the growth and revenue models and KPIs: the raw tables of docs/raw_tables.md
(GA4, ECB rates, Stripe, PayPal, Coinbase) with a handful of hand-written rows.

The report period is the week Mon 10 - Sun 16 March 2025; the previous period is 3-9 March. Rows
outside both, and rows that must not count (a failed refund, a PayPal mass payment, a Stripe account
fee), are there on purpose. Tests compute what the KPIs should say from these lists in plain Python.
"""

from __future__ import annotations

from datetime import date, datetime
from itertools import count
from pathlib import Path

import duckdb
from warehouse_copies import copy_with_state

from statex_bi import warehouse
from statex_bi.periods import Period
from statex_bi.transform import build as project

PERIOD = Period(date(2025, 3, 10), date(2025, 3, 16))
PREVIOUS = PERIOD.previous()

D = date
T = datetime

# raw_ga4 -------------------------------------------------------------------------------------------
TRAFFIC_COLUMNS = ("date", "channel", "sessions", "active_users", "screen_page_views", "average_session_duration",
                   "engaged_sessions")
TRAFFIC = [
    (D(2025, 3, 3), "Organic Search", 400, 330, 1200, 120.0, 250),
    (D(2025, 3, 3), "Direct", 200, 150, 700, 180.0, 130),
    (D(2025, 3, 6), "Organic Search", 380, 300, 1100, 110.0, 240),
    (D(2025, 3, 6), "Direct", 220, 170, 800, 160.0, 140),
    (D(2025, 3, 10), "Organic Search", 500, 410, 1500, 130.5, 310),
    (D(2025, 3, 10), "Direct", 250, 190, 900, 175.0, 160),
    (D(2025, 3, 12), "Organic Search", 450, 370, 1400, 90.0, 280),
    (D(2025, 3, 12), "Paid Search", 120, 110, 300, 60.0, 50),
    (D(2025, 3, 15), "Direct", 80, 70, 260, 200.0, 55),
    (D(2025, 3, 16), "Organic Search", 60, 55, 150, 45.0, 30),
    (D(2025, 3, 17), "Direct", 999, 800, 3000, 100.0, 600),
]
KEY_EVENT_COLUMNS = ("date", "channel", "event_name", "event_count", "key_events")
KEY_EVENTS = [
    (D(2025, 3, 3), "Organic Search", "sign_up", 12, 12),
    (D(2025, 3, 3), "Organic Search", "prototype_request", 5, 4),
    (D(2025, 3, 3), "Direct", "sign_up", 8, 8),
    (D(2025, 3, 6), "Direct", "prototype_request", 3, 3),
    (D(2025, 3, 6), "Organic Search", "sign_up", 9, 9),
    (D(2025, 3, 10), "Organic Search", "sign_up", 16, 16),
    (D(2025, 3, 10), "Organic Search", "prototype_request", 7, 6),
    (D(2025, 3, 10), "Direct", "sign_up", 9, 9),
    (D(2025, 3, 10), "Direct", "prototype_request", 4, 4),
    (D(2025, 3, 12), "Organic Search", "sign_up", 11, 11),
    (D(2025, 3, 12), "Paid Search", "sign_up", 2, 2),
    (D(2025, 3, 12), "Organic Search", "prototype_request", 3, 3),
    (D(2025, 3, 15), "Direct", "prototype_request", 2, 2),
    (D(2025, 3, 16), "Organic Search", "file_download", 30, 30),
    (D(2025, 3, 17), "Direct", "sign_up", 50, 50),
]
# Sessions in which each key event happened: GA4 counts key events once per event, so a session with two
# prototype requests counts twice in KEY_EVENTS and once here.
EVENT_SESSION_COLUMNS = ("date", "channel", "event_name", "sessions")
EVENT_SESSIONS = [
    (day, channel, event, key_events - 1 if event == "prototype_request" and key_events > 2 else key_events)
    for day, channel, event, _, key_events in KEY_EVENTS if event in ("sign_up", "prototype_request")
]
PROPERTY_COLUMNS = ("property_id", "time_zone", "currency_code", "checked_at")
PROPERTY = [("412345678", "Europe/Berlin", "EUR", T(2025, 3, 18, 6))]
DAILY_USERS_COLUMNS = ("date", "active_users", "sessions")
DAILY_USERS = [
    (D(2025, 3, 3), 470, 600),
    (D(2025, 3, 6), 460, 600),
    (D(2025, 3, 10), 590, 750),
    (D(2025, 3, 12), 480, 570),
    (D(2025, 3, 15), 70, 80),
    (D(2025, 3, 16), 55, 60),
    (D(2025, 3, 17), 900, 999),
]

# raw_fx: units per EUR on ECB business days (no weekends: 1-2, 8-9, 15-16 March) -------------------
FX_COLUMNS = ("date", "currency", "rate")
_BUSINESS_DAYS = [D(2025, 2, 28)] + [D(2025, 3, d) for d in (3, 4, 5, 6, 7, 10, 11, 12, 13, 14, 17)]
FX = [
    (day, currency, round(base + step * i, 4))
    for i, day in enumerate(_BUSINESS_DAYS)
    for currency, base, step in (("GBP", 0.8301, 0.0013), ("JPY", 157.21, 0.37), ("USD", 1.0412, 0.0021))
]

# raw_stripe ----------------------------------------------------------------------------------------
CHARGE_COLUMNS = ("id", "created", "amount", "amount_refunded", "currency", "status", "paid", "refunded",
                  "failure_code", "customer_id", "payment_intent", "balance_transaction", "metadata_json")
CHARGES = [
    ("ch_1", T(2025, 3, 1, 10), 5000, 2000, "EUR", "succeeded", True, False, None, "cus_A", "pi_1", "txn_1",
     '{"channel": "Direct"}'),
    ("ch_2", T(2025, 3, 11, 9, 30), 7000, 0, "EUR", "succeeded", True, False, None, "cus_A", "pi_2", "txn_2",
     '{"channel": "Organic Search", "prototype_id": "p2"}'),
    ("ch_3", T(2025, 3, 15, 14), 4999, 1000, "GBP", "succeeded", True, False, None, "cus_B", "pi_3", "txn_3",
     '{"channel": "Direct", "prototype_id": "p7"}'),
    ("ch_4", T(2025, 3, 12, 8), 3000, 0, "USD", "failed", False, False, "card_declined", "cus_C", "pi_4", None,
     '{"channel": "Paid Search", "prototype_id": "p3"}'),
    ("ch_5", T(2025, 3, 12, 8, 5), 3000, 0, "USD", "succeeded", True, False, None, "cus_C", "pi_4", "txn_5", "{}"),
    ("ch_6", T(2025, 3, 16, 20), 2000, 0, "EUR", "pending", False, False, None, "cus_D", "pi_6", None,
     '{"channel": "Direct"}'),
    ("ch_7", T(2025, 3, 5, 12), 3000, 0, "EUR", "succeeded", True, False, None, "cus_E", "pi_7", "txn_7",
     '{"channel": "Organic Search", "prototype_id": "p5"}'),
    ("ch_8", T(2025, 3, 16, 23, 59, 59), 1500, 0, "EUR", "succeeded", True, False, None, "cus_K", "pi_8", "txn_8",
     "not json"),
]
REFUND_COLUMNS = ("id", "charge", "created", "amount", "currency", "status", "reason")
REFUNDS = [
    ("re_1", "ch_1", T(2025, 3, 12, 10), 2000, "EUR", "succeeded", "requested_by_customer"),
    ("re_2", "ch_3", T(2025, 3, 17, 9), 1000, "GBP", "succeeded", "requested_by_customer"),
    ("re_3", "ch_2", T(2025, 3, 14, 16), 1000, "EUR", "failed", "duplicate"),
]
BALANCE_COLUMNS = ("id", "source", "type", "reporting_category", "created", "amount", "fee", "net", "currency",
                   "status")
BALANCE_TRANSACTIONS = [
    ("txn_1", "ch_1", "charge", "charge", T(2025, 3, 1, 10), 5000, 175, 4825, "EUR", "available"),
    ("txn_2", "ch_2", "charge", "charge", T(2025, 3, 11, 9, 30), 7000, 130, 6870, "EUR", "available"),
    # ch_3 was charged in GBP and settled in EUR: its fee is in euros
    ("txn_3", "ch_3", "charge", "charge", T(2025, 3, 15, 14), 5980, 115, 5865, "EUR", "pending"),
    ("txn_5", "ch_5", "charge", "charge", T(2025, 3, 12, 8, 5), 3000, 117, 2883, "USD", "available"),
    ("txn_7", "ch_7", "charge", "charge", T(2025, 3, 5, 12), 3000, 70, 2930, "EUR", "available"),
    ("txn_8", "ch_8", "charge", "charge", T(2025, 3, 16, 23, 59, 59), 1500, 48, 1452, "EUR", "pending"),
    ("txn_r1", "re_1", "refund", "refund", T(2025, 3, 12, 10), -2000, 0, -2000, "EUR", "available"),
    ("txn_r2", "re_2", "refund", "refund", T(2025, 3, 17, 9), -1196, 0, -1196, "EUR", "pending"),
    ("txn_f1", None, "stripe_fee", "fee", T(2025, 3, 13), -500, 0, -500, "EUR", "available"),
]

# raw_paypal ----------------------------------------------------------------------------------------
PAYPAL_COLUMNS = ("transaction_id", "event_code", "initiation_date", "updated_date", "status", "amount", "fee",
                  "currency", "customer_id", "invoice_id", "reference_id", "metadata_json")
PAYPAL = [
    ("PP1", "T0006", T(2025, 3, 10, 11), T(2025, 3, 10, 11), "S", 2500, -136, "USD", "cus_F", "INV1", None,
     '{"channel": "Organic Search", "prototype_id": "p1"}'),
    ("PP2", "T0006", T(2025, 3, 16, 12), T(2025, 3, 16, 12), "S", 1500, -91, "EUR", "cus_B", "INV2", None, None),
    ("PP3", "T0006", T(2025, 3, 11, 15), T(2025, 3, 11, 15), "D", 1000, 0, "EUR", "cus_G", "INV3", None,
     '{"channel": "Direct"}'),
    # a refund of PP1 where PayPal gives 0.20 USD of its fee back
    ("PP4", "T1107", T(2025, 3, 13, 10), T(2025, 3, 13, 10), "S", -1000, 20, "USD", "cus_F", "INV1", "PP1", None),
    ("PP5", "T0001", T(2025, 3, 12, 9), T(2025, 3, 12, 9), "S", -500, 0, "EUR", None, None, None, None),
    ("PP6", "T0006", T(2025, 3, 8, 18), T(2025, 3, 8, 18), "S", 4000, -179, "GBP", "cus_L", "INV6", None,
     '{"channel": "Referral"}'),
]

# raw_coinbase --------------------------------------------------------------------------------------
COINBASE_COLUMNS = ("id", "code", "created_at", "status", "completed_at", "amount", "currency", "customer_id",
                    "metadata_json")
COINBASE = [
    ("cb-1", "C1", T(2025, 3, 15, 9), "COMPLETED", T(2025, 3, 15, 9, 20), 3000, "JPY", "cus_H",
     '{"channel": "Direct"}'),
    ("cb-2", "C2", T(2025, 3, 15, 10), "EXPIRED", None, 5000, "JPY", "cus_I", "{}"),
    ("cb-3", "C3", T(2025, 3, 16, 11), "NEW", None, 2500, "EUR", "cus_J", None),
    ("cb-4", "C4", T(2025, 3, 14, 8), "COMPLETED", T(2025, 3, 14, 8, 30), 1234, "GBP", "cus_A",
     '{"channel": "Organic Search"}'),
    # Swiss francs: the fixture has no ECB rate for CHF, so this payment cannot be converted
    ("cb-6", "C6", T(2025, 3, 13, 16), "COMPLETED", T(2025, 3, 13, 16, 5), 4500, "CHF", "cus_N",
     '{"channel": "Direct"}'),
    # p4's payment, 37 days after its request: outside a 30-day window; also the newest payment loaded
    ("cb-5", "C5", T(2025, 4, 20, 9), "COMPLETED", T(2025, 4, 20, 9, 10), 2000, "EUR", "cus_M",
     '{"channel": "Direct", "prototype_id": "p4"}'),
]

# raw_ai_calls: the prototypes' AI calls; a prototype is requested when its first call starts --------
AI_CALL_COLUMNS = ("span_id", "started_at", "prototype_id", "ai_tier", "system", "request_model", "status",
                   "input_tokens", "output_tokens")
AI_CALLS = [
    ("s01", T(2025, 3, 10, 9), "p1", "ollama", "ollama", "llama3.1:8b", "ok", 2000, 800),
    ("s02", T(2025, 3, 11, 8), "p2", "openai", "openai", "gpt-4o-mini", "ok", 9000, 3000),
    ("s03", T(2025, 3, 12, 7), "p3", "openai", "openai", "gpt-4o-mini", "ok", 9000, 3000),
    ("s04", T(2025, 3, 14, 9), "p4", "azure", "azure.ai.openai", "gpt-4o", "ok", 9000, 3000),
    ("s05", T(2025, 3, 5, 10), "p5", "ollama", "ollama", "llama3.1:8b", "ok", 2000, 800),
    ("s06", T(2025, 3, 4, 10), "p6", "openai", "openai", "gpt-4o-mini", "ok", 9000, 3000),
    ("s07", T(2025, 3, 8, 10), "p7", "openai", "openai", "gpt-4o-mini", "ok", 9000, 3000),
    ("s08", T(2025, 3, 13, 10), "p7", "openai", "openai", "gpt-4o-mini", "ok", 9000, 3000),
]

# schema.table -> (column DDL, column names, rows)
TABLES = {
    "raw_ga4.traffic_by_channel": (
        "date DATE, channel VARCHAR, sessions BIGINT, active_users BIGINT, screen_page_views BIGINT, "
        "average_session_duration DOUBLE, engaged_sessions BIGINT", TRAFFIC_COLUMNS, TRAFFIC),
    "raw_ga4.key_events_by_channel": (
        "date DATE, channel VARCHAR, event_name VARCHAR, event_count BIGINT, key_events BIGINT",
        KEY_EVENT_COLUMNS, KEY_EVENTS),
    "raw_ga4.key_event_sessions_by_channel": (
        "date DATE, channel VARCHAR, event_name VARCHAR, sessions BIGINT", EVENT_SESSION_COLUMNS, EVENT_SESSIONS),
    "raw_ga4.property": ("property_id VARCHAR, time_zone VARCHAR, currency_code VARCHAR, checked_at TIMESTAMP",
                         PROPERTY_COLUMNS, PROPERTY),
    "raw_ga4.daily_users": ("date DATE, active_users BIGINT, sessions BIGINT", DAILY_USERS_COLUMNS, DAILY_USERS),
    "raw_fx.eur_reference_rates": ("date DATE, currency VARCHAR, rate DOUBLE", FX_COLUMNS, FX),
    "raw_stripe.charges": (
        "id VARCHAR, created TIMESTAMP, amount BIGINT, amount_refunded BIGINT, currency VARCHAR, status VARCHAR, "
        "paid BOOLEAN, refunded BOOLEAN, failure_code VARCHAR, customer_id VARCHAR, payment_intent VARCHAR, "
        "balance_transaction VARCHAR, metadata_json VARCHAR, currency_exponent BIGINT", CHARGE_COLUMNS, CHARGES),
    "raw_stripe.refunds": (
        "id VARCHAR, charge VARCHAR, created TIMESTAMP, amount BIGINT, currency VARCHAR, status VARCHAR, "
        "reason VARCHAR, currency_exponent BIGINT", REFUND_COLUMNS, REFUNDS),
    "raw_stripe.balance_transactions": (
        "id VARCHAR, source VARCHAR, type VARCHAR, reporting_category VARCHAR, created TIMESTAMP, amount BIGINT, "
        "fee BIGINT, net BIGINT, currency VARCHAR, status VARCHAR, currency_exponent BIGINT", BALANCE_COLUMNS,
        BALANCE_TRANSACTIONS),
    "raw_paypal.transactions": (
        "transaction_id VARCHAR, event_code VARCHAR, initiation_date TIMESTAMP, updated_date TIMESTAMP, "
        "status VARCHAR, amount BIGINT, fee BIGINT, currency VARCHAR, customer_id VARCHAR, invoice_id VARCHAR, "
        "reference_id VARCHAR, metadata_json VARCHAR, currency_exponent BIGINT", PAYPAL_COLUMNS, PAYPAL),
    "raw_coinbase.charges": (
        "id VARCHAR, code VARCHAR, created_at TIMESTAMP, status VARCHAR, completed_at TIMESTAMP, amount BIGINT, "
        "currency VARCHAR, customer_id VARCHAR, metadata_json VARCHAR, currency_exponent BIGINT", COINBASE_COLUMNS,
        COINBASE),
    "raw_ai_calls.calls": (
        "span_id VARCHAR, trace_id VARCHAR, started_at TIMESTAMP, duration_ms DOUBLE, op VARCHAR, status VARCHAR, "
        "system VARCHAR, request_model VARCHAR, input_tokens BIGINT, cached_input_tokens BIGINT, "
        "output_tokens BIGINT, prototype_id VARCHAR, ai_tier VARCHAR, project VARCHAR, ai_tier_inferred BOOLEAN, "
        "source_file VARCHAR, source_line BIGINT", AI_CALL_COLUMNS, AI_CALLS),
}
SOURCES = ("ga4", "fx", "stripe", "paypal", "coinbase", "ai_calls")
# What the growth report reads, with every model upstream and the tests of them all: the fixture builds only these
# (dbt's selectors; a whole build also builds and tests the other reports' models, empty, at twice the cost).
GROWTH_SELECTORS = ("+payments_eur", "+refunds_eur", "+ga4_daily_traffic", "+ga4_daily_key_events",
                    "+ga4_daily_users", "+ga4_property", "+ai_prototypes", "+stg_ga4__report_flags")


def create_raw_tables(con: duckdb.DuckDBPyConnection, sources: tuple[str, ...] = SOURCES) -> None:
    """The raw tables of `sources`, as dlt would leave them (with its _dlt_load_id and _dlt_id)."""
    ids = count(1)
    for qualified, (ddl, columns, rows) in TABLES.items():
        schema = qualified.split(".")[0]
        if schema.removeprefix("raw_") not in sources:
            continue
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        con.execute(f"CREATE TABLE {qualified} ({ddl}, _dlt_load_id VARCHAR NOT NULL, _dlt_id VARCHAR NOT NULL)")
        marks = ", ".join("?" for _ in range(len(columns) + 2))
        con.executemany(
            f"INSERT INTO {qualified} ({', '.join(columns)}, _dlt_load_id, _dlt_id) VALUES ({marks})",
            [[*row, "1741600000.0", f"dlt{next(ids)}"] for row in rows],
        )


_BUILT: dict[tuple[str, ...], tuple[Path, project.BuildResult]] = {}  # per process: `built`, `without`


def built(tmp_path_factory, sources: tuple[str, ...] = SOURCES) -> tuple[Path, project.BuildResult]:
    """The fixture warehouse of `sources`, built once per test process and shared: open it read-only.

    A dbt build takes seconds; the tests of the models, KPIs and notebook read the same few warehouses.
    """
    if sources not in _BUILT:
        path = tmp_path_factory.mktemp("growth_" + "_".join(sources)) / "warehouse.duckdb"
        _BUILT[sources] = (path, build(path, sources))
    return _BUILT[sources]


def copy_of_built(tmp_path_factory, folder: Path) -> Path:
    """A writable copy of the fixture warehouse of every source (`built`) in `folder`, with its dbt state."""
    return copy_with_state(built(tmp_path_factory)[0], folder)


def without(tmp_path_factory, sources: tuple[str, ...]) -> Path:
    """The fixture warehouse of every source (`built`) copied with its dbt state and without the raw tables of the
    sources not in `sources`, rebuilt as an ingest rebuilds: the growth models downstream of the dropped sources
    (dbt's intersection `source:x+,+mart`). Once per test process; open it read-only.
    `built(tmp_path_factory, sources)` is the same warehouse built from nothing, for tests of a first build."""
    key = ("without", *sources)
    if key not in _BUILT:
        path = copy_of_built(tmp_path_factory, tmp_path_factory.mktemp("growth_only_" + "_".join(sources)))
        dropped = [source for source in SOURCES if source not in sources]
        with warehouse.writer(path) as con:
            for source in dropped:
                con.execute(f"DROP SCHEMA raw_{source} CASCADE")
        downstream = [f"source:{name}+,{model}" for source in dropped
                      for name in project.dbt_sources_of(f"raw_{source}") for model in GROWTH_SELECTORS]
        _BUILT[key] = (path, project.build(path, progress=lambda _: None, select=downstream))
    return _BUILT[key][0]


def build(path: Path, sources: tuple[str, ...] = SOURCES) -> project.BuildResult:
    """Create the warehouse file at `path` with the raw tables of `sources` and `dbt build` the growth models.

    Raises:
        DataTestError: a data test of severity error failed.
    """
    with warehouse.writer(path) as con:
        create_raw_tables(con, sources)
    return project.build(path, progress=lambda _: None, select=GROWTH_SELECTORS)

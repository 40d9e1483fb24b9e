"""The simulator and the sandboxes hold a window's days or a page's objects, never the whole world's JSON (issue
21 item 1): serving 40 days takes about the memory of serving 8, and a day generated alone is the same day as
within the whole window, whatever was generated before it."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import requests

from statex_bi.demo.apis import coinbase as coinbase_api
from statex_bi.demo.apis import paypal as paypal_api
from statex_bi.demo.apis import sentry as sentry_api
from statex_bi.demo.apis import stripe as stripe_api
from statex_bi.demo.growth import simulate_growth
from statex_bi.demo.world import World, WorldConfig

END = date(2026, 11, 30)
SCALE = 1.0
HEADERS = {"Authorization": f"Bearer {sentry_api.TOKEN}"}


def _iso(day: date) -> str:
    return datetime.combine(day, datetime.min.time(), UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _timeseries(url: str, op: str, axis: str, first: date, last: date, **extra) -> dict:
    params = {"dataset": "spans", "yAxis": axis, "interval": 86400, "query": f"span.op:{op}",
              "start": _iso(first), "end": _iso(last + timedelta(days=1)), **extra}
    reply = requests.get(f"{url}/api/0/organizations/{sentry_api.ORG}/events-timeseries/", params=params,
                         headers=HEADERS, timeout=60)
    assert reply.status_code == 200, reply.text
    return reply.json()


def _spans(url: str, first: date, last: date, cursor: str | None = None) -> requests.Response:
    params = {"dataset": "spans", "field": ["id", "precise.start_ts", "span.op", "gen_ai.usage.input_tokens"],
              "query": "span.op:gen_ai.*", "sort": "precise.start_ts", "per_page": 100,
              "start": _iso(first), "end": _iso(last + timedelta(days=1)), **({"cursor": cursor} if cursor else {})}
    reply = requests.get(f"{url}/api/0/organizations/{sentry_api.ORG}/events/", params=params, headers=HEADERS,
                         timeout=60)
    assert reply.status_code == 200, reply.text
    return reply


def _all_spans(url: str, first: date, last: date) -> list[dict]:
    rows, cursor = [], None
    while True:
        reply = _spans(url, first, last, cursor)
        rows += reply.json()["data"]
        if 'rel="next"; results="true"' not in reply.headers["Link"]:
            return rows
        cursor = reply.links["next"]["url"].rsplit("cursor=", 1)[1]


def serve_peak(days: int) -> int:
    """Peak bytes traced while the Sentry sandbox serves a `days`-day world's spans (its growth simulated
    before: customers and prototype requests are the world's entities, kept whole)."""
    world = World(WorldConfig(END - timedelta(days=days - 1), END, seed=3, scale=SCALE))
    world.growth  # noqa: B018 - simulated before measuring
    first = world.config.start
    tracemalloc.start()
    try:
        with sentry_api.serve(world.ai, world.perf, world.ops) as box:
            # Queue spans are left to the next test: their Python loop is slow under tracemalloc.
            for op, axis in (("http.server", "p95(span.duration)"), ("pageload", "p75(measurements.lcp)"),
                             ("db", "count()")):
                _timeseries(box.url, op, axis, first, END)
            _spans(box.url, first, END)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _peak_alone(probe: str) -> list[int]:
    """What `probe` (a call of this module's returning a peak, or a peak and a count) prints, in an interpreter
    of its own: what earlier tests left in this one (imports, caches, garbage collected mid-measurement) is not
    the sandbox's."""
    done = subprocess.run([sys.executable, "-c", f"import test_bounded_memory as m; print(m.{probe})"],
                          cwd=Path(__file__).parent, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return [int(number) for number in done.stdout.split("\n")[-2].strip("()").split(",")]


def test_serving_forty_days_takes_about_the_memory_of_serving_eight():
    (short,), (long,) = _peak_alone("serve_peak(8)"), _peak_alone("serve_peak(40)")
    # Holding every day (bc92e24), 40 days took 17.5 MB and 8 days 7.0 MB; now about 1 MB each.
    assert long < 1.6 * short, f"8 days: {short / 1e6:.1f} MB, 40 days: {long / 1e6:.1f} MB"


PAYMENT_SCALE = 20.0  # some 270 PayPal transactions, 150 Coinbase charges and 1,500 Stripe objects in 40 days


def _first_page(name: str, url: str, first: date) -> None:
    """One page of the sandbox's listing: five objects, or the window's first day's where the API takes a
    window."""
    if name == "paypal":
        token = requests.post(f"{url}/v1/oauth2/token", auth=(paypal_api.CLIENT_ID, paypal_api.CLIENT_SECRET),
                              data={"grant_type": "client_credentials"}, timeout=60).json()["access_token"]
        reply = requests.get(f"{url}/v1/reporting/transactions", headers={"Authorization": f"Bearer {token}"},
                             params={"start_date": f"{_iso(first)}Z", "end_date": f"{_iso(first + timedelta(1))}Z",
                                     "fields": "all"}, timeout=60)
    elif name == "coinbase":
        reply = requests.get(f"{url}/charges", headers={"X-CC-Api-Key": coinbase_api.API_KEY},
                             params={"limit": 5}, timeout=60)
    else:
        reply = requests.get(f"{url}/v1/charges", headers={"Authorization": f"Bearer {stripe_api.API_KEY}"},
                             params={"limit": 5}, timeout=60)
    assert reply.status_code == 200, reply.text


def payment_sandbox_peak(name: str, days: int) -> tuple[int, int]:
    """(peak bytes traced while the named payment sandbox is built and serves a page of a `days`-day world, the
    objects it serves). The payments are simulated before: orders and transactions are the world's entities,
    kept whole."""
    world = World(WorldConfig(END - timedelta(days=days - 1), END, seed=3, scale=PAYMENT_SCALE))
    payments = world.payments
    api, objects = {
        "paypal": (paypal_api, len(payments.paypal_transactions)),
        "coinbase": (coinbase_api, len(payments.coinbase_charges)),
        "stripe": (stripe_api, sum(map(len, (payments.stripe_charges, payments.stripe_refunds,
                                             payments.stripe_balance_transactions)))),
    }[name]
    tracemalloc.start()
    try:
        with api.build(world) as box:
            _first_page(name, box.url, world.config.start)
        return tracemalloc.get_traced_memory()[1], objects
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("name", ["paypal", "coinbase", "stripe"])
def test_a_payment_sandbox_builds_only_the_json_a_page_holds(name):
    (short, few), (long, many) = (_peak_alone(f"payment_sandbox_peak({name!r}, {days})") for days in (8, 40))
    # Rendered up front (PayPal and Coinbase on fcd4664), each object of 32 more days took 3.2 and 3.7 KB more at
    # the peak; built when a page holds it, under 0.2 KB (PayPal, Coinbase) and 0.5 KB (Stripe's filter fields).
    per_object = (long - short) / (many - few)
    assert many > 4 * few and per_object < 1000, f"{per_object:.0f} bytes an object ({few} to {many} objects)"


def growth_held(days: int) -> tuple[int, int]:
    """(bytes a `days`-day 50x world's simulated growth holds, its customers and prototype requests)."""
    tracemalloc.start()
    try:
        growth = simulate_growth(WorldConfig(END - timedelta(days=days - 1), END, seed=3, scale=50.0))
        return tracemalloc.get_traced_memory()[0], len(growth.customers) + len(growth.prototype_requests)
    finally:
        tracemalloc.stop()


def test_the_worlds_customers_and_prototype_requests_take_tens_of_bytes_each():
    held, entities = _peak_alone("growth_held(30)")
    # As objects (fcd4664), 354 bytes each traced here (28 now); 300 MB of RSS for the 583,000 customers of 13
    # months at --scale 100.
    assert entities > 10_000 and held / entities < 150, f"{held / entities:.0f} bytes each ({entities} entities)"


@pytest.fixture(scope="module")
def world():
    return World(WorldConfig(END - timedelta(days=20), END, seed=3, scale=0.5))


def test_a_day_served_alone_equals_that_day_within_the_whole_window(world):
    day = END - timedelta(days=4)  # the queues' state carries to it from the window's first day
    with sentry_api.serve(world.ai, world.perf, world.ops) as box:
        whole = {op: _timeseries(box.url, op, axis, world.config.start, END)
                 for op, axis in (("http.server", "p95(span.duration)"), ("queue.process", "p95(span.duration)"),
                                  ("db", "avg(span.duration)"))}
        whole_spans = _all_spans(box.url, world.config.start, END)
    # A fresh world regenerates the one day alone: nothing before it was generated in this world.
    fresh = World(world.config)
    with sentry_api.serve(fresh.ai, fresh.perf, fresh.ops) as box:
        for op, axis in (("http.server", "p95(span.duration)"), ("queue.process", "p95(span.duration)"),
                         ("db", "avg(span.duration)")):
            alone = _timeseries(box.url, op, axis, day, day)["timeSeries"][0]["values"][0]
            within = next(point for point in whole[op]["timeSeries"][0]["values"]
                          if point["timestamp"] == alone["timestamp"])
            assert alone["value"] == within["value"] > 0, op
        alone_spans = _all_spans(box.url, day, day)
    stamp = (_iso(day), _iso(day + timedelta(days=1)))
    bounds = [datetime.fromisoformat(moment + "+00:00").timestamp() for moment in stamp]
    assert alone_spans == [row for row in whole_spans if bounds[0] <= row["precise.start_ts"] < bounds[1]]
    assert alone_spans

"""The simulated Fastify app as Sentry sees it: requests per route, page loads, errors and issues.

Sentry keeps spans for a limited time, so the simulation covers the world's last `RETENTION_DAYS`
days only. Spans are generated day by day, each day from a generator of its own, when a window is asked
for (`PerfData.window`): memory holds a window's days, whatever the scale and the period.
What it plants for the reports (and the alerts) to find:

    a deploy that regresses one route   `GET /api/prototypes` gets an N+1 query on `REGRESSION_DAYS_AGO`
                                        days before the end: its durations grow 2.6x from then on
    an incident day                     the checkout route answers 503 to a third of its calls for a day
    errors that become issues           most get resolved after a few hours to days (activity
                                        `set_resolved*`), a few are resolved with no activity, the
                                        rest stay open
    page loads with vitals per device   mobile loads are slower (LCP, INP); on mobile `/pricing` shifts
                                        (CLS) and `/prototypes/new` answers input slowly (INP), and
                                        `/checkout` paints late everywhere (LCP): some pages fail on
                                        mobile only
    event volume by outcome             errors and transactions accepted, filtered by inbound filters,
                                        and rate-limited on the incident day
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import numpy as np

from statex_bi.demo.days import DayStore, concat_days, days_between, epoch
from statex_bi.demo.entities import WorldConfig

RETENTION_DAYS = 90
REGRESSION_DAYS_AGO = 20
INCIDENT_DAYS_AGO = 45
REGRESSED_ROUTE = "GET /api/prototypes"
INCIDENT_ROUTE = "POST /api/payments/checkout"

# route -> (median duration ms, log-normal sigma, share of requests, failure probability)
ROUTES: dict[str, tuple[float, float, float, float]] = {
    "GET /api/health": (2.5, 0.35, 0.16, 0.0002),
    "GET /api/prototypes": (28.0, 0.45, 0.20, 0.002),
    "POST /api/prototypes": (85.0, 0.50, 0.06, 0.012),
    "GET /api/prototypes/:id": (22.0, 0.40, 0.24, 0.003),
    "POST /api/payments/checkout": (240.0, 0.40, 0.03, 0.015),
    "POST /api/webhooks/stripe": (35.0, 0.35, 0.05, 0.004),
    "POST /api/auth/login": (70.0, 0.30, 0.08, 0.006),
    "GET /api/templates": (15.0, 0.40, 0.18, 0.001),
}
REQUESTS_PER_DAY = 2400
PAGES = ("/", "/pricing", "/prototypes/new", "/prototypes/:id", "/checkout")
PAGE_SHARES = (0.35, 0.15, 0.2, 0.22, 0.08)
DEVICES = ("desktop", "mobile")
MOBILE_SHARE = 0.45
PAGE_LOADS_PER_DAY = 700
# (median, sigma) per device: LCP and INP in ms (log-normal), CLS a gamma (shape, scale)
LCP = {"desktop": (1500.0, 0.35), "mobile": (1800.0, 0.40)}
INP = {"desktop": (80.0, 0.45), "mobile": (120.0, 0.50)}
CLS = {"desktop": (1.2, 0.03), "mobile": (1.5, 0.045)}
CLS_SHIFTING_PAGE = "/pricing"  # a late-loading banner moves the layout on mobile
SLOW_INPUT_PAGE = "/prototypes/new"  # the prompt editor re-renders on every key stroke on mobile
HEAVY_PAGE = "/checkout"  # the payment widget delays the largest paint


@dataclass(frozen=True)
class Requests:
    """One entry per `http.server` span (column arrays, ordered by start)."""

    start: np.ndarray  # epoch seconds, float64
    route: np.ndarray  # index into ROUTES
    duration_ms: np.ndarray
    failed: np.ndarray  # bool: span.status is not ok


@dataclass(frozen=True)
class PageLoads:
    """One entry per `pageload` span, with the INP of the page's interactions."""

    start: np.ndarray
    page: np.ndarray  # index into PAGES
    device: np.ndarray  # index into DEVICES
    lcp_ms: np.ndarray
    cls: np.ndarray
    inp_ms: np.ndarray


@dataclass(frozen=True)
class Issue:
    issue_id: str
    short_id: str
    title: str
    culprit: str
    level: str
    first_seen: datetime  # UTC, naive
    last_seen: datetime
    count: int
    user_count: int
    status: str  # resolved | unresolved | ignored
    resolved_at: datetime | None  # None when unresolved, or resolved with no activity recorded
    resolution: str | None  # the activity type that resolved it


class PerfData:
    """The app's spans, issues and event volumes over [start, end], generated day by day on demand.

    Each day's requests and page loads come from a generator of their own (`config.rng("perf/<day>")`), so any
    day regenerates alone, equal to that day within the whole window, and a sandbox answering for a window
    holds only that window's days (`window`), never the whole period. `requests`, `page_loads` and
    `event_volumes` concatenate every day: for tests of small worlds.
    """

    def __init__(self, config: WorldConfig | None, start: date, end: date) -> None:
        self.config = config
        self.start = start
        self.end = end  # inclusive; before start: an organization with no spans
        self.routes = tuple(ROUTES)
        days = self.days()
        self.issues = _issues(config.rng("perf"), days) if config is not None and days else []
        self._volumes: dict[date, list[tuple[date, str, str, int]]] = {}
        self._recent: dict[date, PerfDay] = {}
        self._store = DayStore("perf")  # each day generated once, read back from disk after

    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    def day(self, day: date) -> PerfDay:
        """The spans of one day (empty outside the window), the same whenever and however often asked.

        The last two days asked are kept: hourly buckets ask for the same day many times in a row."""
        if self.config is None or not self.start <= day <= self.end:
            return _empty_day()
        simulated = self._recent.get(day)  # one read: the server's threads may ask at once
        if simulated is None:
            stored = self._store.get("spans", day)
            if stored is None:
                simulated = simulate_day(self.config, day, (day - self.start).days)
                self._volumes.setdefault(day, simulated.volumes)
                self._store.put("spans", day, {**{f"r.{k}": getattr(simulated.requests, k) for k in _REQUESTS},
                                               **{f"p.{k}": getattr(simulated.page_loads, k) for k in _LOADS}})
            else:
                simulated = PerfDay(Requests(*(stored[f"r.{k}"] for k in _REQUESTS)),
                                    PageLoads(*(stored[f"p.{k}"] for k in _LOADS)), self.volumes(day))
            self._recent = {**dict(list(self._recent.items())[-1:]), day: simulated}
        return simulated

    def window_requests(self, first: float, stop: float) -> Requests:
        """The requests starting in [first, stop) (epoch seconds), from the window's days only."""
        days = [day for day in days_between(first, stop) if self.start <= day <= self.end]
        columns = concat_days(days, lambda day: _columns(self.day(day).requests), first, stop) if days else None
        return Requests(**columns) if columns else _empty_day().requests

    def window_page_loads(self, first: float, stop: float) -> PageLoads:
        """The page loads starting in [first, stop) (epoch seconds), from the window's days only."""
        days = [day for day in days_between(first, stop) if self.start <= day <= self.end]
        columns = concat_days(days, lambda day: _columns(self.day(day).page_loads), first, stop) if days else None
        return PageLoads(**columns) if columns else _empty_day().page_loads

    @property
    def requests(self) -> Requests:
        return _concat([self.day(day) for day in self.days()]).requests

    @property
    def page_loads(self) -> PageLoads:
        return _concat([self.day(day) for day in self.days()]).page_loads

    def volumes(self, day: date) -> list[tuple[date, str, str, int]]:
        """(day, category, outcome, quantity) of one day; remembered, they are a few rows."""
        if day not in self._volumes:
            self.day(day)  # a day's first generation remembers its volumes
        return self._volumes.get(day, [])

    @property
    def event_volumes(self) -> list[tuple[date, str, str, int]]:
        return [row for day in self.days() for row in self.volumes(day)]


_REQUESTS = ("start", "route", "duration_ms", "failed")
_LOADS = ("start", "page", "device", "lcp_ms", "cls", "inp_ms")


@dataclass(frozen=True)
class PerfDay:
    requests: Requests
    page_loads: PageLoads
    volumes: list[tuple[date, str, str, int]]


def no_performance(day: date) -> PerfData:
    """A Sentry organization with no requests, page loads, issues or event volumes."""
    return PerfData(None, day, day - timedelta(days=1))


def _empty_day() -> PerfDay:
    empty = np.array([], dtype=np.float64)
    none = np.array([], dtype=np.int64)
    return PerfDay(Requests(empty, none, empty, np.array([], dtype=bool)),
                   PageLoads(empty, none, none, empty, empty, empty), [])


def _concat(days: list[PerfDay]) -> PerfDay:
    if len(days) == 1:
        return days[0]
    if not days:
        return _empty_day()
    return PerfDay(
        Requests(*(np.concatenate([getattr(d.requests, k) for d in days]) for k in Requests.__dataclass_fields__)),
        PageLoads(*(np.concatenate([getattr(d.page_loads, k) for d in days]) for k in PageLoads.__dataclass_fields__)),
        [row for d in days for row in d.volumes])


def _columns(spans: Requests | PageLoads) -> dict[str, np.ndarray]:
    return {name: getattr(spans, name) for name in type(spans).__dataclass_fields__}


def simulate_performance(config: WorldConfig) -> PerfData:
    """The app's requests, page loads, issues and Sentry event volumes over the retention window (lazily)."""
    start = max(config.start, config.end - timedelta(days=RETENTION_DAYS - 1))
    return PerfData(config, start, config.end)


def simulate_day(config: WorldConfig, day: date, number: int) -> PerfDay:
    """One day's requests, page loads and event volumes, `number` days into the retention window.

    The draws come from `config.rng("perf/<day>")` alone: a day never depends on another.
    """
    rng = config.rng(f"perf/{day.isoformat()}")
    regression_day = config.end - timedelta(days=REGRESSION_DAYS_AGO)
    incident_day = config.end - timedelta(days=INCIDENT_DAYS_AGO)
    routes = tuple(ROUTES)
    medians = np.array([ROUTES[r][0] for r in routes])
    sigmas = np.array([ROUTES[r][1] for r in routes])
    shares = np.array([ROUTES[r][2] for r in routes])
    failure = np.array([ROUTES[r][3] for r in routes])
    regressed, incident = routes.index(REGRESSED_ROUTE), routes.index(INCIDENT_ROUTE)

    weekday = 0.65 if day.weekday() >= 5 else 1.0
    growth = 1.0 + 0.004 * number
    n = int(rng.poisson(REQUESTS_PER_DAY * weekday * growth * config.scale))
    route = rng.choice(len(routes), size=n, p=shares / shares.sum()).astype(np.int8)  # a byte: a month at 100x is 8M
    median = medians[route] * np.where((route == regressed) & (day >= regression_day), 2.6, 1.0)
    duration = rng.lognormal(np.log(median), sigmas[route])
    p_fail = failure[route] + np.where((route == incident) & (day == incident_day), 0.33, 0.0)
    failed = rng.random(n) < p_fail
    requests = Requests(epoch(day) + np.sort(rng.random(n)) * 86400.0, route, duration, failed)

    m = int(rng.poisson(PAGE_LOADS_PER_DAY * weekday * growth * config.scale))
    page = rng.choice(len(PAGES), size=m, p=PAGE_SHARES).astype(np.int8)
    device = (rng.random(m) < MOBILE_SHARE).astype(np.int8)  # 1 = mobile
    lcp = np.empty(m)
    inp = np.empty(m)
    cls = np.empty(m)
    for index, name in enumerate(DEVICES):
        mask = device == index
        count = int(mask.sum())
        lcp[mask] = rng.lognormal(np.log(LCP[name][0]), LCP[name][1], count)
        inp[mask] = rng.lognormal(np.log(INP[name][0]), INP[name][1], count)
        cls[mask] = rng.gamma(CLS[name][0], CLS[name][1], count)
    mobile = device == 1
    cls[(page == PAGES.index(CLS_SHIFTING_PAGE)) & mobile] += 0.09
    inp[(page == PAGES.index(SLOW_INPUT_PAGE)) & mobile] *= 1.6
    lcp[page == PAGES.index(HEAVY_PAGE)] *= 1.35
    loads = PageLoads(epoch(day) + np.sort(rng.random(m)) * 86400.0, page, device, lcp, cls, inp)

    errors = int(failed.sum()) + int(rng.poisson(25 * growth))  # server failures + browser errors
    limited = int(errors * 4) if day == incident_day else 0  # the incident blew the error quota
    volumes = [
        (day, "error", "accepted", errors),
        (day, "error", "filtered", int(rng.poisson(0.04 * errors + 3))),
        (day, "transaction", "accepted", n + m),
        (day, "transaction", "client_discard", int(rng.poisson(0.02 * (n + m)))),
        (day, "attachment", "accepted", int(rng.poisson(2))),
    ] + ([(day, "error", "rate_limited", limited)] if limited else [])
    return PerfDay(requests, loads, volumes)


ISSUE_TEMPLATES = (
    ("TypeError: Cannot read properties of undefined (reading 'id')", "app/prototypes/show.ts in load", "error"),
    ("Error: Stripe webhook signature verification failed", "app/webhooks/stripe.ts in verify", "error"),
    ("FetchError: request to Ollama timed out", "worker/tiers/ollama.ts in generate", "warning"),
    ("PrismaClientKnownRequestError: Unique constraint failed", "app/auth/signup.ts in create", "error"),
    ("ResizeObserver loop completed with undelivered notifications", "webpack-internal:///./src/app", "info"),
    ("RangeError: Maximum call stack size exceeded", "app/templates/render.ts in expand", "fatal"),
    ("AbortError: The user aborted a request.", "src/hooks/usePrototype.ts in fetch", "warning"),
    ("Error: 503 Service Unavailable from payments provider", "app/payments/checkout.ts in create", "error"),
)


def _issues(rng: np.random.Generator, days: list[date]) -> list[Issue]:
    first, last = datetime.combine(days[0], time()), datetime.combine(days[-1], time()) + timedelta(days=1)
    span_s = (last - first).total_seconds()
    issues = []
    for number in range(int(len(days) * 0.45)):
        title, culprit, level = ISSUE_TEMPLATES[number % len(ISSUE_TEMPLATES)]
        first_seen = first + timedelta(seconds=float(rng.random() * span_s * 0.97))
        # Of every ten issues: seven get fixed (if in time), one is resolved with no activity kept, two stay open.
        kind = number % 10
        hours_to_fix = float(rng.lognormal(np.log(18.0), 1.0))
        resolved_at = first_seen + timedelta(hours=hours_to_fix)
        if kind < 7 and resolved_at < last:
            status, resolution = "resolved", ("set_resolved" if rng.random() < 0.6 else "set_resolved_in_release")
        elif kind == 7:
            status, resolution, resolved_at = "resolved", None, None
        else:
            status = "ignored" if kind == 9 and number % 20 == 9 else "unresolved"
            resolution, resolved_at = None, None
        seen_until = resolved_at or (last - timedelta(seconds=1) if status != "resolved"
                                     else first_seen + timedelta(hours=hours_to_fix))
        active_s = max((min(seen_until, last) - first_seen).total_seconds(), 1.0)
        last_seen = first_seen + timedelta(seconds=float(rng.random() * active_s))
        count = int(rng.geometric(0.05))
        issues.append(Issue(
            issue_id=str(6_100_000_000 + number), short_id=f"STATEX-API-{number + 1:X}", title=title,
            culprit=culprit, level=level, first_seen=first_seen.replace(microsecond=0),
            last_seen=last_seen.replace(microsecond=0), count=count,
            user_count=max(1, int(count * rng.uniform(0.2, 0.9))), status=status,
            resolved_at=None if resolved_at is None else resolved_at.replace(microsecond=0), resolution=resolution,
        ))
    return issues

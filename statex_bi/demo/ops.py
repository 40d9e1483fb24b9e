"""The simulated app's operations as Sentry sees them: BullMQ jobs, Prisma queries and user feedback.

Like perf.py, it covers the world's last `RETENTION_DAYS` days (Sentry keeps spans for a limited time).
What it plants for the `operations` report and its alerts to find, all in one Monday-Sunday week
(`planted_week`: the last week of the last full month that ends before the last full week, so that a
weekly run of that week raises the alerts, the next week's resolves them, and the monthly review of that
month shows them too):

    a backlog week       the prototype-generation workers run at a third of their usual throughput:
                         jobs wait hours in the queue, more of them time out and are retried, published
                         exceeds processed until the workers recover and drain the queue the next Monday
    a slow query         the release of that Monday adds a query on prototype_versions without an index
                         (about 650 ms a call, on `GET /api/prototypes/:id`); the next Monday's release
                         adds the index
    a feedback burst     users waiting for their prototypes complain through the feedback widget on
                         `/prototypes/new`, thirty times the usual volume there, from the week's Wednesday

Jobs: each BullMQ job is a `queue.publish` span and one `queue.process` span per attempt (the attempt
number is `messaging.message.retry.count`, the time since it was published
`messaging.message.receive.latency`). Queries: `db` spans with Sentry's normalised description and its
`span.group` hash, under the route (`transaction`) that ran them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import numpy as np

from statex_bi.demo.entities import WorldConfig
from statex_bi.periods import resolve

RETENTION_DAYS = 90
BACKLOG_QUEUE = "prototype-generation"
# queue -> (jobs a day, median processing ms, log-normal sigma, failure probability of an attempt)
QUEUES: dict[str, tuple[float, float, float, float]] = {
    BACKLOG_QUEUE: (160.0, 38_000.0, 0.45, 0.02),
    "email-delivery": (420.0, 320.0, 0.40, 0.004),
    "pdf-export": (60.0, 2_400.0, 0.45, 0.01),
}
MAX_ATTEMPTS = 3  # BullMQ `attempts`: a failed attempt is retried twice
RETRY_DELAY_S = 30.0  # BullMQ fixed backoff
WORKER_HEADROOM = 40.0  # usual throughput: forty times the mean arrival rate (a job rarely waits)
DEGRADED_THROUGHPUT = 1 / 3  # of the mean arrival rate, in the backlog week
DEGRADED_FAILURE = 0.10  # attempts time out more often while the workers struggle

SLOW_QUERY = ("SELECT prototype_versions.* FROM prototype_versions WHERE prototype_versions.prototype_id = %s "
              "ORDER BY prototype_versions.version DESC")
SLOW_QUERY_ROUTE = "GET /api/prototypes/:id"
SLOW_QUERY_MS, FIXED_QUERY_MS = 650.0, 6.0
# normalised query -> (routes that run it, calls a day per route, median ms, log-normal sigma)
QUERIES: dict[str, tuple[tuple[str, ...], float, float, float]] = {
    "SELECT prototypes.* FROM prototypes WHERE prototypes.user_id = %s ORDER BY prototypes.created_at DESC "
    "LIMIT %s": (("GET /api/prototypes",), 480.0, 4.0, 0.5),
    "SELECT prototypes.* FROM prototypes WHERE prototypes.id = %s LIMIT %s":
        (("GET /api/prototypes/:id", "POST /api/payments/checkout"), 520.0, 1.8, 0.4),
    "SELECT templates.* FROM templates WHERE templates.id IN (%s)":
        (("GET /api/templates", "GET /api/prototypes/:id"), 400.0, 2.2, 0.4),
    "INSERT INTO prototypes (user_id, template_id, prompt, status) VALUES (%s, %s, %s, %s) RETURNING id":
        (("POST /api/prototypes",), 140.0, 7.0, 0.5),
    "SELECT users.* FROM users WHERE users.email = %s LIMIT %s": (("POST /api/auth/login",), 190.0, 1.5, 0.4),
    "UPDATE payments SET status = %s, updated_at = %s WHERE payments.id = %s":
        (("POST /api/webhooks/stripe", "POST /api/payments/checkout"), 90.0, 3.5, 0.5),
    SLOW_QUERY: ((SLOW_QUERY_ROUTE,), 300.0, FIXED_QUERY_MS, 0.5),
}

FEEDBACK_PER_DAY = 2.0  # whatever the world's scale: people, not traffic
BURST_FACTOR = 30.0
BURST_PAGE = "/prototypes/new"
FEEDBACK_PAGES = ("/", "/pricing", "/prototypes/new", "/prototypes/:id", "/checkout")
FEEDBACK_SHARES = (0.2, 0.2, 0.25, 0.25, 0.1)
MESSAGES = {
    "/": ("Love the idea, but the landing page is slow on my phone", "Where can I see example prototypes?"),
    "/pricing": ("The pricing page does not say whether VAT is included", "Is there a student discount?"),
    "/prototypes/new": ("My prototype has been generating for ages", "Still waiting for my prototype, is it stuck?",
                        "Generation never finishes, I tried three times", "Prompt editor lags while typing"),
    "/prototypes/:id": ("The preview does not load", "Great result, thank you!", "Cannot download the export"),
    "/checkout": ("The card form rejected my card twice", "Please add PayPal to checkout"),
}
SITE = "https://statex.example"


@dataclass(frozen=True)
class Jobs:
    """BullMQ jobs as spans (column arrays ordered by start): one publish per job, one process per attempt."""

    queues: tuple[str, ...]
    publish_start: np.ndarray  # epoch seconds
    publish_queue: np.ndarray  # index into queues
    process_start: np.ndarray
    process_queue: np.ndarray
    duration_ms: np.ndarray
    receive_latency_ms: np.ndarray
    retry_count: np.ndarray
    failed: np.ndarray


@dataclass(frozen=True)
class Queries:
    """Prisma `db` spans (column arrays ordered by start)."""

    descriptions: tuple[str, ...]
    routes: tuple[str, ...]
    start: np.ndarray
    query: np.ndarray  # index into descriptions
    route: np.ndarray  # index into routes
    duration_ms: np.ndarray


@dataclass(frozen=True)
class Feedback:
    feedback_id: str
    received_at: datetime  # UTC, naive
    page: str
    message: str
    name: str | None
    email: str | None


@dataclass(frozen=True)
class OpsData:
    start: date
    end: date  # inclusive
    planted: tuple[date, date]  # Monday and Sunday of the planted week
    jobs: Jobs
    queries: Queries
    feedback: list[Feedback]


def span_group(description: str) -> str:
    """Sentry's `span.group`: a 16-hex hash of the normalised description."""
    return hashlib.md5(description.encode(), usedforsecurity=False).hexdigest()[:16]


def planted_week(end: date) -> tuple[date, date]:
    """The Monday and Sunday of the week the problems are planted in, for a world ending on `end`."""
    today = end + timedelta(days=1)
    week, month = resolve("last full week", today), resolve("last full month", today)
    sunday = min(week.start, month.end + timedelta(days=1)) - timedelta(days=1)
    sunday -= timedelta(days=(sunday.weekday() + 1) % 7)  # back to a Sunday
    return sunday - timedelta(days=6), sunday


def no_operations(day: date) -> OpsData:
    """An organization with no jobs, queries or feedback."""
    empty, none = np.array([], dtype=np.float64), np.array([], dtype=np.int64)
    jobs = Jobs(tuple(QUEUES), empty, none, empty, none, empty, empty, none, np.array([], dtype=bool))
    return OpsData(day, day, planted_week(day), jobs, Queries(tuple(QUERIES), (), empty, none, none, empty), [])


def _epoch(day: date) -> float:
    return datetime.combine(day, time(), UTC).timestamp()


def simulate_operations(config: WorldConfig) -> OpsData:
    """The app's jobs, queries and feedback over the retention window, with the planted week's problems."""
    rng = config.rng("ops")
    start = max(config.start, config.end - timedelta(days=RETENTION_DAYS - 1))
    planted = planted_week(config.end)
    return OpsData(start, config.end, planted, _jobs(rng, config, start, planted),
                   _queries(rng, config, start, planted), _feedback(rng, config, start, planted))


def _jobs(rng: np.random.Generator, config: WorldConfig, start: date, planted: tuple[date, date]) -> Jobs:
    degraded = (_epoch(planted[0]), _epoch(planted[1] + timedelta(days=1)))
    end_s = _epoch(config.end + timedelta(days=1))
    publish: list[tuple[float, int]] = []
    process: list[tuple[float, int, float, float, int, bool]] = []
    for code, (name, (per_day, median, sigma, p_fail)) in enumerate(QUEUES.items()):
        # The worker pool is sized for the full-scale load; the struggling week's is a third of the actual one.
        usual_spacing = 86400.0 / (per_day * WORKER_HEADROOM)
        degraded_spacing = 86400.0 / (per_day * config.scale * DEGRADED_THROUGHPUT)
        arrivals = []
        day = start
        while day <= config.end:
            weekday = 0.7 if day.weekday() >= 5 else 1.0
            n = int(rng.poisson(per_day * config.scale * weekday))
            arrivals.append(_epoch(day) + np.sort(rng.random(n)) * 86400.0)
            day += timedelta(days=1)
        published = np.concatenate(arrivals) if arrivals else np.array([])
        free_at = 0.0  # FIFO: when the workers can take the next job
        for moment in published:
            publish.append((float(moment), code))
            struggling = name == BACKLOG_QUEUE and degraded[0] <= max(moment, free_at) < degraded[1]
            taken = max(moment + rng.exponential(0.4), free_at)
            free_at = taken + (degraded_spacing if struggling else usual_spacing)
            for attempt in range(MAX_ATTEMPTS):
                if taken >= end_s:
                    break  # still waiting when the world ends
                failed = bool(rng.random() < (DEGRADED_FAILURE if struggling else p_fail))
                duration = float(rng.lognormal(np.log(median), sigma))
                process.append((taken, code, duration, (taken - moment) * 1000.0, attempt, failed))
                if not failed:
                    break
                taken += duration / 1000.0 + RETRY_DELAY_S
    publish.sort()
    process.sort()
    p = list(zip(*publish, strict=True)) if publish else [[], []]
    q = list(zip(*process, strict=True)) if process else [[]] * 6
    return Jobs(tuple(QUEUES), np.array(p[0], dtype=np.float64), np.array(p[1], dtype=np.int64),
                np.array(q[0], dtype=np.float64), np.array(q[1], dtype=np.int64), np.array(q[2], dtype=np.float64),
                np.array(q[3], dtype=np.float64), np.array(q[4], dtype=np.int64), np.array(q[5], dtype=bool))


def _queries(rng: np.random.Generator, config: WorldConfig, start: date, planted: tuple[date, date]) -> Queries:
    descriptions = tuple(QUERIES)
    routes = tuple(sorted({route for routes, *_ in QUERIES.values() for route in routes}))
    parts: dict[str, list[np.ndarray]] = {"start": [], "query": [], "route": [], "duration": []}
    day = start
    while day <= config.end:
        weekday = 0.65 if day.weekday() >= 5 else 1.0
        for code, (description, (query_routes, per_day, median, sigma)) in enumerate(QUERIES.items()):
            if description == SLOW_QUERY and planted[0] <= day <= planted[1]:
                median = SLOW_QUERY_MS  # the release without the index
            for route in query_routes:
                n = int(rng.poisson(per_day * weekday * config.scale))
                parts["start"].append(_epoch(day) + rng.random(n) * 86400.0)
                parts["query"].append(np.full(n, code, dtype=np.int64))
                parts["route"].append(np.full(n, routes.index(route), dtype=np.int64))
                parts["duration"].append(rng.lognormal(np.log(median), sigma, n))
        day += timedelta(days=1)
    columns = {k: np.concatenate(v) if v else np.array([]) for k, v in parts.items()}
    order = np.argsort(columns["start"], kind="stable")
    return Queries(descriptions, routes, columns["start"][order], columns["query"][order].astype(np.int64),
                   columns["route"][order].astype(np.int64), columns["duration"][order])


def _feedback(rng: np.random.Generator, config: WorldConfig, start: date, planted: tuple[date, date]) -> list[Feedback]:
    items = []
    day = start
    while day <= config.end:
        burst = planted[0] + timedelta(days=2) <= day <= planted[1]
        for page, share in zip(FEEDBACK_PAGES, FEEDBACK_SHARES, strict=True):
            n = int(rng.poisson(FEEDBACK_PER_DAY * share * (BURST_FACTOR if burst and page == BURST_PAGE else 1)))
            for _ in range(n):
                number = len(items)
                signed = rng.random() < 0.6
                items.append(Feedback(
                    feedback_id=str(6_200_000_000 + number),
                    received_at=datetime.combine(day, time()) + timedelta(seconds=int(rng.random() * 86400)),
                    page=page, message=str(rng.choice(MESSAGES[page])),
                    name=f"User {number}" if signed else None,
                    email=f"user{number}@customers.example" if signed else None))
        day += timedelta(days=1)
    return sorted(items, key=lambda item: item.received_at)

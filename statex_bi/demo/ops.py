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
import threading
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import numpy as np

from statex_bi.demo.days import DayStore, concat_days, days_between, epoch
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


class OpsData:
    """The app's jobs, queries and feedback over [start, end], the spans generated day by day on demand.

    A day's queries come from `config.rng("ops/queries/<day>")`, the jobs published that day from
    `config.rng("ops/jobs/<day>")` and the queues' state at the day's start (when the workers are next free):
    the only thing a day carries to the next, remembered for every day (three numbers a day). So any day
    regenerates alone, equal to that day within the whole window, and a sandbox answering for a window holds
    that window's days only. `jobs` and `queries` concatenate every day: for tests of small worlds.
    """

    def __init__(self, config: WorldConfig | None, start: date, end: date, planted: tuple[date, date],
                 feedback: list[Feedback]) -> None:
        self.config = config
        self.start = start
        self.end = end  # inclusive; before start: an organization with no spans
        self.planted = planted
        self.feedback = feedback
        self.queues = tuple(QUEUES)
        self.descriptions = tuple(QUERIES)
        self.routes = tuple(sorted({route for routes, *_ in QUERIES.values() for route in routes}))
        # Per day: the queues' free time at its start, and the last start of a process span of its jobs.
        self._free_at: dict[date, tuple[float, ...]] = {start: (0.0,) * len(QUEUES)}
        self._last_process: dict[date, float] = {}
        self._recent: dict[date, Jobs] = {}  # the last days' jobs: a bucket's window asks for the day before too
        self._lock = threading.Lock()
        self._store = DayStore("ops")  # each day generated once, read back from disk after

    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    def queries_day(self, day: date) -> Queries:
        if self.config is None or not self.start <= day <= self.end:
            return _no_queries(self.descriptions, self.routes)
        stored = self._store.get("queries", day)
        if stored is not None:
            return Queries(self.descriptions, self.routes, *(stored[k] for k in _QUERY_COLUMNS))
        queries = _queries_day(self.config, day, self.planted, self.descriptions, self.routes)
        self._store.put("queries", day, {k: getattr(queries, k) for k in _QUERY_COLUMNS})
        return queries

    def jobs_day(self, day: date) -> Jobs:
        """The jobs published on `day`: their publish spans and every attempt's process span."""
        if self.config is None or not self.start <= day <= self.end:
            return _no_jobs()
        jobs = self._recent.get(day)  # one read: the server's threads may ask at once
        if jobs is None:
            self._advance_to(day)
            stored = self._store.get("jobs", day)
            if stored is None:
                jobs = _jobs_day(self.config, day, self.planted, self._free_at[day])[0]
                self._keep(day, jobs)
            else:
                jobs = Jobs(tuple(QUEUES), *(stored[k] for k in _JOB_PUBLISH + _JOB_PROCESS))
                self._recent = {**dict(list(self._recent.items())[-2:]), day: jobs}
        return jobs

    def _keep(self, day: date, jobs: Jobs) -> None:
        self._store.put("jobs", day, {k: getattr(jobs, k) for k in _JOB_PUBLISH + _JOB_PROCESS})
        self._recent = {**dict(list(self._recent.items())[-2:]), day: jobs}

    def _advance_to(self, day: date) -> None:
        """Know the queues' state at the start of `day` (and of every day before it)."""
        with self._lock:  # one thread replays the days; the others wait for it
            known = max(self._free_at)
            while known < day:
                jobs, free_at = _jobs_day(self.config, known, self.planted, self._free_at[known])
                self._last_process[known] = float(jobs.process_start.max()) if len(jobs.process_start) else 0.0
                self._keep(known, jobs)
                known += timedelta(days=1)
                self._free_at[known] = free_at

    def window_queries(self, first: float, stop: float) -> Queries:
        """The db spans starting in [first, stop) (epoch seconds), from the window's days alone."""
        days = days_between(first, stop)
        if not days:
            return _no_queries(self.descriptions, self.routes)
        columns = concat_days(days, lambda day: {k: getattr(self.queries_day(day), k) for k in _QUERY_COLUMNS},
                              first, stop)
        return Queries(self.descriptions, self.routes, **columns)

    def window_jobs(self, first: float, stop: float) -> Jobs:
        """The publish and process spans starting in [first, stop): from the days that published them (a
        backlog's jobs are processed days later), sorted by start."""
        days = [day for day in self.days() if epoch(day) < stop]
        if days:
            self._advance_to(days[-1] + timedelta(days=1))
        chosen = [self.jobs_day(day) for day in days
                  if epoch(day) + 86400.0 > first or self._last_process[day] >= first]
        return _clip_jobs(_concat_jobs(chosen), first, stop)

    @property
    def jobs(self) -> Jobs:
        return _clip_jobs(_concat_jobs([self.jobs_day(day) for day in self.days()]), -np.inf, np.inf)

    @property
    def queries(self) -> Queries:
        return _concat_queries([self.queries_day(day) for day in self.days()], self.descriptions, self.routes)


_JOB_PUBLISH = ("publish_start", "publish_queue")
_JOB_PROCESS = ("process_start", "process_queue", "duration_ms", "receive_latency_ms", "retry_count", "failed")
_QUERY_COLUMNS = ("start", "query", "route", "duration_ms")


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
    return OpsData(None, day, day - timedelta(days=1), planted_week(day), [])


def _no_jobs() -> Jobs:
    empty, none = np.array([], dtype=np.float64), np.array([], dtype=np.int64)
    return Jobs(tuple(QUEUES), empty, none, empty, none, empty, empty, none, np.array([], dtype=bool))


def _no_queries(descriptions: tuple[str, ...], routes: tuple[str, ...]) -> Queries:
    empty, none = np.array([], dtype=np.float64), np.array([], dtype=np.int64)
    return Queries(descriptions, routes, empty, none, none, empty)


def _concat_jobs(parts: list[Jobs]) -> Jobs:
    if not parts:
        return _no_jobs()
    return Jobs(tuple(QUEUES), *(np.concatenate([getattr(p, k) for p in parts]) for k in _JOB_PUBLISH + _JOB_PROCESS))


def _clip_jobs(jobs: Jobs, first: float, stop: float) -> Jobs:
    """The spans starting in [first, stop), each kind sorted by start."""
    published = np.flatnonzero((jobs.publish_start >= first) & (jobs.publish_start < stop))
    published = published[np.argsort(jobs.publish_start[published], kind="stable")]
    processed = np.flatnonzero((jobs.process_start >= first) & (jobs.process_start < stop))
    processed = processed[np.argsort(jobs.process_start[processed], kind="stable")]
    return Jobs(jobs.queues, *(getattr(jobs, k)[published] for k in _JOB_PUBLISH),
                *(getattr(jobs, k)[processed] for k in _JOB_PROCESS))


def _concat_queries(parts: list[Queries], descriptions: tuple[str, ...], routes: tuple[str, ...]) -> Queries:
    if not parts:
        return _no_queries(descriptions, routes)
    return Queries(descriptions, routes, *(np.concatenate([getattr(p, k) for p in parts]) for k in _QUERY_COLUMNS))


def simulate_operations(config: WorldConfig) -> OpsData:
    """The app's jobs, queries and feedback over the retention window, with the planted week's problems."""
    start = max(config.start, config.end - timedelta(days=RETENTION_DAYS - 1))
    planted = planted_week(config.end)
    return OpsData(config, start, config.end, planted, _feedback(config.rng("ops"), config, start, planted))


def _jobs_day(config: WorldConfig, day: date, planted: tuple[date, date], free_at: tuple[float, ...]
              ) -> tuple[Jobs, tuple[float, ...]]:
    """The jobs published on `day`, given when each queue's workers are next free; and when they are after."""
    rng = config.rng(f"ops/jobs/{day.isoformat()}")
    degraded = (epoch(planted[0]), epoch(planted[1] + timedelta(days=1)))
    end_s = epoch(config.end + timedelta(days=1))
    weekday = 0.7 if day.weekday() >= 5 else 1.0
    publish: list[tuple[float, int]] = []
    process: list[tuple[float, int, float, float, int, bool]] = []
    after: list[float] = []
    for code, (name, (per_day, median, sigma, p_fail)) in enumerate(QUEUES.items()):
        # Workers are sized for the company's load (headroom); the struggling week's run at a third of it.
        usual_spacing = 86400.0 / (per_day * config.scale * WORKER_HEADROOM)
        degraded_spacing = 86400.0 / (per_day * config.scale * DEGRADED_THROUGHPUT)
        n = int(rng.poisson(per_day * config.scale * weekday))
        free = free_at[code]  # FIFO: when the workers can take the next job
        for moment in epoch(day) + np.sort(rng.random(n)) * 86400.0:
            publish.append((float(moment), code))
            struggling = name == BACKLOG_QUEUE and degraded[0] <= max(moment, free) < degraded[1]
            taken = max(moment + rng.exponential(0.4), free)
            free = taken + (degraded_spacing if struggling else usual_spacing)
            for attempt in range(MAX_ATTEMPTS):
                if taken >= end_s:
                    break  # still waiting when the world ends
                failed = bool(rng.random() < (DEGRADED_FAILURE if struggling else p_fail))
                duration = float(rng.lognormal(np.log(median), sigma))
                process.append((taken, code, duration, (taken - moment) * 1000.0, attempt, failed))
                if not failed:
                    break
                taken += duration / 1000.0 + RETRY_DELAY_S
        after.append(free)
    p = list(zip(*publish, strict=True)) if publish else [[], []]
    q = list(zip(*process, strict=True)) if process else [[]] * 6
    jobs = Jobs(tuple(QUEUES), np.array(p[0], dtype=np.float64), np.array(p[1], dtype=np.int64),
                np.array(q[0], dtype=np.float64), np.array(q[1], dtype=np.int64), np.array(q[2], dtype=np.float64),
                np.array(q[3], dtype=np.float64), np.array(q[4], dtype=np.int64), np.array(q[5], dtype=bool))
    return jobs, tuple(after)


def _queries_day(config: WorldConfig, day: date, planted: tuple[date, date], descriptions: tuple[str, ...],
                 routes: tuple[str, ...]) -> Queries:
    rng = config.rng(f"ops/queries/{day.isoformat()}")
    parts: dict[str, list[np.ndarray]] = {"start": [], "query": [], "route": [], "duration": []}
    weekday = 0.65 if day.weekday() >= 5 else 1.0
    for code, (description, (query_routes, per_day, median, sigma)) in enumerate(QUERIES.items()):
        if description == SLOW_QUERY and planted[0] <= day <= planted[1]:
            median = SLOW_QUERY_MS  # the release without the index
        for route in query_routes:
            n = int(rng.poisson(per_day * weekday * config.scale))
            parts["start"].append(epoch(day) + rng.random(n) * 86400.0)
            parts["query"].append(np.full(n, code, dtype=np.int8))  # a byte: a month at 100x is 8M spans
            parts["route"].append(np.full(n, routes.index(route), dtype=np.int8))
            parts["duration"].append(rng.lognormal(np.log(median), sigma, n))
    columns = {k: np.concatenate(v) for k, v in parts.items()}
    order = np.argsort(columns["start"], kind="stable")
    return Queries(descriptions, routes, columns["start"][order], columns["query"][order],
                   columns["route"][order], columns["duration"][order])


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

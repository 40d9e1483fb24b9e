"""The simulated company's growth: visitors by channel, GA4 key events, customers, prototype requests.

Every day, each GA4 default channel group brings sessions that follow the week (weekdays busier than
weekends), grow over the period (about 4 % a month, faster for paid and social), and vary by noise.
From the sessions follow active users, page views, session duration and engaged sessions as GA4
reports them, plus two key events:

    sign_up            2-4 % of sessions, depending on the channel; one `Customer` per event
    prototype_request  25-40 % of the sign-ups; one `PrototypeRequest` per (key) event

A prototype request comes from a customer who signed up that day on the same channel, or, for a
returning visitor, from anyone who signed up earlier, each in a session of its own. Some visitors
submit the form twice in one session; GA4 counts key events once per event (its default counting
method), so `key_events` and `event_count` of `prototype_request` exceed the sessions in which it
happened (`event_sessions`, GA4's `sessions` metric filtered on the event).

The rows of `traffic`, `key_events`, `event_sessions` and `daily_users` carry exactly the columns of
the raw_ga4 tables (docs/raw_tables.md), so tests compare the loaded warehouse with them directly.
"""

from __future__ import annotations

import math
import uuid
from abc import abstractmethod
from array import array
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TypeVar, overload

import numpy as np

from statex_bi.demo.entities import Customer, PrototypeRequest, WorldConfig

KEY_EVENTS = ("sign_up", "prototype_request")


@dataclass(frozen=True)
class Channel:
    """How one GA4 default channel group behaves."""

    name: str
    share: float  # of all sessions at the start of the period
    monthly_growth: float  # on top of the company's growth
    users_per_session: float
    pages_per_session: float
    seconds_per_session: float
    engagement_rate: float
    sign_up_rate: float  # sign-ups per session
    prototype_rate: float  # prototype requests per sign-up


CHANNELS = (
    Channel("Organic Search", 0.38, 0.010, 0.82, 3.1, 145.0, 0.62, 0.028, 0.34),
    Channel("Direct", 0.24, 0.000, 0.74, 3.6, 170.0, 0.66, 0.034, 0.40),
    Channel("Paid Search", 0.14, 0.020, 0.90, 2.4, 95.0, 0.51, 0.024, 0.28),
    Channel("Referral", 0.09, 0.000, 0.85, 3.3, 160.0, 0.64, 0.036, 0.38),
    Channel("Organic Social", 0.10, 0.025, 0.93, 1.9, 62.0, 0.41, 0.020, 0.25),
    Channel("Email", 0.05, 0.005, 0.70, 3.9, 190.0, 0.71, 0.040, 0.36),
)
CHANNEL_NAMES = tuple(c.name for c in CHANNELS)

SESSIONS_PER_DAY = 360.0  # at scale 1, on an average day at the start of the period
COMPANY_MONTHLY_GROWTH = 0.04
WEEKDAY_FACTOR = (1.10, 1.14, 1.12, 1.08, 0.98, 0.78, 0.80)  # Monday .. Sunday, mean 1.0
# Share of a channel's users who also came through another channel that day (GA4 counts them once).
CROSS_CHANNEL_OVERLAP = 0.08
RETURNING_PROTOTYPE_SHARE = 0.3  # prototype requests from people who signed up on an earlier day
DUPLICATE_SUBMIT_RATE = 0.06  # extra `prototype_request` events in a session that already counted one

FIRST_NAMES = (
    "Anna", "Lukas", "Sofia", "Jonas", "Emma", "Paul", "Mia", "Felix", "Lea", "Noah", "Clara", "Elias",
    "Marie", "Louis", "Julia", "Hugo", "Chloé", "Mateo", "Lucía", "Pablo", "Giulia", "Marco", "Sanne",
    "Daan", "Olivia", "James", "Amelia", "Oliver", "Emily", "Ethan", "Aoife", "Liam", "Aino", "Eero",
)
LAST_NAMES = (
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Hoffmann",
    "Martin", "Bernard", "Dubois", "Moreau", "García", "Fernández", "López", "Rossi", "Russo", "Bianchi",
    "de Jong", "Jansen", "Visser", "Smith", "Johnson", "Brown", "Taylor", "Wilson", "Murphy", "Kelly",
    "Virtanen", "Korhonen", "Gruber", "Huber", "Peeters",
)
MAIL_DOMAINS = ("gmail.com", "outlook.com", "proton.me", "gmx.de", "web.de", "icloud.com", "yahoo.com",
                "orange.fr", "example-labs.io", "studio-nord.eu")
# Visitor countries; EUR countries, the US and the UK drive the payment currencies.
COUNTRIES = ("DE", "FR", "NL", "AT", "ES", "IT", "IE", "BE", "FI", "US", "GB")
COUNTRY_WEIGHTS = (0.30, 0.10, 0.07, 0.05, 0.06, 0.05, 0.02, 0.03, 0.02, 0.18, 0.12)


EPOCH = datetime(1970, 1, 1)


def _seconds(moment: datetime) -> int:
    return int((moment - EPOCH).total_seconds())


_Row = TypeVar("_Row")


class _Columns(Sequence[_Row]):
    """Rows held as array columns, each row's object built by `_row` when asked for: equal, indexed, sliced and
    iterated as the list of those objects."""

    @abstractmethod
    def _row(self, index: int) -> _Row:
        """The object of row `index` (0 <= index < len(self))."""

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(self) == vars(other)

    __hash__ = None  # type: ignore[assignment]  # mutable, as a list

    @overload
    def __getitem__(self, index: int) -> _Row: ...
    @overload
    def __getitem__(self, index: slice) -> list[_Row]: ...
    def __getitem__(self, index: int | slice) -> _Row | list[_Row]:
        if isinstance(index, slice):
            return [self._row(i) for i in range(*index.indices(len(self)))]
        return self._row(range(len(self))[index])  # negative indices, IndexError

    def __iter__(self) -> Iterator[_Row]:
        return (self._row(i) for i in range(len(self)))


class Customers(_Columns[Customer]):
    """The customers as columns of small numbers (indices into the name tables, the sign-up second), each
    `Customer` built when asked for: some 15 bytes a customer where the object takes some 500 (583,000
    customers at --scale 100 over 13 months: 300 MB). Customer i has the key cust_{i+1:06d}."""

    def __init__(self) -> None:
        self._first, self._last, self._suffix = array("B"), array("B"), array("B")  # suffix 0: none
        self._domain, self._country, self._channel = array("B"), array("B"), array("B")
        self._signed_up = array("q")  # epoch seconds, naive UTC

    def add(self, first: int, last: int, suffix: int, domain: int, country: int, channel: int,
            signed_up_at: datetime) -> None:
        for column, value in ((self._first, first), (self._last, last), (self._suffix, suffix),
                              (self._domain, domain), (self._country, country), (self._channel, channel),
                              (self._signed_up, _seconds(signed_up_at))):
            column.append(value)

    def __len__(self) -> int:
        return len(self._signed_up)

    def _row(self, index: int) -> Customer:
        first, last = FIRST_NAMES[self._first[index]], LAST_NAMES[self._last[index]]
        local = f"{_ascii(first)}.{_ascii(last)}".replace(" ", "") + (str(self._suffix[index] or ""))
        return Customer(
            customer_key=f"cust_{index + 1:06d}", email=f"{local}@{MAIL_DOMAINS[self._domain[index]]}",
            name=f"{first} {last}", channel=CHANNEL_NAMES[self._channel[index]],
            country=COUNTRIES[self._country[index]], signed_up_at=self.signed_up_at(index),
        )

    def signed_up_at(self, index: int) -> datetime:
        return EPOCH + timedelta(seconds=self._signed_up[index])

    def get(self, customer_key: str) -> Customer:
        """The customer of a key (cust_000001 ...)."""
        return self[int(customer_key.removeprefix("cust_")) - 1]

    def per_day(self) -> Counter[date]:
        """Sign-ups a day."""
        return Counter(EPOCH.date() + timedelta(days=seconds // 86_400) for seconds in self._signed_up)


class PrototypeRequests(_Columns[PrototypeRequest]):
    """The prototype requests as columns (the id's two halves, the request second, channel and customer
    indices), sorted by request time, each `PrototypeRequest` built when asked for: some 30 bytes a request
    where the object takes some 350."""

    def __init__(self) -> None:
        self._high, self._low, self._requested = array("q"), array("q"), array("q")
        self._channel, self._customer = array("B"), array("q")

    def add(self, high: int, low: int, requested_at: datetime, channel: int, customer: int) -> None:
        for column, value in ((self._high, high), (self._low, low), (self._requested, _seconds(requested_at)),
                              (self._channel, channel), (self._customer, customer)):
            column.append(value)

    def sort(self) -> None:
        """Order by request time; requests of the same second keep the order they were added in."""
        order = sorted(range(len(self)), key=self._requested.__getitem__)
        for name in ("_high", "_low", "_requested", "_channel", "_customer"):
            column = getattr(self, name)
            setattr(self, name, array(column.typecode, (column[i] for i in order)))

    def __len__(self) -> int:
        return len(self._requested)

    def _row(self, index: int) -> PrototypeRequest:
        return PrototypeRequest(
            prototype_id=self.prototype_id(index),
            requested_at=EPOCH + timedelta(seconds=self._requested[index]),
            channel=CHANNEL_NAMES[self._channel[index]],
            customer_key=f"cust_{self._customer[index] + 1:06d}",
        )

    def requested_second(self, index: int) -> int:
        """The request's time in epoch seconds."""
        return self._requested[index]

    def prototype_id(self, index: int) -> str:
        return str(uuid.UUID(int=self._high[index] << 64 | self._low[index], version=4))

    def days(self) -> list[date]:
        """The days with a request, in order."""
        seconds = np.frombuffer(self._requested, dtype=np.int64)
        return [EPOCH.date() + timedelta(days=int(d)) for d in np.unique(seconds // 86_400)]

    def on(self, day: date) -> list[PrototypeRequest]:
        """The requests of `day`, in request order."""
        seconds = np.frombuffer(self._requested, dtype=np.int64)
        midnight = _seconds(datetime.combine(day, time()))
        first, stop = np.searchsorted(seconds, [midnight, midnight + 86_400], side="left")
        return [self[i] for i in range(int(first), int(stop))]

    def per_day(self) -> Counter[date]:
        """Requests a day."""
        return Counter(EPOCH.date() + timedelta(days=seconds // 86_400) for seconds in self._requested)


@dataclass(frozen=True)
class GrowthData:
    """What the growth simulation produced.

    Attributes:
        traffic: one dict per (date, channel) with sessions > 0, columns of raw_ga4.traffic_by_channel.
        key_events: one dict per (date, channel, event_name) with events > 0, columns of
            raw_ga4.key_events_by_channel.
        event_sessions: one dict per (date, channel, event_name) with events > 0: the sessions in which
            the event happened, columns of raw_ga4.key_event_sessions_by_channel.
        daily_users: one dict per date, columns of raw_ga4.daily_users (users de-duplicated across channels).
        customers: one per `sign_up` key event, ordered by sign-up day (keys cust_000001, ...).
        prototype_requests: one per `prototype_request` key event, in request order.
    """

    traffic: list[dict]
    key_events: list[dict]
    daily_users: list[dict]
    customers: Customers
    prototype_requests: PrototypeRequests
    event_sessions: list[dict]


# Planted incident (alerts demo): for one Monday-Sunday week the prototype request form breaks for
# most visitors, and only 30% of the usual sign-ups request a prototype. The `conversion_drop` rule
# of params/alerts.yaml should find it against the week before. The week is the one holding
# config.end - 6: the weekly review's period when the demo ends yesterday.
CONVERSION_DROP_FACTOR = 0.3


def conversion_drop_week(config: WorldConfig) -> tuple[date, date] | None:
    """Monday and Sunday of the planted conversion drop, or None when the simulation is too short."""
    day = config.end - timedelta(days=6)
    monday = day - timedelta(days=day.weekday())
    return (monday, monday + timedelta(days=6)) if monday - timedelta(days=7) >= config.start else None


# Planted incident (drivers demo): two weeks before the conversion drop, a campaign goes viral on
# social media and floods Organic Social, the channel that converts worst, with CAMPAIGN_FACTOR times
# its usual sessions. No channel's own rates change: overall conversion falls by the mix of channels
# alone, which the reports' drivers (statex_bi.kpis.drivers) name as a mix change in that channel. A
# normal week lies between the two, so the drop is still tested against an ordinary week.
CAMPAIGN_CHANNEL = "Organic Social"
CAMPAIGN_FACTOR = 8.0


def campaign_week(config: WorldConfig) -> tuple[date, date] | None:
    """Monday and Sunday of the planted campaign, or None when the simulation has no week before it."""
    drop = conversion_drop_week(config)
    if drop is None:
        return None
    monday = drop[0] - timedelta(days=14)
    return (monday, monday + timedelta(days=6)) if monday - timedelta(days=7) >= config.start else None


def simulate_growth(config: WorldConfig) -> GrowthData:
    """Simulate GA4 traffic, key events, customers and prototype requests for every day of the period.

    Args:
        config: period, seed and scale; the draws come from `config.rng("growth")` only.

    Returns:
        The `GrowthData` of the period; the same config always gives the same data.
    """
    rng = config.rng("growth")
    traffic: list[dict] = []
    key_events: list[dict] = []
    event_sessions: list[dict] = []
    daily_users: list[dict] = []
    customers = Customers()
    requests = PrototypeRequests()

    drop = conversion_drop_week(config)
    campaign = campaign_week(config)
    for day_index, day in enumerate(config.days()):
        months = day_index / 30.44
        # Planted incident (alerts demo): see conversion_drop_week.
        request_factor = CONVERSION_DROP_FACTOR if drop and drop[0] <= day <= drop[1] else 1.0
        day_level = SESSIONS_PER_DAY * config.scale * WEEKDAY_FACTOR[day.weekday()]
        day_level *= (1 + COMPANY_MONTHLY_GROWTH) ** months * rng.lognormal(0.0, 0.08)
        day_sessions = day_users = 0
        earlier_customers = len(customers)
        for channel_index, channel in enumerate(CHANNELS):
            expected = day_level * channel.share * (1 + channel.monthly_growth) ** months * rng.lognormal(0.0, 0.12)
            if campaign and campaign[0] <= day <= campaign[1] and channel.name == CAMPAIGN_CHANNEL:
                expected *= CAMPAIGN_FACTOR  # planted: see campaign_week
            sessions = int(rng.poisson(expected))
            if sessions == 0:
                continue
            active_users = max(1, int(rng.binomial(sessions, channel.users_per_session)))
            page_views = sessions + int(rng.poisson(sessions * (channel.pages_per_session - 1)))
            total_seconds = float(rng.gamma(2.0, channel.seconds_per_session / 2.0, size=sessions).sum())
            traffic.append({
                "date": day,
                "channel": channel.name,
                "sessions": sessions,
                "active_users": active_users,
                "screen_page_views": page_views,
                "average_session_duration": total_seconds / sessions,
                "engaged_sessions": int(rng.binomial(sessions, channel.engagement_rate)),
            })
            day_sessions += sessions
            day_users += active_users

            sign_ups = int(rng.binomial(sessions, channel.sign_up_rate))
            new_customers = len(customers)
            for _ in range(sign_ups):
                _customer(rng, day, channel_index, customers)
            # Returning visitors only exist once someone signed up on an earlier day.
            returning_share = RETURNING_PROTOTYPE_SHARE if earlier_customers else 0.0
            rate = channel.prototype_rate * request_factor
            from_new = int(rng.binomial(sign_ups, rate * (1 - returning_share)))
            returning = int(rng.poisson(sign_ups * rate * returning_share))
            prototypes = from_new + returning
            _prototype_requests(rng, day, channel_index, customers, range(new_customers, new_customers + from_new),
                                earlier_customers, returning, requests)
            if sign_ups:
                key_events.append(_event_row(day, channel.name, "sign_up", sign_ups, sign_ups))
                event_sessions.append(_sessions_row(day, channel.name, "sign_up", sign_ups))
            if prototypes:
                submits = prototypes + int(rng.binomial(prototypes, DUPLICATE_SUBMIT_RATE))
                key_events.append(_event_row(day, channel.name, "prototype_request", submits, submits))
                event_sessions.append(_sessions_row(day, channel.name, "prototype_request", prototypes))
        if day_sessions:
            overlap = int(rng.binomial(day_users, CROSS_CHANNEL_OVERLAP))
            daily_users.append({"date": day, "active_users": max(1, day_users - overlap), "sessions": day_sessions})

    requests.sort()
    return GrowthData(traffic, key_events, daily_users, customers, requests, event_sessions)


def _event_row(day: date, channel: str, event_name: str, event_count: int, key_events: int) -> dict:
    return {"date": day, "channel": channel, "event_name": event_name, "event_count": event_count,
            "key_events": key_events}


def _sessions_row(day: date, channel: str, event_name: str, sessions: int) -> dict:
    return {"date": day, "channel": channel, "event_name": event_name, "sessions": sessions}


def _moment(rng: np.random.Generator, day: date, after: datetime | None = None) -> datetime:
    """A time on `day`, later than `after` when given; visits cluster in European office hours."""
    start = datetime.combine(day, time())
    earliest = 0.0 if after is None else (after - start).total_seconds()
    hour = float(np.clip(rng.normal(13.0, 4.0), 0.0, 23.99))
    seconds = hour * 3600.0
    if seconds <= earliest:
        seconds = earliest + (86_399.0 - earliest) * rng.random()
    return start + timedelta(seconds=math.floor(seconds))


def _customer(rng: np.random.Generator, day: date, channel: int, customers: Customers) -> None:
    first, last = int(rng.integers(len(FIRST_NAMES))), int(rng.integers(len(LAST_NAMES)))
    suffix = int(rng.integers(1, 99)) if rng.random() < 0.5 else 0
    country = int(rng.choice(len(COUNTRIES), p=COUNTRY_WEIGHTS))
    domain = int(rng.integers(len(MAIL_DOMAINS)))
    customers.add(first, last, suffix, domain, country, channel, _moment(rng, day))


def _prototype_requests(
    rng: np.random.Generator, day: date, channel: int, customers: Customers, requesters: range, earlier: int,
    returning: int, requests: PrototypeRequests,
) -> None:
    """One request by each of today's `requesters` (after their sign-up), and `returning` requests by
    customers of earlier days (the first `earlier` customers, whatever channel they first came through)."""
    who = [(c, _moment(rng, day, after=customers.signed_up_at(c))) for c in requesters]
    who += [(int(rng.integers(earlier)), _moment(rng, day)) for _ in range(returning)]
    for customer, requested_at in who:
        requests.add(int(rng.integers(0, 2**63)), int(rng.integers(0, 2**63)), requested_at, channel, customer)


def _ascii(text: str) -> str:
    table = str.maketrans({"ü": "ue", "ö": "oe", "ä": "ae", "é": "e", "í": "i", "á": "a", "ó": "o", "ñ": "n"})
    return text.lower().translate(table)

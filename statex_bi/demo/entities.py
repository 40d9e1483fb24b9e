"""The simulated world's configuration and the entities its modules share (see world.py)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np

from statex_bi.periods import reference_day


@dataclass(frozen=True)
class WorldConfig:
    """Period (inclusive days) and size of the simulation."""

    start: date
    end: date
    seed: int = 7
    scale: float = 1.0

    @classmethod
    def default(cls, today: date | None = None, seed: int = 7, scale: float = 1.0) -> WorldConfig:
        """The last 13 months up to yesterday."""
        today = today or reference_day()
        end = today - timedelta(days=1)
        return cls(start=_months_before(end, 13) + timedelta(days=1), end=end, seed=seed, scale=scale)

    def rng(self, module: str) -> np.random.Generator:
        salt = int.from_bytes(hashlib.sha256(module.encode()).digest()[:8], "big")
        return np.random.default_rng([self.seed, salt])

    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]


def _months_before(day: date, months: int) -> date:
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    return date(year, month + 1, min(day.day, 28))


@dataclass(frozen=True)
class PrototypeRequest:
    """A visitor asked for a prototype (the GA4 key event `prototype_request`)."""

    prototype_id: str
    requested_at: datetime  # UTC, naive
    channel: str
    customer_key: str  # the simulated person; also the key of growth.customers


@dataclass(frozen=True)
class Customer:
    """A simulated person who signed up. E-mail and name exist only here and in the sandbox APIs:
    connectors pseudonymise them, so they never reach the warehouse."""

    customer_key: str
    email: str
    name: str
    channel: str  # acquisition channel (GA4 sessionDefaultChannelGroup of the sign-up session)
    country: str  # ISO 3166 alpha-2; drives the payment currency (EUR / USD / GBP)
    signed_up_at: datetime  # UTC, naive

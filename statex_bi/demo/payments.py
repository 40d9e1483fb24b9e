"""The simulated company's payments: Stripe, PayPal and Coinbase Commerce.

Some prototype requests lead to a paid order a few days later (`CONVERSION_RATE`); a customer who
paid may order again weeks later for the same prototype (`FOLLOW_UP_RATE`), and a customer with
several prototype requests may pay for more than one, so a customer's first successful payment and
their successful payments differ. Each customer sticks to one provider (Stripe ~65 %, PayPal ~25 %,
Coinbase Commerce ~10 %) and pays in the currency of their country (EUR, USD or GBP).

What can go wrong, as with the real providers:

    Stripe     a card is declined (`failure_code`); the customer often retries with the same
               PaymentIntent minutes later; succeeded charges are sometimes refunded, fully or partly
    PayPal     a payment is denied (status D) and often retried; refunds are T1107 transactions
    Coinbase   a charge expires unpaid after an hour; the customer sometimes opens a new one

Fees: Stripe by region (EEA and UK cards 1.5 %, international 2.9 %, plus a fixed fee) in balance
transactions; PayPal 3.49 % plus a fixed fee as a negative `fee_amount`; Coinbase Commerce 1 %.
Only what happens inside the world's period exists: a refund or a status change after its last day
has not happened yet. Money is in minor units (cents) everywhere; currencies are ISO 4217 upper case
here and the API modules render them as each provider does.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta

import numpy as np

from statex_bi.demo.entities import Customer, PrototypeRequest, WorldConfig

PROVIDERS = ("stripe", "paypal", "coinbase")
PROVIDER_WEIGHTS = (0.65, 0.25, 0.10)
CONVERSION_RATE = 0.40  # prototype requests that lead to an order
FOLLOW_UP_RATE = 0.18  # orders followed by a second order for the same prototype
REFUND_RATE = 0.05  # succeeded Stripe / PayPal payments refunded later
FULL_REFUND_SHARE = 0.6

EUROZONE = frozenset({"AT", "BE", "CY", "DE", "EE", "ES", "FI", "FR", "GR", "HR", "IE", "IT", "LT", "LU", "LV",
                      "MT", "NL", "PT", "SI", "SK"})
# Prototype packages in major units per currency.
PACKAGES: dict[str, dict[str, int]] = {
    "starter": {"EUR": 490, "USD": 540, "GBP": 420},
    "standard": {"EUR": 990, "USD": 1090, "GBP": 850},
    "premium": {"EUR": 2490, "USD": 2690, "GBP": 2150},
}
FIRST_ORDER_PACKAGES = (("starter", 0.50), ("standard", 0.35), ("premium", 0.15))
FOLLOW_UP_PACKAGES = (("starter", 0.60), ("standard", 0.30), ("premium", 0.10))

# (basis points, fixed fee in minor units) by charge currency; the Stripe account settles in each currency.
STRIPE_FEES = {"EUR": (150, 25), "GBP": (150, 20), "USD": (290, 30)}
PAYPAL_FEES = {"EUR": (349, 39), "GBP": (349, 30), "USD": (349, 49)}
COINBASE_FEE_BPS = 100
STRIPE_DECLINE_RATE = 0.12
STRIPE_DECLINES = (("card_declined", 0.45), ("insufficient_funds", 0.25), ("expired_card", 0.12),
                   ("incorrect_cvc", 0.10), ("processing_error", 0.08))
STRIPE_RETRY_RATE = 0.75  # after a decline, the customer tries again (up to STRIPE_MAX_ATTEMPTS)
STRIPE_MAX_ATTEMPTS = 3
STRIPE_PAYOUT_DAYS = 7  # a charge's funds become available this many days after midnight of its day
PAYPAL_DENIAL_RATE = 0.07
PAYPAL_RETRY_RATE = 0.5
COINBASE_EXPIRY = timedelta(hours=1)
COINBASE_EXPIRE_RATE = 0.30
COINBASE_RETRY_RATE = 0.5

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_UPPER_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True, slots=True)
class Order:
    """A customer's order of a prototype package, paid (or not) through one provider."""

    order_id: str  # STX-000001; Stripe metadata, PayPal invoice_id, Coinbase metadata
    customer_key: str
    prototype_id: str
    channel: str  # the customer's acquisition channel
    provider: str
    package: str
    currency: str
    amount: int  # minor units
    ordered_at: datetime
    paid_at: datetime | None  # the successful payment, None when every attempt failed or expired
    payment_id: str | None  # ch_ id, PayPal transaction id or Coinbase charge id of that payment
    refunded: int = 0  # minor units refunded within the period


@dataclass(frozen=True, slots=True)
class StripeCharge:
    """One card charge attempt; a PaymentIntent's retries are separate charges."""

    id: str
    created: datetime
    amount: int
    currency: str
    status: str  # succeeded | failed
    failure_code: str | None
    customer_key: str
    stripe_customer: str  # cus_ id
    payment_intent: str
    balance_transaction: str | None
    metadata: dict[str, str]
    amount_refunded: int

    @property
    def refunded(self) -> bool:
        return self.amount_refunded == self.amount


@dataclass(frozen=True, slots=True)
class StripeRefund:
    """A full or partial refund of a succeeded charge."""

    id: str
    charge: str
    payment_intent: str
    created: datetime
    amount: int
    currency: str
    reason: str
    balance_transaction: str
    status: str = "succeeded"


@dataclass(frozen=True, slots=True)
class StripeBalanceTransaction:
    """The balance movement of a succeeded charge (with Stripe's fee) or of a refund (no fee)."""

    id: str
    source: str  # ch_ or re_ id
    type: str  # charge | refund
    created: datetime
    available_on: datetime
    amount: int  # signed: refunds are negative
    fee: int
    currency: str
    status: str  # available | pending, as of the end of the period

    @property
    def reporting_category(self) -> str:
        return self.type

    @property
    def net(self) -> int:
        return self.amount - self.fee


@dataclass(frozen=True, slots=True)
class PayPalTransaction:
    """A row of PayPal's Transaction Search: a payment (succeeded or denied) or a refund."""

    transaction_id: str
    event_code: str  # T0006 payment, T1107 refund
    initiated_at: datetime
    updated_at: datetime
    status: str  # S | D
    amount: int  # signed: refunds are negative
    fee: int  # as PayPal signs it: negative = charged; 0 when PayPal charges none (denied, refunds)
    currency: str
    customer_key: str
    payer_id: str  # the payer's PayPal account id
    invoice_id: str
    reference_id: str | None  # the payment a refund refers to
    custom: dict[str, str]  # sent as JSON in custom_field


@dataclass(frozen=True, slots=True)
class CoinbaseCharge:
    """A Commerce charge; its status is the last step of its timeline."""

    id: str  # uuid
    code: str
    created_at: datetime
    expires_at: datetime
    timeline: tuple[tuple[str, datetime], ...]
    amount: int  # pricing.local, minor units
    currency: str
    customer_key: str
    metadata: dict[str, str]

    @property
    def status(self) -> str:
        return self.timeline[-1][0]

    @property
    def fee(self) -> int:
        return _fee(self.amount, COINBASE_FEE_BPS, 0) if self.status == "COMPLETED" else 0


@dataclass
class PaymentsData:
    """Everything the payment providers hold about the period, for the sandboxes and the tests.

    Attributes:
        orders: every order, paid or not, oldest first (the ground truth behind revenue KPIs).
        stripe_charges: every charge attempt, failed ones included, oldest first.
        stripe_refunds: refunds of succeeded charges, oldest first.
        stripe_balance_transactions: one per succeeded charge and one per refund, oldest first.
        paypal_transactions: payments (S or D) and refunds (T1107), by initiation date.
        coinbase_charges: every charge, completed, expired or still open at the end of the period.
        now: the end of the period (midnight after its last day): what the APIs answer as of.
    """

    orders: list[Order] = field(default_factory=list)
    stripe_charges: list[StripeCharge] = field(default_factory=list)
    stripe_refunds: list[StripeRefund] = field(default_factory=list)
    stripe_balance_transactions: list[StripeBalanceTransaction] = field(default_factory=list)
    paypal_transactions: list[PayPalTransaction] = field(default_factory=list)
    coinbase_charges: list[CoinbaseCharge] = field(default_factory=list)
    now: datetime = datetime.min  # the end of the period: what the APIs answer as of


def currency_for(country: str) -> str:
    """The currency a customer of `country` pays in."""
    if country == "GB":
        return "GBP"
    return "EUR" if country in EUROZONE else "USD"


def simulate_payments(config: WorldConfig, growth) -> PaymentsData:
    """Simulate the orders and payments that follow the prototype requests of the period.

    Args:
        config: period and seed; the draws come from `config.rng("payments")` only.
        growth: the world's `GrowthData` (its customers and prototype requests).

    Returns:
        The `PaymentsData` of the period; the same config and growth always give the same data.
    """
    rng = config.rng("payments")
    now = datetime.combine(config.end + timedelta(days=1), time())
    data = PaymentsData(now=now)
    sim = _Simulation(rng, data, now)
    providers: dict[str, str] = {}
    requests = growth.prototype_requests  # by request time; one second's requests by id below
    order = sorted(range(len(requests)), key=lambda i: (requests.requested_second(i), requests.prototype_id(i)))
    for index in order:
        if rng.random() >= CONVERSION_RATE:
            continue
        request = requests[index]
        customer = growth.customers.get(request.customer_key)
        if customer.customer_key not in providers:
            providers[customer.customer_key] = PROVIDERS[int(rng.choice(len(PROVIDERS), p=PROVIDER_WEIGHTS))]
        delay = timedelta(days=float(rng.gamma(2.0, 2.5)), minutes=float(rng.uniform(5, 600)))
        ordered_at = request.requested_at + delay
        sim.order(customer, request, providers[customer.customer_key], ordered_at, FIRST_ORDER_PACKAGES)
        if rng.random() < FOLLOW_UP_RATE:
            follow_up_at = ordered_at + timedelta(days=float(rng.uniform(14, 75)))
            sim.order(customer, request, providers[customer.customer_key], follow_up_at, FOLLOW_UP_PACKAGES)
    for items in (data.stripe_charges, data.stripe_refunds, data.stripe_balance_transactions):
        items.sort(key=lambda item: item.created)
    data.paypal_transactions.sort(key=lambda t: t.initiated_at)
    data.coinbase_charges.sort(key=lambda c: c.created_at)
    data.orders.sort(key=lambda o: o.ordered_at)
    return data


class _Simulation:
    """The draws behind one order, appended to `data`."""

    def __init__(self, rng: np.random.Generator, data: PaymentsData, now: datetime) -> None:
        self.rng = rng
        self.data = data
        self.now = now
        self.orders = 0

    def order(self, customer: Customer, request: PrototypeRequest, provider: str, ordered_at: datetime,
              packages: tuple[tuple[str, float], ...]) -> None:
        if ordered_at >= self.now:
            return
        self.orders += 1
        ordered_at = _whole_seconds(ordered_at)
        package = packages[int(self.rng.choice(len(packages), p=[w for _, w in packages]))][0]
        currency = currency_for(customer.country)
        order = Order(
            order_id=f"STX-{self.orders:06d}", customer_key=customer.customer_key, prototype_id=request.prototype_id,
            channel=customer.channel, provider=provider, package=package, currency=currency,
            amount=PACKAGES[package][currency] * 100, ordered_at=ordered_at, paid_at=None, payment_id=None,
        )
        pay = {"stripe": self._stripe, "paypal": self._paypal, "coinbase": self._coinbase}[provider]
        paid_at, payment_id, refunded = pay(order, customer)
        self.data.orders.append(replace(order, paid_at=paid_at, payment_id=payment_id, refunded=refunded))

    # --- Stripe ---------------------------------------------------------------------------------

    def _stripe(self, order: Order, customer: Customer) -> tuple[datetime | None, str | None, int]:
        intent = "pi_3" + self._token(24)
        metadata = {"channel": order.channel, "prototype_id": order.prototype_id, "order_id": order.order_id}
        at = order.ordered_at
        for attempt in range(STRIPE_MAX_ATTEMPTS):
            if attempt:
                at = _whole_seconds(at + timedelta(minutes=float(self.rng.uniform(2, 90))))
                if at >= self.now:
                    return None, None, 0
            charge_id = "ch_3" + self._token(24)
            if self.rng.random() < STRIPE_DECLINE_RATE:
                code = STRIPE_DECLINES[int(self.rng.choice(len(STRIPE_DECLINES), p=[w for _, w in STRIPE_DECLINES]))][0]
                self.data.stripe_charges.append(StripeCharge(
                    charge_id, at, order.amount, order.currency, "failed", code, customer.customer_key,
                    stripe_customer_id(customer.customer_key), intent, None, metadata, 0,
                ))
                if self.rng.random() >= STRIPE_RETRY_RATE:
                    return None, None, 0
                continue
            txn = self._stripe_balance(charge_id, "charge", at, order.amount, order.currency)
            refunded = 0
            refund = self._refund_draw(order.amount, at)
            if refund is not None:
                refunded, refunded_at = refund
                refund_id = "re_3" + self._token(24)
                refund_txn = self._stripe_balance(refund_id, "refund", refunded_at, -refunded, order.currency)
                reason = "duplicate" if self.rng.random() < 0.1 else "requested_by_customer"
                self.data.stripe_refunds.append(StripeRefund(
                    refund_id, charge_id, intent, refunded_at, refunded, order.currency, reason, refund_txn,
                ))
            self.data.stripe_charges.append(StripeCharge(
                charge_id, at, order.amount, order.currency, "succeeded", None, customer.customer_key,
                stripe_customer_id(customer.customer_key), intent, txn, metadata, refunded,
            ))
            return at, charge_id, refunded
        return None, None, 0

    def _stripe_balance(self, source: str, kind: str, at: datetime, amount: int, currency: str) -> str:
        txn_id = "txn_3" + self._token(24)
        available_on = datetime.combine(at.date() + timedelta(days=STRIPE_PAYOUT_DAYS), time())
        fee = _fee(amount, *STRIPE_FEES[currency]) if kind == "charge" else 0
        self.data.stripe_balance_transactions.append(StripeBalanceTransaction(
            txn_id, source, kind, at, available_on, amount, fee, currency,
            "available" if available_on <= self.now else "pending",
        ))
        return txn_id

    # --- PayPal ---------------------------------------------------------------------------------

    def _paypal(self, order: Order, customer: Customer) -> tuple[datetime | None, str | None, int]:
        custom = {"channel": order.channel, "prototype_id": order.prototype_id}
        payer = paypal_payer_id(customer.customer_key)
        at = order.ordered_at
        for attempt in range(2):
            if attempt:
                at = _whole_seconds(at + timedelta(minutes=float(self.rng.uniform(5, 240))))
                if at >= self.now:
                    return None, None, 0
            transaction_id = self._token(17, _UPPER_ALNUM)
            if self.rng.random() < PAYPAL_DENIAL_RATE:
                self.data.paypal_transactions.append(PayPalTransaction(
                    transaction_id, "T0006", at, at, "D", order.amount, 0, order.currency, customer.customer_key,
                    payer, order.order_id, None, custom,
                ))
                if self.rng.random() >= PAYPAL_RETRY_RATE:
                    return None, None, 0
                continue
            fee = -_fee(order.amount, *PAYPAL_FEES[order.currency])
            updated = at + timedelta(seconds=int(self.rng.integers(1, 90)))
            self.data.paypal_transactions.append(PayPalTransaction(
                transaction_id, "T0006", at, min(updated, self.now - timedelta(seconds=1)), "S", order.amount, fee,
                order.currency, customer.customer_key, payer, order.order_id, None, custom,
            ))
            refunded = 0
            refund = self._refund_draw(order.amount, at)
            if refund is not None:
                refunded, refunded_at = refund
                self.data.paypal_transactions.append(PayPalTransaction(
                    self._token(17, _UPPER_ALNUM), "T1107", refunded_at, refunded_at, "S", -refunded, 0,
                    order.currency, customer.customer_key, payer, order.order_id, transaction_id, custom,
                ))
            return at, transaction_id, refunded
        return None, None, 0

    # --- Coinbase Commerce ----------------------------------------------------------------------

    def _coinbase(self, order: Order, customer: Customer) -> tuple[datetime | None, str | None, int]:
        # Coinbase has no customer object: the shop puts who paid into the metadata, as the
        # Commerce docs suggest; connectors pseudonymise and drop those keys.
        metadata = {"channel": order.channel, "prototype_id": order.prototype_id, "order_id": order.order_id,
                    "customer_email": customer.email, "customer_name": customer.name}
        at = order.ordered_at
        for attempt in range(2):
            if attempt:
                at = _whole_seconds(at + timedelta(minutes=float(self.rng.uniform(70, 600))))
                if at >= self.now:
                    return None, None, 0
            charge_id = str(uuid.UUID(bytes=self.rng.bytes(16), version=4))
            code = self._token(8, _UPPER_ALNUM)
            expires = self.rng.random() < COINBASE_EXPIRE_RATE
            if expires:
                expired = at + COINBASE_EXPIRY + timedelta(seconds=int(self.rng.integers(3, 60)))
                events = [("NEW", at), ("EXPIRED", expired)]
            else:
                detected = at + timedelta(minutes=float(self.rng.uniform(2, 40)))
                events = [("NEW", at), ("PENDING", detected),
                          ("COMPLETED", detected + timedelta(minutes=float(self.rng.uniform(3, 30))))]
            timeline = tuple((status, _whole_seconds(when)) for status, when in events if when < self.now)
            self.data.coinbase_charges.append(CoinbaseCharge(
                charge_id, code, at, at + COINBASE_EXPIRY, timeline, order.amount, order.currency,
                customer.customer_key, metadata,
            ))
            if timeline[-1][0] == "COMPLETED":
                return timeline[-1][1], charge_id, 0
            if not expires or self.rng.random() >= COINBASE_RETRY_RATE:
                return None, None, 0
        return None, None, 0

    # --- shared ---------------------------------------------------------------------------------

    def _refund_draw(self, amount: int, paid_at: datetime) -> tuple[int, datetime] | None:
        """(refunded minor units, when) for a refunded payment, None when it is kept or refunded after the period."""
        if self.rng.random() >= REFUND_RATE:
            return None
        at = paid_at + timedelta(days=float(self.rng.uniform(2, 30)))
        full = self.rng.random() < FULL_REFUND_SHARE
        # A partial refund is a whole number of major units, as a support agent would type it.
        refunded = amount if full else max(100, int(amount * float(self.rng.uniform(0.2, 0.5))) // 100 * 100)
        if at >= self.now:
            return None
        return refunded, _whole_seconds(at)

    def _token(self, length: int, alphabet: str = _BASE62) -> str:
        return "".join(alphabet[i] for i in self.rng.integers(0, len(alphabet), length))


def _whole_seconds(moment: datetime) -> datetime:
    """Providers report times in whole seconds."""
    return moment.replace(microsecond=0)


def _fee(amount: int, basis_points: int, fixed: int) -> int:
    """A percentage of `amount` rounded half up to the minor unit, plus a fixed fee."""
    return (amount * basis_points + 5_000) // 10_000 + fixed


def stripe_customer_id(customer_key: str) -> str:
    """The Stripe Customer (cus_) id of a simulated customer."""
    return "cus_" + _digest_token(customer_key, 14, _BASE62)


def paypal_payer_id(customer_key: str) -> str:
    """The PayPal payer id of a simulated customer: 13 characters of PayPal's Base32 variant."""
    return _digest_token(customer_key, 13, "23456789ABCDEFGHJKLMNPQRSTUVWXYZ")


def _digest_token(key: str, length: int, alphabet: str) -> str:
    number = int.from_bytes(hashlib.sha256(key.encode()).digest(), "big")
    chars = []
    for _ in range(length):
        number, index = divmod(number, len(alphabet))
        chars.append(alphabet[index])
    return "".join(chars)

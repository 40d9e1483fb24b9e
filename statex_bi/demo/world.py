"""The simulated Statex: a deterministic world that grows module by module.

`World(WorldConfig(...))` computes each module on first use. Every module draws from its own random
generator, seeded from the world seed and the module's name, so adding a module never changes what
the others produce. The modules whose size grows with scale times days (ai, perf, ops) generate day by
day on demand, each day from a generator seeded with the day as well: a window's days are generated when
asked for, and any day regenerates alone. Modules:

    growth   visitors, GA4 traffic and key events, customers, prototype requests (growth.py)
    payments Stripe / PayPal / Coinbase Commerce payments, refunds and fees of those customers (payments.py)
    fx       ECB euro reference rates, business days only (fx.py)
    ai       AI calls per prototype across the Ollama / OpenAI / Azure tiers (ai.py)
    infra    AWS and Azure FOCUS bills, Cloudflare R2 usage (infra.py)
    perf     the web app's requests per route, page loads with Web Vitals, errors and issues (perf.py)
    ops      the app's BullMQ jobs, Prisma queries and user feedback (ops.py)
    ci       the app's commits, its test suite and the CI runs of Jest and Vitest on GitHub Actions (ci.py)

The configuration and the entities modules share (WorldConfig, Customer, PrototypeRequest) live in
entities.py, which the simulators import; this module imports the simulators, never the reverse.
"""

from __future__ import annotations

from functools import cached_property

from statex_bi.demo.ai import simulate_ai
from statex_bi.demo.ci import simulate_ci
from statex_bi.demo.entities import Customer, PrototypeRequest, WorldConfig
from statex_bi.demo.fx import simulate_fx
from statex_bi.demo.growth import simulate_growth
from statex_bi.demo.infra import simulate_infra
from statex_bi.demo.ops import simulate_operations
from statex_bi.demo.payments import simulate_payments
from statex_bi.demo.perf import simulate_performance

__all__ = ["Customer", "PrototypeRequest", "World", "WorldConfig"]


class World:
    def __init__(self, config: WorldConfig) -> None:
        self.config = config

    @cached_property
    def growth(self):
        return simulate_growth(self.config)

    @cached_property
    def payments(self):
        return simulate_payments(self.config, self.growth)

    @cached_property
    def fx(self):
        return simulate_fx(self.config)

    @cached_property
    def ai(self):
        return simulate_ai(self.config, self.growth.prototype_requests)

    @cached_property
    def infra(self):
        return simulate_infra(self.config, self.growth, self.ai, self.fx)

    @cached_property
    def perf(self):
        return simulate_performance(self.config)

    @cached_property
    def ops(self):
        return simulate_operations(self.config)

    @cached_property
    def ci(self):
        return simulate_ci(self.config)

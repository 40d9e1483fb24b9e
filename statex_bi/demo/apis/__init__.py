"""Sandbox provider APIs of the simulated company: source name -> module.

Each module exposes `build(world) -> Sandbox` (not started) and `environment(url) -> dict[str, str]`,
the variables that point the source of the same name (statex_bi.sources.REGISTRY) at the sandbox.
Imports are lazy: `statex-bi demo` imports a module only when its source is installed.
"""

from __future__ import annotations

REGISTRY: dict[str, str] = {
    "ga4": "statex_bi.demo.apis.ga4",
    "stripe": "statex_bi.demo.apis.stripe",
    "paypal": "statex_bi.demo.apis.paypal",
    "coinbase": "statex_bi.demo.apis.coinbase",
    "fx": "statex_bi.demo.apis.fx",
    "sentry": "statex_bi.demo.apis.sentry",
    "openai": "statex_bi.demo.apis.openai",
    "cloudflare": "statex_bi.demo.apis.cloudflare",
    "github": "statex_bi.demo.apis.github",
}

"""Source registry: CLI name -> the package that builds its dlt source.

Each source package exposes `SPEC`, a `statex_bi.sources.contract.SourceSpec`. Imports are lazy so that
`statex-bi ingest stripe` does not import the GA4 client.
"""

from __future__ import annotations

import importlib

from statex_bi.exceptions import ConfigError

REGISTRY: dict[str, str] = {
    "ga4": "statex_bi.sources.ga4",
    "stripe": "statex_bi.sources.stripe",
    "paypal": "statex_bi.sources.paypal",
    "coinbase": "statex_bi.sources.coinbase",
    "fx": "statex_bi.sources.fx",
    "sentry": "statex_bi.sources.sentry",
    "openai": "statex_bi.sources.openai",
    "ai-calls": "statex_bi.sources.ai_calls",
    "billing": "statex_bi.sources.billing",
    "cloudflare": "statex_bi.sources.cloudflare",
    "test-reports": "statex_bi.sources.test_reports",
    "github": "statex_bi.sources.github",
}


def spec(name: str):
    """The `SourceSpec` registered under `name`."""
    if name not in REGISTRY:
        raise ConfigError(f"unknown source {name!r}; known sources: {', '.join(sorted(REGISTRY))}")
    return importlib.import_module(REGISTRY[name]).SPEC


def available() -> list[str]:
    """Names whose package is installed (sources arrive issue by issue)."""
    names = []
    for name, module in REGISTRY.items():
        try:
            loaded = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        # A folder without __init__.py imports as an empty namespace package: not a source yet.
        if hasattr(loaded, "SPEC"):
            names.append(name)
    return names

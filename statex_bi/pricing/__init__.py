"""AI token prices by provider, model and day, with the catalog row behind every price.

    load_catalog(path)            the override files (params/prices/*.yaml) as a Catalog
    Catalog.price(p, m, day, s)   a Price (with its row id, source, effective dates) or Unpriced
    register_prices(con, ...)     the prices of a window's calls, registered on the connection
    priced_calls_sql(scenario)    SQL: the window's calls with cost_usd and the row that priced them

Scenarios: `actual` (override rows, then genai-prices' bundled data at the call's day) and the
scenarios the files define (`seed`: the seed's 2023 planning prices).
"""

from statex_bi.pricing.catalog import ACTUAL, SEED, Catalog, Price, PriceRow, Unpriced, load_catalog, resolve_path
from statex_bi.pricing.table import price_table, priced_calls_sql, register_prices, relation_name

__all__ = [
    "ACTUAL",
    "SEED",
    "Catalog",
    "Price",
    "PriceRow",
    "Unpriced",
    "load_catalog",
    "price_table",
    "priced_calls_sql",
    "register_prices",
    "relation_name",
    "resolve_path",
]

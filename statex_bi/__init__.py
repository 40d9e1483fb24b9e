"""statex-bi: Statex's BI and cost reports on one DuckDB warehouse.

The public API for notebooks and scripts; everything else is reached through its module.
"""

from statex_bi.exceptions import StatexError
from statex_bi.periods import Period
from statex_bi.publish import metric
from statex_bi.warehouse import connect

__version__ = "0.1.0"

__all__ = ["Period", "StatexError", "__version__", "connect", "metric"]

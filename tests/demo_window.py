"""The small demo's fixed window (tests/conftest.py `small_demo`) and the clock of what reads it.

Fixed days, so that what the demo holds never depends on the day the tests run: a window counted back from
today once held more AWS credits than charges. SMALL_DEMO_TODAY is the day relative periods count back from
in processes that read the demo with them (the lab notebooks, through $STATEX_BI_TODAY): the params files'
"last full week" is then 23-29 November, inside the window.
"""

from datetime import date

SMALL_DEMO_START, SMALL_DEMO_END = date(2026, 11, 16), date(2026, 11, 30)
SMALL_DEMO_TODAY = date(2026, 12, 1)

"""What a notebook's `parameters` cell calls, so the lab shows what the published report shows.

A report notebook's parameters cell starts with::

    from statex_bi.lab import notebook_defaults

    defaults = notebook_defaults("weekly", "ai_costs")
    period_start = defaults["period_start"]
    ...

Opened in JupyterLab, the notebook then covers the params file's period (e.g. `period: last full
week`, resolved today) with the params file's values (the same budget as params/weekly.yaml).
`statex-bi run` injects its own values in a cell after this one, so a run is unaffected.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from statex_bi.config import load_dotenv_file
from statex_bi.exceptions import ParamsError
from statex_bi.runner.params import load


def notebook_defaults(params: str, notebook: str, today: date | None = None) -> dict[str, Any]:
    """The parameters `statex-bi run PARAMS` gives `notebook`, with an empty run id.

    Also loads the project's `.env` (a JupyterLab kernel starts in notebooks/ without it).

    Args:
        params: a params file: a name under params/ such as "weekly", or a YAML path.
        notebook: the notebook's file stem, one of the params file's notebooks.
        today: the day relative periods count back from (default: today).

    Returns:
        `period_start`, `period_end` (ISO dates), `run_id` ("") and the notebook's parameters.

    Raises:
        ParamsError: the params file is invalid or does not list `notebook`.
    """
    load_dotenv_file()
    spec = load(params)
    if notebook not in spec.notebooks:
        raise ParamsError(f"{spec.path} has no notebook {notebook!r}; its notebooks are: {', '.join(spec.notebooks)}")
    return spec.parameters(notebook, spec.period(today=today), run_id="")

"""Params files: which report notebooks a run executes, for which period, with which parameters.

A params file is YAML (see params/weekly.yaml)::

    title: Weekly business review
    period: last full week              # a form statex_bi.periods.resolve knows, or start:/end: dates
    timeouts: {cell: 300, notebook: 900}   # seconds; these are also the defaults
    defaults: {reporting_currency: EUR}    # for every notebook whose parameters cell defines them
    notebooks:                              # file stem under the notebooks folder -> its own parameters
      growth_revenue: {key_events: [sign_up, prototype_request], payment_window_days: 30}
    notebooks_dir: ../notebooks             # optional, relative to this file; default: the project's notebooks/
    alerts: alerts.yaml                     # optional alert rules, relative to this file (statex_bi.alerts)
    sentry_monitor: statex-bi-weekly        # optional Sentry Crons monitor slug, or {slug:, schedule:, ...}

Every notebook also gets `period_start`, `period_end` (ISO dates) and `run_id` from the runner.
A notebook gets only the parameters its `parameters` cell defines: a notebook's own parameter that
its cell does not define, or a default no notebook defines, is an error (papermill would only warn
and set it anyway, so a typo would silently change nothing).
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from statex_bi import targets
from statex_bi.alerts.rules import AlertConfig
from statex_bi.alerts.rules import load as load_alerts
from statex_bi.config import NOTEBOOKS_DIR, PARAMS_DIR, read_yaml
from statex_bi.exceptions import ParamsError
from statex_bi.periods import Period, parse_date, resolve

RESERVED = ("period_start", "period_end", "run_id")
DEFAULT_TIMEOUTS = {"cell": 300.0, "notebook": 900.0}
KEYS = ("title", "period", "start", "end", "timeouts", "defaults", "notebooks", "notebooks_dir", "alerts",
        "sentry_monitor")
_MONITOR_KEYS = ("slug", "schedule", "timezone", "checkin_margin", "max_runtime")
_STEM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class ReportParams:
    """A validated params file."""

    path: Path
    title: str
    period_spec: str | None
    start: date | None
    end: date | None
    cell_timeout: float
    notebook_timeout: float
    defaults: dict[str, Any]
    notebooks: dict[str, dict[str, Any]]
    notebooks_dir: Path
    declared: dict[str, frozenset[str] | None] = field(default_factory=dict)
    alerts: AlertConfig | None = None
    sentry_monitor: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.path.stem

    def notebook_path(self, stem: str) -> Path:
        return self.notebooks_dir / f"{stem}.ipynb"

    def parameter_sections(self) -> list[tuple[str, dict[str, Any]]]:
        """Every block of parameters a notebook receives, named by where it stands in the file."""
        return [(f"{self.path}: defaults", self.defaults)] + [
            (f"{self.path}: notebooks.{stem}", values) for stem, values in self.notebooks.items()
        ]

    def select(self, only: list[str] | None) -> list[str]:
        """The notebooks to run: all of them, or the `--only` subset in the file's order.

        Raises:
            ParamsError: a name in `only` is not one of this file's notebooks.
        """
        if not only:
            return list(self.notebooks)
        unknown = [name for name in only if name not in self.notebooks]
        if unknown:
            raise ParamsError(
                f"--only {', '.join(unknown)}: not a notebook of {self.path}; "
                f"its notebooks are: {', '.join(self.notebooks)}"
            )
        return [name for name in self.notebooks if name in only]

    def period(self, start: date | None = None, end: date | None = None, today: date | None = None) -> Period:
        """The period to report on: `--start`/`--end` override the file's period, each on its own.

        Raises:
            ParamsError: no period can be worked out, or it ends before it starts.
        """
        if start and end:
            return Period(start, end)
        if self.start and self.end:
            base = Period(self.start, self.end)
        elif self.period_spec:
            base = resolve(self.period_spec, today)
        else:
            raise ParamsError(f"{self.path}: no 'period' (or 'start' and 'end'); add one or pass --start and --end")
        return Period(start or base.start, end or base.end)

    def check_declared(self, stems: list[str]) -> None:
        """Refuse parameters the notebooks do not define: papermill would only warn and set them anyway.

        Raises:
            ParamsError: one of `stems` has no parameters cell, or its cell lacks the runner's parameters
                or one of its own; or a default is defined by none of the file's notebooks.
        """
        for stem in stems:
            names = self.declared.get(stem)
            notebook = self.notebook_path(stem)
            if names is None:
                raise ParamsError(
                    f"{self.path}: key 'notebooks.{stem}': {notebook} has no code cell tagged 'parameters'"
                )
            for name in [*RESERVED, *self.notebooks[stem]]:
                if name not in names:
                    key = f"notebooks.{stem}.{name}" if name in self.notebooks[stem] else f"notebooks.{stem}"
                    raise ParamsError(
                        f"{self.path}: key {key!r}: the parameters cell of {notebook} does not define {name!r} "
                        f"(it defines: {', '.join(sorted(names))})"
                    )
        for name in self.defaults:
            if not any(name in (names or ()) for names in self.declared.values()):
                raise ParamsError(f"{self.path}: key 'defaults.{name}': no notebook's parameters cell defines it")

    def parameters(self, stem: str, period: Period, run_id: str) -> dict[str, Any]:
        """What papermill injects into one notebook: the defaults it declares, then its own, then the runner's."""
        declared = self.declared.get(stem)
        return {
            **{k: v for k, v in self.defaults.items() if declared is None or k in declared},
            **self.notebooks[stem],
            "period_start": period.start.isoformat(),
            "period_end": period.end.isoformat(),
            "run_id": run_id,
        }


def find(spec: str | Path) -> Path:
    """The params file meant by `spec`: a path to a YAML file, or a name under params/ such as 'weekly'.

    Raises:
        ParamsError: no such file.
    """
    path = Path(spec).expanduser()
    if path.is_file():
        return path.resolve()
    if path.suffix == "" and path.name == str(spec):
        for suffix in (".yaml", ".yml"):
            candidate = PARAMS_DIR / f"{spec}{suffix}"
            if candidate.is_file():
                return candidate
    known = sorted(p.stem for p in PARAMS_DIR.glob("*.y*ml")) if PARAMS_DIR.is_dir() else []
    hint = f"; known names: {', '.join(known)}" if known else ""
    raise ParamsError(f"no params file {str(spec)!r} (a YAML path or a name under {PARAMS_DIR}){hint}")


def load(spec: str | Path) -> ReportParams:
    """Read and validate a params file.

    Args:
        spec: a YAML path, or a name under params/.

    Returns:
        The validated file; every listed notebook exists.

    Raises:
        ParamsError: naming the file and the offending key.
    """
    path = find(spec)
    data = read_yaml(path, loader=_DatesAsText)
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: must be a mapping with at least a 'notebooks' key")
    unknown = sorted(set(map(str, data)) - set(KEYS))
    if unknown:
        raise ParamsError(f"{path}: unknown key {unknown[0]!r}; allowed keys: {', '.join(KEYS)}")

    def fail(key: str, message: str) -> ParamsError:
        return ParamsError(f"{path}: key {key!r}: {message}")

    title = data.get("title", path.stem)
    if not isinstance(title, str) or not title.strip():
        raise fail("title", "must be a non-empty string")
    period_spec, start, end = _period(data, fail)
    cell_timeout, notebook_timeout = _timeouts(data.get("timeouts"), fail)
    defaults = _parameters(data.get("defaults"), "defaults", fail)
    if "notebooks_dir" in data and not isinstance(data["notebooks_dir"], str):
        raise fail("notebooks_dir", "must be a folder path relative to the params file")
    notebooks_dir = (path.parent / data["notebooks_dir"]).resolve() if "notebooks_dir" in data else NOTEBOOKS_DIR
    notebooks_raw = data.get("notebooks")
    if not isinstance(notebooks_raw, dict) or not notebooks_raw:
        raise fail("notebooks", "must map at least one notebook name (file stem) to its parameters")
    notebooks = {}
    for stem, own in notebooks_raw.items():
        key = f"notebooks.{stem}"
        if not isinstance(stem, str) or not _STEM.match(stem):
            raise fail(key, "a notebook name is a file stem such as 'growth_revenue'")
        if not (notebooks_dir / f"{stem}.ipynb").is_file():
            raise fail(key, f"no notebook {notebooks_dir / f'{stem}.ipynb'}")
        notebooks[stem] = _parameters(own, key, fail)
    declared = {stem: declared_parameters(notebooks_dir / f"{stem}.ipynb") for stem in notebooks}
    return ReportParams(
        path=path,
        title=title.strip(),
        period_spec=period_spec,
        start=start,
        end=end,
        cell_timeout=cell_timeout,
        notebook_timeout=notebook_timeout,
        defaults=defaults,
        notebooks=notebooks,
        notebooks_dir=notebooks_dir,
        declared=declared,
        alerts=_alerts(path, data, fail),
        sentry_monitor=_monitor(data.get("sentry_monitor"), fail),
    )


def _alerts(path: Path, data: dict, fail) -> AlertConfig | None:
    if "alerts" not in data:
        return None
    if not isinstance(data["alerts"], str):
        raise fail("alerts", "must be the path of an alert rules file, relative to the params file")
    return load_alerts((path.parent / data["alerts"]).resolve())


def _monitor(raw: Any, fail) -> dict[str, Any] | None:
    if raw is None:
        return None
    monitor = {"slug": raw} if isinstance(raw, str) else raw
    if not isinstance(monitor, dict) or not isinstance(monitor.get("slug"), str) or not monitor["slug"].strip():
        raise fail("sentry_monitor", "must be a monitor slug, or a mapping with at least 'slug'")
    unknown = sorted(set(map(str, monitor)) - set(_MONITOR_KEYS))
    if unknown:
        raise fail(f"sentry_monitor.{unknown[0]}", f"unknown; allowed: {', '.join(_MONITOR_KEYS)}")
    return dict(monitor)


class _DatesAsText(yaml.SafeLoader):
    """YAML's safe loader, keeping date-like scalars as text: an impossible date such as 2026-13-01
    then reaches `parse_date` and is reported with its file and key, instead of crashing the loader."""


_DatesAsText.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_scalar)


def declared_parameters(notebook: Path) -> frozenset[str] | None:
    """The names the notebook's first cell tagged `parameters` assigns at top level (None: no such cell).

    Raises:
        ParamsError: the notebook is not valid JSON or its parameters cell is not valid Python.
    """
    try:
        cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError) as exc:
        raise ParamsError(f"{notebook}: not a readable notebook: {exc}") from None
    for cell in cells:
        if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            source = cell.get("source", "")
            try:
                tree = ast.parse("".join(source) if isinstance(source, list) else source)
            except SyntaxError as exc:
                raise ParamsError(f"{notebook}: its parameters cell is not valid Python: {exc}") from None
            names = set()
            for node in tree.body:
                targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
                names |= {t.id for t in targets if isinstance(t, ast.Name)}
            return frozenset(names)
    return None


def _period(data: dict, fail) -> tuple[str | None, date | None, date | None]:
    has_dates = "start" in data or "end" in data
    if "period" in data and has_dates:
        raise fail("period", "give either 'period' or 'start' and 'end', not both")
    if has_dates:
        if "start" not in data or "end" not in data:
            raise fail("start" if "start" not in data else "end", "'start' and 'end' go together")
        start, end = _date(data, "start", fail), _date(data, "end", fail)
        if end < start:
            raise fail("end", f"{end} is before start {start}")
        return None, start, end
    spec = data.get("period")
    if spec is None:
        return None, None, None
    if not isinstance(spec, str):
        raise fail("period", f"must be text such as 'last full week', got {spec!r}")
    try:
        resolve(spec)
    except ParamsError as exc:
        raise fail("period", str(exc)) from None
    return spec, None, None


def _date(data: dict, key: str, fail) -> date:
    try:
        return parse_date(data[key], key)
    except ParamsError:
        raise fail(key, f"{data[key]!r} is not a date (YYYY-MM-DD)") from None


def _timeouts(raw: Any, fail) -> tuple[float, float]:
    if raw is None:
        return DEFAULT_TIMEOUTS["cell"], DEFAULT_TIMEOUTS["notebook"]
    if not isinstance(raw, dict):
        raise fail("timeouts", "must be a mapping such as {cell: 300, notebook: 900}")
    unknown = sorted(set(map(str, raw)) - set(DEFAULT_TIMEOUTS))
    if unknown:
        raise fail(f"timeouts.{unknown[0]}", "unknown; use 'cell' and 'notebook' (seconds)")
    values = []
    for name, default in DEFAULT_TIMEOUTS.items():
        value = raw.get(name, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise fail(f"timeouts.{name}", f"must be a positive number of seconds, got {value!r}")
        values.append(float(value))
    return values[0], values[1]


def _parameters(raw: Any, key: str, fail) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise fail(key, f"must be a mapping of parameter name to value, got {raw!r}")
    out = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise fail(f"{key}.{name}", "a parameter name must be a Python identifier")
        if name in RESERVED:
            raise fail(f"{key}.{name}", "is set by the runner (use the period, --start/--end or --run-id)")
        out[name] = _plain(targets.resolve(value, f"{key}.{name}"))
    return out


def _plain(value: Any) -> Any:
    """YAML values as papermill can inject them: dates become ISO strings."""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value

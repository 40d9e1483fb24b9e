"""The plan's numbers, each with one home: `values` in params/targets.yaml.

An API p95 of 100 ms, errors under 5%, LCP under 2.5 s: each is defined once, with its unit and where
the plan sets it, and everything else refers to it by name as `{target: NAME}`: alert rules
(`above: {target: api_p95_ms}`), the claims ledger (`holds_if: {at_most: {target: api_p95_ms}}`), the
executive summary's targets and parameter sets (`p95_target_ms: {target: api_p95_ms}`).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from statex_bi.config import PARAMS_DIR, read_yaml
from statex_bi.exceptions import ParamsError

TARGETS_FILE = PARAMS_DIR / "targets.yaml"


def values(path: Path | None = None) -> dict[str, float]:
    """Every named target of `path` (params/targets.yaml) and its number.

    Raises:
        ParamsError: the file cannot be read, or an entry has no numeric `value`.
    """
    return _values(path or TARGETS_FILE)


@functools.cache
def _values(path: Path) -> dict[str, float]:
    data = read_yaml(path) or {}
    entries = data.get("values") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        raise ParamsError(f"{path}: must hold a 'values' mapping of target name to {{value, unit, source}}")
    out = {}
    for name, entry in entries.items():
        number = entry.get("value") if isinstance(entry, dict) else None
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise ParamsError(f"{path}: values.{name}: 'value' must be a number, got {number!r}")
        out[str(name)] = float(number)
    return out


def is_reference(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"target"}


def resolve(value: Any, where: str, path: Path | None = None) -> Any:
    """`value` itself, or the number of the target it names (`{target: NAME}`).

    Raises:
        ParamsError: the named target does not exist (naming `where` and the known targets).
    """
    if not is_reference(value):
        return value
    known = values(path)
    name = value["target"]
    if name not in known:
        raise ParamsError(f"{where}: no target {name!r} in {(path or TARGETS_FILE).name}; known targets: "
                          f"{', '.join(sorted(known))}")
    return known[name]

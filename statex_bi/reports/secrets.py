"""Keeping credentials out of reports: refuse them as parameters, find them in what a run wrote.

Papermill writes every parameter into the executed notebook twice (the injected cell and the
notebook metadata), so a secret must never be one. A notebook can still print a credential it read
from the environment; every file a run writes is therefore searched for the values of
secret-looking environment variables (`config.secret_env_values()`), in the raw, HTML-escaped and
JSON-escaped forms a value takes in .html, .ipynb and .json files.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from statex_bi.config import SECRET_NAME
from statex_bi.exceptions import SecretParameterError
from statex_bi.reports.params import ReportParams


@dataclass(frozen=True)
class Leak:
    """The value of environment variable `variable` appears in `path`."""

    path: Path
    variable: str


def _names(params: dict[str, Any], where: str) -> Iterator[tuple[str, Any, str]]:
    """Every parameter name with its value, nested mapping keys included."""
    for name, value in params.items():
        yield name, value, where
        if isinstance(value, dict):
            yield from _names(value, f"{where}.{name}")


def refuse_secret_parameters(params: ReportParams, secrets: dict[str, str]) -> None:
    """Refuse a params file that would put a credential into a notebook.

    Args:
        params: the validated params file.
        secrets: secret-looking environment variables and their values.

    Raises:
        SecretParameterError: a parameter's name looks like a secret (`config.SECRET_NAME`), or its
            value is the value of a secret environment variable.
    """
    sections = [("defaults", params.defaults)] + [(f"notebooks.{s}", p) for s, p in params.notebooks.items()]
    for section, values in sections:
        for name, value, where in _names(values, f"{params.path}: {section}"):
            if SECRET_NAME.search(name):
                raise SecretParameterError(name, where)
            text = value if isinstance(value, str) else str(value)
            for variable, secret in secrets.items():
                if secret in text:
                    raise SecretParameterError(name, f"{where} (its value holds the value of ${variable})")


def _forms(value: str) -> set[bytes]:
    """The byte strings `value` becomes when written raw, into HTML, or into JSON."""
    escaped = json.dumps(value)[1:-1]
    forms = {value, html.escape(value), html.escape(value, quote=False), escaped, html.escape(escaped)}
    return {form.encode("utf-8") for form in forms}


def scan(paths: list[Path], secrets: dict[str, str]) -> list[Leak]:
    """Files among `paths` that contain a secret value.

    Args:
        paths: files to read (missing ones are skipped).
        secrets: variable name -> value.

    Returns:
        One Leak per (file, variable) found.
    """
    needles = {variable: _forms(value) for variable, value in secrets.items()}
    leaks = []
    for path in paths:
        if not path.is_file():
            continue
        content = path.read_bytes()
        leaks.extend(Leak(path, variable) for variable, forms in needles.items() if any(f in content for f in forms))
    return leaks


def redact(text: str, secrets: dict[str, str]) -> str:
    """`text` with every secret value replaced by `[redacted $NAME]` (longest values first)."""
    for variable, value in sorted(secrets.items(), key=lambda item: -len(item[1])):
        for form in sorted({f.decode("utf-8") for f in _forms(value)}, key=len, reverse=True):
            text = text.replace(form, f"[redacted ${variable}]")
    return text


def scrub(value: Any, secrets: dict[str, str]) -> Any:
    """A copy of a JSON-like structure with every string redacted (for Sentry's before_send)."""
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {key: scrub(item, secrets) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(item, secrets) for item in value]
    return value

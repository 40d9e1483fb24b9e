"""Keeping credentials out of reports: refuse them as parameters, find them in what a run wrote.

Papermill writes every parameter into the executed notebook twice (the injected cell and the
notebook metadata), so a secret must never be one. A notebook can still print a credential it read
from the environment; every file a run writes is therefore searched, before anything is published,
for the values of secret-looking environment variables (`config.secret_env_values()`): raw, HTML-,
JSON-, repr- and URL-escaped (and combinations, such as a repr inside HTML inside a notebook's
JSON), and for their first PREFIX_CHARS characters alone, which is what a truncated DataFrame cell
shows.
"""

from __future__ import annotations

import functools
import html
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from statex_bi.config import SECRET_NAME
from statex_bi.exceptions import SecretParameterError


@dataclass(frozen=True)
class Leak:
    """The value of environment variable `variable` appears in `path`."""

    path: Path
    variable: str


def _names(params: dict[str, Any], where: str) -> Iterator[tuple[str, Any, str]]:
    """Every parameter name with its value, keys of nested mappings included, inside lists too."""
    for name, value in params.items():
        yield name, value, where
        yield from _nested(value, f"{where}.{name}")


def _nested(value: Any, where: str) -> Iterator[tuple[str, Any, str]]:
    if isinstance(value, dict):
        yield from _names(value, where)
    elif isinstance(value, list):
        for position, item in enumerate(value):
            yield from _nested(item, f"{where}[{position}]")


def refuse_secret_parameters(sections: Iterable[tuple[str, dict[str, Any]]], secrets: dict[str, str]) -> None:
    """Refuse parameters that would put a credential into a notebook.

    Args:
        sections: (where, parameters) pairs, e.g. ("params/weekly.yaml: defaults", {...}).
        secrets: secret-looking environment variables and their values.

    Raises:
        SecretParameterError: a parameter's name looks like a secret (`config.SECRET_NAME`), or its
            value is the value of a secret environment variable.
    """
    for section, values in sections:
        for name, value, where in _names(values, section):
            if SECRET_NAME.search(name):
                raise SecretParameterError(name, where)
            text = value if isinstance(value, str) else str(value)
            for variable, secret in secrets.items():
                if secret in text:
                    raise SecretParameterError(name, f"{where} (its value holds the value of ${variable})")


# A DataFrame cuts long cells ("sk-live-abcdefgh..."): a secret's first characters are searched for too.
PREFIX_CHARS = 12
# Escapes a value goes through on its way into a file, each applied to a whole string or to a prefix.
_ENCODINGS: tuple[Callable[[str], str], ...] = (
    html.escape,  # HTML attribute or text
    functools.partial(html.escape, quote=False),  # HTML text, as Jinja's and IPython's escapes leave quotes
    lambda text: json.dumps(text)[1:-1],  # JSON, \u-escaped (papermill, json.dumps)
    lambda text: json.dumps(text, ensure_ascii=False)[1:-1],  # JSON as nbformat writes .ipynb files
    lambda text: repr(text)[1:-1],  # Python repr (a printed dict, a DataFrame cell, a traceback)
    lambda text: repr(text + "'\"")[1:-4],  # repr of a longer string holding both quotes: ' escaped
    functools.partial(quote, safe=""),  # URL component
    quote,  # URL path ('/' kept)
    quote_plus,  # URL query
)
_DEPTH = 3  # e.g. a repr shown in HTML saved in a notebook's JSON: json(html(repr(value)))


@functools.cache
def forms(value: str) -> frozenset[str]:
    """Every text `value` becomes after up to three escapes (raw, HTML, JSON, repr, URL, in any order)."""
    found = {value}
    layer = {value}
    for _ in range(_DEPTH):
        layer = {encode(text) for text in layer for encode in _ENCODINGS} - found
        found |= layer
    return frozenset(found)


def needles(value: str) -> frozenset[str]:
    """What to search for: the value's first PREFIX_CHARS characters (the whole value if shorter), escaped."""
    return forms(value[:PREFIX_CHARS])


def scan(paths: list[Path], secrets: dict[str, str]) -> list[Leak]:
    """Files among `paths` that contain a secret value, or its first PREFIX_CHARS characters, in any escape.

    Args:
        paths: files to read (missing ones are skipped).
        secrets: variable name -> value.

    Returns:
        One Leak per (file, variable) found.
    """
    searched = {variable: [n.encode("utf-8") for n in needles(value)] for variable, value in secrets.items()}
    leaks = []
    for path in paths:
        if not path.is_file():
            continue
        content = path.read_bytes()
        leaks.extend(Leak(path, variable) for variable, found in searched.items() if any(n in content for n in found))
    return leaks


def redact(text: str, secrets: dict[str, str]) -> str:
    """`text` with every secret value, or its first characters, replaced by `[redacted $NAME]`."""
    for variable, value in sorted(secrets.items(), key=lambda item: -len(item[1])):
        for form in sorted(forms(value) | needles(value), key=len, reverse=True):
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

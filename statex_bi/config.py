"""Paths and settings, read from the environment (and a local .env) in one place."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs
import yaml

from statex_bi.exceptions import ConfigError, ParamsError, StatexError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
PARAMS_DIR = PROJECT_ROOT / "params"
MODELS_DIR = Path(__file__).resolve().parent / "models"

# Names whose values are credentials: refused as parameters, scanned for in outputs. "key" and "token"
# count only as the last word (STRIPE_API_KEY, auth_token), so parameters such as key_events or
# max_tokens are not mistaken for secrets.
SECRET_NAME = re.compile(
    r"secret|passw(or)?d|dsn|credential|api_?key|private_?key|(^|_)(key|token)$", re.IGNORECASE
)


def load_dotenv_file(path: Path | None = None) -> None:
    """Load `.env` (cwd first, then the project root) without overriding the real environment.

    The CLI calls it at start; notebooks reach it through `statex_bi.lab` and the report helpers, so a
    kernel started by JupyterLab in notebooks/ reads the project's `.env` too.
    """
    from dotenv import load_dotenv

    for candidate in [path] if path else [Path.cwd() / ".env", PROJECT_ROOT / ".env"]:
        if candidate and candidate.is_file():
            load_dotenv(candidate, override=False)
            return


def env(name: str, default: str | None = None) -> str | None:
    """An environment variable, with empty strings treated as unset."""
    value = os.environ.get(name, "")
    return value if value.strip() else default


def require_env(name: str, purpose: str) -> str:
    value = env(name)
    if value is None:
        raise ConfigError(f"${name} is not set; it is needed for {purpose} (see docs/configuration.md)")
    return value


def db_path() -> Path:
    """The warehouse file: $STATEX_BI_DB (a relative path is taken from the working directory), else
    data/statex.duckdb under the project root, wherever the process runs (a kernel in notebooks/ too)."""
    value = env("STATEX_BI_DB")
    return Path(value).expanduser().resolve() if value else PROJECT_ROOT / "data" / "statex.duckdb"


# Where the connectors' raw tables go when they do not go into the warehouse file: dlt's `filesystem`
# destination writes Parquet there (statex_bi.transform.lake). Unset: into the warehouse, as always.
RAW_URL_ENV = "STATEX_BI_RAW_URL"
# How a Spark cluster names the same store, when not as dlt does (statex_bi.transform.spark.spark_raw_url).
SPARK_RAW_URL_ENV = "STATEX_BI_SPARK_RAW_URL"
# The object stores dlt's filesystem destination writes to (fsspec's names), besides local folders.
REMOTE_SCHEMES = ("s3", "gs", "gcs", "az", "abfs", "abfss", "memory")


def raw_url() -> str | None:
    """$STATEX_BI_RAW_URL: the folder (an absolute path) or object-store URL (s3://bucket/prefix, gs://, az://)
    that holds the raw tables as Parquet; None when unset (the raw tables live in the warehouse file).

    Raises:
        ConfigError: a URL of a scheme dlt's filesystem destination does not write to.
    """
    value = env(RAW_URL_ENV)
    if value is None:
        return None
    value = value.strip()
    scheme = urlsplit(value).scheme.lower()
    if scheme == "file":
        value, scheme = urlsplit(value).path, ""
    if len(scheme) > 1 and scheme not in REMOTE_SCHEMES:  # one letter: a Windows drive
        raise ConfigError(f"${RAW_URL_ENV} must be a folder or an object-store URL "
                          f"({', '.join(f'{s}://' for s in REMOTE_SCHEMES[:-1])}), got {scheme}://")
    if scheme in REMOTE_SCHEMES:
        return value.rstrip("/")
    return str(Path(value).expanduser().resolve())


def spark_raw_url() -> str | None:
    """How Spark names the lake: $STATEX_BI_SPARK_RAW_URL when set (a cluster's own name for the store, e.g.
    abfss://container@account.dfs.core.windows.net/prefix), else `raw_url()` with Hadoop's scheme for S3
    (s3a://); None without a lake."""
    url = raw_url()
    if url is None:
        return None
    return env(SPARK_RAW_URL_ENV) or re.sub(r"^s3://", "s3a://", url)


# Seconds each process of a report run waits for a locked warehouse (`run --wait`); the runner sets it
# for the notebooks it starts.
WAIT_ENV = "STATEX_BI_WAIT"


def lock_wait() -> float:
    """$STATEX_BI_WAIT as seconds (0 when unset): how long opening the warehouse waits for a lock."""
    value = env(WAIT_ENV, "0")
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigError(f"${WAIT_ENV} must be a number of seconds, got {value!r}") from None
    if not 0 <= seconds < float("inf"):
        raise ConfigError(f"${WAIT_ENV} must be a number of seconds, 0 or more, got {value!r}")
    return seconds


# What can always be made again but is slow to make: dbt's parse of the project, shared by every warehouse, and
# the Vega bundle the published pages inline.
CACHE_DIR_ENV = "STATEX_BI_CACHE_DIR"


def cache_dir() -> Path:
    """$STATEX_BI_CACHE_DIR, else the user's cache folder for statex-bi (~/.cache/statex-bi on Linux)."""
    value = env(CACHE_DIR_ENV)
    return Path(value).expanduser().resolve() if value else platformdirs.user_cache_path("statex-bi")


def outputs_dir() -> Path:
    """Where reports are published: $STATEX_BI_OUTPUTS, else outputs/ under the project root."""
    value = env("STATEX_BI_OUTPUTS")
    return Path(value).expanduser().resolve() if value else PROJECT_ROOT / "outputs"


def _names_a_file(value: str) -> bool:
    """Whether a value is the path of an existing file or folder (GOOGLE_APPLICATION_CREDENTIALS=/srv/key.json)."""
    try:
        return Path(value.strip()).expanduser().exists()
    except (OSError, ValueError):  # too long for a path, or holding a NUL: not one
        return False


# Webhook URLs are their own credentials though their names do not say so. Their secret part is the
# path and query, which is also what error texts quote ("Max retries exceeded with url: /services/...").
CREDENTIAL_URLS = ("STATEX_BI_SLACK_WEBHOOK_URL", "STATEX_BI_ALERT_WEBHOOK_URL")


def credential_url_paths() -> dict[str, str]:
    """Each webhook URL variable that is set -> its URL's path and query (the part that grants access)."""
    found = {}
    for name in CREDENTIAL_URLS:
        parts = urlsplit((env(name) or "").strip())
        secret = parts.path + (f"?{parts.query}" if parts.query else "")
        if len(secret) >= 6:
            found[name] = secret
    return found


def secret_env_values() -> dict[str, str]:
    """Environment variables whose names look secret, with values long enough to search for.

    A value that is the path of a file (a credentials file) is left out: the path is no secret, the
    file's content is, and its first characters are those of every other path in the project, so
    searching for it would fail every report. The webhook URLs are in, by their path and query
    (`credential_url_paths`).
    """
    named = {
        k: v for k, v in os.environ.items()
        if SECRET_NAME.search(k) and len(v.strip()) >= 6 and not _names_a_file(v)
    }
    return {**named, **credential_url_paths()}


def read_yaml(path: Path, *, loader: type[yaml.SafeLoader] = yaml.SafeLoader,
              error: type[StatexError] = ParamsError) -> Any:
    """A YAML file's content (None when empty): the one reader of every params, rules and catalog file.

    Raises:
        `error` (ParamsError unless told): in one line naming the file, and the line and column where the
        YAML is malformed.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - always a SafeLoader (or a subclass)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise error(f"{path}{where}: not valid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None

"""Every error statex-bi raises on purpose.

    StatexError
    ├── ConfigError            a setting is missing or malformed (names the variable or key)
    ├── ParamsError            a params file or papermill parameter is invalid
    │   └── SecretParameterError   a secret-looking name was passed as a parameter
    ├── SidecarError           a line of a notebook's published metrics is invalid (names file, line, field)
    ├── DiskFullError          a run's outputs did not fit on the disk (exit code 1; outputs/ untouched)
    ├── WarehouseError
    │   ├── WarehouseLockedError   another process holds the DuckDB file
    │   └── MissingDataError       a KPI needs models whose source is not loaded (names them)
    ├── SourceError            an API call failed for good (names source and endpoint)
    │   ├── RecordError        one record could not be parsed (names source, field, record)
    │   └── FileTooLargeError  an input file holds more than the size allowed (names source and file)
    ├── ModelError             a SQL model failed to build (names the model file)
    ├── DataTestError          a dbt data test of severity error failed (names model, test, rows)
    └── PricingError           the price catalog is malformed
"""

from __future__ import annotations


class StatexError(Exception):
    """Base class: catch this to handle any statex-bi failure."""


class ConfigError(StatexError):
    """A setting is missing or malformed."""


class ParamsError(StatexError):
    """A params file or a report parameter is invalid."""


class SecretParameterError(ParamsError):
    """A parameter whose name looks secret was passed to a notebook."""

    def __init__(self, name: str, where: str) -> None:
        self.name = name
        self.where = where
        super().__init__(
            f"parameter {name!r} in {where} looks like a secret; secrets are read from the "
            "environment or .env, never passed as parameters"
        )


class SidecarError(StatexError):
    """A line of a notebook's published metrics (its sidecar file) is invalid."""

    def __init__(self, path: str, line: int, message: str) -> None:
        self.path = path
        self.line = line
        super().__init__(f"{path}, line {line}: {message}")


class DiskFullError(StatexError):
    """A run could not write its outputs for want of space; what was published before is left as it was."""

    exit_code = 1  # the run failed, like a failed report; the command itself was valid

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"disk full: could not write {path}; outputs/ is left as it was before this run")


class WarehouseError(StatexError):
    """The DuckDB warehouse cannot be opened or migrated."""


class WarehouseLockedError(WarehouseError):
    """Another process holds the warehouse file."""

    def __init__(self, path: str, holder: str) -> None:
        self.path = path
        self.holder = holder
        super().__init__(
            f"the warehouse {path} is locked by {holder}; wait for it to finish "
            "or retry with --wait SECONDS"
        )


class MissingDataError(WarehouseError):
    """A KPI needs models that are not built, or built empty, because their source is not loaded."""

    def __init__(self, what: str, models: list[str], hint: str) -> None:
        self.what = what
        self.models = models
        one = len(models) == 1
        super().__init__(f"{what} needs {', '.join(models)}, which {'is' if one else 'are'} not built or "
                         f"{'holds' if one else 'hold'} no loaded data: {hint}")


class SourceError(StatexError):
    """A source could not be loaded; nothing from this attempt was kept."""

    def __init__(self, source: str, endpoint: str, message: str) -> None:
        self.source = source
        self.endpoint = endpoint
        super().__init__(f"{source}: {endpoint}: {message}")


class RecordError(SourceError):
    """One record could not be parsed."""

    def __init__(self, source: str, endpoint: str, record_id: str, field: str, message: str) -> None:
        self.record_id = record_id
        self.field = field
        super().__init__(source, endpoint, f"record {record_id}: field {field!r}: {message}")


class FileTooLargeError(SourceError):
    """An input file holds more than $STATEX_BI_MAX_FILE_MB after decompression: refused, not read on."""


class ModelError(StatexError):
    """A SQL model failed to build."""

    def __init__(self, model: str, message: str) -> None:
        self.model = model
        super().__init__(f"model {model}: {message}")


class DataTestError(StatexError):
    """A data test of severity error failed on the built models: what they hold must not be published."""

    def __init__(self, failures: list[str], skipped: int) -> None:
        self.failures = failures
        self.skipped = skipped
        after = f"; {skipped} model(s) and test(s) downstream were skipped" if skipped else ""
        super().__init__(f"dbt build: {len(failures)} data test(s) of severity error failed{after}, so nothing "
                         f"downstream is refreshed: " + " | ".join(failures))


class PricingError(StatexError):
    """The price catalog is malformed."""


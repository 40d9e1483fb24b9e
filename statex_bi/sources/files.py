"""Files from outside, read with bounded memory whatever they hold: billing and ai-calls read through
here (test reports, parsed whole, have a size limit of their own: test_reports/settings.py).

- A line longer than MAX_LINE_BYTES is a bad record: it is read past in blocks, never held whole.
- A file is refused, with one line, once it holds more than $STATEX_BI_MAX_FILE_MB megabytes after
  decompression (default DEFAULT_MAX_FILE_MB): a few kilobytes of gzip can expand to gigabytes.
- Only the first $STATEX_BI_QUARANTINE_PER_FILE bad records of a file are quarantined (default
  DEFAULT_QUARANTINE_PER_FILE); the others are counted, not kept.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from statex_bi.config import env
from statex_bi.exceptions import ConfigError, FileTooLargeError

MAX_LINE_BYTES = 1 << 20
DEFAULT_MAX_FILE_MB = 2_048
DEFAULT_QUARANTINE_PER_FILE = 100
_BLOCK = 1 << 16  # what is read at a time: a line longer than this is put together from blocks


def _whole_number(name: str, default: int) -> int:
    value = env(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise ConfigError(f"${name} must be a whole number above zero, got {value!r}")
    return number


def max_file_bytes() -> int:
    """The most a file may hold after decompression ($STATEX_BI_MAX_FILE_MB, in megabytes).

    Raises:
        ConfigError: the variable is not a whole number above zero.
    """
    return _whole_number("STATEX_BI_MAX_FILE_MB", DEFAULT_MAX_FILE_MB) * 1_000_000


def quarantine_per_file() -> int:
    """How many bad records of one file are quarantined ($STATEX_BI_QUARANTINE_PER_FILE); the rest are counted.

    Raises:
        ConfigError: the variable is not a whole number above zero.
    """
    return _whole_number("STATEX_BI_QUARANTINE_PER_FILE", DEFAULT_QUARANTINE_PER_FILE)


def too_large(source: str, path: Path | str, limit: int) -> FileTooLargeError:
    return FileTooLargeError(source, str(path), f"refused: it holds more than {limit / 1e6:,.0f} MB (after "
                             "decompression); raise $STATEX_BI_MAX_FILE_MB to read it")


def open_binary(path: Path) -> BinaryIO:
    """The file's bytes, decompressed when its name ends in .gz."""
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else path.open("rb")


@dataclass(frozen=True)
class LongLine:
    """Stands for a line over MAX_LINE_BYTES, which was read past, not kept."""

    size: int


class Lines:
    """The lines of a binary stream (each with its newline), a LongLine for each one over MAX_LINE_BYTES.

    Raises (while iterating):
        FileTooLargeError: more than `limit` bytes were read.
    """

    def __init__(self, stream: BinaryIO, source: str, path: Path | str, limit: int) -> None:
        self.stream, self.source, self.path, self.limit = stream, source, path, limit
        self.read = 0

    def __iter__(self) -> Iterator[bytes | LongLine]:
        return self

    def _take(self, size: int) -> bytes:
        data = self.stream.readline(size)
        self.read += len(data)
        if self.read > self.limit:
            raise too_large(self.source, self.path, self.limit)
        return data

    def __next__(self) -> bytes | LongLine:
        part = self._take(_BLOCK)
        if not part:
            raise StopIteration
        if part.endswith(b"\n") or len(part) < _BLOCK:  # the whole line, or the last one
            return part
        parts, size = [part], len(part)
        while not part.endswith(b"\n"):
            part = self._take(_BLOCK)
            if not part:
                break
            size += len(part)
            if size > MAX_LINE_BYTES + 1:
                parts.clear()  # too long: counted from here on, not kept
            else:
                parts.append(part)
        return LongLine(size) if size > MAX_LINE_BYTES + 1 else b"".join(parts)


def long_line_message(line: LongLine) -> str:
    return f"a line of {line.size:,} bytes, over the {MAX_LINE_BYTES:,} a record may have; it was not read"

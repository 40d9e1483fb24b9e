"""Which FOCUS files make up the current delivery of each export and billing period.

Providers re-deliver a billing period's bill as it grows: AWS Data Exports rewrite
`<export>/data/BILLING_PERIOD=YYYY-MM/` up to three times a day (with `CREATE_NEW_REPORT` each execution
in its own folder, which `aws s3 sync` keeps), Azure exports write `<export>/<YYYYMMDD-YYYYMMDD>/<runId>/`
for the open month. A *slot* is one export's billing period (the partition folder), or, for a file
outside such a layout, the file's path. Each slot holds one current delivery: the newest execution
(named by the provider's manifest, AWS `*-Manifest.json` `executionId` / Azure `manifest.json`
`runInfo.runId`, where present; else the execution folder), whose files replace every earlier row of
the slot. Files of older executions, or left in the folder but not listed by the slot's newest
manifest, are superseded and never loaded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

# AWS: <export>/data/BILLING_PERIOD=2024-09[/<executionId>]/<export>-00001.csv.gz
_AWS = re.compile(r"^(?P<export>.+)/data/BILLING_PERIOD=(?P<period>\d{4}-\d{2})(?:/(?P<run>[^/]+))?/[^/]+$")
# Azure: <export>/20240901-20240930[/<runId>]/part_0_0001.parquet
_AZURE = re.compile(r"^(?P<export>.+)/(?P<period>\d{8}-\d{8})(?:/(?P<run>[^/]+))?/[^/]+$")


@dataclass(frozen=True)
class Manifest:
    """One provider manifest: the execution it names, when it was delivered, the files it lists."""

    path: Path
    execution: str
    delivered_at: datetime
    listed: tuple[str, ...]  # the data files' URIs / blob names, as written


@dataclass
class Delivery:
    """The files of one execution of one slot."""

    slot: str
    execution: str
    delivered_at: datetime
    files: list[Path] = field(default_factory=list)
    manifest: Path | None = None


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC).replace(tzinfo=None)


def _when(text: object, fallback: datetime) -> datetime:
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        return fallback
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def read_manifest(path: Path) -> Manifest | None:
    """An AWS Data Exports (`dataFiles`, `executionId`) or Azure export (`blobs`, `runInfo`) manifest;
    None for any other JSON file or one that does not parse."""
    try:
        body = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return None
    if not isinstance(body, dict):
        return None
    written = _mtime(path)
    if isinstance(body.get("dataFiles"), list):
        return Manifest(path, str(body.get("executionId") or path.parent.name), written,
                        tuple(str(uri) for uri in body["dataFiles"]))
    if isinstance(body.get("blobs"), list):
        run = body.get("runInfo") or {}
        return Manifest(path, str(run.get("runId") or path.parent.name), _when(run.get("submittedTime"), written),
                        tuple(str(blob.get("blobName")) for blob in body["blobs"] if isinstance(blob, dict)))
    return None


def _tail_matches(listed: str, path: Path) -> bool:
    """A manifest entry (an s3:// URI or a blob name) names a local file when the file's name and its
    folder match the entry's last two parts (a sync keeps the layout under some local root)."""
    entry = PurePosixPath(listed.split("://", 1)[-1])
    return entry.parts[-2:] == path.parts[-2:]


def slot_of(path: Path) -> tuple[str, str]:
    """(slot, execution folder) of a FOCUS file: the export's partition for the AWS and Azure layouts,
    else the file's own path with no execution."""
    text = path.as_posix()
    for layout in (_AWS, _AZURE):
        match = layout.match(text)
        if match:
            return f"{match['export']}/{match['period']}", match["run"] or ""
    return text, ""


def plan(files: Iterable[Path], manifests: Iterable[Path]) -> tuple[list[Delivery], list[tuple[Path, Delivery]]]:
    """The current delivery of each slot, and each superseded file with the delivery that replaces it.

    A slot's newest delivery is its newest manifest's (by the manifest's submitted time, else when it was
    written), or, without a manifest, its newest execution folder (by its newest file).
    """
    read = [m for m in (read_manifest(path) for path in manifests) if m is not None]
    executions: dict[str, dict[str, Delivery]] = {}
    for path in files:
        slot, run = slot_of(path)
        manifest = next((m for m in sorted(read, key=lambda m: m.delivered_at, reverse=True)
                         if any(_tail_matches(entry, path) for entry in m.listed)), None)
        execution = manifest.execution if manifest else run
        delivery = executions.setdefault(slot, {}).setdefault(
            execution, Delivery(slot, execution, manifest.delivered_at if manifest else _mtime(path),
                                manifest=manifest.path if manifest else None))
        delivery.files.append(path)
        if manifest is None:
            delivery.delivered_at = max(delivery.delivered_at, _mtime(path))
    current, superseded = [], []
    for by_execution in executions.values():
        # A manifest-backed execution wins over files no manifest lists (left over from an earlier sync).
        ranked = sorted(by_execution.values(),
                        key=lambda d: (d.manifest is not None, d.delivered_at, d.execution), reverse=True)
        current.append(ranked[0])
        superseded.extend((path, ranked[0]) for older in ranked[1:] for path in older.files)
    return current, superseded

"""Test reports from any CI, as folders -> raw_test_reports (`statex-bi ingest test-reports --dir PATH`).

PATH holds one folder per run of a test suite (at any depth; PATH itself may be one). A run folder has:

    run.json                          {"runner": "vitest" | "jest", "sha", "branch", "attempt" (1 = first
                                      try, 2 = its retry, ...), "started_at" (ISO 8601), "exit_code",
                                      "wall_s" (the suite's wall time in seconds), optional "root" (the
                                      project path the reports' absolute file names start with)}
    vitest.json | jest.json           the runner's JSON reporter output (exactly one)
    junit.xml                         optional; its counts must agree with the JSON report
    coverage/coverage-summary.json    optional (istanbul json-summary; Vitest writes none when a test fails)

Tables (helpers.py describes the formats): `test_runs` (one row per run), `test_results` (one row per
test per run: file, full name, status, duration in ms), `coverage` (one row per metric per run). Rows
merge on keys made from run.json's runner, sha, branch, attempt and started_at, so loading the same
folder twice adds nothing. A run folder whose files do not parse goes whole to
raw_test_reports.quarantine (endpoint = the file, record = the folder, field = the field at fault),
and the other folders still load. Each file is read whole, so one over MAX_FILE_BYTES (settings.py)
quarantines its folder unread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import dlt

from statex_bi.exceptions import ConfigError, RecordError
from statex_bi.sources.common import declared_schema, public_error, quarantined
from statex_bi.sources.contract import IngestRequest, SourceSpec
from statex_bi.sources.test_reports import helpers, settings


def build(request: IngestRequest):
    """The test-reports dlt source for the folder of an ingest request.

    Raises:
        ConfigError: no --dir, or it is not a folder, or it holds no run.json.
    """
    if request.dir is None:
        raise ConfigError("test-reports reads a folder of test runs: pass it with --dir PATH")
    root = Path(request.dir).expanduser().resolve()
    if not root.is_dir():
        raise ConfigError(f"test-reports: {root} is not a folder")
    folders = sorted(path.parent for path in root.rglob(settings.RUN_FILE))
    if not folders:
        raise ConfigError(f"test-reports: {root} holds no run folder (a folder with {settings.RUN_FILE})")
    parsed, bad = read_folders(folders, request.progress)
    request.progress(f"test-reports: {len(parsed)} runs read from {root}, {len(bad)} quarantined")
    return source(parsed, bad)


def read_folders(folders: list[Path], progress: Callable[[str], None]) -> tuple[list[helpers.ParsedRun], list]:
    """Each folder's run, or a quarantine record naming its bad file and field."""
    parsed, bad = [], []
    for folder in folders:
        try:
            parsed.append(read_folder(folder))
        except RecordError as exc:
            progress(f"test-reports: quarantined: {public_error(str(exc), foreign=False)}")
            payload = {"folder": str(folder), "files": sorted(_files(folder))}
            bad.append(quarantined(settings.SOURCE, exc.endpoint, exc.record_id, exc.field, str(exc), payload))
    return parsed, bad


def _files(folder: Path) -> dict[str, Path]:
    names = [settings.RUN_FILE, *settings.REPORT_FILES.values(), settings.JUNIT_FILE, settings.COVERAGE_FILE]
    return {name: folder / name for name in names if (folder / name).is_file()}


def read_folder(folder: Path) -> helpers.ParsedRun:
    """One run folder, parsed.

    Raises:
        RecordError: naming the file and the field at fault.
    """
    fail = helpers.Fail(settings.SOURCE, str(folder), str(folder))
    found = _files(folder)
    for name, path in found.items():
        size = path.stat().st_size
        if size > settings.MAX_FILE_BYTES:  # read whole and parsed in memory: never a file of any size
            raise fail(name, "(file)", f"{size / 1e6:,.0f} MB, over the {settings.MAX_FILE_BYTES / 1e6:,.0f} MB a "
                       "test report file may hold; it was not read")
    files = {name: path.read_bytes() for name, path in found.items()}
    meta = helpers.parse_run_meta(files.pop(settings.RUN_FILE), fail)
    return helpers.parse_run(files, meta, settings.SOURCE, str(folder), str(folder), helpers.run_key(meta))


def source(parsed: list[helpers.ParsedRun], bad: list):
    """A dlt source loading parsed runs into the three tables (and quarantine records beside them)."""

    @dlt.source(schema=declared_schema("test_reports", settings.COLUMNS), max_table_nesting=0)
    def test_reports():
        return resources(parsed, bad)

    return test_reports()


def resources(parsed: list[helpers.ParsedRun], bad: list) -> list:
    """The three merge resources over parsed runs; shared with the github source."""

    def runs() -> Iterator[dict]:
        yield dlt.mark.materialize_table_schema()
        yield from (item.run for item in parsed)
        yield from bad

    def results() -> Iterator[dict]:
        yield dlt.mark.materialize_table_schema()
        for item in parsed:
            yield from item.results

    def coverage() -> Iterator[dict]:
        yield dlt.mark.materialize_table_schema()
        for item in parsed:
            yield from item.coverage

    return [
        dlt.resource(generator, name=table, write_disposition="merge", primary_key=settings.PRIMARY_KEYS[table],
                     file_format=settings.FILE_FORMAT)
        for generator, table in ((runs, settings.TEST_RUNS), (results, settings.TEST_RESULTS),
                                 (coverage, settings.COVERAGE))
    ]


SPEC = SourceSpec(name="test-reports", build=build,
                  watermark_sql="SELECT max(started_at) FROM raw_test_reports.test_runs")

"""Fault injection: every file source is given, beside good input, a bomb, a huge line, a huge cell, an
over-range number, a wrong type, deep nesting and a UTF-16 file.

Checked for each: nothing good is lost; the bad record is quarantined naming its record and field (or,
when the fault is the source's one file itself, the load is refused in one line and nothing loads); no
personal data is stored anywhere in the warehouse; reading the hostile input holds a small part of what
it expands to. One load per source keeps the matrix fast; the size caps are set low to keep it small.
"""

from __future__ import annotations

import gzip
import json
import shutil
import tracemalloc
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from statex_bi.demo.ai import call_record, simulate_ai
from statex_bi.demo.world import World, WorldConfig
from statex_bi.exceptions import RecordError
from statex_bi.ingest import IngestRequest, load_source
from statex_bi.sources import ai_calls, billing, files, test_reports

ADDRESS, SURNAME = "alice@example.com", "Liddell"
DEEP = 100_000  # levels of nesting: far past Python's recursion limit
BIG = 8_000_000  # bytes a bomb expands to, past the cap set here
CAP_MB = "4"
FOCUS = Path(__file__).parent / "billing" / "fixtures" / "focus_1_4.csv"
RUNS = Path(__file__).parents[1] / "fixtures" / "test_reports"


def _rows(db, sql):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def _stored_text(db) -> str:
    """Every value of every table in the warehouse, as text."""
    with duckdb.connect(str(db), read_only=True) as con:
        tables = con.execute("SELECT table_schema, table_name FROM information_schema.tables").fetchall()
        return "\n".join(str(con.execute(f'SELECT * FROM "{schema}"."{table}"').fetchall()) for schema, table in tables)


def _peak_bytes(consume) -> int:
    tracemalloc.start()
    try:
        consume()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def module_env():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STATEX_BI_PSEUDONYM_KEY", "test-pseudonym-key")
        patch.setenv("STATEX_BI_MAX_FILE_MB", CAP_MB)
        yield patch


# --- billing: FOCUS CSV and Parquet ---------------------------------------------------------------

HEADER, GOOD_ROW = FOCUS.read_text().splitlines()[:2]
GOOD = dict(zip(HEADER.split(","), GOOD_ROW.split(","), strict=True))
# Tags (read, FOCUS) and an owner's name in a column billing does not read.
COLUMNS = [*GOOD, "Tags", "x_Owner"]


def _csv_row(**cells) -> str:
    """The fixture's row with some cells replaced, an address in its description."""
    values = {**GOOD, "Tags": "", "x_Owner": f"Alice {SURNAME}", "ChargeDescription": f"owner {ADDRESS}", **cells}
    return ",".join(f'"{values[name]}"' for name in COLUMNS) + "\n"


def _parquet_row(**cells) -> dict:
    row = {name: (value or None) for name, value in GOOD.items()}
    return {**row, "BilledCost": 3.5, "ChargeDescription": f"owner {ADDRESS}", "x_Owner": f"Alice {SURNAME}", **cells}


def _parquet(path: Path, **cells) -> None:
    pq.write_table(pa.Table.from_pylist([_parquet_row(**cells)]), path)


def _nested(depth: int) -> dict:
    value: dict = {"team": "storage"}
    for _ in range(depth):
        value = {"inner": value}
    return value


# file -> (record, field) quarantined; None: the file loads.
BILLING_CASES = {
    "bomb": {"bomb.csv.gz": ("file", "file"), "bomb.parquet": ("file", "file")},
    "huge_line": {"huge_line.csv": ("line 3", "(line)")},
    "huge_cell": {"huge_cell.csv": ("line 2", "ChargeDescription"),
                  "huge_cell.parquet": ("row 1", "ChargeDescription")},
    "over_range": {"over_range.csv": ("line 2", "BilledCost"), "over_range.parquet": ("row 1", "BilledCost")},
    "wrong_type": {"wrong_type.csv": ("line 2", "ChargePeriodStart"), "wrong_type.parquet": ("row 1", "ServiceName")},
    "deep_nesting": {"deep_nesting.csv": ("line 2", "BilledCost"), "deep_nesting.parquet": None},
    "utf16": {"utf16.csv": ("line 1", "(encoding)")},
}


@pytest.fixture(scope="module")
def billing_load(tmp_path_factory, module_env):
    folder = tmp_path_factory.mktemp("billing") / "exports"
    folder.mkdir()
    header = ",".join(COLUMNS) + "\n"
    shutil.copy(FOCUS, folder / "good.csv")
    _parquet(folder / "good.parquet", ChargeDescription="Support plan", x_Owner="", BillingAccountId="acct-p")
    (folder / "bomb.csv.gz").write_bytes(gzip.compress(header.encode() + bytes(BIG), mtime=0))
    bomb = [_parquet_row(ChargeDescription=f"{n:08d}" + "x" * 1_000) for n in range(BIG // 1_000)]
    pq.write_table(pa.Table.from_pylist(bomb), folder / "bomb.parquet")
    (folder / "huge_line.csv").write_text(header + _csv_row() + _csv_row(ChargeDescription="x" * 3_000_000))
    (folder / "huge_cell.csv").write_text(header + _csv_row(ChargeDescription=f"{ADDRESS} " + "x" * 200_000))
    _parquet(folder / "huge_cell.parquet", ChargeDescription=f"{ADDRESS} " + "x" * 200_000)
    (folder / "over_range.csv").write_text(header + _csv_row(BilledCost="1E+25"))
    _parquet(folder / "over_range.parquet", BilledCost=1e25)
    (folder / "wrong_type.csv").write_text(header + _csv_row(ChargePeriodStart=f"[{ADDRESS}]"))
    _parquet(folder / "wrong_type.parquet", ServiceName=["Example Support", ADDRESS])
    (folder / "deep_nesting.csv").write_text(header + _csv_row(BilledCost="lots", Tags="[" * DEEP + "]" * DEEP))
    _parquet(folder / "deep_nesting.parquet", Tags=_nested(40), BillingAccountId="acct-deep", ChargeDescription="ok",
             x_Owner="")
    (folder / "utf16.csv").write_text(header + _csv_row(), encoding="utf-16")
    db = folder.parent / "warehouse.duckdb"
    printed: list[str] = []
    result = load_source(billing.SPEC, IngestRequest(dir=folder, progress=printed.append), db)
    return folder, db, result, printed


@pytest.mark.parametrize("fault", sorted(BILLING_CASES))
def test_billing_quarantines_each_hostile_file_and_loads_the_good_ones(billing_load, fault):
    folder, db, result, printed = billing_load
    # Files whose every row is quarantined fail the ingest in one line (issue 18); the good files still load.
    assert result.status == "failed" and " rows quarantined; " in result.error, result.error
    quarantine = {(Path(endpoint).name, record): field for endpoint, record, field in _rows(
        db, "SELECT endpoint, record_id, field FROM raw_billing.quarantine")}
    status = dict(_rows(db, "SELECT regexp_extract(source_file, '[^/]+$'), status FROM raw_billing.files"))
    for name, expected in BILLING_CASES[fault].items():
        if expected is None:
            assert status[name] == "loaded"
            continue
        record, field = expected
        assert quarantine.get((name, record)) == field, sorted(quarantine)
        assert status[name] == "rejected"
    # Nothing good lost: both good files and the good Parquet with deep tags, every row of them.
    loaded = _rows(db, "SELECT regexp_extract(source_file, '[^/]+$'), count(*) FROM raw_billing.charges GROUP BY 1")
    assert dict(loaded) == {"good.csv": 1, "good.parquet": 1, "deep_nesting.parquet": 1}
    stored = _stored_text(db)
    assert ADDRESS not in stored and SURNAME not in stored and ADDRESS not in "\n".join(printed)
    if fault == "bomb":
        refusals = [line for line in printed if "refused" in line]
        assert len(refusals) == 2 and all("$STATEX_BI_MAX_FILE_MB" in line for line in refusals)


def test_billing_reads_a_bomb_and_a_huge_line_in_bounded_memory(billing_load, tmp_path, monkeypatch):
    monkeypatch.setenv("STATEX_BI_MAX_FILE_MB", "64")
    bomb = tmp_path / "bomb.csv.gz"
    bomb.write_bytes(gzip.compress(b"\0" * 70_000_000, mtime=0))  # refused after 64 MB
    huge_line = tmp_path / "huge_line.csv"
    huge_line.write_text(",".join(COLUMNS) + "\n" + _csv_row(ChargeDescription="x" * 16_000_000))
    for path, expands_to in ((bomb, 64_000_000), (huge_line, 16_000_000)):
        peak = _peak_bytes(lambda path=path: list(billing._load_file(path, lambda message: None)))
        assert peak < expands_to / 5, (path.name, peak)


# --- test reports: run folders of JSON and XML ------------------------------------------------------

GOOD_RUN = RUNS / "vitest-attempt2-passed"
# folder -> (field, words of the error) quarantined; None: the run loads.
TEST_REPORT_CASES = {
    "bomb": ("(file)", "over the 1 MB"),
    "huge_line": ("(file)", "over the 1 MB"),
    "huge_cell": None,
    "over_range": ("attempt", "expected a whole number"),
    "wrong_type": ("testResults[0].assertionResults[0].status", "unknown test status"),
    "deep_nesting": ("(file)", "nested too deeply"),
    "utf16": None,
}


def _run_folder(root: Path, fault: str, attempt: int, change) -> None:
    folder = root / fault
    shutil.copytree(GOOD_RUN, folder)
    meta = json.loads((folder / "run.json").read_text())
    (folder / "run.json").write_text(json.dumps({**meta, "attempt": attempt}))
    report = json.loads((folder / "vitest.json").read_text())
    change(folder, meta, report)


@pytest.fixture(scope="module")
def test_reports_load(tmp_path_factory, module_env):
    root = tmp_path_factory.mktemp("test_reports") / "runs"
    shutil.copytree(GOOD_RUN, root / "good")
    module_env.setattr(test_reports.settings, "MAX_FILE_BYTES", 1_000_000)

    def first_test(report):
        return report["testResults"][0]["assertionResults"][0]

    def bomb(folder, meta, report):
        (folder / "vitest.json").write_text(json.dumps(report) + " " * BIG)

    def huge_line(folder, meta, report):
        first_test(report)["fullName"] = f"{ADDRESS} {SURNAME} " + "x" * 2_000_000
        (folder / "vitest.json").write_text(json.dumps(report))

    def huge_cell(folder, meta, report):
        first_test(report)["title"] = "x" * 200_000
        (folder / "vitest.json").write_text(json.dumps(report))

    def over_range(folder, meta, report):
        (folder / "run.json").write_text(json.dumps({**meta, "attempt": 10 ** 30, "branch": ADDRESS}))

    def wrong_type(folder, meta, report):
        first_test(report)["status"] = ["passed", ADDRESS]
        (folder / "vitest.json").write_text(json.dumps(report))

    def deep_nesting(folder, meta, report):
        (folder / "vitest.json").write_text("[" * DEEP + "]" * DEEP)

    def utf16(folder, meta, report):
        (folder / "vitest.json").write_text(json.dumps(report), encoding="utf-16")

    changes = {"bomb": bomb, "huge_line": huge_line, "huge_cell": huge_cell, "over_range": over_range,
               "wrong_type": wrong_type, "deep_nesting": deep_nesting, "utf16": utf16}
    for attempt, (fault, change) in enumerate(sorted(changes.items()), start=3):
        _run_folder(root, fault, attempt, change)
    db = root.parent / "warehouse.duckdb"
    result = load_source(test_reports.SPEC, IngestRequest(dir=root, progress=lambda message: None), db)
    return root, db, result


@pytest.mark.parametrize("fault", sorted(TEST_REPORT_CASES))
def test_test_reports_quarantine_each_hostile_run_and_load_the_good_ones(test_reports_load, fault):
    root, db, result = test_reports_load
    assert result.status == "succeeded", result.error
    quarantine = {record: (field, error) for record, field, error in _rows(
        db, "SELECT record_id, field, error FROM raw_test_reports.quarantine")}
    locations = {Path(location).name for (location,) in _rows(db, "SELECT location FROM raw_test_reports.test_runs")}
    expected = TEST_REPORT_CASES[fault]
    if expected is None:
        assert fault in locations
    else:
        field, words = quarantine[str(root / fault)]
        assert field == expected[0] and words in (error := quarantine[str(root / fault)][1]), error
        assert fault not in locations
    assert "good" in locations
    stored = _stored_text(db)
    assert ADDRESS not in stored and SURNAME not in stored


def test_test_reports_read_a_bomb_in_bounded_memory(test_reports_load, module_env):
    root = test_reports_load[0]

    def consume():
        with pytest.raises(RecordError, match="it was not read"):
            test_reports.read_folder(root / "bomb")

    assert _peak_bytes(consume) < BIG / 10


# --- ai calls: a JSONL log --------------------------------------------------------------------------

AI_CALL_CASES = {  # line kind -> field quarantined; None: the line loads
    "huge_line": "line",
    "huge_cell": None,
    "over_range": "gen_ai.usage.output_tokens",
    "wrong_type": "status",
    "deep_nesting": "line",
}


@pytest.fixture(scope="module")
def calls():
    config = WorldConfig(date(2026, 3, 2), date(2026, 3, 8), seed=5)
    return simulate_ai(config, World(config).growth.prototype_requests).calls[:20]


def _person(record: dict) -> dict:
    return {**record, "first_name": "Alice", "last_name": SURNAME, "email": ADDRESS, "ip_address": "203.0.113.9"}


@pytest.fixture(scope="module")
def ai_calls_load(tmp_path_factory, module_env, calls):
    folder = tmp_path_factory.mktemp("ai_calls")
    good = [json.dumps(call_record(call)) for call in calls[:10]]
    hostile = {
        "huge_line": json.dumps(_person({**call_record(calls[10]), "op": "x" * 2_000_000})),
        "huge_cell": json.dumps({**call_record(calls[11]), "op": "x" * 500_000}),
        "over_range": json.dumps(_person({**call_record(calls[12]), "gen_ai.usage.output_tokens": 1e25})),
        "wrong_type": json.dumps(_person({**call_record(calls[13]), "status": ["ok", ADDRESS]})),
        "deep_nesting": json.dumps(_person(call_record(calls[14])))[:-1] + f', "extra": {"[" * DEEP}{"]" * DEEP}}}',
    }
    lines = good[:5] + list(hostile.values()) + good[5:]
    numbers = {kind: 6 + index for index, kind in enumerate(hostile)}
    log = folder / "calls.jsonl"
    log.write_text("\n".join(lines) + "\n")
    db = folder / "warehouse.duckdb"
    result = load_source(ai_calls.SPEC, IngestRequest(file=log, progress=lambda message: None), db)
    return log, db, result, numbers


@pytest.mark.parametrize("fault", sorted(AI_CALL_CASES))
def test_ai_calls_quarantine_each_hostile_line_and_load_the_good_ones(ai_calls_load, calls, fault):
    log, db, result, numbers = ai_calls_load
    assert result.status == "succeeded", result.error
    quarantine = dict(_rows(db, "SELECT record_id, field FROM raw_ai_calls.quarantine"))
    loaded = {span for (span,) in _rows(db, "SELECT span_id FROM raw_ai_calls.calls")}
    assert {call.span_id for call in calls[:10]} <= loaded
    if AI_CALL_CASES[fault] is None:
        assert calls[10 + list(numbers).index(fault)].span_id in loaded
    else:
        assert quarantine[f"line {numbers[fault]}"] == AI_CALL_CASES[fault]
    stored = _stored_text(db)
    assert ADDRESS not in stored and SURNAME not in stored and "203.0.113.9" not in stored


@pytest.mark.parametrize("fault", ["bomb", "utf16"])
def test_an_ai_calls_log_that_is_a_bomb_or_utf16_is_refused_in_one_line(tmp_path, db_file, monkeypatch, calls,
                                                                         fault):
    monkeypatch.setenv("STATEX_BI_MAX_FILE_MB", CAP_MB)
    log = tmp_path / "calls.jsonl"
    text = "".join(json.dumps(_person(call_record(call))) + "\n" for call in calls)
    if fault == "bomb":
        log.write_text(text + " " * BIG + "\n")
    else:
        log.write_text(text, encoding="utf-16")
    result = load_source(ai_calls.SPEC, IngestRequest(file=log, progress=lambda message: None), db_file)
    assert result.status == "failed" and "\n" not in result.error and str(log) in result.error
    assert ADDRESS not in _stored_text(db_file)


def test_ai_calls_read_a_huge_line_in_bounded_memory(tmp_path, calls):
    log = tmp_path / "calls.jsonl"
    log.write_text(json.dumps(_person({**call_record(calls[0]), "op": "x" * BIG})) + "\n")
    fields = ai_calls.span_fields(ai_calls.settings.RECORD_KEYS)

    def consume():
        with log.open("rb") as stream:
            lines = files.Lines(stream, "ai-calls", log, 10 * BIG)
            assert len(list(ai_calls._read(lines, str(log), fields, lambda message: None))) == 1

    assert _peak_bytes(consume) < BIG / 4


# --- github: test-report artifacts, read from their zip -------------------------------------------


def test_a_zip_bomb_in_a_github_artifact_is_quarantined_unread(monkeypatch):
    """Before: every member was extracted whole into memory, whatever it expanded to."""
    import io
    import zipfile

    from statex_bi.sources.github import helpers
    from statex_bi.sources.test_reports.helpers import Fail

    monkeypatch.setattr(test_reports.settings, "MAX_FILE_BYTES", 1_000_000)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("report/run.json", (GOOD_RUN / "run.json").read_bytes())
        bundle.writestr("report/vitest.json", b"{" + b" " * BIG + b"}")
    assert len(archive.getvalue()) < BIG / 100

    def consume():
        with pytest.raises(RecordError) as raised:
            helpers.read_zip(archive.getvalue(), Fail("github", "actions/artifacts/7/zip", "artifact 7"))
        assert (raised.value.field, raised.value.endpoint) == ("(file)", "actions/artifacts/7/zip/vitest.json")

    assert _peak_bytes(consume) < BIG / 10

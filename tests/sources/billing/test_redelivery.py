"""Re-delivered FOCUS exports as AWS and Azure deliver them: an overwritten file, AWS CREATE_NEW_REPORT
executions with their Manifest.json, Azure runs with their manifest.json. The bill of the FinOps Foundation's
public sample (tests/sources/billing/fixtures/README.md) is summed independently with the csv module."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from statex_bi.cli import main
from statex_bi.ingest import load_source
from statex_bi.sources import billing
from statex_bi.sources.contract import IngestRequest

SAMPLE = Path(__file__).parent / "fixtures" / "focus_sample_1_0.csv"
SEPTEMBER = "charge_period_start >= '2024-09-01' AND charge_period_start < '2024-10-01'"


def _sample_lines(count: int | None = None) -> str:
    lines = SAMPLE.read_text().splitlines(keepends=True)
    return "".join(lines[: None if count is None else count + 1])


def _september_total(text: str) -> Decimal:
    """BilledCost of the file's September 2024 charges, read with the csv module (NULL is not a number)."""
    rows = csv.DictReader(text.splitlines())
    return sum((Decimal(r["BilledCost"]) for r in rows if r["ChargePeriodStart"].startswith("2024-09")), Decimal(0))


def _billing_period_total(text: str, start: str) -> Decimal:
    rows = csv.DictReader(text.splitlines())
    return sum((Decimal(r["BilledCost"]) for r in rows if r["BillingPeriodStart"].startswith(start)), Decimal(0))


def _load(db, folder, messages=None):
    progress = messages.append if messages is not None else (lambda message: None)
    return load_source(billing.SPEC, IngestRequest(dir=folder, progress=progress), db)


def _rows(db, sql):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def _write(path: Path, text: str, when: str, gz: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(text.encode(), mtime=0) if gz else text.encode())
    stamp = datetime.fromisoformat(when).timestamp()
    os.utime(path, (stamp, stamp))


def test_an_overwritten_export_replaces_its_rows_and_equals_loading_the_last_file_alone(tmp_path):
    folder, first, final = tmp_path / "exports", _sample_lines(120), _sample_lines()
    _write(folder / "focus.csv", first, "2024-09-20T08:00:00")
    sequence, alone = tmp_path / "sequence.duckdb", tmp_path / "alone.duckdb"
    assert _load(sequence, folder).status == "succeeded"
    _write(folder / "focus.csv", final, "2024-09-21T08:00:00")
    messages = []
    assert _load(sequence, folder, messages).status == "succeeded"
    _load(alone, folder)

    (september,) = _rows(sequence, f"SELECT sum(billed_cost) FROM raw_billing.charges WHERE {SEPTEMBER}")[0]
    assert september == _september_total(final) != _september_total(first) + _september_total(final)
    content = "SELECT * EXCLUDE (_dlt_load_id, _dlt_id) FROM raw_billing.charges ORDER BY source_line"
    assert _rows(sequence, content) == _rows(alone, content)
    # September 2024 closed long ago: the change is loaded and listed as a correction, never silently.
    corrections = _rows(sequence, """SELECT billing_period_start, previous_billed_cost, billed_cost
                                     FROM raw_billing.corrections WHERE billing_period_start = '2024-09-01'""")
    assert corrections == [(datetime(2024, 9, 1), _billing_period_total(first, "2024-09-01"),
                            _billing_period_total(final, "2024-09-01"))]
    assert any("correction to the closed billing period 2024-09-01" in m for m in messages)


def test_an_unchanged_delivery_is_a_no_op(tmp_path):
    folder, db = tmp_path / "exports", tmp_path / "w.duckdb"
    _write(folder / "focus.csv", _sample_lines(), "2024-09-21T08:00:00")
    assert _load(db, folder).rows > 0
    before = _rows(db, "SELECT _dlt_load_id, count(*) FROM raw_billing.charges GROUP BY 1")
    messages = []
    result = _load(db, folder, messages)
    assert result.status == "succeeded" and result.rows == 0
    assert _rows(db, "SELECT _dlt_load_id, count(*) FROM raw_billing.charges GROUP BY 1") == before
    assert any(m.startswith("billing: unchanged:") for m in messages)


def _aws_execution(folder: Path, execution: str, text: str, when: str) -> None:
    """AWS Data Exports with CREATE_NEW_REPORT: each execution in its folder, its manifest written last."""
    export = folder / "exports" / "focus-daily"
    _write(export / "data" / "BILLING_PERIOD=2024-09" / execution / "focus-daily-00001.csv.gz", text, when, gz=True)
    manifest = {"executionId": execution, "exportArn": "arn:aws:bcm-data-exports:us-east-1:111122223333:export/x",
                "dataFiles": [f"s3://cost-bkt/exports/focus-daily/data/BILLING_PERIOD=2024-09/{execution}/"
                              "focus-daily-00001.csv.gz"]}
    _write(export / "metadata" / "BILLING_PERIOD=2024-09" / execution / "focus-daily-Manifest.json",
           json.dumps(manifest), when)


def test_a_synced_create_new_report_export_loads_only_the_newest_execution(tmp_path):
    folder, db = tmp_path / "sync", tmp_path / "w.duckdb"
    first, final = _sample_lines(60), _sample_lines(200)
    # The newest execution's folder name sorts first: the manifest's time decides, not the name.
    _aws_execution(folder, "e2f3-new", final, "2024-09-21T08:00:00")
    _aws_execution(folder, "f9a1-old", first, "2024-09-20T08:00:00")
    assert _load(db, folder).status == "succeeded"
    (september,) = _rows(db, f"SELECT sum(billed_cost) FROM raw_billing.charges WHERE {SEPTEMBER}")[0]
    assert september == _september_total(final)
    files = dict(_rows(db, "SELECT status, count(*) FROM raw_billing.files GROUP BY 1"))
    assert files == {"loaded": 1, "superseded": 1}


def _azure_run(folder: Path, run: str, rows: list[dict], submitted: str, written: str) -> None:
    """An Azure FocusCost export run: Parquet with Tags as map<string,string>, and its manifest.json."""
    target = folder / "focus" / "focus-daily" / "20240901-20240930" / run
    target.mkdir(parents=True)
    schema = pa.schema([("ProviderName", pa.string()), ("BillingCurrency", pa.string()),
                        ("ChargePeriodStart", pa.timestamp("us")), ("ChargePeriodEnd", pa.timestamp("us")),
                        ("BillingPeriodStart", pa.timestamp("us")), ("BillingPeriodEnd", pa.timestamp("us")),
                        ("ChargeCategory", pa.string()), ("ServiceName", pa.string()), ("BilledCost", pa.float64()),
                        ("Tags", pa.map_(pa.string(), pa.string()))])
    pq.write_table(pa.Table.from_pylist(rows, schema), target / "part_0_0001.parquet")
    manifest = {"manifestVersion": "2024-04-01", "exportConfig": {"exportName": "focus-daily", "type": "FocusCost"},
                "runInfo": {"runId": run, "submittedTime": submitted},
                "blobs": [{"blobName": f"focus/focus-daily/20240901-20240930/{run}/part_0_0001.parquet"}]}
    (target / "manifest.json").write_text(json.dumps(manifest))
    stamp = datetime.fromisoformat(written).timestamp()
    for path in target.iterdir():
        os.utime(path, (stamp, stamp))


def _azure_row(day: int, cost: float, tags: list[tuple[str, str]] | None) -> dict:
    return {"ProviderName": "Microsoft", "BillingCurrency": "USD", "ChargePeriodStart": datetime(2024, 9, day),
            "ChargePeriodEnd": datetime(2024, 9, day + 1), "BillingPeriodStart": datetime(2024, 9, 1),
            "BillingPeriodEnd": datetime(2024, 10, 1), "ChargeCategory": "Usage", "ServiceName": "Storage Accounts",
            "BilledCost": cost, "Tags": tags}


def test_azure_runs_are_ordered_by_their_manifest_and_parquet_tags_are_json(tmp_path):
    folder, db = tmp_path / "azure", tmp_path / "w.duckdb"
    tags = [("env", "prod"), ("cost-center", "42")]
    _azure_run(folder, "run-b", [_azure_row(1, 1.5, tags), _azure_row(2, 2.0, None)],
               "2024-09-03T06:00:00Z", written="2024-09-01T00:00:00")
    # Copied later (its files are newer), but submitted earlier: run-b is the newer delivery.
    _azure_run(folder, "run-a", [_azure_row(1, 1.0, tags)], "2024-09-02T06:00:00Z", written="2024-09-05T00:00:00")
    assert _load(db, folder).status == "succeeded"
    assert _rows(db, "SELECT sum(billed_cost) FROM raw_billing.charges") == [(Decimal("3.5"),)]
    stored = [json.loads(t) for (t,) in _rows(db, "SELECT tags FROM raw_billing.charges WHERE tags IS NOT NULL")]
    assert stored == [dict(tags)]


def test_csv_tags_and_null_cells_of_the_public_sample_load_as_json_and_nulls(tmp_path):
    folder, db = tmp_path / "exports", tmp_path / "w.duckdb"
    _write(folder / "focus.csv", _sample_lines(), "2024-09-21T08:00:00")
    assert _load(db, folder).status == "succeeded"
    expected = [json.loads(r["Tags"]) if r["Tags"] != "NULL" else None
                for r in csv.DictReader(_sample_lines().splitlines())]
    stored = [json.loads(t) if t is not None else None
              for (t,) in _rows(db, "SELECT tags FROM raw_billing.charges ORDER BY source_line")]
    assert stored == expected
    assert _rows(db, "SELECT count(*) FROM raw_billing.charges WHERE charge_class IS NOT NULL") == [(0,)]


def test_rows_loaded_counts_data_rows_only(tmp_path):
    folder, db = tmp_path / "exports", tmp_path / "w.duckdb"
    _write(folder / "focus.csv", _sample_lines(), "2024-09-21T08:00:00")
    data_rows = len(list(csv.DictReader(_sample_lines().splitlines())))
    assert _load(db, folder).rows == data_rows  # not the raw_billing.files bookkeeping row


def _quarantined_only(lines: list[str]) -> str:
    """The sample's header and the given data lines with ChargeCategory replaced by a value FOCUS forbids."""
    header, *rows = _sample_lines().splitlines(keepends=True)
    index = next(csv.reader([header])).index("ChargeCategory")
    broken = []
    for line in lines:
        cells = next(csv.reader([rows[int(line)]]))
        cells[index] = "Refund"
        out = io.StringIO()
        csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n").writerow(cells)
        broken.append(out.getvalue())
    return header + "".join(broken)


def test_a_file_whose_every_row_is_quarantined_exits_1_with_one_line(tmp_path, db_file, capsys):
    folder = tmp_path / "exports"
    _write(folder / "good.csv", _sample_lines(5), "2024-09-21T08:00:00")
    _write(folder / "refunds.csv", _quarantined_only(["0", "1", "2"]), "2024-09-21T08:00:00")
    assert main(["ingest", "billing", "--dir", str(folder)]) == 1
    summary = [line for line in capsys.readouterr().err.splitlines() if line.startswith("billing: failed")]
    assert len(summary) == 1
    assert "refunds.csv: all 3 rows quarantined" in summary[0] and "commonest: ChargeCategory on 3 rows" in summary[0]
    # The good file still loaded.
    assert _rows(db_file, "SELECT count(*) FROM raw_billing.charges") == [(5,)]


def test_an_ingest_that_loads_nothing_but_quarantine_fails(tmp_path):
    folder, db = tmp_path / "exports", tmp_path / "w.duckdb"
    _write(folder / "broken.csv.gz", "not gzip at all", "2024-09-21T08:00:00")
    result = _load(db, folder)
    assert (result.status, result.rows, result.quarantined) == ("failed", 0, 1)
    assert result.error.startswith(f"{folder / 'broken.csv.gz'}: nothing loaded; commonest reason (1 of 1 ")


def test_rows_loaded_before_redeliveries_were_tracked_stop_the_build_and_say_how_to_reload(db_file, tmp_path,
                                                                                          capsys):
    """Rows without a delivery slot (as an earlier version loaded them) are never replaced by a newer delivery, so a
    re-delivered bill would count twice: the build stops, naming the rows and the command that reloads them."""
    _write(tmp_path / "exports" / "focus.csv", _sample_lines(6), "2024-10-02T06:00:00")
    assert _load(db_file, tmp_path / "exports").status == "succeeded"
    with duckdb.connect(str(db_file)) as con:  # the column as dlt adds it to a table of an earlier version's loads
        con.execute("ALTER TABLE raw_billing.charges ALTER COLUMN delivery_slot DROP NOT NULL")
        con.execute("UPDATE raw_billing.charges SET delivery_slot = NULL WHERE source_line = 2")
    capsys.readouterr()

    assert main(["build"]) == 2
    err = capsys.readouterr().err
    assert "billing_charges_without_delivery_slot_need_ingest_full_refresh" in err
    assert "failed on 1 row(s)" in err and "source_line=2" in err and "focus.csv" in err

"""FOCUS exports as providers write them: AWS 1.0 with AWS columns (gzipped CSV), Azure 1.2 (Parquet,
EUR, "Units" with x_PricingBlockSize), a 1.4 file (ServiceProviderName only), and a malformed file."""

from __future__ import annotations

import csv
import gzip
import json
import shutil
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from statex_bi.exceptions import ConfigError
from statex_bi.ingest import load_source
from statex_bi.sources import billing
from statex_bi.sources.contract import IngestRequest

FIXTURES = Path(__file__).parent / "fixtures"


def _parquet_from_csv(source: Path, target: Path) -> None:
    """Microsoft writes typed Parquet: timestamps, doubles; the CSV fixture keeps the values readable."""
    with source.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    numbers = {"BilledCost", "ConsumedQuantity", "ContractedCost", "EffectiveCost", "ListCost", "ListUnitPrice",
               "PricingQuantity", "x_BilledCostInUsd", "x_PricingBlockSize"}
    typed = [{k: (None if v == "" else float(v) if k in numbers else datetime.fromisoformat(v.replace("Z", ""))
                  if k.endswith(("Start", "End")) else v) for k, v in row.items()} for row in rows]
    pq.write_table(pa.Table.from_pylist(typed), target)


@pytest.fixture
def exports(tmp_path):
    """An `aws s3 sync`-like folder: AWS CSV.gz nested by billing period, Azure Parquet, a 1.4 file."""
    folder = tmp_path / "exports"
    aws = folder / "aws" / "focus" / "data" / "BILLING_PERIOD=2024-09"
    aws.mkdir(parents=True)
    (aws / "focus-00001.csv.gz").write_bytes(gzip.compress((FIXTURES / "aws_focus_1_0.csv").read_bytes(), mtime=0))
    azure = folder / "azure" / "20260901-20260930"
    azure.mkdir(parents=True)
    _parquet_from_csv(FIXTURES / "azure_focus_1_2.csv", azure / "part_0_0001.parquet")
    shutil.copy(FIXTURES / "focus_1_4.csv", folder / "focus_1_4.csv")
    return folder


def _load(db, folder):
    return load_source(billing.SPEC, IngestRequest(dir=folder, progress=lambda message: None), db)


def _rows(db, sql):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_each_provider_shape_loads_with_signed_amounts_and_spec_spelling(exports, db_file):
    result = _load(db_file, exports)
    assert result.status == "succeeded", result.error
    by_provider = dict(_rows(db_file, "SELECT provider, sum(billed_cost) FROM raw_billing.charges GROUP BY 1"))
    # Credits, corrections and Azure's negative Usage reversal are summed, never filtered out.
    assert by_provider == {"AWS": Decimal("-2.5056069964"), "Microsoft": Decimal("1.2375"),
                           "Example Cloud": Decimal("3.5")}
    enums = set(_rows(db_file, "SELECT DISTINCT charge_category, charge_frequency FROM raw_billing.charges"))
    assert enums == {("Usage", "Usage-Based"), ("Credit", "One-Time"), ("Purchase", "Recurring")}
    meters = dict(_rows(db_file, "SELECT source_line, sku_meter FROM raw_billing.charges WHERE provider = 'AWS'"))
    assert meters[2] == "TimedStorage-ByteHrs" and meters[3] == "USW2-Requests-Tier1" and meters[6] is None
    azure = _rows(db_file, """SELECT sku_meter, consumed_quantity, consumed_unit, pricing_block_size, billing_currency,
                                     charge_period_start FROM raw_billing.charges WHERE provider = 'Microsoft'
                              ORDER BY source_line""")
    assert azure[0] == ("gpt 4o 0806 Inp DZone Tokens", Decimal(500000), "Units", Decimal(1000), "EUR",
                        datetime(2026, 9, 10))
    assert _rows(db_file, "SELECT focus_version FROM raw_billing.charges WHERE provider = 'Example Cloud'") == [
        ("1.3-1.4",)]
    files = _rows(db_file, "SELECT status, rows FROM raw_billing.files ORDER BY source_file")
    assert files == [("loaded", 5), ("loaded", 3), ("loaded", 1)]


def test_reloading_a_file_or_a_copy_of_it_adds_nothing(exports, db_file):
    _load(db_file, exports)
    before = _rows(db_file, "SELECT count(*), sum(billed_cost) FROM raw_billing.charges")
    shutil.copy(exports / "focus_1_4.csv", exports / "focus_1_4 (copy).csv")
    assert _load(db_file, exports).status == "succeeded"
    assert _rows(db_file, "SELECT count(*), sum(billed_cost) FROM raw_billing.charges") == before


def test_a_malformed_file_is_quarantined_by_line_and_not_loaded_while_the_others_load(exports, db_file):
    shutil.copy(FIXTURES / "malformed.csv", exports / "malformed.csv")
    (exports / "broken.csv.gz").write_bytes(b"not gzip at all")
    assert _load(db_file, exports).status == "succeeded"
    quarantine = _rows(db_file, "SELECT endpoint, record_id, field, error FROM raw_billing.quarantine ORDER BY 2")
    by_record = {(Path(endpoint).name, record): (field, error) for endpoint, record, field, error in quarantine}
    assert by_record[("malformed.csv", "line 3")][0] == "ChargeCategory"
    assert "'Refund' is not an allowed value" in by_record[("malformed.csv", "line 3")][1]
    assert by_record[("malformed.csv", "line 4")][0] == "BilledCost"
    assert by_record[("malformed.csv", "line 5")][0] == "ChargeClass"
    assert ("broken.csv.gz", "file") in by_record
    # Line 2 is valid, but its file is not loaded: a file loads whole or not at all.
    loaded = {Path(f).name for (f,) in _rows(db_file, "SELECT DISTINCT source_file FROM raw_billing.charges")}
    assert loaded == {"focus-00001.csv.gz", "part_0_0001.parquet", "focus_1_4.csv"}
    status = dict(_rows(db_file, "SELECT regexp_extract(source_file, '[^/]+$'), status FROM raw_billing.files"))
    assert status["malformed.csv"] == "rejected" and status["broken.csv.gz"] == "rejected"
    # Fixed and exported again, the file loads (a new file hash), and the quarantine keeps its history.
    fixed = [line for n, line in enumerate((FIXTURES / "malformed.csv").read_text().splitlines(), 1) if n <= 2]
    (exports / "malformed.csv").write_text("\n".join(fixed) + "\n")
    (exports / "broken.csv.gz").unlink()
    _load(db_file, exports)
    assert _rows(db_file, "SELECT count(*) FROM raw_billing.charges WHERE source_file LIKE '%malformed.csv'") == [(1,)]


def test_a_file_without_a_required_column_is_rejected_naming_it(tmp_path, db_file):
    folder = tmp_path / "exports"
    folder.mkdir()
    lines = (FIXTURES / "focus_1_4.csv").read_text().splitlines()
    header = lines[0].split(",")
    drop = header.index("ServiceProviderName")
    (folder / "no_provider.csv").write_text("\n".join(
        ",".join(cell for n, cell in enumerate(line.split(",")) if n != drop) for line in lines) + "\n")
    _load(db_file, folder)
    [(field, error)] = _rows(db_file, "SELECT field, error FROM raw_billing.quarantine")
    assert field == "ServiceProviderName or ProviderName" and "required FOCUS column missing" in error


def test_billing_needs_a_folder(tmp_path):
    with pytest.raises(ConfigError, match="--dir"):
        billing.build(IngestRequest())
    with pytest.raises(ConfigError, match="not a folder"):
        billing.build(IngestRequest(dir=tmp_path / "missing"))


def test_a_row_takes_the_first_alternative_column_that_holds_a_value(tmp_path, db_file):
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "both.csv").write_text(
        "BilledCost,BillingCurrency,ChargeCategory,ChargePeriodStart,ChargePeriodEnd,ServiceName,"
        "ServiceProviderName,ProviderName,SkuMeter,x_UsageType\n"
        "0.2,USD,Usage,2026-11-01,2026-11-02,Amazon Simple Email Service,,AWS,,USE1-Recipients\n"
        "0.1,USD,Usage,2026-11-01,2026-11-02,Amazon Simple Email Service,Amazon Web Services,AWS,Recipients,\n")
    _load(db_file, folder)
    assert _rows(db_file, "SELECT provider, sku_meter FROM raw_billing.charges ORDER BY source_line") == [
        ("AWS", "USE1-Recipients"), ("Amazon Web Services", "Recipients")]


def test_quarantine_keeps_the_focus_columns_of_a_row_never_its_other_columns(tmp_path, db_file):
    """Before: the whole CSV row was the payload, an owner's e-mail and phone in an x_ column included."""
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "owners.csv").write_text(
        "BilledCost,BillingCurrency,ChargeCategory,ChargePeriodStart,ChargePeriodEnd,ServiceName,ProviderName,"
        "x_OwnerContact\n"
        "lots,USD,Usage,2026-11-01,2026-11-02,Amazon S3,AWS,Alice Liddell +44 20 7946 0958\n")
    assert _load(db_file, folder).status == "failed"  # its only row is quarantined
    [(field, payload)] = _rows(db_file, "SELECT field, payload FROM raw_billing.quarantine")
    assert field == "BilledCost"
    assert "Alice" not in payload and "7946" not in payload and "x_OwnerContact" not in payload
    assert json.loads(payload)["record"]["BilledCost"] == "lots"

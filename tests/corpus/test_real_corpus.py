"""Public files no one here wrote, through the real connectors and the dbt models, against independent
sums of the files: the FinOps Foundation's FOCUS sample delivered twice (tests/sources/billing/fixtures/README.md),
real Vitest 4 and Jest 30 reports whose test names collide and with a file that fails to load
(tests/fixtures/make_identity_reports.sh). One warehouse and one `dbt build` for the module."""

from __future__ import annotations

import csv
import json
import os
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from statex_bi.ingest import load_source
from statex_bi.kpis import infrastructure_savings as infra
from statex_bi.kpis import test_productivity
from statex_bi.kpis.ai_costs import measures as ai_costs
from statex_bi.periods import Period
from statex_bi.sources import billing, test_reports
from statex_bi.sources.contract import IngestRequest
from statex_bi.transform import build as project

TESTS = Path(__file__).parents[1] / "fixtures" / "test_identity"

FOCUS_SAMPLE = Path(__file__).parents[1] / "sources" / "billing" / "fixtures" / "focus_sample_1_0.csv"
SEPTEMBER_2024 = Period(date(2024, 9, 1), date(2024, 9, 30))


def _focus_rows() -> list[dict[str, str]]:
    with FOCUS_SAMPLE.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _deliver(path: Path, lines: list[str], when: str) -> None:
    path.write_text("".join(lines))
    stamp = datetime.fromisoformat(when).timestamp()
    os.utime(path, (stamp, stamp))


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    db, exports = folder / "warehouse.duckdb", folder / "focus"
    exports.mkdir()
    quiet = IngestRequest(dir=exports, progress=lambda message: None)
    lines = FOCUS_SAMPLE.read_text().splitlines(keepends=True)
    # The export's file as first delivered, then overwritten by the fuller bill of the same month.
    _deliver(exports / "focus.csv", lines[:121], "2024-09-20T08:00:00")
    assert load_source(billing.SPEC, quiet, db).status == "succeeded"
    _deliver(exports / "focus.csv", lines, "2024-09-21T08:00:00")
    assert load_source(billing.SPEC, quiet, db).status == "succeeded"
    assert load_source(test_reports.SPEC, IngestRequest(dir=TESTS, progress=lambda m: None), db).status == "succeeded"
    project.build(db, progress=lambda message: None)
    return db


@pytest.fixture(scope="module")
def con(warehouse):
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        yield connection


def test_a_redelivered_month_publishes_the_final_file_s_total(con):
    truth = sum(Decimal(r["BilledCost"]) for r in _focus_rows() if r["ChargePeriodStart"].startswith("2024-09"))
    published = {m.tags["service"]: m.value for m in infra.metrics(con, SEPTEMBER_2024)
                 if m.name == "infra.cost.actual"}
    assert published["all"] == pytest.approx(float(truth), rel=1e-12)
    notes = infra.notes(con, SEPTEMBER_2024)
    assert any(n.startswith("The closed billing period September 2024 of ") for n in notes)


def test_only_azure_ai_services_feed_the_ai_reconciliation_while_infra_keeps_the_category(con):
    rows = _focus_rows()
    machine_learning = [r for r in rows if r["ServiceName"] == "Azure Machine Learning"]
    assert machine_learning and all(r["ServiceCategory"] == "AI and Machine Learning" for r in machine_learning)
    assert ai_costs.azure_ai_bill(con, SEPTEMBER_2024).empty
    actual = infra.actual_costs(con, SEPTEMBER_2024)
    ai = actual.loc[actual["service"] == "ai", "cost_usd"].sum()
    truth = sum(Decimal(r["BilledCost"]) for r in rows if r["ServiceCategory"] == "AI and Machine Learning")
    assert ai == pytest.approx(float(truth), rel=1e-12)


def _test_period() -> Period:
    started = [json.loads((TESTS / name / "run.json").read_text())["started_at"][:10] for name in ("vitest", "jest")]
    return Period(date.fromisoformat(min(started)), date.fromisoformat(max(started)))


@pytest.mark.parametrize("runner", ["vitest", "jest"])
def test_colliding_names_are_distinct_tests_none_flaky_and_a_broken_file_is_a_failure(con, runner):
    report = json.loads((TESTS / runner / f"{runner}.json").read_text())
    tests = [t for suite in report["testResults"] for t in suite["assertionResults"]]
    load_failures = sum(1 for s in report["testResults"] if s["status"] == "failed" and not s["assertionResults"])
    passed = sum(t["status"] == "passed" for t in tests)
    failed = sum(t["status"] == "failed" for t in tests) + load_failures
    published = {(m.name, m.tags.get("runner")): m for m in test_productivity.metrics(con, _test_period())}
    # One run per runner: nothing can be flaky. Tests: 4 in identity.test.js and the file that failed to load.
    assert published[("tests.flaky_tests", None)].value == 0
    assert published[("tests.flaky_tests", None)].tags["tests"] == len(tests) + load_failures == 5
    assert published[("tests.pass_rate", runner)].value == pytest.approx(passed / (passed + failed))

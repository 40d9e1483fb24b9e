"""`statex-bi ingest test-reports --dir`: the committed real runs load once, bad folders are quarantined."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from statex_bi.exceptions import ConfigError
from statex_bi.ingest import load_source
from statex_bi.sources import test_reports
from statex_bi.sources.contract import IngestRequest

REPORTS = Path(__file__).resolve().parents[2] / "fixtures" / "test_reports"
COUNTS = ("SELECT (SELECT count(*) FROM raw_test_reports.test_runs),"
          " (SELECT count(*) FROM raw_test_reports.test_results), (SELECT count(*) FROM raw_test_reports.coverage)")


def _load(db, folder):
    """The source alone (tests/kpis/test_testing_report.py runs `statex-bi ingest test-reports --dir`)."""
    return load_source(test_reports.SPEC, IngestRequest(dir=folder, progress=lambda message: None), db).status


def _rows(db, sql):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.fixture
def runs_dir(tmp_path):
    target = tmp_path / "runs"
    shutil.copytree(REPORTS, target)
    return target


def test_the_same_folder_loaded_twice_adds_nothing(runs_dir, db_file):
    assert _load(db_file, runs_dir) == "succeeded"
    # Four runs of nine tests; coverage from three of them (the failing Vitest run wrote none), four metrics each.
    assert _rows(db_file, COUNTS) == [(4, 36, 12)]
    assert _load(db_file, runs_dir) == "succeeded"
    assert _rows(db_file, COUNTS) == [(4, 36, 12)]
    runs = _rows(db_file, "SELECT runner, attempt, exit_code, wall_s FROM raw_test_reports.test_runs ORDER BY 1, 2")
    assert runs == [("jest", 1, 1, 10.491), ("jest", 2, 0, 10.656), ("vitest", 1, 1, 11.231), ("vitest", 2, 0, 12.72)]


def test_a_bad_folder_is_quarantined_with_file_and_field_and_the_others_load(runs_dir, db_file):
    bad = runs_dir / "vitest-attempt1-failed" / "vitest.json"
    bad.write_text(bad.read_text().replace('"status":"failed"', '"status":"exploded"', 1))
    assert _load(db_file, runs_dir) == "succeeded"
    assert _rows(db_file, COUNTS) == [(3, 27, 12)]
    (endpoint, field, error), = _rows(db_file, "SELECT endpoint, field, error FROM raw_test_reports.quarantine")
    assert endpoint.endswith("vitest-attempt1-failed/vitest.json")
    assert field.startswith("testResults[") and "exploded" in error


def test_no_dir_is_a_config_error():
    with pytest.raises(ConfigError, match="--dir"):
        test_reports.build(IngestRequest())

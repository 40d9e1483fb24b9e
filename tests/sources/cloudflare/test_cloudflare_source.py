"""The R2 connector against the Cloudflare GraphQL sandbox: it loads exactly what the sandbox served,
retries rate limits, and fails with Cloudflare's message on GraphQL errors."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import duckdb
import pytest

from statex_bi.demo.apis import cloudflare as api
from statex_bi.demo.infra import InfraData
from statex_bi.ingest import load_source
from statex_bi.sources import cloudflare
from statex_bi.sources.contract import IngestRequest

FIRST, LAST = date(2026, 10, 27), date(2026, 11, 9)  # two query windows


def _usage() -> InfraData:
    operations, storage = {}, []
    for n in range((LAST - FIRST).days + 1):
        day = FIRST + timedelta(days=n)
        operations[(day, "media", "GetObject", "success", 200, "Standard")] = [1000 + n, 5_000_000 * (n + 1), 0]
        operations[(day, "media", "GetObject", "userError", 403, "Standard")] = [7, 0, 0]
        operations[(day, "media", "PutObject", "userError", 412, "Standard")] = [2, 0, 0]
        operations[(day, "cold", "PutObject", "success", 200, "InfrequentAccess")] = [3, 0, 3_000_000]
        for hour in (3, 15):
            storage.append((datetime(day.year, day.month, day.day, hour, 5), "media", "Standard",
                            10**9 + n * 10**6 + hour, 4096, 100 + n, 0))
    return InfraData({}, {}, operations, storage)


@pytest.fixture
def sandbox(monkeypatch):
    usage = _usage()
    with api.serve(usage, LAST, retention_days=None) as server:
        for key, value in api.environment(server.url).items():
            monkeypatch.setenv(key, value)
        yield server, usage


def _load(db, start=FIRST, end=LAST):
    return load_source(cloudflare.SPEC, IngestRequest(start=start, end=end, progress=lambda message: None), db)


def _rows(db, sql):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_loads_exactly_what_the_sandbox_served_and_retries_rate_limits(sandbox, db_file):
    server, usage = sandbox
    server.inject("429", times=1)
    result = _load(db_file)
    assert result.status == "succeeded", result.error
    operations = _rows(db_file, """SELECT date, bucket_name, action_type, action_status, response_status_code,
                                          storage_class, requests, response_bytes, response_object_size
                                   FROM raw_cloudflare.r2_operations""")
    assert {row[:6]: list(row[6:]) for row in operations} == usage.r2_operations
    storage = _rows(db_file, """SELECT sampled_at, bucket_name, storage_class, payload_size, metadata_size,
                                       object_count, upload_count FROM raw_cloudflare.r2_storage ORDER BY 1""")
    assert storage == sorted(usage.r2_storage)
    bodies = [r.json() for r in server.requests]
    assert all(b["variables"]["accountTag"] == api.R2_ACCOUNT for b in bodies)
    # Two 7-day windows per dataset, plus the rate-limited attempt that was retried.
    assert len(bodies) == 5


def test_a_second_run_merges_instead_of_duplicating(sandbox, db_file):
    _load(db_file)
    _load(db_file, start=LAST - timedelta(days=2))
    assert _rows(db_file, "SELECT count(*) FROM raw_cloudflare.r2_operations") == [(len(sandbox[1].r2_operations),)]


def test_graphql_errors_fail_the_load_with_cloudflare_s_message(sandbox, db_file, monkeypatch):
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "wrong")
    result = _load(db_file)
    assert result.status == "failed" and "authentication error" in result.error
    assert "CLOUDFLARE_API_TOKEN" in result.error
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", api.API_TOKEN)
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", "someone-else")
    result = _load(db_file)
    assert result.status == "failed" and "not authorized for that account" in result.error


def test_a_range_older_than_the_retention_is_refused_by_the_api(db_file, monkeypatch):
    with api.serve(_usage(), LAST, retention_days=7) as server:
        for key, value in api.environment(server.url).items():
            monkeypatch.setenv(key, value)
        result = _load(db_file)
    assert result.status == "failed" and "cannot request data older than 604800s" in result.error

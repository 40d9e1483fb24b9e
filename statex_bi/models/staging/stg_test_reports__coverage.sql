-- One row per coverage metric per run from raw_test_reports.coverage (pct NULL where the summary said "Unknown").
{{ stg_test_coverage('test_reports') }}

-- One row per test per run from raw_test_reports.test_results, renamed and typed.
{{ stg_test_results('test_reports') }}

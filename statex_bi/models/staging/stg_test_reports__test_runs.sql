-- One row per test-suite run from raw_test_reports.test_runs, renamed and typed; nothing is filtered here.
{{ stg_test_runs('test_reports', 'test-reports') }}

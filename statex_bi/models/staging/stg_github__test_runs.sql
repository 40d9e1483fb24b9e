-- One row per test-suite run from raw_github.test_runs, renamed and typed; nothing is filtered here.
{{ stg_test_runs('github', 'github') }}

-- One row per test per run from raw_github.test_results, renamed and typed.
{{ stg_test_results('github') }}

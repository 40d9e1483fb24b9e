-- One row per coverage metric per run from raw_github.coverage (pct NULL where the summary said "Unknown").
{{ stg_test_coverage('github') }}

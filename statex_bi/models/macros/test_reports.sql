{#- The three test-report tables (docs/raw_tables.md) arrive from two sources with the same columns:
    raw_test_reports (a folder of reports) and raw_github (workflow artifacts). One typing for both. -#}

{% macro stg_test_runs(source_name, origin) %}
select
    cast(test_run_id as string) as test_run_id,
    '{{ origin }}' as origin,
    lower(cast(runner as string)) as runner,
    cast(sha as string) as sha,
    cast(branch as string) as branch,
    cast(attempt as bigint) as attempt,
    cast(started_at as timestamp) as started_at,
    cast(exit_code as bigint) as exit_code,
    cast(wall_s as double) as wall_s,
    cast(tests_total as bigint) as tests_total,
    cast(tests_passed as bigint) as tests_passed,
    cast(tests_failed as bigint) as tests_failed,
    cast(tests_skipped as bigint) as tests_skipped,
    cast(tests_todo as bigint) as tests_todo,
    cast(test_files as bigint) as test_files,
    coalesce(cast(files_failed as bigint), 0) as files_failed,
    cast(suites_reported as bigint) as suites_reported,
    cast(has_coverage as boolean) as has_coverage
from {{ source(source_name, 'test_runs') }}
{% endmacro %}

{% macro stg_test_results(source_name) %}
select
    cast(test_result_id as string) as test_result_id,
    cast(test_run_id as string) as test_run_id,
    cast(started_at as timestamp) as started_at,
    cast(position as bigint) as position,
    cast(file as string) as file,
    cast(full_name as string) as full_name,
    {#- rows loaded before test_key existed keep their old identity, file + full name #}
    coalesce(cast(test_key as string), concat(cast(file as string), ' ', cast(full_name as string))) as test_key,
    cast(status as string) as status,
    cast(runner_status as string) as runner_status,
    cast(duration_ms as double) as duration_ms,
    cast(message as string) as message
from {{ source(source_name, 'test_results') }}
{% endmacro %}

{% macro stg_test_coverage(source_name) %}
select
    cast(coverage_id as string) as coverage_id,
    cast(test_run_id as string) as test_run_id,
    cast(started_at as timestamp) as started_at,
    cast(metric as string) as metric,
    cast(total as bigint) as total,
    cast(covered as bigint) as covered,
    cast(pct as double) as pct
from {{ source(source_name, 'coverage') }}
{% endmacro %}

{#- One row per calendar day from `first_day` to `last_day` (both included), as column `day_start`, for each
    row of `bounds` (a relation or CTE whose columns the two expressions read). Each engine spells a
    series of days differently; a new adapter needs its own <adapter>__calendar_days (docs/models.md: "The same
    models on Spark or BigQuery"). day_start is a date or a timestamp at midnight: cast it to date. -#}
{% macro calendar_days(bounds, first_day, last_day) -%}
    {{ return(adapter.dispatch('calendar_days', 'statex_bi')(bounds, first_day, last_day)) }}
{%- endmacro %}

{% macro duckdb__calendar_days(bounds, first_day, last_day) -%}
    select unnest(generate_series({{ first_day }}, {{ last_day }}, interval 1 day)) as day_start
    from {{ bounds }}
{%- endmacro %}

{% macro spark__calendar_days(bounds, first_day, last_day) -%}
    select explode(sequence({{ first_day }}, {{ last_day }}, interval 1 day)) as day_start
    from {{ bounds }}
{%- endmacro %}

{% macro default__calendar_days(bounds, first_day, last_day) -%}
    {{ exceptions.raise_compiler_error(
        'calendar_days (macros/calendar_days.sql) has no version for the ' ~ adapter.type()
        ~ ' adapter: add a ' ~ adapter.type() ~ '__calendar_days macro') }}
{%- endmacro %}

{#- `dbt source freshness` with a DATE `loaded_at_field` (GA4, ECB and Sentry daily rows): dbt wants a
    timestamp, and a loaded day is a whole day, so the data covers until the end of its newest day.
    Timestamp fields are dbt's own query. -#}
{% macro collect_freshness(source, loaded_at_field, filter) %}
    {%- set types = {} -%}
    {%- for column in adapter.get_columns_in_relation(source) -%}
        {%- do types.update({column.name | lower: column.dtype | lower}) -%}
    {%- endfor -%}
    {%- if types.get(loaded_at_field | lower) == 'date' -%}
        {%- set loaded_at_field = dbt.dateadd('day', 1, 'cast(' ~ adapter.quote(loaded_at_field) ~ ' as timestamp)') -%}
    {%- endif -%}
    {{ return(adapter.dispatch('collect_freshness', 'dbt')(source, loaded_at_field, filter)) }}
{% endmacro %}

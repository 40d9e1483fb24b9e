{#- Rows whose combination of `combination_of_columns` occurs more than once (the grain of a model
    keyed on several columns). Same name and arguments as dbt_utils' test. -#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
    {%- set columns = combination_of_columns | join(', ') -%}
    select {{ columns }}, count(*) as occurrences
    from {{ model }}
    group by {{ columns }}
    having count(*) > 1
{% endtest %}

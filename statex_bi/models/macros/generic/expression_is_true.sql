{#- Rows for which the SQL `expression` is false (NULL passes, as in dbt_utils). `column_name`, when
    the test sits on a column, is ignored: the expression names its columns. -#}
{% test expression_is_true(model, expression, column_name=none) %}
    select *
    from {{ model }}
    where not ({{ expression }})
{% endtest %}

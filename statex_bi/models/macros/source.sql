{#- `source()` that never breaks a model whose source is not loaded yet.

    Every raw table is declared with its columns and their types in staging/_<source>__sources.yml
    (the columns the connector declares for dlt). When the table is in the warehouse, this is dbt's own
    source(); when it is not (the source was never loaded, or loaded no such table yet), it is an empty
    SELECT of the declared columns, so the staging model and everything downstream build empty and
    typed instead of being skipped or failing. statex_bi.transform.build reports which sources were
    empty. On Spark the raw tables are exported Parquet files (macros/raw_tables.sql), every declared
    table included, empty or not. -#}
{% macro source(source_name, table_name) %}
    {%- set relation = builtins.source(source_name, table_name) -%}
    {%- set exported = exported_raw_table(relation) -%}
    {%- if exported is not none -%}
        {{- return(exported) -}}
    {%- endif -%}
    {%- if execute and adapter.get_relation(relation.database, relation.schema, relation.identifier) is none -%}
        {{- return(empty_source(source_name, table_name)) -}}
    {%- endif -%}
    {{- return(relation) -}}
{% endmacro %}

{% macro empty_source(source_name, table_name) %}
    {%- set node = graph.sources.get('source.' ~ project_name ~ '.' ~ source_name ~ '.' ~ table_name) -%}
    {%- if node is none -%}
        {{- exceptions.raise_compiler_error('source ' ~ source_name ~ '.' ~ table_name ~ ' is not declared') -}}
    {%- endif -%}
    {%- set columns = node.columns.values() | list -%}
    {%- set untyped = columns | rejectattr('data_type') | map(attribute='name') | list -%}
    {%- if not columns or untyped -%}
        {{- exceptions.raise_compiler_error(
            'source ' ~ source_name ~ '.' ~ table_name ~ ' is not loaded and its sources.yml (' ~ node.original_file_path
            ~ ') does not give a data_type to every column, so it cannot stand in empty: ' ~ (untyped | join(', ') or 'no columns')) -}}
    {%- endif -%}
    {%- set selected = [] -%}
    {%- for column in columns -%}
        {%- do selected.append('cast(null as ' ~ column.data_type ~ ') as ' ~ adapter.quote(column.name)) -%}
    {%- endfor -%}
    {{- return('(select ' ~ selected | join(', ') ~ ' where 1 = 0)') -}}
{% endmacro %}

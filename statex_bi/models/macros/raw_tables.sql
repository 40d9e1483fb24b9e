{#- Where an engine reads a raw table that it does not hold itself, or none when it reads the declared relation.

    DuckDB holds the raw tables (dlt loads into the warehouse file). The local Spark session reads the Parquet
    files `statex-bi build --target spark` exports (statex_bi.transform.spark): $STATEX_BI_PARQUET is that folder
    (or a URI the cluster reads: s3a://, abfss://, gs://), one folder of Parquet files per declared table at
    <schema>/<table>, read in place as parquet.`<folder>`. Nothing is registered in the metastore, so every
    run reads the latest export, new columns included. Without the variable (a Spark cluster whose metastore
    has the raw tables) it is the declared relation. -#}
{% macro exported_raw_table(relation) -%}
    {{ return(adapter.dispatch('exported_raw_table', 'statex_bi')(relation)) }}
{%- endmacro %}

{% macro default__exported_raw_table(relation) -%}
    {{ return(none) }}
{%- endmacro %}

{% macro spark__exported_raw_table(relation) -%}
    {#- Raw tables in the lake ($STATEX_BI_RAW_URL): statex_bi.transform.spark passes the subquery that reads
        each one the lake holds, merged by natural key (statex_bi.transform.lake); one it does not hold is an
        empty source (macros/source.sql). -#}
    {%- set in_lake = fromjson(env_var('STATEX_BI_RAW_RELATIONS', 'null')) -%}
    {%- if in_lake is not none -%}
        {{ return(in_lake.get(relation.schema ~ '.' ~ relation.identifier)) }}
    {%- endif -%}
    {%- set folder = env_var('STATEX_BI_PARQUET', '').rstrip('/') -%}
    {%- if not folder -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return('parquet.`' ~ folder ~ '/' ~ relation.schema ~ '/' ~ relation.identifier ~ '`') }}
{%- endmacro %}

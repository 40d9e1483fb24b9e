{#- A model's schema is its layer: the folder it lives in (staging, core or marts), or the schema its
    config names. dbt's default would prefix the target schema (main_staging); the KPI modules and
    notebooks read staging.*, core.* and marts.*. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is not none -%}
        {{ custom_schema_name | trim }}
    {%- elif node.resource_type == 'model' -%}
        {{ node.original_file_path.replace('\\', '/').split('/')[0] }}
    {%- else -%}
        {{ target.schema }}
    {%- endif -%}
{%- endmacro %}

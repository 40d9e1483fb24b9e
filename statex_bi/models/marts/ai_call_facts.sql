-- One row per AI call: core.ai_calls as a table, what the AI cost report reads. It queries a period's calls some
-- hundred times; over the view each query de-duplicated every loaded call again, so the report's time grew with
-- the history (at --scale 100: 9 s over 70 days, 56 s over 13 months).
select * from {{ ref('ai_calls') }}

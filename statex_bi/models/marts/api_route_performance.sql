-- Grain: one row per grain (day, ISO week, calendar month), period and route.
-- API performance per route and period: requests, failures, Sentry's p50/p95 (with the p95's interval), the
-- mean response time and requests per minute.
with routes as (
    select * from {{ ref('stg_sentry__route_performance') }}
),

measured as (
    select
        grain,
        period_start,
        period_end,
        route,
        requests,
        failed_requests,
        failure_rate as error_rate,
        -- in double, as sentry_issues.hours_to_resolve: a decimal literal would make it a rounded decimal on Spark
        cast(requests as double) / ({{ dbt.datediff('period_start', 'period_end', 'day') }} * 1440) as throughput_rpm,
        p50_ms,
        p95_ms,
        p95_low_ms,
        p95_high_ms,
        avg_ms
    from routes
)

select * from measured

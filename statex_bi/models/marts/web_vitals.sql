-- Core Web Vitals per page, device class, metric and period, with web.dev's thresholds and the rating
-- of the p75 (good <= good_threshold < needs improvement <= poor_threshold < poor).
with vitals as (
    select * from {{ ref('stg_sentry__web_vitals') }}
),

-- web.dev (and the web-vitals library's constants): LCP [2500, 4000] ms, INP [200, 500] ms, CLS [0.1, 0.25].
thresholds as (
    select 'lcp' as metric, cast(2500 as double) as good_threshold, cast(4000 as double) as poor_threshold, 'ms' as unit
    union all select 'inp', 200.0, 500.0, 'ms'
    union all select 'cls', 0.1, 0.25, 'score'
),

rated as (
    select
        vitals.grain,
        vitals.period_start,
        vitals.period_end,
        vitals.page,
        vitals.device,
        vitals.metric,
        thresholds.unit,
        vitals.p75,
        vitals.p75_low,
        vitals.p75_high,
        vitals.samples,
        vitals.good_samples,
        vitals.good_samples / nullif(vitals.samples, 0) as good_share,
        thresholds.good_threshold,
        thresholds.poor_threshold,
        case
            when vitals.p75 <= thresholds.good_threshold then 'good'
            when vitals.p75 <= thresholds.poor_threshold then 'needs improvement'
            else 'poor'
        end as rating
    from vitals
    inner join thresholds on vitals.metric = thresholds.metric
)

select * from rated

-- p75 and good samples of LCP, INP and CLS per page, device class and period, typed.
-- `(all)` in page or device is the row over all pages or devices.
with source as (
    select * from {{ source('sentry', 'web_vitals') }}
)

select
    -- keys
    cast(grain as string) as grain,
    cast(period_start as date) as period_start,
    cast(period_end as date) as period_end,
    cast(page as string) as page,
    cast(device as string) as device,
    lower(cast(metric as string)) as metric,
    -- numbers
    cast(p75 as double) as p75,
    -- the p75's 95 % order-statistic interval, read off Sentry's quantiles by the connector (null: unbounded)
    cast(p75_low as double) as p75_low,
    cast(p75_high as double) as p75_high,
    cast(samples as bigint) as samples,
    cast(good_samples as bigint) as good_samples
from source

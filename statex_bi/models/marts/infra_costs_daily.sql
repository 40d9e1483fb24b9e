-- Actual infrastructure cost per UTC day, service line, provider and FOCUS service: the signed sum
-- of BilledCost (credits, refunds and corrections included) in USD.
-- Grain: one row per day, service, provider and service_name.
-- A row whose charge period spans several days (a monthly fee, or a bill exported at monthly
-- granularity) is spread evenly over the days of [ChargePeriodStart, ChargePeriodEnd), so a week
-- holds its share of a monthly charge, not all of it or none; converted at the rate of its first day,
-- as billed. Daily and hourly rows stay on their ChargePeriodStart day.
with charges as (

    select
        *,
        greatest(
            1,
            coalesce(date_diff('day', charge_day, cast(charge_period_end - interval 1 microsecond as date)) + 1, 1)
        ) as period_days
    from {{ ref('billing_charges_usd') }}

),

spread as (

    select
        *,
        cast(charge_day + cast(offset_days as integer) as date) as day
    from (select *, unnest(range(period_days)) as offset_days from charges)

)

select
    day,
    service,
    provider,
    service_name,
    sum(billed_cost_usd / period_days) as billed_usd,
    sum(emails / period_days) as emails,
    -- rows and unconverted rows are counted once, on their first day
    count(*) filter (where offset_days = 0) as charge_rows,
    count(*) filter (where offset_days = 0 and billed_cost_usd is null) as unconverted_rows,
    sum(case when charge_category = 'Credit' then billed_cost_usd / period_days else 0 end) as credits_usd,
    sum(case when charge_class = 'Correction' then billed_cost_usd / period_days else 0 end) as corrections_usd
from spread
group by day, service, provider, service_name

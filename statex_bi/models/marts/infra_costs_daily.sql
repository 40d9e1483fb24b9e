-- Actual infrastructure cost per UTC day, service line, provider and FOCUS service: the signed sum
-- of BilledCost (credits, refunds and corrections included) in USD.
-- Grain: one row per day, service, provider and service_name.
-- A row whose charge period spans several days (a monthly fee, or a bill exported at monthly
-- granularity) is spread evenly over the days of [ChargePeriodStart, ChargePeriodEnd), so a week
-- holds its share of a monthly charge, not all of it or none; converted at the rate of its first day,
-- as billed. Daily and hourly rows stay on their ChargePeriodStart day.
with dated as (

    select
        *,
        coalesce(
            cast({{ dbt.dateadd('second', -1, 'charge_period_end') }} as date), charge_day
        ) as period_end_day
    from {{ ref('billing_charges_usd') }}

),

charges as (

    select
        *,
        case
            when period_end_day > charge_day then {{ dbt.datediff('charge_day', 'period_end_day', 'day') }} + 1
            else 1
        end as period_days
    from dated

),

bounds as (

    select min(charge_day) as first_day, max(period_end_day) as last_day from charges

),

days as (

    {{ calendar_days('bounds', 'first_day', 'last_day') }}

),

spread as (

    select
        charges.*,
        cast(days.day_start as date) as day,
        case when cast(days.day_start as date) = charges.charge_day then 1 else 0 end as first_day
    from charges
    inner join days
        on cast(days.day_start as date) between charges.charge_day
        and greatest(charges.charge_day, charges.period_end_day)

)

select
    day,
    service,
    provider,
    service_name,
    sum(billed_cost_usd / period_days) as billed_usd,
    sum(cast(emails as double) / period_days) as emails,
    -- rows and unconverted rows are counted once, on their first day
    sum(first_day) as charge_rows,
    sum(case when billed_cost_usd is null then first_day else 0 end) as unconverted_rows,
    sum(case when charge_category = 'Credit' then billed_cost_usd / period_days else 0 end) as credits_usd,
    sum(case when charge_class = 'Correction' then billed_cost_usd / period_days else 0 end) as corrections_usd
from spread
group by day, service, provider, service_name

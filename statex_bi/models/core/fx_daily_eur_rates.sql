-- ECB euro reference rates carried forward to every calendar day: the ECB publishes on its business
-- days only, so a Saturday payment uses Friday's rate (a holiday Monday: the Friday before).
with published as (

    select
        currency,
        rate_date,
        rate,
        lead(rate_date) over (partition by currency order by rate_date) as next_rate_date
    from {{ ref('stg_fx__eur_reference_rates') }}
    where currency <> 'EUR'

),

bounds as (

    -- up to today, so payments made after the last publication still find the latest rate
    select
        min(rate_date) as first_day,
        greatest(max(rate_date), current_date) as last_day
    from published

),

days as (

    {{ calendar_days('bounds', 'first_day', 'last_day') }}

),

calendar as (

    select cast(day_start as date) as rate_day
    from days

),

carried_forward as (

    select
        calendar.rate_day,
        published.currency,
        published.rate,
        published.rate_date
    from calendar
    inner join published
        on calendar.rate_day >= published.rate_date
        and (published.next_rate_date is null or calendar.rate_day < published.next_rate_date)

),

euro as (

    -- the base currency: one euro is one euro, every day
    select
        rate_day,
        'EUR' as currency,
        cast(1.0 as double) as rate,
        rate_day as rate_date
    from calendar

),

final as (

    select * from carried_forward
    union all
    select * from euro

)

select * from final

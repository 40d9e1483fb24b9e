-- The currencies the ECB publishes a euro reference rate for, the euro itself, and the currencies whose
-- minor unit is not a hundredth, with the number of decimals of their minor unit (ISO 4217): an amount
-- of `amount_minor` is worth amount_minor / 10^exponent units of the currency. A currency absent from
-- this table has 2 decimals.
with published as (

    select
        currency,
        min(rate_date) as first_rate_date,
        max(rate_date) as last_rate_date
    from {{ ref('stg_fx__eur_reference_rates') }}
    where currency <> 'EUR'
    group by currency

),

euro as (

    select
        'EUR' as currency,
        min(first_rate_date) as first_rate_date,
        max(last_rate_date) as last_rate_date
    from published

),

iso_exceptions as (

    select currency, exponent
    from (
        values
            ('BIF', 0), ('CLP', 0), ('DJF', 0), ('GNF', 0), ('ISK', 0), ('JPY', 0), ('KMF', 0),
            ('KRW', 0), ('PYG', 0), ('RWF', 0), ('UGX', 0), ('UYI', 0), ('VND', 0), ('VUV', 0),
            ('XAF', 0), ('XOF', 0), ('XPF', 0),
            ('BHD', 3), ('IQD', 3), ('JOD', 3), ('KWD', 3), ('LYD', 3), ('OMR', 3), ('TND', 3),
            ('CLF', 4), ('UYW', 4)
    ) as iso (currency, exponent)

),

with_rates as (

    select * from published
    union all
    select * from euro

),

final as (

    select
        coalesce(with_rates.currency, iso_exceptions.currency) as currency,
        coalesce(iso_exceptions.exponent, 2) as exponent,
        with_rates.first_rate_date,
        with_rates.last_rate_date
    from with_rates
    full outer join iso_exceptions
        on with_rates.currency = iso_exceptions.currency

)

select * from final

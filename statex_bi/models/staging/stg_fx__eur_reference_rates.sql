with source as (

    select * from {{ source('fx', 'eur_reference_rates') }}

),

renamed as (

    select
        -- keys
        cast(date as date) as rate_date,
        upper(currency) as currency,

        -- units of `currency` per 1 EUR, as the ECB publishes it
        cast(rate as double) as rate

    from source

)

select * from renamed

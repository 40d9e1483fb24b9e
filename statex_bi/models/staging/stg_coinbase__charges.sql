with source as (

    select * from {{ source('coinbase', 'charges') }}

),

renamed as (

    select
        -- ids
        id as charge_id,
        code as charge_code,
        customer_id,

        -- status: the last timeline status (NEW, SIGNED, PENDING, COMPLETED, EXPIRED, FAILED, ...)
        upper(status) as status,

        -- money: the local (fiat) price, in minor units of `currency`
        upper(currency) as currency,
        -- the decimals of the amounts as the provider sent them (NULL: loaded before it was recorded)
        cast(currency_exponent as bigint) as currency_exponent,
        cast(amount as bigint) as amount_minor,

        -- timestamps (UTC)
        cast(created_at as timestamp) as created_at,
        cast(completed_at as timestamp) as completed_at,

        metadata_json

    from source

)

select * from renamed

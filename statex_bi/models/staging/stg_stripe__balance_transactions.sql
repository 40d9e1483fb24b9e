with source as (

    select * from {{ source('stripe', 'balance_transactions') }}

),

renamed as (

    select
        -- ids
        id as balance_transaction_id,
        source as source_id,

        -- classification
        type,
        reporting_category,
        status,

        -- money, in minor units of `currency` (the settlement currency, which may differ from the
        -- charge's): amount - fee = net
        upper(currency) as currency,
        -- the decimals of the amounts as the provider sent them (NULL: loaded before it was recorded)
        cast(currency_exponent as bigint) as currency_exponent,
        cast(amount as bigint) as amount_minor,
        cast(fee as bigint) as fee_minor,
        cast(net as bigint) as net_minor,

        -- timestamps (UTC)
        cast(created as timestamp) as created_at

    from source

)

select * from renamed

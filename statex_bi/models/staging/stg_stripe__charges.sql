with source as (

    select * from {{ source('stripe', 'charges') }}

),

renamed as (

    select
        -- ids
        id as charge_id,
        customer_id,
        payment_intent as payment_intent_id,
        balance_transaction as balance_transaction_id,

        -- status
        status,
        cast(paid as boolean) as is_paid,
        cast(refunded as boolean) as is_refunded,
        failure_code,

        -- money, in minor units of `currency`
        upper(currency) as currency,
        -- the decimals of the amounts as the provider sent them (NULL: loaded before it was recorded)
        cast(currency_exponent as bigint) as currency_exponent,
        cast(amount as bigint) as amount_minor,
        cast(amount_refunded as bigint) as amount_refunded_minor,

        -- timestamps (UTC)
        cast(created as timestamp) as created_at,

        metadata_json

    from source

)

select * from renamed

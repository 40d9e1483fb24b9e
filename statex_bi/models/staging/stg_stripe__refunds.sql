with source as (

    select * from {{ source('stripe', 'refunds') }}

),

renamed as (

    select
        -- ids
        id as refund_id,
        charge as charge_id,

        -- status: pending, requires_action, succeeded, failed or canceled
        status,
        reason,

        -- money, in minor units of `currency` (positive: the amount given back)
        upper(currency) as currency,
        -- the decimals of the amounts as the provider sent them (NULL: loaded before it was recorded)
        cast(currency_exponent as bigint) as currency_exponent,
        cast(amount as bigint) as amount_minor,

        -- timestamps (UTC)
        cast(created as timestamp) as created_at

    from source

)

select * from renamed

with source as (

    select * from {{ source('paypal', 'transactions') }}

),

renamed as (

    select
        -- ids
        transaction_id,
        reference_id as referenced_transaction_id,
        invoice_id,
        customer_id,

        -- classification: event code T00xx = payment received, T1107 = refund
        event_code,
        -- PayPal's status S/P/D/V, and what it means among the house's payment states
        status as provider_status,
        case status
            when 'S' then 'succeeded'
            when 'P' then 'pending'
            when 'D' then 'failed'
            when 'V' then 'reversed'
            else 'other'
        end as status,

        -- money, in minor units of `currency`, signed as PayPal signs it: refunds negative,
        -- fees negative when charged (positive when PayPal gives a fee back on a refund)
        upper(currency) as currency,
        -- the decimals of the amounts as the provider sent them (NULL: loaded before it was recorded)
        cast(currency_exponent as bigint) as currency_exponent,
        cast(amount as bigint) as amount_minor,
        cast(fee as bigint) as fee_minor,

        -- timestamps (UTC)
        cast(initiation_date as timestamp) as initiated_at,
        cast(updated_date as timestamp) as updated_at,

        metadata_json

    from source

)

select * from renamed

-- Every refund at every provider (Coinbase Commerce has none), dated when it was made. Amounts are
-- positive minor units of `currency`; fee_minor is the fee cost of the refund itself (negative when
-- the provider gives part of the payment's fee back).
with stripe_refunds as (

    select * from {{ ref('stg_stripe__refunds') }}

),

stripe_balance as (

    select * from {{ ref('stg_stripe__balance_transactions') }}

),

paypal_transactions as (

    select * from {{ ref('stg_paypal__transactions') }}

),

stripe as (

    select
        'stripe' as provider,
        stripe_refunds.refund_id,
        stripe_refunds.charge_id as payment_id,
        stripe_refunds.created_at,
        case
            when stripe_refunds.status in ('succeeded', 'pending', 'failed', 'canceled') then stripe_refunds.status
            when stripe_refunds.status = 'requires_action' then 'pending'
            else 'other'
        end as status,
        stripe_refunds.status as provider_status,
        stripe_refunds.currency,
        stripe_refunds.currency_exponent,
        stripe_refunds.amount_minor,
        stripe_balance.fee_minor,
        stripe_balance.currency as fee_currency,
        stripe_balance.currency_exponent as fee_currency_exponent
    from stripe_refunds
    left join stripe_balance
        on stripe_refunds.refund_id = stripe_balance.source_id
        and stripe_balance.type in ('refund', 'payment_refund')

),

paypal as (

    -- PayPal signs refunds negative and a fee given back positive
    select
        'paypal' as provider,
        transaction_id as refund_id,
        referenced_transaction_id as payment_id,
        initiated_at as created_at,
        status,
        provider_status,
        currency,
        currency_exponent,
        -amount_minor as amount_minor,
        -fee_minor as fee_minor,
        currency as fee_currency,
        currency_exponent as fee_currency_exponent
    from paypal_transactions
    where event_code = 'T1107'

),

final as (

    select * from stripe
    union all
    select * from paypal

)

select * from final

-- Every payment attempt at every provider, in one shape. Amounts stay in minor units of the
-- payment's currency, with the decimals the provider used for it (`currency_exponent`, NULL for rows
-- loaded before it was recorded); fees are a positive cost in minor units of `fee_currency`.
with stripe_charges as (

    select * from {{ ref('stg_stripe__charges') }}

),

stripe_balance as (

    select * from {{ ref('stg_stripe__balance_transactions') }}

),

paypal_transactions as (

    select * from {{ ref('stg_paypal__transactions') }}

),

coinbase_charges as (

    select * from {{ ref('stg_coinbase__charges') }}

),

stripe as (

    -- the fee is on the charge's balance transaction, in the settlement currency; a charge that
    -- never settled (failed, pending) has none
    select
        'stripe' as provider,
        stripe_charges.charge_id as payment_id,
        stripe_charges.customer_id,
        stripe_charges.created_at,
        case
            when stripe_charges.status in ('succeeded', 'failed', 'pending') then stripe_charges.status
            else 'other'
        end as status,
        stripe_charges.status as provider_status,
        stripe_charges.currency,
        stripe_charges.currency_exponent,
        stripe_charges.amount_minor,
        stripe_balance.fee_minor,
        stripe_balance.currency as fee_currency,
        stripe_balance.currency_exponent as fee_currency_exponent,
        stripe_charges.metadata_json
    from stripe_charges
    left join stripe_balance
        on stripe_charges.balance_transaction_id = stripe_balance.balance_transaction_id

),

paypal as (

    -- payments received are the T00xx event codes with a positive amount (T0001 mass payments
    -- and other outgoing money are negative); PayPal signs a charged fee negative
    select
        'paypal' as provider,
        transaction_id as payment_id,
        customer_id,
        initiated_at as created_at,
        status,
        provider_status,
        currency,
        currency_exponent,
        amount_minor,
        -fee_minor as fee_minor,
        currency as fee_currency,
        currency_exponent as fee_currency_exponent,
        metadata_json
    from paypal_transactions
    where event_code like 'T00%' and amount_minor > 0

),

coinbase as (

    -- the Commerce charges API carries no fee: fee_minor stays NULL (unknown), never 0
    select
        'coinbase' as provider,
        charge_id as payment_id,
        customer_id,
        created_at,
        case status
            when 'COMPLETED' then 'succeeded'
            when 'RESOLVED' then 'succeeded'
            when 'NEW' then 'pending'
            when 'SIGNED' then 'pending'
            when 'PENDING' then 'pending'
            when 'EXPIRED' then 'expired'
            when 'FAILED' then 'failed'
            when 'CANCELED' then 'canceled'
            when 'UNRESOLVED' then 'unresolved'
            else 'other'
        end as status,
        status as provider_status,
        currency,
        currency_exponent,
        amount_minor,
        cast(null as bigint) as fee_minor,
        cast(null as string) as fee_currency,
        cast(null as bigint) as fee_currency_exponent,
        metadata_json
    from coinbase_charges

),

attempts as (

    select * from stripe
    union all
    select * from paypal
    union all
    select * from coinbase

),

successes_ranked as (

    -- a customer's first ever successful payment, whichever provider it went through
    select
        provider,
        payment_id,
        row_number() over (
            partition by customer_id
            order by created_at, provider, payment_id
        ) as success_number
    from attempts
    where status = 'succeeded' and customer_id is not null

),

final as (

    select
        attempts.provider,
        attempts.payment_id,
        attempts.customer_id,
        attempts.created_at,
        attempts.status,
        attempts.provider_status,
        attempts.currency,
        attempts.currency_exponent,
        attempts.amount_minor,
        attempts.fee_minor,
        attempts.fee_currency,
        attempts.fee_currency_exponent,
        attempts.metadata_json,
        coalesce(successes_ranked.success_number = 1, false) as is_first_successful
    from attempts
    left join successes_ranked
        on attempts.provider = successes_ranked.provider
        and attempts.payment_id = successes_ranked.payment_id

)

select * from final

-- Refunds with their amount and fee in major units and in euros at the ECB reference rate of the
-- refund's (UTC) day, plus what the refunded payment says about where it came from.
with refunds as (

    select * from {{ ref('refunds') }}

),

payments as (

    select * from {{ ref('payments') }}

),

exponents as (

    select * from {{ ref('currencies') }}

),

rates as (

    select * from {{ ref('fx_daily_eur_rates') }}

),

converted as (

    select
        refunds.provider,
        refunds.refund_id,
        refunds.payment_id,
        refunds.created_at,
        cast(refunds.created_at as date) as created_date,
        refunds.status,
        refunds.provider_status,

        -- the refund and the fee cost of the refund itself (negative: a fee given back), in its currency and euros
        {{ eur_columns('refunds') }},

        -- the refunded payment (NULL when it is not loaded)
        payments.created_at as payment_created_at,
        payments.customer_id,
        payments.metadata_json
    from refunds
    left join payments
        on refunds.provider = payments.provider
        and refunds.payment_id = payments.payment_id
    {{ eur_joins('refunds', 'exponents', 'rates') }}

)

select * from converted

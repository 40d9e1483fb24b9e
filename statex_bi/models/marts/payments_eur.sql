-- Payment attempts with their amount and fee in major units and in euros, at the ECB reference rate
-- of the payment's (UTC) day, carried forward over weekends and holidays.
with payments as (

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
        payments.provider,
        payments.payment_id,
        payments.customer_id,
        payments.created_at,
        cast(payments.created_at as date) as created_date,
        payments.status,
        payments.provider_status,
        payments.is_first_successful,

        -- the payment and the provider's fee (NULL when not reported), in its own currency and in euros
        {{ eur_columns('payments') }},

        payments.metadata_json
    from payments
    {{ eur_joins('payments', 'exponents', 'rates') }}

)

select * from converted

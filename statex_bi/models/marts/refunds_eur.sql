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

    -- amounts use the decimals the provider sent them with (PayPal: HUF 0), ISO 4217's for rows
    -- loaded before the connector recorded them
    select
        refunds.provider,
        refunds.refund_id,
        refunds.payment_id,
        refunds.created_at,
        cast(refunds.created_at as date) as created_date,
        refunds.status,
        refunds.provider_status,

        -- the refund, in its own currency
        refunds.currency,
        refunds.amount_minor,
        {{ minor_to_major('refunds.amount_minor', 'coalesce(refunds.currency_exponent, amount_exponent.exponent)') }} as amount,
        amount_rate.rate as eur_rate,
        amount_rate.rate_date as eur_rate_date,
        {{ minor_to_eur('refunds.amount_minor', 'coalesce(refunds.currency_exponent, amount_exponent.exponent)', 'amount_rate.rate') }} as amount_eur,

        -- the fee cost of the refund itself (negative: a fee given back)
        refunds.fee_currency,
        refunds.fee_minor,
        {{ minor_to_major('refunds.fee_minor', 'coalesce(refunds.fee_currency_exponent, fee_exponent.exponent)') }} as fee,
        fee_rate.rate as fee_eur_rate,
        {{ minor_to_eur('refunds.fee_minor', 'coalesce(refunds.fee_currency_exponent, fee_exponent.exponent)', 'fee_rate.rate') }} as fee_eur,

        -- the refunded payment (NULL when it is not loaded)
        payments.created_at as payment_created_at,
        payments.customer_id,
        payments.metadata_json
    from refunds
    left join payments
        on refunds.provider = payments.provider
        and refunds.payment_id = payments.payment_id
    left join exponents as amount_exponent
        on refunds.currency = amount_exponent.currency
    left join exponents as fee_exponent
        on refunds.fee_currency = fee_exponent.currency
    left join rates as amount_rate
        on refunds.currency = amount_rate.currency
        and cast(refunds.created_at as date) = amount_rate.rate_day
    left join rates as fee_rate
        on refunds.fee_currency = fee_rate.currency
        and cast(refunds.created_at as date) = fee_rate.rate_day

)

select * from converted

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

    -- amounts use the decimals the provider sent them with (PayPal: HUF 0), ISO 4217's for rows
    -- loaded before the connector recorded them
    select
        payments.provider,
        payments.payment_id,
        payments.customer_id,
        payments.created_at,
        cast(payments.created_at as date) as created_date,
        payments.status,
        payments.provider_status,
        payments.is_first_successful,

        -- the payment, in its own currency
        payments.currency,
        payments.amount_minor,
        {{ minor_to_major('payments.amount_minor', 'coalesce(payments.currency_exponent, amount_exponent.exponent)') }} as amount,
        amount_rate.rate as eur_rate,
        amount_rate.rate_date as eur_rate_date,
        {{ minor_to_eur('payments.amount_minor', 'coalesce(payments.currency_exponent, amount_exponent.exponent)', 'amount_rate.rate') }} as amount_eur,

        -- the provider's fee (NULL when the provider does not report it)
        payments.fee_currency,
        payments.fee_minor,
        {{ minor_to_major('payments.fee_minor', 'coalesce(payments.fee_currency_exponent, fee_exponent.exponent)') }} as fee,
        fee_rate.rate as fee_eur_rate,
        {{ minor_to_eur('payments.fee_minor', 'coalesce(payments.fee_currency_exponent, fee_exponent.exponent)', 'fee_rate.rate') }} as fee_eur,

        payments.metadata_json
    from payments
    left join exponents as amount_exponent
        on payments.currency = amount_exponent.currency
    left join exponents as fee_exponent
        on payments.fee_currency = fee_exponent.currency
    left join rates as amount_rate
        on payments.currency = amount_rate.currency
        and cast(payments.created_at as date) = amount_rate.rate_day
    left join rates as fee_rate
        on payments.fee_currency = fee_rate.currency
        and cast(payments.created_at as date) = fee_rate.rate_day

)

select * from converted

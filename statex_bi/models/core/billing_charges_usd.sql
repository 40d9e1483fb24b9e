-- FOCUS rows with the service line they belong to and BilledCost in USD at the ECB reference rate of
-- ChargePeriodStart's day (carried forward over weekends and holidays). billed_cost_usd is NULL when
-- no rate covers the day: the savings report lists those rows, it never treats them as 0.
with charges as (

    select * from {{ ref('stg_billing__charges') }}

),

rates as (

    select rate_day, currency, rate from {{ ref('fx_daily_eur_rates') }}

),

converted as (

    select
        charges.*,
        case
            when charges.billing_currency = 'USD' then 1.0
            else usd.rate / billing.rate
        end as usd_per_billing_unit
    from charges
    left join rates as billing
        on billing.currency = charges.billing_currency and billing.rate_day = charges.charge_day
    left join rates as usd
        on usd.currency = 'USD' and usd.rate_day = charges.charge_day

)

select
    *,
    case
        when service_code = 'AmazonSES' or lower(service_name) = 'amazon simple email service' then 'email'
        when lower(service_name) = 'azure ai services'
            or lower(service_category) = 'ai and machine learning' then 'ai'
        when lower(service_category) = 'storage' then 'storage'
        when lower(service_category) = 'compute' then 'compute'
        else coalesce(lower(service_category), 'other')
    end as service,
    cast(billed_cost as double) * usd_per_billing_unit as billed_cost_usd,
    -- e-mails sent: SES recipients, matched on the usage type's suffix (a region prefix such as
    -- USE1- may precede it); mailbox-simulator sends are free tests, not mail
    case
        when charge_category = 'Usage' and (
            sku_meter in ('Recipients', 'Recipients-EC2')
            or sku_meter like '%-Recipients'
            or sku_meter like '%-Recipients-EC2'
        ) then consumed_quantity
    end as emails
from converted

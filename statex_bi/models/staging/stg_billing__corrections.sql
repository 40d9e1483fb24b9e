-- One row per closed billing period (and currency) of an export whose billed total a later delivery
-- changed (raw_billing.corrections): the change is loaded, and listed here so that no report shows a
-- closed month's new total silently.
select
    delivery_slot,
    billing_period_start,
    billing_period_end,
    billing_currency,
    previous_billed_cost,
    billed_cost,
    billed_cost - previous_billed_cost as change,
    delivered_at,
    detected_at
from {{ source('billing', 'corrections') }}

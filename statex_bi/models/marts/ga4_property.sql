-- The GA4 property's time zone: GA4's days are cut in it, and the growth report dates payments in it.
-- One row per property the loads have seen (normally one).
with property as (

    select * from {{ ref('stg_ga4__property') }}

)

select property_id, time_zone, currency_code, checked_at from property

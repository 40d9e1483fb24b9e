-- Actual infrastructure cost per UTC day (of ChargePeriodStart), service line, provider and FOCUS
-- service: the signed sum of BilledCost (credits, refunds and corrections included) in USD.
select
    charge_day as day,
    service,
    provider,
    service_name,
    sum(billed_cost_usd) as billed_usd,
    sum(emails) as emails,
    count(*) as charge_rows,
    sum(case when billed_cost_usd is null then 1 else 0 end) as unconverted_rows,
    sum(case when charge_category = 'Credit' then billed_cost_usd else 0 end) as credits_usd,
    sum(case when charge_class = 'Correction' then billed_cost_usd else 0 end) as corrections_usd
from {{ ref('billing_charges_usd') }}
group by charge_day, service, provider, service_name

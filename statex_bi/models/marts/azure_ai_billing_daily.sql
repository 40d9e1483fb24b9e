-- What Azure billed per UTC day for Azure OpenAI ("Azure AI Services" FOCUS rows), in USD: the bill
-- side of the AI cost report's Azure reconciliation.
select
    charge_day as day,
    sum(billed_cost_usd) as billed_usd,
    count(*) as charge_rows,
    sum(case when billed_cost_usd is null then 1 else 0 end) as unconverted_rows
from {{ ref('billing_charges_usd') }}
where service = 'ai' and lower(provider) = 'microsoft'
group by charge_day

-- What Azure billed per UTC day for Azure OpenAI, in USD: the bill side of the AI cost report's Azure
-- reconciliation. Only Azure AI Services (ServiceName "Azure AI Services", or a resource of the
-- microsoft.cognitiveservices provider): other "AI and Machine Learning" services such as Azure Machine
-- Learning are not Azure OpenAI calls (the infrastructure report keeps the whole category).
select
    charge_day as day,
    sum(billed_cost_usd) as billed_usd,
    count(*) as charge_rows,
    sum(case when billed_cost_usd is null then 1 else 0 end) as unconverted_rows
from {{ ref('billing_charges_usd') }}
where lower(provider) = 'microsoft'
    and (
        lower(service_name) = 'azure ai services'
        or lower(resource_id) like '%/providers/microsoft.cognitiveservices/%'
    )
group by charge_day

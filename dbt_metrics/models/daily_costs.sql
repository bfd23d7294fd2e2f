-- Outside calls and their dollars per day, service and model (cache hits counted apart).
select
    cast(date_trunc('day', ts) as date) as day,
    service,
    coalesce(model, '') as model,
    count(*) filter (where outcome = 'ok') as requests,
    count(*) filter (where outcome = 'failed') as failed_calls,
    coalesce(sum(input_tokens), 0) as input_tokens,
    coalesce(sum(output_tokens), 0) as output_tokens,
    round(coalesce(sum(cost_usd), 0), 6) as cost_usd,
    count(distinct title) as titles
from {{ source('events', 'api_calls') }}
group by all

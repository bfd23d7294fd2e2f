-- Dollars per day, service and model: outside calls (API prices), and the stages' own CPU
-- and GPU time as service 'compute' (the pricing file's [compute] prices).
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
union all
select
    cast(date_trunc('day', ts) as date) as day,
    'compute' as service,
    '' as model,
    count(*) as requests,
    0 as failed_calls,
    0 as input_tokens,
    0 as output_tokens,
    round(coalesce(sum(compute_cost_usd), 0), 6) as cost_usd,
    count(distinct title) as titles
from {{ source('events', 'stage_metrics') }}
group by all

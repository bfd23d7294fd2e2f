-- One row per title: what its stages cost in compute (CPU and GPU time at the pricing
-- file's [compute] prices, every run of every stage) plus what its outside calls cost.
with compute as (
    select title, sum(compute_cost_usd) as compute_cost_usd,
           sum(cpu_seconds) as cpu_seconds, sum(gpu_seconds) as gpu_seconds
    from {{ source('events', 'stage_metrics') }}
    where coalesce(title, '') <> ''
    group by title
),
api as (
    select title, sum(cost_usd) as api_cost_usd
    from {{ source('events', 'api_calls') }}
    where coalesce(title, '') <> ''
    group by title
)
select
    coalesce(c.title, a.title) as title,
    round(coalesce(c.compute_cost_usd, 0), 6) as compute_cost_usd,
    round(coalesce(a.api_cost_usd, 0), 6) as api_cost_usd,
    round(coalesce(c.compute_cost_usd, 0) + coalesce(a.api_cost_usd, 0), 6) as total_cost_usd,
    coalesce(c.cpu_seconds, 0) as cpu_seconds,
    coalesce(c.gpu_seconds, 0) as gpu_seconds
from compute c
full outer join api a on a.title = c.title

-- One row per title: what its outside calls cost, in requests, tokens and dollars, and how
-- many enhanced lines came from the cache instead.
select
    title,
    count(*) filter (where outcome = 'ok') as requests,
    count(*) filter (where outcome = 'failed') as failed_calls,
    coalesce(sum(input_tokens), 0) as input_tokens,
    coalesce(sum(output_tokens), 0) as output_tokens,
    round(coalesce(sum(cost_usd), 0), 6) as cost_usd,
    coalesce(sum(segments) filter (where outcome = 'cache_hit'), 0) as lines_from_cache,
    max(ts) as last_call_at
from {{ source('events', 'api_calls') }}
group by title

-- Per day: how runs ended, the fallbacks taken, and how the outside services behaved (calls,
-- failed calls, retries beyond the first attempt, calls refused by an open breaker).
with days as (
    select cast(date_trunc('day', ts) as date) as day from {{ source('events', 'runs') }}
    union
    select cast(date_trunc('day', ts) as date) from {{ source('events', 'api_calls') }}
    union
    select cast(date_trunc('day', ts) as date) from {{ source('events', 'degradations') }}
),
runs as (
    select
        cast(date_trunc('day', ts) as date) as day,
        count(*) as runs,
        count(*) filter (where status = 'success') as successful_runs
    from {{ source('events', 'runs') }}
    group by 1
),
calls as (
    select
        cast(date_trunc('day', ts) as date) as day,
        count(*) filter (where outcome <> 'cache_hit') as calls,
        count(*) filter (where outcome = 'failed') as failed_calls,
        coalesce(sum(greatest(attempts - 1, 0)), 0) as retries,
        count(*) filter (where error_class = 'breaker_open') as breaker_refusals
    from {{ source('events', 'api_calls') }}
    group by 1
),
fallbacks as (
    select cast(date_trunc('day', ts) as date) as day, count(*) as degradations
    from {{ source('events', 'degradations') }}
    group by 1
)
select
    d.day,
    coalesce(r.runs, 0) as runs,
    coalesce(r.successful_runs, 0) as successful_runs,
    r.successful_runs / nullif(r.runs, 0) as success_rate,
    coalesce(f.degradations, 0) as degradations,
    coalesce(c.calls, 0) as calls,
    coalesce(c.failed_calls, 0) as failed_calls,
    coalesce(c.retries, 0) as retries,
    coalesce(c.breaker_refusals, 0) as breaker_refusals
from days d
left join runs r using (day)
left join calls c using (day)
left join fallbacks f using (day)

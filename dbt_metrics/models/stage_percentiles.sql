-- Per stage, across titles: p50 / p95 of wall seconds and of seconds per audio second, its
-- mean share of a run's time (stages above 20 % flagged), overall and by the title's audio
-- duration. Cache hits are left out: they measure the cache, not the stage.
with runs as (
    select
        *,
        max(audio_seconds) over (partition by run_id) as title_audio_seconds
    from {{ ref('stage_share') }}
    where not coalesce(cache_hit, false)
),
bucketed as (
    select *, 'all' as duration from runs
    union all
    select
        *,
        case
            when title_audio_seconds is null then 'unknown'
            when title_audio_seconds < 60 then 'under 1 min'
            when title_audio_seconds < 600 then '1-10 min'
            when title_audio_seconds < 3600 then '10-60 min'
            else 'over 1 h'
        end as duration
    from runs
)
select
    asset,
    duration,
    count(*) as runs,
    quantile_cont(wall_seconds, 0.5) as p50_seconds,
    quantile_cont(wall_seconds, 0.95) as p95_seconds,
    quantile_cont(wall_seconds / nullif(title_audio_seconds, 0), 0.5)
        as p50_seconds_per_audio_second,
    quantile_cont(wall_seconds / nullif(title_audio_seconds, 0), 0.95)
        as p95_seconds_per_audio_second,
    avg(share) as mean_share,
    avg(share) > 0.2 as bottleneck
from bucketed
group by asset, duration

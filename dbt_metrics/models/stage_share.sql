-- One row per run and stage: the stage's wall time and its share of the run's stage time;
-- a stage above 20 % of its run is flagged as that run's bottleneck. Stages served from the
-- cache are marked (their time is not the work's).
with stages as (
    select
        run_id,
        title,
        asset,
        sum(wall_seconds) as wall_seconds,
        sum(cpu_seconds) as cpu_seconds,
        sum(compute_cost_usd) as compute_cost_usd,
        max(peak_rss_mb) as peak_rss_mb,
        max(audio_seconds) as audio_seconds,
        bool_or(cache_hit) as cache_hit,
        max(ts) as finished_at
    from {{ source('events', 'stage_metrics') }}
    where status = 'success' and coalesce(run_id, '') <> ''
    group by run_id, title, asset
)
select
    *,
    wall_seconds / nullif(sum(wall_seconds) over (partition by run_id), 0) as share,
    coalesce(wall_seconds / nullif(sum(wall_seconds) over (partition by run_id), 0) > 0.2,
             false) as bottleneck
from stages

-- Latest successful run of each stage per title, with its cost in time and memory.
with ranked as (
    select
        title,
        asset,
        run_id,
        ts,
        wall_seconds,
        cpu_seconds,
        peak_rss_mb,
        input_bytes,
        output_bytes,
        audio_seconds,
        row_number() over (partition by title, asset order by ts desc) as recency
    from {{ source('events', 'stage_metrics') }}
    where status = 'success'
)
select
    title,
    asset,
    run_id,
    ts as finished_at,
    wall_seconds,
    cpu_seconds,
    peak_rss_mb,
    input_bytes,
    output_bytes,
    case when wall_seconds > 0 then audio_seconds / wall_seconds end as audio_seconds_per_second
from ranked
where recency = 1

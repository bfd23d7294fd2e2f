-- One row per title: how often it ran, how the last run ended, and how fast it went.
select
    title,
    count(*) as runs,
    count(*) filter (where status = 'success') as successful_runs,
    arg_max(status, ts) as last_status,
    arg_max(error_message, ts) as last_error,
    max(ts) as last_run_at,
    arg_max(audio_seconds, ts) filter (where status = 'success') as audio_seconds,
    arg_max(wall_seconds, ts) filter (where status = 'success') as wall_seconds,
    arg_max(audio_seconds / nullif(wall_seconds, 0), ts) filter (where status = 'success')
        as audio_seconds_per_second,
    arg_max(cues, ts) filter (where status = 'success') as cues
from {{ source('events', 'runs') }}
group by title

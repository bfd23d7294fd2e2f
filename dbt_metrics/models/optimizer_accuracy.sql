-- How well the optimizer's predictions held, per source of the decision (a model version,
-- 'rules', 'pinned', 'off'): decisions, how many were measured, mean absolute error of the
-- predicted WER and of the predicted seconds per audio second, and the mean measured values.
select
    source,
    count(*) as decisions,
    count(measured_wer) as measured,
    avg(abs(predicted_wer - measured_wer)) as wer_mean_abs_error,
    avg(abs(predicted_seconds_per_audio_s - measured_seconds_per_audio_s))
        as seconds_per_audio_s_mean_abs_error,
    avg(measured_wer) as measured_wer,
    avg(measured_seconds_per_audio_s) as measured_seconds_per_audio_s,
    max(ts) as last_decision_at
from {{ source('events', 'optimizer_decisions') }}
group by source

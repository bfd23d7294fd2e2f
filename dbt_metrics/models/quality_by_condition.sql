-- One row per evaluation run, spoken language, condition and system: mean scores over the
-- corpus films (benchmarks/bench_quality.py), and the project's margin over plain
-- faster-whisper on the same films (negative WER margin and positive BLEU margin are better).
with scores as (
    select
        evaluation_id,
        max(commit) as commit,
        language,
        condition,
        system,
        count(*) as films,
        sum(audio_seconds) as audio_seconds,
        avg(wer) as wer,
        avg(bleu) as bleu,
        avg(chrf) as chrf,
        avg(compliance) as compliance,
        sum(invented_cues) as invented_cues,
        sum(invented_in_nonspeech) as invented_in_nonspeech,
        sum(wall_seconds) / nullif(sum(audio_seconds), 0) as realtime_factor,
        min(ts) as evaluated_at
    from {{ source('events', 'evaluations') }}
    group by evaluation_id, language, condition, system
)
select
    s.*,
    s.wer - p.wer as wer_minus_plain,
    s.bleu - p.bleu as bleu_minus_plain
from scores s
left join scores p
    on p.evaluation_id = s.evaluation_id
    and p.language = s.language
    and p.condition = s.condition
    and p.system = 'plain'

-- Quality over time: per corpus evaluation (benchmarks/bench_quality.py), in the order they
-- ran, each system's WER over the English films and BLEU into English over the others, and
-- the project's margin over plain faster-whisper in the same run.
with scores as (
    select
        evaluation_id,
        max(commit) as commit,
        min(ts) as evaluated_at,
        system,
        count(*) as films,
        avg(wer) filter (where language = 'en') as wer,
        avg(bleu) filter (where language <> 'en') as bleu,
        avg(compliance) as compliance,
        sum(invented_in_nonspeech) as invented_in_nonspeech
    from {{ source('events', 'evaluations') }}
    group by evaluation_id, system
)
select
    s.*,
    s.wer - p.wer as wer_minus_plain,
    s.bleu - p.bleu as bleu_minus_plain
from scores s
left join scores p on p.evaluation_id = s.evaluation_id and p.system = 'plain'

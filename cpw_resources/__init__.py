"""Everything the assets call out to, grouped by concern; nothing here imports asset code.

- ``speech/``: decoding and fingerprinting media, Whisper models and transcription, the
  machine-wide Whisper slots.
- ``language/``: glossaries (sidecars, TMDB names, cultural terms) and text matching.
- ``llm/``: LLM providers, the one batch engine, its prompts (translation, enhancement), prices.
- ``subtitles/``: subtitle style rules, cue building, SRT/WebVTT, quality scores.
- ``store/``: the event store (Parquet + DuckDB), title registry, sidecar naming, per-title
  files, the artifact cache, stage measurements.
- ``services/``: the reliability layer (breakers, retries, deadlines) and TMDB.
- ``orchestration/``: where Dagster meets the rest: resources, run config, partitions, jobs,
  the Dagster instance. Assets and sensors both import from here.
- ``settings.py``, ``errors.py``, ``atomic.py``, ``records.py``: one settings object, one
  exception hierarchy, atomic writes, the typed records (Segment, Word, Cue).
"""

from pathlib import Path

#: Files shipped with the package: cultural terms, LLM prices.
DATA_DIR = Path(__file__).resolve().parent / "data"

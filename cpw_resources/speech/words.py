"""Word times that leave Whisper's text exactly as plain decoding gives it.

faster-whisper's ``word_timestamps=True`` changes what it decodes: after each 30-second window
it moves the next window's start to the end of the last word it aligned, where plain decoding
moves it to the last timestamp token the model predicted. Measured on real long-form speech
(the accuracy issue), that alone cost base 2 WER points on clean audio and 5 on speech mixed
with music. Subtitles still need word times (to cut long segments into cues at word
boundaries), so :class:`AligningWhisperModel` takes them in a separate step:

- it decodes with ``word_timestamps=False``, so every window starts, and every token is
  chosen, exactly as in plain faster-whisper;
- as each window's segments come out, it aligns their tokens to the encoder output that
  window was decoded from (faster-whisper's own cross-attention alignment,
  ``add_word_timestamps``, the very step ``word_timestamps=True`` runs), so the words cost one
  alignment pass per window and no second encoding;
- segment times may move to their first and last word, as with ``word_timestamps=True``; the
  text and the tokens never change (tests/unit/test_words.py checks both on real speech).

The hooks are two methods of faster-whisper's ``WhisperModel`` (``generate_with_fallback``,
called once per decoded window with that window's encoder output, and ``generate_segments``);
the project pins faster-whisper's minor version for them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

from faster_whisper import WhisperModel
from faster_whisper.transcribe import Segment, Word


class AligningWhisperModel(WhisperModel):
    """A ``WhisperModel`` whose ``transcribe(..., word_timestamps=False)`` still returns words,
    aligned after decoding (see the module's docstring). ``word_timestamps=True`` behaves as
    in faster-whisper."""

    _encoded: Any = None

    def generate_with_fallback(self, encoder_output: Any, prompt: Any, tokenizer: Any,
                               options: Any) -> Any:
        self._encoded = encoder_output  # the window being decoded now
        return super().generate_with_fallback(encoder_output, prompt, tokenizer, options)

    def generate_segments(self, features: Any, tokenizer: Any, options: Any,
                          log_progress: Any = False,
                          encoder_output: Any = None) -> Iterable[Segment]:
        stream = super().generate_segments(features, tokenizer, options, log_progress,
                                           encoder_output)
        if options.word_timestamps:
            return stream
        return self._aligned(stream, features.shape[-1] - 1, tokenizer, options)

    def _aligned(self, stream: Iterable[Segment], content_frames: int, tokenizer: Any,
                 options: Any) -> Iterator[Segment]:
        window: list[Segment] = []
        encoded: Any = None
        last_speech = 0.0
        for segment in stream:
            if window and segment.seek != window[0].seek:
                aligned, last_speech = self._align(window, encoded, content_frames, tokenizer,
                                                   options, last_speech)
                yield from aligned
                window = []
            if not window:
                # Taken now: the next window's encoding replaces it before its first segment.
                encoded = self._encoded
            window.append(segment)
        if window:
            yield from self._align(window, encoded, content_frames, tokenizer, options,
                                   last_speech)[0]

    def _align(self, window: list[Segment], encoded: Any, content_frames: int, tokenizer: Any,
               options: Any, last_speech: float) -> tuple[list[Segment], float]:
        seek = window[0].seek
        frames = min(self.feature_extractor.nb_max_frames, content_frames - seek)
        parts = [{"seek": s.seek, "start": s.start, "end": s.end, "tokens": s.tokens}
                 for s in window]
        last_speech = self.add_word_timestamps(
            [parts], tokenizer, encoded, frames, options.prepend_punctuations,
            options.append_punctuations, last_speech_timestamp=last_speech,
        )
        out = [replace(s, start=p["start"], end=p["end"],
                       words=[Word(**w) for w in p.get("words", ())])
               for s, p in zip(window, parts, strict=True)]
        return out, last_speech

"""Word times after decoding: the text is plain faster-whisper's, word for word and token for
token, and the words are there, in order, inside their segments (real speech, several
30-second windows, VAD on as in the pipeline)."""

from __future__ import annotations

import numpy as np
import pytest
from faster_whisper import WhisperModel

from cpw_resources.settings import Settings
from cpw_resources.speech.models import ModelRegistry
from cpw_resources.speech.words import AligningWhisperModel
from tests import media_fixtures as mf

CLIPS = [f"pocketsphinx/librivox/sense_and_sensibility_01_austen_64kb-0{n}.wav"
         for n in (870, 880, 890, 920, 930)] + ["short_clips/jfk.wav",
                                                "short_clips/cmu_arctic_awb_arctic_a0007.wav",
                                                "short_clips/parselmouth_the_north_wind_and_the_sun.wav"]


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    pause = np.zeros(12000, dtype=np.int16)  # 0.75 s between readers
    parts = [p for clip in CLIPS for p in (mf.speech(clip, rate=16000), pause)]
    return np.concatenate(parts).astype(np.float32) / 32768.0


@pytest.mark.parametrize("name", ["tiny.en", "base"])
def test_the_text_is_plain_decodings_and_every_word_has_a_time(speech: np.ndarray, tmp_path,
                                                               name: str) -> None:
    path = str(ModelRegistry.from_settings(Settings(home=tmp_path)).resolve(name))
    options = dict(beam_size=5, vad_filter=True, language="en")
    plain = list(WhisperModel(path, device="cpu", compute_type="int8")
                 .transcribe(speech, word_timestamps=False, **options)[0])
    aligned = list(AligningWhisperModel(path, device="cpu", compute_type="int8")
                   .transcribe(speech, word_timestamps=False, **options)[0])
    with_words = list(WhisperModel(path, device="cpu", compute_type="int8")
                      .transcribe(speech, word_timestamps=True, **options)[0])

    assert len(speech) / 16000 > 40 and len({s.seek for s in plain}) >= 2  # several windows
    assert [s.text for s in aligned] == [s.text for s in plain]
    assert [s.tokens for s in aligned] == [s.tokens for s in plain]
    for seg in aligned:
        assert seg.words, seg.text
        assert "".join(w.word for w in seg.words).strip() == seg.text.strip()
        assert all(seg.start <= w.start <= w.end <= seg.end for w in seg.words)
        starts = [w.start for w in seg.words]
        assert starts == sorted(starts)

    # Where the two decodings agree on the text, the words fall where word_timestamps=True
    # puts them: the same alignment step, given the same tokens and encoder output.
    reference = {s.text: s.words for s in with_words}
    compared = [(a, b) for s in aligned if s.text in reference
                for a, b in zip(s.words, reference[s.text], strict=True)]
    assert len(compared) > 20
    gaps = [abs(a.start - b.start) + abs(a.end - b.end) for a, b in compared]
    assert np.median(gaps) < 0.05 and max(gaps) < 1.0, (np.median(gaps), max(gaps))

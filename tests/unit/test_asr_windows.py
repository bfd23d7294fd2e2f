"""Transcribing a long WAV window by window: cuts in pauses, nothing lost or repeated at a cut."""

from __future__ import annotations

import re
import wave
from pathlib import Path

import numpy as np
import pytest

from cpw_resources.settings import Settings
from cpw_resources.speech import asr
from cpw_resources.speech.media import SAMPLE_RATE, WavReader
from cpw_resources.speech.models import ModelRegistry
from tests import media_fixtures as mf


def write_wav(path: Path, samples: np.ndarray) -> WavReader:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(samples.astype("<i2").tobytes())
    return WavReader(path)


def noise(seconds: float, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(seconds * SAMPLE_RATE)) * 3000)


def test_windows_cover_the_file_and_cut_in_the_pause(tmp_path: Path) -> None:
    # 100 s of loud noise with a 0.8 s hush at 85 s: the 90 s window ends in the hush.
    samples = noise(100)
    samples[85 * SAMPLE_RATE : int(85.8 * SAMPLE_RATE)] *= 0.001
    reader = write_wav(tmp_path / "loud.wav", samples)

    spans = list(asr.windows(reader, window_s=90))

    assert spans[0][0] == 0 and spans[-1][1] == reader.frames
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))
    assert 85.0 <= spans[0][1] / SAMPLE_RATE <= 85.8
    assert all(hi - lo <= 90 * SAMPLE_RATE for lo, hi in spans)


@pytest.mark.parametrize("seconds", [0.0, 0.3, 59.0])
def test_short_and_empty_files_are_one_window_or_none(seconds: float, tmp_path: Path) -> None:
    reader = write_wav(tmp_path / "short.wav", noise(seconds))

    spans = list(asr.windows(reader, window_s=60))

    assert spans == ([(0, reader.frames)] if reader.frames else [])


def test_a_long_silence_is_cut_into_bounded_windows(tmp_path: Path) -> None:
    reader = write_wav(tmp_path / "silence.wav", np.zeros(25 * SAMPLE_RATE))

    spans = list(asr.windows(reader, window_s=4))

    assert sum(hi - lo for lo, hi in spans) == reader.frames
    assert all(0 < hi - lo <= 4 * SAMPLE_RATE for lo, hi in spans)


def test_windowed_transcript_keeps_every_line_once_on_the_films_clock(tmp_path: Path) -> None:
    jfk = mf.speech("jfk.wav")
    pause = np.zeros(int(1.5 * SAMPLE_RATE), dtype=np.int16)
    reader = write_wav(tmp_path / "jfk twice.wav", np.concatenate([pause, jfk, pause, jfk, pause]))
    config = asr.AsrConfig.build("tiny.en", device="cpu", compute_type="auto", beam_size=5,
                                 batch_size=1, vad_filter=True, cpu_threads=0)
    model = asr.load_model(config, ModelRegistry.from_settings(Settings(home=tmp_path)))

    result = asr.transcribe(model, reader, config, language="en", window_s=15)

    cut = next(iter(asr.windows(reader, window_s=15)))[1] / SAMPLE_RATE
    assert 12.5 <= cut <= 14.0  # in the pause between the two copies
    text = " ".join(s.text for s in result.segments).lower()
    assert len(re.findall(r"ask not what your country", text)) == 2, text
    assert [s.id for s in result.segments] == list(range(len(result.segments)))
    assert any(s.start > cut for s in result.segments)  # the second window, shifted
    for before, after in zip(result.segments, result.segments[1:], strict=False):
        assert before.end <= after.start
    for seg in result.segments:
        assert not seg.start < cut < seg.end  # no line spans the cut
        assert seg.words and all(seg.start <= w.start <= w.end <= seg.end for w in seg.words)
    assert result.duration_s == pytest.approx(reader.duration_s)
    assert result.language == "en"


def test_english_words_are_laid_onto_the_transcripts_segments() -> None:
    from cpw_resources.records import Segment, Word

    source = [Segment(0, 0.0, 2.0, "Bonjour à tous."), Segment(1, 3.0, 5.0, "Au revoir."),
              Segment(2, 8.0, 9.0, "Merci.")]
    english = [
        Segment(0, 0.1, 4.8, "Hello everyone. Goodbye.", words=(
            Word(0.1, 0.6, " Hello"), Word(0.7, 1.5, " everyone."),
            Word(2.4, 2.9, " Good"),  # in the gap, nearer the second segment
            Word(3.2, 4.8, "bye."))),
        Segment(1, 6.0, 6.5, "Um.", words=(Word(6.0, 6.5, " Um."),)),  # nearest: segment 1
    ]
    out = asr.onto_segments(english, source)
    assert [(s.id, s.start, s.end) for s in out] == [(0, 0.0, 2.0), (1, 3.0, 5.0), (2, 8.0, 9.0)]
    assert [s.text for s in out] == ["Hello everyone.", "Goodbye. Um.", "Merci."]
    assert all(s.start <= w.start <= w.end <= s.end for s in out for w in s.words)
    assert out[2] is source[2]  # nothing English for it: itself (translate() retries those)
    assert asr.onto_segments(english, []) == []


def test_repetition_loops_are_dropped_and_ordinary_lines_kept() -> None:
    from types import SimpleNamespace

    def seg(text: str) -> SimpleNamespace:
        return SimpleNamespace(text=text, no_speech_prob=0.1, avg_logprob=-0.3)

    loops = ["$ $ $ $ $ $ $ $ $ $ $ $ $ $ $ $ $ $ $ $ $ $ $ $ $ $ $ $ $ $",
             " Thank you. Thank you. Thank you. Thank you. Thank you. Thank you. Thank you.",
             "Это. $ 15, $ $ $ $ $ $ $ $ $ $ $ $ $ $ $ $ $ $ $ $ $ $ $ $ $ $ $ $ $ $"]
    ordinary = ["Please enter your agent number followed by the pound key.", "No, no, no!",
                "Ask not what your country can do for you, ask what you can do for your country.",
                "Все наши операторы заняты. Пожалуйста, оставайтесь на линии.", "OK."]
    assert all(asr._is_hallucination(seg(t)) for t in loops)
    assert not any(asr._is_hallucination(seg(t)) for t in ordinary)


def test_a_segment_left_without_english_is_translated_on_its_own(tmp_path: Path) -> None:
    """The fallback for a stretch the film's translation left empty: each such segment's clip
    is translated alone; a clip with nothing to translate keeps its own text."""
    from cpw_resources.records import Segment

    french = mf.speech("asterisk_dev/fr/agent-alreadyon.opus", rate=SAMPLE_RATE)
    silence = np.zeros(2 * SAMPLE_RATE, dtype=np.int16)
    reader = write_wav(tmp_path / "fr.wav", np.concatenate([french, silence]))
    speech_end = len(french) / SAMPLE_RATE
    config = asr.AsrConfig.build("base", device="cpu", compute_type="auto", beam_size=5,
                                 batch_size=1, vad_filter=True, cpu_threads=0)
    model = asr.load_model(config, ModelRegistry.from_settings(Settings(home=tmp_path)))
    source = [Segment(0, 0.0, speech_end, "Cet agent est présentement en ligne."),
              Segment(1, speech_end + 0.2, speech_end + 1.8, "Silence.")]
    out = asr._translate_clips(model, reader, source, config, "fr", None)
    assert "agent" in out[0].text.lower() and out[0].text != source[0].text
    assert out[0].words and all(0.0 <= w.start <= w.end <= speech_end for w in out[0].words)
    assert out[1] == source[1]


def _two_lines_and_a_pause(tmp_path: Path) -> tuple[WavReader, float]:
    """jfk.wav, 3 s of silence, then an Asterisk prompt; and when the prompt starts."""
    jfk = mf.speech("jfk.wav")
    pause = np.zeros(3 * SAMPLE_RATE, dtype=np.int16)
    prompt = mf.speech("asterisk_dev/en/all-circuits-busy-now.opus", rate=SAMPLE_RATE)
    reader = write_wav(tmp_path / "two lines.wav", np.concatenate([jfk, pause, prompt]))
    return reader, (len(jfk) + len(pause)) / SAMPLE_RATE


def test_speech_whisper_skipped_is_decoded_again(tmp_path: Path) -> None:
    """A window whose decoding jumped over its second line (its segments taken away here, as
    Whisper's seek does on a run of short lines) gets that speech back, on the window's clock,
    and the silence before it stays silent."""
    reader, second = _two_lines_and_a_pause(tmp_path)
    config = asr.AsrConfig.build("tiny.en", device="cpu", compute_type="auto", beam_size=5,
                                 batch_size=1, vad_filter=True, cpu_threads=0)
    model = asr.load_model(config, ModelRegistry.from_settings(Settings(home=tmp_path)))
    samples = reader.read(0, reader.frames)
    heard, _ = model.transcribe(samples, language="en", beam_size=5, vad_filter=True)
    heard = list(heard)
    first = [seg for seg in heard if seg.end <= second]
    assert first and len(first) < len(heard)

    filled = asr._fill_holes(model, samples, first, config, "en", None, "transcribe")

    added = filled[len(first):]
    text = " ".join(seg.text for seg in added).lower()
    assert "circuits" in text and "busy" in text, text
    assert filled[:len(first)] == first
    assert all(second - 0.5 <= seg.start <= seg.end <= reader.duration_s + 0.01 for seg in added)
    assert all(seg.words and seg.start - 0.01 <= seg.words[0].start for seg in added)


def test_a_window_whisper_followed_gains_nothing(tmp_path: Path) -> None:
    reader, _ = _two_lines_and_a_pause(tmp_path)
    config = asr.AsrConfig.build("tiny.en", device="cpu", compute_type="auto", beam_size=5,
                                 batch_size=1, vad_filter=True, cpu_threads=0)
    model = asr.load_model(config, ModelRegistry.from_settings(Settings(home=tmp_path)))
    samples = reader.read(0, reader.frames)
    heard = list(model.transcribe(samples, language="en", beam_size=5, vad_filter=True)[0])

    assert asr._fill_holes(model, samples, heard, config, "en", None, "transcribe") == heard


def test_a_loop_spread_over_segments_is_cut_and_a_repeated_line_kept() -> None:
    from types import SimpleNamespace

    loop = "To deactivate the order mode of all the agents present in the conference, press 8. "
    text = loop * 6
    pieces = [text[i:i + 60] for i in range(0, len(text), 60)]  # cut anywhere, as Whisper does
    before = ["To increase the volume of the other participants,", "press 4."]
    segs = [SimpleNamespace(text=t) for t in [*before, *pieces, "For this test to work,"]]

    looping = asr._loops(segs)

    kept = [s.text for k, s in enumerate(segs) if k not in looping]
    assert kept[:2] == before and kept[-1] == "For this test to work,"
    assert "".join(kept).count("deactivate the order mode") <= 2
    assert len(looping) >= len(pieces) - 4
    said_twice = [SimpleNamespace(text=t) for t in
                  ["Please hold.", "All our operators are busy, please stay on the line.",
                   "All our operators are busy, please stay on the line.", "Thank you."]]
    assert asr._loops(said_twice) == set()


def test_hotwords_read_back_are_dropped_and_lines_naming_people_kept() -> None:
    from cpw_resources.speech.asr import _echoes

    given = "Raghuveer, Pooja, Aakash, Lonavala, Sameer, Didi, Khandala, Meenakshi, Inspector Kale"
    assert _echoes("Khandala, Meenakshi, Inspector Kale.", given)
    assert _echoes("Sameer, Didi, Khandala", given)
    # Three names in order but a sentence around them; three names out of order; no hotwords.
    assert not _echoes("Raghuveer, Pooja, Aakash, come here now please!", given)
    assert not _echoes("Pooja, Raghuveer and Aakash went home.", given)
    assert not _echoes("Khandala, Meenakshi, Inspector Kale.", None)
    assert not _echoes("Pooja, Aakash.", given)
    # Any order, little but names: read back too.
    assert _echoes("Raghuveer, Khandala, Khandala,", given)
    assert not _echoes("Meenakshi, Khandala, Meenakshi, Bhaiya before dinner.", given)


def test_names_whisper_invents_from_its_hotwords_over_noise_are_not_kept(tmp_path) -> None:
    """Without VAD, noise decoded with hotwords comes out as a list of the names; such a
    window is decoded again without hotwords, and nothing of the list is kept."""
    config = asr.AsrConfig.build("tiny.en", device="cpu", compute_type="auto", beam_size=5,
                                 batch_size=1, vad_filter=False, cpu_threads=0)
    model = asr.load_model(config, ModelRegistry.from_settings(Settings(home=tmp_path)))
    reader = write_wav(tmp_path / "noise.wav", noise(11.0, seed=0) * 0.66)
    names = "Raghuveer, Aakash, Pooja, Sameer, Meenakshi, Lonavala, Khandala, Didi, Bhaiya"
    result = asr.transcribe(model, reader, config, hotwords=names)
    heard = " ".join(s.text for s in result.segments)
    assert not any(name in heard for name in names.split(", ")), heard
    assert result.windows_without_hotwords in (0, 1)


def test_a_line_said_again_after_a_pause_is_kept(tmp_path: Path) -> None:
    """The same prompt twice with a pause between: when Whisper's decoding kept only the
    first, the second is decoded again and kept although its words repeat the line before."""
    prompt = mf.speech("asterisk_dev/en/all-circuits-busy-now.opus", rate=SAMPLE_RATE)
    pause = np.zeros(int(1.5 * SAMPLE_RATE), dtype=np.int16)
    reader = write_wav(tmp_path / "twice.wav", np.concatenate([prompt, pause, prompt, pause]))
    config = asr.AsrConfig.build("tiny.en", device="cpu", compute_type="auto", beam_size=5,
                                 batch_size=1, vad_filter=True, cpu_threads=0)
    model = asr.load_model(config, ModelRegistry.from_settings(Settings(home=tmp_path)))
    samples = reader.read(0, reader.frames)
    second = (len(prompt) + len(pause)) / SAMPLE_RATE
    heard = list(model.transcribe(samples, language="en", beam_size=5, vad_filter=True)[0])
    first = [seg for seg in heard if seg.end <= second]
    assert first and "circuits" in " ".join(seg.text for seg in first).lower()

    filled = asr._fill_holes(model, samples, first, config, "en", None, "transcribe")

    added = filled[len(first):]
    assert "circuits" in " ".join(seg.text for seg in added).lower(), added
    assert all(seg.start >= second - 0.5 for seg in added)

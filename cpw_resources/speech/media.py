"""Media input: decode any film or recording to 16 kHz mono WAV, and describe its audio.

This module owns the boundary between user-supplied media files and the rest of the pipeline:

* :func:`decode_to_wav` turns whatever container/codec PyAV (FFmpeg) can read into the one
  audio format every later stage uses (16 kHz, mono, signed 16-bit PCM WAV), and turns every
  way a user file can be unusable into a :class:`~cpw_resources.errors.MediaError` subclass.
* :func:`probe` checks cheaply, by content, that a file is media with decodable audio (the
  inbox sensor's test before it registers a file).
* :class:`WavReader` reads such a WAV back as float32 samples, any span at a time, so no stage
  holds a whole film in memory; :func:`load_wav` reads it whole (short clips, tests).
* :func:`fingerprint_wav` summarises the audio (loudness, speech/music/silence share, SNR) in
  one streaming pass, cheaply enough to run on a whole film before transcription.
* :func:`choose_audio_track` says which audio track a film's subtitles come from, and why.

Which audio track (:func:`select_track`): the one the user picks (a track number, counted from
0 among the audio tracks, or a language tag), else, narrowing step by step, the tracks whose
language tag matches the wanted language, then those flagged default, then those with the most
channels, then the first. A pick the file does not have is a :class:`MediaError` listing its
tracks. Multi-channel audio is downmixed by libswresample (centre/dialogue included).

Error policy of :func:`decode_to_wav` (each error names the file and says what to do):

* zero bytes -> :class:`EmptyFileError`; not a container FFmpeg recognises, or a container
  holding neither audio nor video (e.g. a subtitle file) -> :class:`NotMediaError`; video but
  no audio -> :class:`NoAudioStreamError`. A missing or unreadable path, or an audio codec this
  FFmpeg build cannot decode -> plain :class:`MediaError`.
* A file that *starts* like a known container (MP4, Matroska, Ogg, ...) but cannot be opened
  -> :class:`CorruptMediaError`: an MP4 cut short loses its index at the end, which is a
  truncated download, not a "not a video" file.
* A few undecodable packets inside a long film are skipped with a logged warning and replaced
  by silence of the same length, so later subtitles stay in sync. More than
  :data:`MAX_BAD_PACKET_SHARE` of the packets (and more than :data:`MIN_BAD_PACKETS_TO_FAIL`)
  -> :class:`CorruptMediaError`: by then whole lines of dialogue are missing.
* The container stops being readable partway, nothing decodes, or the decoded audio is much
  shorter than the duration the container declares (by more than :data:`TRUNCATION_TOLERANCE`
  of it *and* more than :data:`TRUNCATION_MIN_GAP_S`) -> :class:`CorruptMediaError` naming both
  durations: a truncated download must be seen by the user, not silently produce half a film's
  subtitles. Matroska, MP4 and MP3 (Xing/LAME header) declare their length up front; for Ogg,
  raw AAC and WAV FFmpeg derives the duration from the bytes present, so a copy cut short
  decodes as a shorter recording.

No raw ``av`` exception escapes, and ``dest`` is written atomically: it is either absent (or
its previous content) or the complete WAV.
"""

from __future__ import annotations

import logging
import math
import os
import re
import wave
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import av.container
import numpy as np

from cpw_resources.atomic import atomic_path
from cpw_resources.errors import (
    CorruptMediaError,
    EmptyFileError,
    MediaError,
    NoAudioStreamError,
    NotMediaError,
)

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000

#: Share of audio packets that may fail to decode before the file counts as corrupt.
MAX_BAD_PACKET_SHARE = 0.02
#: Up to this many bad packets (~0.5 s of audio) never reject a file, however short it is.
MIN_BAD_PACKETS_TO_FAIL = 25
#: Decoded audio may fall short of the declared duration by this share ...
TRUNCATION_TOLERANCE = 0.05
#: ... or by this many seconds, whichever is larger, before the file counts as truncated.
TRUNCATION_MIN_GAP_S = 2.0
#: Timestamp gaps between decoded frames longer than this are filled with silence (shorter
#: ones are encoder rounding).
GAP_FILL_MIN_S = 0.05
#: Longer jumps are timestamp discontinuities (e.g. spliced broadcast recordings), not lost
#: audio; filling them could insert hours of silence, so they are logged and skipped over.
GAP_FILL_MAX_S = 10.0
#: How many individual bad packets are logged before only the final summary is.
_MAX_LOGGED_BAD_PACKETS = 5

# Signatures of containers FFmpeg reads: a file that starts like one of these but does not
# open is a damaged media file, not "not a media file".
_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (4, b"ftyp", "MP4/MOV"),
    (4, b"moov", "MP4/MOV"),
    (4, b"mdat", "MP4/MOV"),
    (4, b"free", "MP4/MOV"),
    (4, b"wide", "MP4/MOV"),
    (0, b"\x1a\x45\xdf\xa3", "Matroska/WebM"),
    (0, b"OggS", "Ogg"),
    (0, b"RIFF", "RIFF (WAV/AVI)"),
    (0, b"RF64", "RF64 WAV"),
    (0, b"ID3", "MP3"),
    (0, b"fLaC", "FLAC"),
    (0, b"FORM", "AIFF"),
    (0, b"FLV", "FLV"),
    (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "ASF/WMV"),
    (0, b"\x00\x00\x01\xba", "MPEG program stream"),
)


@dataclass(frozen=True)
class DecodedAudio:
    path: Path  # the 16 kHz mono s16 WAV written
    duration_s: float
    source_codec: str
    source_container: str
    source_sample_rate: int
    source_channels: int


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------


def decode_to_wav(
    src: Path, dest: Path, *, sample_rate: int = SAMPLE_RATE, track: int | None = None
) -> DecodedAudio:
    """Decode audio track number ``track`` of ``src`` to a mono s16 WAV at ``dest``.

    ``track`` counts audio tracks from 0 (:attr:`AudioTrack.number`); None chooses one by the
    rule of :func:`select_track` without a wanted language. Frames are resampled and written
    as they are decoded, so memory use does not grow with the length of the film.
    Raises a :class:`MediaError` subclass for every unusable input (see the module docstring).
    """
    src, dest = Path(src), Path(dest)
    _check_is_nonempty_file(src)
    with _open_container(src) as container:
        stream = _audio_stream(container, src, track)
        cc = stream.codec_context
        source = (cc.codec.canonical_name, container.format.name, cc.sample_rate, cc.channels)
        with atomic_path(dest) as tmp:
            n_samples = _decode_stream_to_wav(container, stream, src, tmp, sample_rate)
            _check_complete(container, stream, src, n_samples / sample_rate)
    return DecodedAudio(dest, n_samples / sample_rate, *source)


@dataclass(frozen=True)
class ProbeResult:
    """What :func:`probe` found: the container and the audio stream that would be decoded."""

    path: Path
    container: str
    duration_s: float  # as the container declares it; 0.0 when it declares none
    audio_codec: str
    sample_rate: int
    channels: int
    audio_streams: int
    video_streams: int


#: :func:`probe` gives up after this many audio packets without one decoded frame.
PROBE_MAX_PACKETS = 64


def probe(src: Path) -> ProbeResult:
    """Check, by content and cheaply, that ``src`` is media with audio that decodes.

    Opens the file with PyAV (the extension plays no part), picks the audio stream
    :func:`decode_to_wav` would decode, and decodes packets until one yields audio (at most
    :data:`PROBE_MAX_PACKETS`). Raises the same :class:`MediaError` subclasses as
    :func:`decode_to_wav` for an empty file, a non-media file, media without audio, or audio
    that does not decode. It reads only the file's start, so damage further in, such as a
    truncated end, shows only when the file is decoded.
    """
    src = Path(src)
    _check_is_nonempty_file(src)
    with _open_container(src) as container:
        stream = _audio_stream(container, src, None)
        cc = stream.codec_context
        decoded = False
        try:
            for count, packet in enumerate(container.demux(stream), 1):
                try:
                    decoded = bool(packet.decode())
                except av.FFmpegError:
                    decoded = False
                if decoded or count >= PROBE_MAX_PACKETS:
                    break
        except av.FFmpegError as exc:
            raise CorruptMediaError(
                src, f"its audio could not be read ({_reason(exc)}); the file is damaged or "
                "truncated — download or copy it again",
            ) from exc
        if not decoded:
            raise CorruptMediaError(
                src, "its audio track does not decode (no sound in the first packets); the "
                "file is damaged — download or copy it again",
            )
        return ProbeResult(
            path=src,
            container=container.format.name,
            duration_s=_declared_duration_s(container, stream),
            audio_codec=cc.codec.canonical_name,
            sample_rate=cc.sample_rate,
            channels=cc.channels,
            audio_streams=len(container.streams.audio),
            video_streams=len(container.streams.video),
        )


def _check_is_nonempty_file(src: Path) -> None:
    if not src.exists():
        raise MediaError(src, "file not found; check the path and that the drive is mounted")
    if not src.is_file():
        raise MediaError(src, "is a folder or special file, not a media file")
    if not os.access(src, os.R_OK):
        raise MediaError(src, "cannot be read (permission denied); check the file's permissions")
    if src.stat().st_size == 0:
        raise EmptyFileError(
            src, "the file is empty (0 bytes); the download or copy probably failed — get it again"
        )


def _sniff_container(src: Path) -> str | None:
    """Name of the container ``src`` starts like, from its first bytes, or None."""
    with open(src, "rb") as fh:
        head = fh.read(16)
    for offset, magic, name in _SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return name
    return None


def _open_container(src: Path) -> av.container.InputContainer:
    try:
        # Film metadata is often Latin-1 or worse; a bad title tag must not reject the film.
        return av.open(str(src), mode="r", metadata_errors="replace")
    except av.FFmpegError as exc:
        looks_like = _sniff_container(src)
        if looks_like is not None:
            raise CorruptMediaError(
                src,
                f"has a {looks_like} header but cannot be opened ({_reason(exc)}); it is "
                "probably truncated or damaged — download or copy it again",
            ) from exc
        raise NotMediaError(
            src,
            "is not an audio or video file that FFmpeg recognises (wrong file, or a different "
            "file type renamed to this extension)",
        ) from exc


# --------------------------------------------------------------------------------------------
# Which audio track
# --------------------------------------------------------------------------------------------

#: ISO 639-2 codes (bibliographic and terminology) of Whisper's languages → two-letter codes.
_ISO639_2_TABLE = """
    afr:af alb:sq sqi:sq amh:am ara:ar arm:hy hye:hy asm:as aze:az bak:ba baq:eu eus:eu bel:be
    ben:bn bod:bo tib:bo bos:bs bre:br bul:bg bur:my mya:my cat:ca ces:cs cze:cs chi:zh zho:zh
    cym:cy wel:cy dan:da deu:de ger:de dut:nl nld:nl ell:el gre:el eng:en est:et fao:fo fas:fa
    per:fa fin:fi fra:fr fre:fr geo:ka kat:ka glg:gl guj:gu hat:ht hau:ha haw:haw heb:he hin:hi
    hrv:hr hun:hu ice:is isl:is ind:id ita:it jav:jw jpn:ja kan:kn kaz:kk khm:km kor:ko lao:lo
    lat:la lav:lv lin:ln lit:lt ltz:lb mac:mk mkd:mk mal:ml mao:mi mri:mi mar:mr may:ms msa:ms
    mlg:mg mlt:mt mon:mn nep:ne nno:nn nor:no oci:oc pan:pa pol:pl por:pt pus:ps ron:ro rum:ro
    rus:ru san:sa sin:si slk:sk slo:sk slv:sl sna:sn snd:sd som:so spa:es srp:sr sun:su swa:sw
    swe:sv tam:ta tat:tt tel:te tgk:tg tgl:tl fil:tl tha:th tuk:tk tur:tr ukr:uk urd:ur uzb:uz
    vie:vi yid:yi yor:yo yue:yue
"""
_ISO639_2 = dict(pair.split(":") for pair in _ISO639_2_TABLE.split())
#: Tags that say "no particular language" (undetermined, multiple, none, private use).
_NO_LANGUAGE = frozenset({"und", "mis", "mul", "zxx", "qaa"})
_TRACK_NUMBER = re.compile(r"\d+", re.ASCII)
#: A file's language tag is kept to this many characters of ``[A-Za-z0-9_-]`` (others become
#: ``?``), so a crafted tag cannot add lines or bulk to a log line or an error message.
MAX_TAG_CHARS = 35
_NOT_TAG_CHARS = re.compile(r"[^A-Za-z0-9_-]+")


def language_code(tag: str | None) -> str | None:
    """``fre``, ``fra``, ``fr``, ``fr-CA`` → ``fr``; None when untagged or undetermined."""
    primary = re.split(r"[-_]", (tag or "").strip().lower(), maxsplit=1)[0]
    if not primary or primary in _NO_LANGUAGE:
        return None
    return _ISO639_2.get(primary, primary)


@dataclass(frozen=True)
class AudioTrack:
    """One audio stream of a file; ``number`` counts audio tracks only, from 0 (FFmpeg's
    ``0:a:N``), and is what a user picks."""

    number: int
    stream_index: int  # among all the container's streams
    language: str | None  # the file's own tag ("fre", "en-US"); None when untagged
    codec: str | None  # None when this build of FFmpeg cannot decode it
    channels: int
    default: bool

    def describe(self) -> str:
        """``1: eng, aac, 2 ch, default``"""
        parts = [self.language or "no language tag", self.codec or "undecodable codec",
                 f"{self.channels} ch"] + (["default"] if self.default else [])
        return f"{self.number}: {', '.join(parts)}"


@dataclass(frozen=True)
class TrackChoice:
    """The audio track a title's subtitles come from, why, and every track there was."""

    track: AudioTrack
    reason: str
    tracks: tuple[AudioTrack, ...]

    def summary(self) -> dict[str, object]:
        """The choice as JSON-ready metadata (``fingerprint.json``, the asset's metadata)."""
        return {
            "index": self.track.number, "stream_index": self.track.stream_index,
            "language": self.track.language, "codec": self.track.codec,
            "channels": self.track.channels, "default": self.track.default,
            "reason": self.reason, "tracks": len(self.tracks),
        }


def choose_audio_track(
    src: Path, *, pick: str | None = None, pick_source: str = "CPW_AUDIO_TRACK",
    language: str | None = None,
) -> TrackChoice:
    """Open ``src`` and choose its audio track by :func:`select_track` (reads headers only).

    Raises the same :class:`MediaError` subclasses as :func:`decode_to_wav` for a file that is
    not usable media, and a :class:`MediaError` listing the tracks for a pick it does not have.
    """
    src = Path(src)
    _check_is_nonempty_file(src)
    with _open_container(src) as container:
        return select_track(_tracks(container, src), src, pick=pick, pick_source=pick_source,
                            language=language)


def select_track(
    tracks: list[AudioTrack], src: Path, *, pick: str | None = None,
    pick_source: str = "CPW_AUDIO_TRACK", language: str | None = None,
) -> TrackChoice:
    """The documented rule: the user's pick (a track number or a language tag, named by
    ``pick_source`` in errors), else narrow the decodable tracks to those in ``language``,
    then to those flagged default, then to those with the most channels; the first remains."""
    pick = (pick or "").strip()
    if pick:
        candidates, reasons = _picked(tracks, pick, pick_source, src), [f"{pick_source} = {pick}"]
    elif len(tracks) == 1 and tracks[0].codec is not None:
        return TrackChoice(tracks[0], "the only audio track", tuple(tracks))
    else:
        candidates = [t for t in tracks if t.codec is not None]
        if not candidates:
            raise MediaError(src, "none of its audio tracks uses a codec this build of FFmpeg "
                                  "can decode; convert the audio (e.g. to AAC or Opus)")
        candidates, reasons = _narrow_by_language(candidates, language)
    defaults = [t for t in candidates if t.default]
    if defaults and len(defaults) < len(candidates):
        candidates, reasons = defaults, [*reasons, "flagged default"]
    most = max(t.channels for t in candidates)
    widest = [t for t in candidates if t.channels == most]
    if len(widest) < len(candidates):
        candidates, reasons = widest, [*reasons, f"most channels ({most})"]
    if len(candidates) > 1:
        reasons.append("first of the equal tracks")
    return TrackChoice(candidates[0], "; ".join(reasons), tuple(tracks))


def _picked(tracks: list[AudioTrack], pick: str, source: str, src: Path) -> list[AudioTrack]:
    """The tracks the user's ``pick`` names: one by number, or all with that language tag."""
    if _TRACK_NUMBER.fullmatch(pick):
        number = int(pick)
        matching = [t for t in tracks if t.number == number]
    else:
        code = language_code(pick)
        matching = [t for t in tracks if t.language and (
            t.language.lower() == pick.lower() or (code and language_code(t.language) == code))]
    if not matching:
        raise MediaError(src, f"{source} = {pick!r} names no audio track of this file; "
                              f"{_listing(tracks)}")
    usable = [t for t in matching if t.codec is not None]
    if not usable:
        raise MediaError(src, f"{source} = {pick!r} names a track this build of FFmpeg cannot "
                              f"decode; {_listing(tracks)}")
    return usable


def _narrow_by_language(
    tracks: list[AudioTrack], language: str | None
) -> tuple[list[AudioTrack], list[str]]:
    wanted = language_code(language)
    matching = [t for t in tracks if wanted and language_code(t.language) == wanted]
    if not matching:
        return tracks, []
    return matching, [f"language tag {matching[0].language} matches the wanted language "
                      f"{language}"]


def _listing(tracks: list[AudioTrack]) -> str:
    return (f"its audio tracks are {'; '.join(t.describe() for t in tracks)} — pick one by "
            f"number (0–{len(tracks) - 1}) or language tag")


def _file_tag(value: str | None) -> str | None:
    """A language tag as read from a file, made safe to print (see :data:`MAX_TAG_CHARS`)."""
    return _NOT_TAG_CHARS.sub("?", (value or "").strip())[:MAX_TAG_CHARS] or None


def _tracks(container: av.container.InputContainer, src: Path) -> list[AudioTrack]:
    """The container's audio tracks; a file with none is a :class:`MediaError` subclass."""
    if not container.streams.audio:
        if not container.streams.video:
            # e.g. a text file FFmpeg probed as a subtitle or data stream.
            raise NotMediaError(
                src, f"contains no audio or video (FFmpeg reads it as {container.format.name!r})"
            )
        raise NoAudioStreamError(
            src,
            "has video but no audio track, so there is no speech to subtitle; use a copy of the "
            "film that includes its soundtrack",
        )
    return [
        AudioTrack(
            number=number, stream_index=stream.index,
            language=_file_tag(stream.metadata.get("language")),
            codec=stream.codec_context.codec.canonical_name if stream.codec_context else None,
            channels=stream.codec_context.channels if stream.codec_context else 0,
            default=bool(stream.disposition & av.stream.Disposition.default),
        )
        for number, stream in enumerate(container.streams.audio)
    ]


def _audio_stream(
    container: av.container.InputContainer, src: Path, number: int | None
) -> av.AudioStream:
    """Audio track ``number`` of ``container``, or the one :func:`select_track` chooses."""
    tracks = _tracks(container, src)
    track = select_track(tracks, src).track if number is None else _numbered(tracks, number, src)
    return container.streams.audio[track.number]


def _numbered(tracks: list[AudioTrack], number: int, src: Path) -> AudioTrack:
    if not 0 <= number < len(tracks):
        raise MediaError(src, f"has no audio track {number}; {_listing(tracks)}")
    if tracks[number].codec is None:
        raise MediaError(src, f"audio track {number} uses a codec this build of FFmpeg cannot "
                              f"decode; pick another: {_listing(tracks)}")
    return tracks[number]


class _MonoWriter:
    """Resamples decoded frames to mono s16 and appends them to an open WAV, keeping sync.

    Sample 0 of the WAV is the film's time 0, which players take as the container's start
    time. When a frame's timestamp is later than the audio written so far (skipped corrupt
    packets, a track that starts after the video) the difference is written as silence, so
    subtitle times still match the picture. Jumps longer than :data:`GAP_FILL_MAX_S` either
    way are timestamp discontinuities: the timeline is re-based on them instead.

    A new resampler is made whenever the input format changes mid-stream (some broadcast
    recordings switch sample rate or channel layout), because a PyAV resampler only accepts
    the format of its first frame.
    """

    def __init__(self, wav: wave.Wave_write, sample_rate: int, origin_s: float, src: Path):
        self._wav = wav
        self._rate = sample_rate
        self._origin_s = origin_s
        self._src = src
        self._resampler: av.AudioResampler | None = None
        self._input_key: tuple[str, str, int] | None = None
        self.samples = 0

    def write(self, frame: av.AudioFrame) -> None:
        self._fill_gap_before(frame)
        key = (frame.format.name, frame.layout.name, frame.sample_rate)
        if key != self._input_key:
            self.flush()
            self._resampler = av.AudioResampler(format="s16", layout="mono", rate=self._rate)
            self._input_key = key
        assert self._resampler is not None
        for out in self._resampler.resample(frame):
            self._append(out.to_ndarray().reshape(-1))

    def flush(self) -> None:
        if self._resampler is not None:
            for out in self._resampler.resample(None):
                self._append(out.to_ndarray().reshape(-1))
            self._resampler = None
            self._input_key = None

    def _fill_gap_before(self, frame: av.AudioFrame) -> None:
        if frame.time is None:
            return
        gap_s = (frame.time - self._origin_s) - self.samples / self._rate
        if abs(gap_s) > GAP_FILL_MAX_S:
            log.warning(
                "%s: audio timestamps jump by %.1f s at %s; treated as a discontinuity, not filled",
                self._src,
                gap_s,
                _hms(self.samples / self._rate),
            )
            self._origin_s += gap_s
        elif gap_s > GAP_FILL_MIN_S:
            self._append(np.zeros(round(gap_s * self._rate), dtype=np.int16))

    def _append(self, samples: np.ndarray) -> None:
        # writeframesraw: writeframes would rewrite the header after every frame.
        self._wav.writeframesraw(samples.astype("<i2", copy=False).tobytes())
        self.samples += samples.size


def _decode_stream_to_wav(
    container: av.container.InputContainer,
    stream: av.AudioStream,
    src: Path,
    tmp: Path,
    sample_rate: int,
) -> int:
    """Stream-decode ``stream`` into a WAV at ``tmp``; return the number of samples written."""
    with wave.open(str(tmp), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        origin_s = (container.start_time or 0) / av.time_base
        writer = _MonoWriter(wav, sample_rate, origin_s, src)
        packets = bad = 0
        try:
            for packet in container.demux(stream):
                packets += 1
                frames = _decode_packet(packet, src, bad)
                if frames is None:
                    bad += 1
                    continue
                for frame in frames:
                    writer.write(frame)
            writer.flush()
        except av.FFmpegError as exc:
            raise CorruptMediaError(
                src,
                f"could not be read past {_hms(writer.samples / sample_rate)} "
                f"({_reason(exc)}); the file is damaged or truncated — download or copy it again",
            ) from exc
    _check_bad_packets(src, packets, bad)
    if writer.samples == 0:
        raise CorruptMediaError(
            src, "its audio track could not be decoded at all (0 samples); the file is damaged"
        )
    return writer.samples


def _reason(exc: av.FFmpegError) -> str:
    """FFmpeg's own words for an error, without the errno and path PyAV adds."""
    return exc.strerror or str(exc)


def _decode_packet(packet: av.Packet, src: Path, bad_so_far: int) -> list[av.AudioFrame] | None:
    """Decoded frames of ``packet``, or None when the packet is corrupt (and logged)."""
    try:
        return packet.decode()
    except av.FFmpegError as exc:
        if bad_so_far < _MAX_LOGGED_BAD_PACKETS:
            known = packet.pts is not None and packet.time_base is not None
            at = _hms(float(packet.pts * packet.time_base)) if known else "?"
            log.warning("%s: skipping undecodable audio packet at %s (%s)", src, at, _reason(exc))
        return None


def _check_bad_packets(src: Path, packets: int, bad: int) -> None:
    if bad == 0:
        return
    if bad > MIN_BAD_PACKETS_TO_FAIL and bad > MAX_BAD_PACKET_SHARE * packets:
        raise CorruptMediaError(
            src,
            f"{bad} of {packets} audio packets are damaged and could not be decoded; the file is "
            "corrupt — download or copy it again",
        )
    log.warning(
        "%s: skipped %d of %d undecodable audio packets (replaced by silence)", src, bad, packets
    )


def _declared_duration_s(container: av.container.InputContainer, stream: av.AudioStream) -> float:
    """Duration the file claims for ``stream``; 0.0 when it declares none."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return 0.0


def _check_complete(
    container: av.container.InputContainer, stream: av.AudioStream, src: Path, decoded_s: float
) -> None:
    declared_s = _declared_duration_s(container, stream)
    missing_s = declared_s - decoded_s
    if missing_s > TRUNCATION_MIN_GAP_S and missing_s > TRUNCATION_TOLERANCE * declared_s:
        raise CorruptMediaError(
            src,
            f"the file says it lasts {_hms(declared_s)} but only {_hms(decoded_s)} of audio "
            "could be decoded; it is probably truncated (an incomplete download or copy) — "
            "download or copy it again",
        )


def _hms(seconds: float) -> str:
    """``1:02:03.4`` / ``2:03.4``: durations the way a user reads them on a player."""
    # Round first so 59.96 s reads 1:00.0, not 0:60.0.
    minutes, secs = divmod(round(max(seconds, 0.0), 1), 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{secs:04.1f}" if hours else f"{minutes}:{secs:04.1f}"


# --------------------------------------------------------------------------------------------
# Reading the WAV back
# --------------------------------------------------------------------------------------------


#: Samples per block when a WAV is streamed (~65 s at 16 kHz, 4 MB of float32).
WAV_BLOCK_SAMPLES = 1 << 20


class WavReader:
    """A 16-bit PCM WAV read span by span as float32 mono in [-1, 1] (channels averaged).

    Only the span asked for is read, so a stage working through a film one window or one
    segment at a time holds that much audio, whatever the film's length.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        with self._open() as wav:
            if wav.getsampwidth() != 2:
                raise MediaError(
                    self.path, "is not a 16-bit PCM WAV; decode it with decode_to_wav() first"
                )
            self.channels = wav.getnchannels()
            self.sample_rate = wav.getframerate()
            self.frames = wav.getnframes()

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0

    def read(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Samples ``start`` to ``stop`` (sample indices, clipped to the file)."""
        stop = self.frames if stop is None else min(stop, self.frames)
        start = min(max(start, 0), stop)
        with self._open() as wav:
            wav.setpos(start)
            raw = wav.readframes(stop - start)
        return _to_float_mono(np.frombuffer(raw, dtype="<i2"), self.channels)

    def blocks(self, size: int | None = None) -> Iterator[np.ndarray]:
        """The whole file, ``size`` (default :data:`WAV_BLOCK_SAMPLES`) samples at a time."""
        size = size or WAV_BLOCK_SAMPLES
        for start in range(0, self.frames, size):
            yield self.read(start, start + size)

    def _open(self) -> wave.Wave_read:
        try:
            return wave.open(str(self.path), "rb")
        except (wave.Error, EOFError) as exc:
            raise CorruptMediaError(self.path, f"is not a readable WAV file ({exc})") from exc
        except OSError as exc:
            raise MediaError(self.path, f"cannot be read ({exc.strerror or exc})") from exc


def write_wav(path: Path, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    """Float mono samples in [-1, 1] as a 16-bit PCM WAV (a slice for a trial decode)."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes((np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes())
    return path


def load_wav(path: Path) -> np.ndarray:
    """Samples of a whole 16-bit PCM WAV as float32 mono in [-1, 1] (channels averaged)."""
    return WavReader(path).read()


def _to_float_mono(samples: np.ndarray, channels: int) -> np.ndarray:
    if channels > 1:
        samples = samples[: samples.size - samples.size % channels].reshape(-1, channels)
        return (samples.mean(axis=1) / 32768.0).astype(np.float32)
    out = samples.astype(np.float32)
    out *= 1.0 / 32768.0
    return out


# --------------------------------------------------------------------------------------------
# Fingerprint
# --------------------------------------------------------------------------------------------
#
# Every measure works on 30 ms frames. It is a cheap description for routing and reports
# (is there speech at all? is it buried in music or noise?), not a VAD for cutting segments.
#
# * Energy VAD: a frame is *active* when it is louder than the local noise floor (the quietest
#   frame within +-1.5 s, ignoring digital silence) by FLOOR_MARGIN_DB, louder than
#   SILENCE_DBFS, and no more than DYNAMIC_RANGE_DB below the loud parts of the recording.
# * Two cues over a 1 s window tell speech from music. Speech switches between syllables and
#   pauses several times a second, so the frame level varies a lot (std of frame dB >=
#   SPEECH_MIN_LEVEL_STD_DB); its formants and pitch move, so the magnitude spectrum 90 ms later
#   correlates weakly with the current one. Music sustains notes, so that correlation is high.
#   speech = active frame in a modulated window with low spectral correlation.
# * music_ratio (a heuristic): non-silent frames whose 1 s window keeps a high 90 ms spectral
#   correlation, i.e. sustained tonal/harmonic energy. Steady tones and hum count as music;
#   broadband noise does not (its spectrum does not repeat). Speech and music can overlap in a
#   film, so the ratios need not sum to 1.
# Measured on real files: speech 0.6-0.85 speech_ratio and <= 0.08 music_ratio; music tracks
# <= 0.03 speech_ratio and 0.6-0.95 music_ratio.

FRAME_S = 0.030
DIGITAL_SILENCE_DBFS = -120.0
#: Frames quieter than this are silence (room tone of a quiet scene is around -60 dBFS).
SILENCE_DBFS = -60.0
FLOOR_MARGIN_DB = 9.0
DYNAMIC_RANGE_DB = 45.0
SPEECH_MIN_LEVEL_STD_DB = 5.0
SPEECH_MAX_SPECTRAL_CORR = 0.62
MUSIC_MIN_SPECTRAL_CORR = 0.70
_BAND_HZ = (200.0, 4000.0)  # where speech formants and most melodic energy live
#: highband_ratio: the share of a voiced frame's energy above this (telephone audio has ~0).
HIGH_BAND_HZ = 4000.0
#: speech_rate: a syllable peak stands out this much from the dips within 90 ms of it.
SYLLABLE_GAP_FRAMES = 3
SYLLABLE_PROMINENCE_DB = 4.0
_CORR_LAG_FRAMES = 3  # 90 ms: longer than a phone's steady part, shorter than a held note
_CUE_WINDOW_FRAMES = 33  # ~1 s
_FLOOR_WINDOW_FRAMES = 99  # ~3 s
_CHUNK_FRAMES = 4096  # bounds FFT memory on a 2-hour film


def fingerprint(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> dict[str, float]:
    """Summary of mono float samples: loudness, speech/music/silence shares and SNR."""
    return _summarise([np.asarray(samples, dtype=np.float32).reshape(-1)], sample_rate)


def fingerprint_wav(path: Path) -> dict[str, float]:
    """:func:`fingerprint` of a WAV, read block by block: the same values, and memory that does
    not grow with the film beyond a few numbers per 30 ms frame (a few MB per hour)."""
    reader = WavReader(path)
    return _summarise(reader.blocks(), reader.sample_rate)


def _summarise(blocks: Iterable[np.ndarray], sample_rate: int) -> dict[str, float]:
    features = _FrameFeatures(sample_rate)
    for block in blocks:
        features.add(block)
    mean_square, corr, high_share, flatness = features.result()
    db = np.maximum(10.0 * np.log10(mean_square + 1e-13), DIGITAL_SILENCE_DBFS)
    speech, music, silent = _classify_frames(db, corr)
    n = max(db.size, 1)
    voiced = speech if speech.any() else ~silent
    # From frame energies and min/max: no float64 copy of a 2-hour film (~1 GB) is made.
    whole_mean_square = float(mean_square.mean()) if mean_square.size else 0.0
    return {
        "duration_s": round(features.samples / sample_rate, 3),
        "loudness_dbfs": round(_dbfs(whole_mean_square), 2),
        "peak_dbfs": round(_dbfs(features.peak * features.peak), 2),
        "speech_ratio": round(float(speech.sum()) / n, 4),
        "snr_db": round(_snr_db(db, speech), 2),
        "music_ratio": round(float(music.sum()) / n, 4),
        "silence_ratio": round(float(silent.sum()) / n, 4),
        "highband_ratio": round(float(np.median(high_share[voiced])), 4) if voiced.any()
        else 0.0,
        "spectral_flatness": round(float(np.median(flatness[voiced])), 4) if voiced.any()
        else 0.0,
        "speech_rate": round(_syllable_rate(db, speech), 2),
    }


def _syllable_rate(db: np.ndarray, speech: np.ndarray) -> float:
    """Syllable-like level peaks per second of speech: frames of speech louder than every
    frame within SYLLABLE_GAP_FRAMES and SYLLABLE_PROMINENCE_DB above the dip before them.
    A rough measure of how fast people talk (fast speech is harder for small models)."""
    if speech.sum() < _CUE_WINDOW_FRAMES:
        return 0.0
    smooth = _moving_mean(db, 3)
    width = 2 * SYLLABLE_GAP_FRAMES + 1
    padded = np.pad(smooth, SYLLABLE_GAP_FRAMES, mode="edge")
    around = np.lib.stride_tricks.sliding_window_view(padded, width)
    peak = (smooth >= around.max(axis=1)) & speech
    dip = around.min(axis=1)
    peaks = int((peak & (smooth - dip >= SYLLABLE_PROMINENCE_DB)).sum())
    return peaks / (float(speech.sum()) * FRAME_S)


def _dbfs(mean_square: float) -> float:
    if mean_square <= 0.0:
        return DIGITAL_SILENCE_DBFS
    return max(10.0 * math.log10(mean_square), DIGITAL_SILENCE_DBFS)


class _FrameFeatures:
    """Per-frame mean square and band-limited spectral correlation with the frame 90 ms back,
    fed blocks of any size; a partial frame waits for the next block, and the last
    ``_CORR_LAG_FRAMES`` spectra are kept so correlations cross block borders."""

    def __init__(self, sample_rate: int) -> None:
        self.frame_len = max(int(round(FRAME_S * sample_rate)), 1)
        self.n_fft = self.frame_len  # 480 = 2^5*3*5 transforms faster than padding to 512
        freqs = np.fft.rfftfreq(self.n_fft, 1.0 / sample_rate)
        self.band = (freqs >= _BAND_HZ[0]) & (freqs <= _BAND_HZ[1])
        self.window = np.hanning(self.frame_len).astype(np.float32)
        self.samples, self.peak = 0, 0.0
        self._rest = np.zeros(0, dtype=np.float32)
        self._previous_shapes: np.ndarray | None = None
        self.high = freqs >= HIGH_BAND_HZ
        self._mean_square: list[np.ndarray] = []
        self._corr: list[np.ndarray] = []
        self._high_share: list[np.ndarray] = []
        self._flatness: list[np.ndarray] = []

    def add(self, block: np.ndarray) -> None:
        if block.size:
            self.samples += block.size
            self.peak = max(self.peak, float(block.max()), -float(block.min()))
        data = np.concatenate((self._rest, block)) if self._rest.size else block
        n = data.size // self.frame_len
        frames = data[: n * self.frame_len].reshape(n, self.frame_len)
        self._rest = data[n * self.frame_len :].copy()
        for start in range(0, n, _CHUNK_FRAMES):
            self._add_frames(frames[start : start + _CHUNK_FRAMES])

    def _add_frames(self, chunk: np.ndarray) -> None:
        mean_square = np.einsum("ij,ij->i", chunk, chunk, dtype=np.float64) / self.frame_len
        magnitude = np.abs(np.fft.rfft(chunk * self.window, self.n_fft, axis=1))
        power = np.square(magnitude, dtype=np.float64) + 1e-12
        self._high_share.append(power[:, self.high].sum(axis=1) / power.sum(axis=1))
        self._flatness.append(np.exp(np.log(power[:, self.band]).mean(axis=1))
                              / power[:, self.band].mean(axis=1))
        shape = _spectral_shape(magnitude[:, self.band])
        kept = self._previous_shapes
        both = shape if kept is None else np.concatenate((kept, shape))
        lag, first = _CORR_LAG_FRAMES, both.shape[0] - shape.shape[0]
        corr = np.zeros(shape.shape[0])
        skip = max(lag - first, 0)  # the film's first frames have nothing 90 ms back
        if skip < shape.shape[0]:
            now, back = both[first + skip :], both[first + skip - lag : -lag]
            corr[skip:] = np.einsum("ij,ij->i", now, back)
        self._previous_shapes = both[-lag:]
        self._mean_square.append(mean_square)
        self._corr.append(corr)

    def result(self) -> tuple[np.ndarray, ...]:
        """Per frame: mean square, spectral correlation, high-band share, flatness."""
        if not self._mean_square:
            return np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0)
        return (np.concatenate(self._mean_square), np.concatenate(self._corr),
                np.concatenate(self._high_share), np.concatenate(self._flatness))


def _spectral_shape(band_magnitude: np.ndarray) -> np.ndarray:
    """Band magnitude spectra, mean-removed and unit-norm, so a dot product is a correlation.

    Mean removal makes white noise correlate ~0 with itself 90 ms later; without it any two
    non-negative spectra look alike.
    """
    mag = band_magnitude.copy()
    mag -= mag.mean(axis=1, keepdims=True)
    mag /= np.linalg.norm(mag, axis=1, keepdims=True) + 1e-9
    return mag


def _classify_frames(db: np.ndarray, corr: np.ndarray) -> tuple[np.ndarray, ...]:
    """Boolean masks (speech, music, silence) over frames."""
    silent = db < SILENCE_DBFS
    if db.size == 0 or silent.all():
        return np.zeros(db.size, bool), np.zeros(db.size, bool), silent
    floor = _noise_floor(db)
    loud_ref = float(np.percentile(db[~silent], 95))
    active = ~silent & (db > floor + FLOOR_MARGIN_DB) & (db > loud_ref - DYNAMIC_RANGE_DB)
    # Clamp to the floor so a digitally silent gap does not fake syllable modulation.
    level_std = _moving_std(np.maximum(db, floor), _CUE_WINDOW_FRAMES)
    window_corr = _moving_mean(corr, _CUE_WINDOW_FRAMES)
    speech = (
        active & (level_std >= SPEECH_MIN_LEVEL_STD_DB) & (window_corr < SPEECH_MAX_SPECTRAL_CORR)
    )
    music = ~silent & (window_corr >= MUSIC_MIN_SPECTRAL_CORR)
    return speech, music, silent


def _noise_floor(db: np.ndarray) -> np.ndarray:
    """Adaptive noise floor: the quietest non-digital-silence frame within +-1.5 s."""
    width = _FLOOR_WINDOW_FRAMES
    audible = np.where(db <= DIGITAL_SILENCE_DBFS + 1.0, np.inf, db)
    padded = np.pad(audible, (width // 2, width - 1 - width // 2), mode="edge")
    floor = np.lib.stride_tricks.sliding_window_view(padded, width).min(axis=1)
    return np.where(np.isinf(floor), DIGITAL_SILENCE_DBFS, floor)


def _moving_mean(values: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average with edge padding, via a cumulative sum (O(n))."""
    padded = np.pad(values.astype(np.float64), (width // 2, width - 1 - width // 2), mode="edge")
    csum = np.concatenate(([0.0], np.cumsum(padded)))
    return (csum[width:] - csum[:-width]) / width


def _moving_std(values: np.ndarray, width: int) -> np.ndarray:
    mean = _moving_mean(values, width)
    var = _moving_mean(np.square(values), width) - np.square(mean)
    return np.sqrt(np.maximum(var, 0.0))


def _snr_db(db: np.ndarray, speech: np.ndarray) -> float:
    """Typical speech level minus the noise level, from percentiles of frame levels.

    Signal: median speech frame (or the 90th percentile of all audible frames when no speech
    was found). Noise: 10th percentile of frames that are not digital silence, since exact
    zeros are gaps in the file, not noise in the room.
    """
    audible = db[db > DIGITAL_SILENCE_DBFS + 1.0]
    if audible.size == 0:
        return 0.0
    signal = float(np.median(db[speech])) if speech.any() else float(np.percentile(audible, 90))
    noise = float(np.percentile(audible, 10))
    return max(signal - noise, 0.0)

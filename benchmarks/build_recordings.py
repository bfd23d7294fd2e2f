"""Build longer recordings from the Asterisk prompts in ../shared/data (CC-BY-SA-3.0 / CC-BY-3.0).

``python benchmarks/build_recordings.py sample`` writes the bundled demo title
(``cpw_assets/samples/voicemail_fr.mka``: French speech, Opus in Matroska, with its English
reference script beside it). ``python benchmarks/build_recordings.py long OUT.wav --lang en``
joins every prompt of a language into one recording (≈ 5 min for en) for the benchmarks.
Prompts are joined with a short pause; the reference is the English recording script.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
ASTERISK = ROOT.parent / "shared" / "data" / "asterisk_dev"
SAMPLE_PROMPTS = (
    "agent-alreadyon", "auth-incorrect", "priv-introsaved", "vm-tmpexists",
    "queue-periodic-announce", "demo-nogo",
)
RATE = 48000
PAUSE_S = 0.8


def _prompts() -> list[dict[str, str]]:
    with open(ASTERISK / "prompts.tsv", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def _decode(path: Path) -> np.ndarray:
    resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
    chunks = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
    return np.concatenate(chunks)


def join(ids: list[str], lang: str) -> tuple[np.ndarray, list[str]]:
    by_id = {row["id"]: row for row in _prompts()}
    pause = np.zeros(int(PAUSE_S * RATE), dtype=np.int16)
    pieces, reference = [pause], []
    for prompt_id in ids:
        row = by_id[prompt_id]
        pieces += [_decode(ASTERISK / row[f"audio_{lang}"]), pause]
        reference.append(" ".join(row["en"].split()))
    return np.concatenate(pieces), reference


def write(samples: np.ndarray, dest: Path, codec: str) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(dest), "w") as out:
        stream = out.add_stream(codec, rate=RATE, layout="mono")
        if codec == "libopus":
            stream.bit_rate = 24000
        for start in range(0, len(samples), 960):
            chunk = samples[start:start + 960]
            if len(chunk) < 960:
                chunk = np.pad(chunk, (0, 960 - len(chunk)))
            frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = RATE
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("what", choices=["sample", "long"])
    parser.add_argument("out", nargs="?", type=Path)
    parser.add_argument("--lang", default="en")
    args = parser.parse_args()
    if args.what == "sample":
        dest = args.out or ROOT / "cpw_assets" / "samples" / "voicemail_fr.mka"
        samples, reference = join(list(SAMPLE_PROMPTS), "fr")
        write(samples, dest, "libopus")
    else:
        dest = args.out or ROOT / "benchmarks" / "out" / f"asterisk_{args.lang}.wav"
        ids = [row["id"] for row in _prompts() if row[f"audio_{args.lang}"]]
        samples, reference = join(ids, args.lang)
        write(samples, dest, "pcm_s16le")
    dest.with_suffix(".en.txt").write_text("\n".join(reference) + "\n", encoding="utf-8")
    print(f"{dest} ({len(samples) / RATE:.1f} s)")


if __name__ == "__main__":
    main()
